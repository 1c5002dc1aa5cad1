"""The `cityscada` command: serve, simulate, demo and the administration subcommands."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import subprocess
import sys
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from scada.model import CityScadaError, ConfigError

log = logging.getLogger("cityscada")

DEFAULT_SITE = "config/dijon"
DEFAULT_PORT = 4840
READY_LINE = "cityscada-simulator-ready"
DELEGATED = ("users", "pki", "hmi")  # subcommands with a parser of their own


def _site_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--site", default=DEFAULT_SITE, help=f"site folder (default {DEFAULT_SITE})")


def _port_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"OPC UA port (default {DEFAULT_PORT})")
    parser.add_argument("--host", default="0.0.0.0", help="address to listen on (default all)")
    parser.add_argument("--data-dir", default="var", help="where the server keeps its files (default var/)")
    parser.add_argument(
        "--insecure",
        action="store_true",
        help="DEVELOPMENT ONLY: no security layer, an open None endpoint where anonymous may do everything",
    )


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every subcommand."""
    parser = argparse.ArgumentParser(prog="cityscada", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the control server for a site")
    _site_arg(serve)
    _port_args(serve)
    serve.add_argument("--historian", default=None, help="historian database URL ('' disables it)")
    serve.add_argument("--public-port", type=int, default=None, help="serve the public parking feed on this port")

    simulate = sub.add_parser("simulate", help="run the field devices of a site (Modbus TCP simulators)")
    _site_arg(simulate)
    simulate.add_argument("--seed", type=int, default=1, help="random seed of the city (default 1)")
    simulate.add_argument("--speed", type=float, default=1.0, help="simulated seconds per real second")
    simulate.add_argument("--control-port", type=int, default=None, help="HTTP port of the fault-injection API")

    demo = sub.add_parser("demo", help="simulators, server and historian together on the embedded defaults")
    _site_arg(demo)
    _port_args(demo)
    demo.add_argument("--headless", action="store_true", help="do not open the console; print the endpoint")
    demo.add_argument("--seed", type=int, default=1)
    demo.add_argument("--speed", type=float, default=1.0)
    demo.add_argument("--control-port", type=int, default=8502, help="fault-injection API of the simulators")
    demo.add_argument("--public-port", type=int, default=8080, help="public parking feed port (default 8080)")

    check = sub.add_parser("check", help="validate a site configuration and print its summary")
    _site_arg(check)

    history = sub.add_parser("history", help="historian tools")
    history_sub = history.add_subparsers(dest="history_command", required=True)
    export = history_sub.add_parser("export", help="write the history of tags to CSV")
    _site_arg(export)
    export.add_argument("--url", default=None, help="historian database URL (default: the site's historian)")
    export.add_argument("--tags", required=True, help="tag pattern: * within a path segment, ** across segments")
    export.add_argument("--from", dest="start", required=True, help="start time, ISO 8601 (UTC if no offset)")
    export.add_argument("--to", dest="end", required=True, help="end time, ISO 8601 (UTC if no offset), excluded")
    export.add_argument("-o", "--output", default="-", help="CSV file (default: standard output)")
    export.add_argument("--no-quality", action="store_true", help="leave the quality column out")

    # These delegate their whole argument list to their own parsers (see their --help).
    for name, text in (
        ("users", "manage the site's users: add | passwd | remove | list"),
        ("pki", "manage the certificate trust list: list | trust | reject | remove"),
        ("hmi", "open the control-room console (an OPC UA client)"),
    ):
        delegated = sub.add_parser(name, help=text, add_help=False)
        delegated.add_argument("rest", nargs=argparse.REMAINDER)
    return parser


async def run_until_signal(start: Callable[[], Awaitable[None]], stop: Callable[[], Awaitable[None]]) -> None:
    """Start, wait for SIGINT/SIGTERM, then stop (a second Ctrl-C is not needed)."""
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stopping.set)
    await start()
    try:
        await stopping.wait()
    finally:
        log.info("stopping")
        await stop()


def _load(site_dir: str):  # type: ignore[no-untyped-def]
    from scada.site.loader import load_site

    return load_site(Path(site_dir))


def _options(args: argparse.Namespace, **extra: Any) -> Any:
    from scada.app import ServerOptions

    if args.insecure:
        log.warning("--insecure: no security layer; anyone who reaches the port may command the city")
    return ServerOptions(
        host=args.host,
        port=args.port,
        data_dir=Path(args.data_dir),
        insecure=args.insecure,
        public_api_port=args.public_port,
        **extra,
    )


async def _serve(args: argparse.Namespace) -> None:
    from scada.app import ControlServer

    site = _load(args.site)
    server = ControlServer(site, _options(args, historian_url=args.historian))

    async def start() -> None:
        await server.start()
        print(f"cityscada serving {site.name} at {server.endpoint_url}", flush=True)

    await run_until_signal(start, server.stop)


