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
from pathlib import Path

from scada.model import CityScadaError, ConfigError

log = logging.getLogger("cityscada")

DEFAULT_SITE = "config/dijon"
DEFAULT_PORT = 4840
READY_LINE = "cityscada-simulator-ready"


def _site_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--site", default=DEFAULT_SITE, help=f"site folder (default {DEFAULT_SITE})")


def _port_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"OPC UA port (default {DEFAULT_PORT})")
    parser.add_argument("--host", default="0.0.0.0", help="address to listen on (default all)")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every subcommand."""
    parser = argparse.ArgumentParser(prog="cityscada", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the control server for a site")
    _site_arg(serve)
    _port_args(serve)
    serve.add_argument("--historian", default=None, help="historian database URL ('' disables it)")

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

    check = sub.add_parser("check", help="validate a site configuration and print its summary")
    _site_arg(check)
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


async def _serve(args: argparse.Namespace) -> None:
    from scada.app import ControlServer, ServerOptions

    site = _load(args.site)
    server = ControlServer(site, ServerOptions(host=args.host, port=args.port, historian_url=args.historian))

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
    from scada.app import ControlServer, ServerOptions

    site = _load(args.site)
    simulator = await asyncio.to_thread(_spawn_simulator, args)
    server = ControlServer(site, ServerOptions(host=args.host, port=args.port))
    console: subprocess.Popen[bytes] | None = None

    async def start() -> None:
        nonlocal console
        await server.start()
        print(f"cityscada demo of {site.name} at {server.endpoint_url}", flush=True)
        if not args.headless and (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
            url = server.endpoint_url.replace("0.0.0.0", "127.0.0.1")
            console = subprocess.Popen([sys.executable, "-m", "scada.cli", "hmi", "--url", url])  # noqa: ASYNC220

    async def stop() -> None:
        try:
            await server.stop()
        finally:
            for child in (console, simulator):
                if child is not None:
                    await asyncio.to_thread(_terminate, child)

    await run_until_signal(start, stop)


def _check(args: argparse.Namespace) -> None:
    from scada.site.loader import site_summary

    print(site_summary(_load(args.site)))


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `cityscada` console script."""
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