async def _simulate(args: argparse.Namespace) -> None:
    from drivers.sim.runner import CitySimulator

    site = _load(args.site)
    simulator = CitySimulator(site, seed=args.seed, speed=args.speed, bind="site", control_port=args.control_port)

    async def start() -> None:
        await simulator.start()
        print(f"{READY_LINE} {len(simulator.endpoints)} devices of {site.name}", flush=True)

    await run_until_signal(start, simulator.stop)


def _spawn_simulator(args: argparse.Namespace) -> subprocess.Popen[str]:
    command = [sys.executable, "-m", "scada.cli", "simulate", "--site", args.site, "--seed", str(args.seed)]
    command += ["--speed", str(args.speed), "--control-port", str(args.control_port)]
    child = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None
    for line in child.stdout:
        if line.startswith(READY_LINE):
            print(f"simulators: {line[len(READY_LINE) :].strip()}", flush=True)
            return child
    raise CityScadaError(f"the simulators exited with code {child.wait()} before they were ready")


def _terminate(child: subprocess.Popen) -> None:  # type: ignore[type-arg]
    """Ask a child process to stop, and kill it if it has not within 5 s."""
    if child.poll() is None:
        child.terminate()
        try:
            child.wait(timeout=5)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


async def _demo(args: argparse.Namespace) -> None:
    from scada.app import ControlServer

    site = _load(args.site)
    simulator = await asyncio.to_thread(_spawn_simulator, args)
    server = ControlServer(site, _options(args))
    console: subprocess.Popen[bytes] | None = None

    async def start() -> None:
        nonlocal console
        await server.start()
        print(f"cityscada demo of {site.name} at {server.endpoint_url}", flush=True)
        if not args.headless and (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
            url = server.endpoint_url.replace("0.0.0.0", "127.0.0.1")
            if server.security is not None:  # the console's certificate, made and trusted (idempotent)
                from scada.security.console_trust import trust_local_console

                await trust_local_console(server.security.pki)
            console = subprocess.Popen([sys.executable, "-m", "scada.cli", "hmi", "--url", url])  # noqa: ASYNC220

    async def stop() -> None:
        try:
            await server.stop()
        finally:
            for child in (console, simulator):
                if child is not None:
                    await asyncio.to_thread(_terminate, child)

    await run_until_signal(start, stop)


def parse_time(text: str) -> datetime:
    """An ISO 8601 time; without an offset it is taken as UTC."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError as exc:
        raise CityScadaError(f"{text!r} is not an ISO 8601 time") from exc
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _history(args: argparse.Namespace) -> None:
    from historian.export import export_csv

    url = args.url or historian_url(_load(args.site))
    if not url:
        raise CityScadaError(f"site {args.site} has no historian; give --url")
    start, end = parse_time(args.start), parse_time(args.end)
    if end <= start:
        raise CityScadaError("--to must be after --from")
    target = sys.stdout if args.output == "-" else Path(args.output)
    from sqlalchemy.exc import SQLAlchemyError

    try:
        rows = export_csv(url, args.tags, start, end, target, quality=not args.no_quality)
    except SQLAlchemyError as exc:
        raise CityScadaError(
            f"cannot read the historian at {url}: {exc.__class__.__name__}: {getattr(exc, 'orig', None) or exc}"
        ) from exc
    print(f"{rows} rows exported", file=sys.stderr)


def _check(args: argparse.Namespace) -> None:
    from scada.site.loader import site_summary

    print(site_summary(_load(args.site)))


def _delegate(command: str, rest: list[str]) -> int:
    """Subcommands with their own parser: users, pki, hmi."""
    if command == "users":
        from scada.security.cli import users_main

        return users_main(rest)
    if command == "pki":
        from scada.security.pki_cli import pki_main

        return pki_main(rest)
    from hmi.app import hmi_main

    return hmi_main(rest)


def historian_url(site: Any) -> str:
    """The site's historian URL ("" when it has none)."""
    section = site.settings.get("historian") or {}
    return str(section.get("url", "")) if isinstance(section, dict) else ""


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `cityscada` console script."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in DELEGATED:
        return _delegate(argv[0], argv[1:])
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    for noisy in ("asyncua", "pymodbus"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    try:
        if args.command == "serve":
            asyncio.run(_serve(args))
        elif args.command == "simulate":
            asyncio.run(_simulate(args))
        elif args.command == "demo":
            asyncio.run(_demo(args))
        elif args.command == "check":
            _check(args)
        elif args.command == "history":
            _history(args)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    except CityScadaError as exc:
        print(f"cityscada: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
