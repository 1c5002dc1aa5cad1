"""Benchmark: the console on the Dijon site (34,000 lamps) against a server and simulators in their own processes.

Starts the simulators (`python -m scada.cli simulate --site config/dijon`) and the control server
(`python -m scada.cli serve --site config/dijon --port <free>`: secure endpoints, users, roles, a historian in a
temporary SQLite file), makes the console's certificate and trusts it on the server (`cityscada pki trust`),
waits until every lamp is live, then runs the console offscreen in a fresh process, logged in as the demo
supervisor over Basic256Sha256/SignAndEncrypt, and prints:

- start to the first complete map (goal <= 4 s): from the console's start (Qt, pyqtgraph and the console imported,
  QApplication made, login, SiteMap read, map drawn, every watched state read, coloured and painted), also from
  the process's own start;
- the map update rate with all 34,000 lamps live (goal >= 10 frames/s): a full update is every cabinet's
  LampStates array decoded, all 34,000 dots recoloured and the map painted at 1600 x 1000; then a live wave:
  every cabinet forced off by the console (SetMode 2) and back to automatic, the map following the lamps through
  the server (Modbus poll -> LampStates -> subscription -> recolour at <= 10 Hz);
- the time to subscribe to everything the console watches (goal <= 5 s): monitored items created for the map.

Usage: .venv/bin/python bench/console.py [--site config/dijon] [--user U --password P] [--frames N] [--no-wave]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SERVING = "cityscada serving"
READY_TIMEOUT_S = 180.0


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def spawn(command: list[str], ready: str, what: str) -> subprocess.Popen[str]:
    """Start a child and return once it printed a line starting with `ready`."""
    child = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None
    for line in child.stdout:
        if line.startswith(ready):
            return child
    raise SystemExit(f"{what} exited with {child.wait()} before it was ready")


def stop(child: subprocess.Popen[str] | None) -> None:
    """Terminate a child (kill after 10 s)."""
    if child is None or child.poll() is not None:
        return
    child.terminate()
    try:
        child.wait(timeout=10)
    except subprocess.TimeoutExpired:
        child.kill()
        child.wait()


# ---------------------------------------------------------------------------------------------------------
# Children: the wired server and the readiness probe
# ---------------------------------------------------------------------------------------------------------


async def wait_ready(url: str, user: str | None, password: str | None, security: str | None) -> None:
    """Wait until every cabinet's LampStates has a value for every lamp (all lamps polled once)."""
    import json

    from asyncua import Client

    from hmi.security import certificate_uri, security_certificate
    from scada.catalog import NAMESPACE_URI

    started = time.perf_counter()
    client = Client(url, timeout=30, watchdog_intervall=30)
    certificate = security_certificate(security)
    if certificate is not None and security is not None:
        client.application_uri = certificate_uri(certificate) or client.application_uri
        await client.set_security_string(security)
    if user:
        client.set_user(user)
        client.set_password(password or "")
    async with client:
        ns = await client.get_namespace_index(NAMESPACE_URI)
        devices = json.loads(await client.get_node(f"ns={ns};s=SiteMap/Devices").read_value())
        nodes = [client.get_node(f"ns={ns};s=Lighting/{cab}/LampStates") for cab in devices["cabinet"]["id"]]
        lamps = len(devices["lamp"]["id"])
        while True:
            values = await client.read_values(nodes) if nodes else []
            live = sum(sum(1 for b in v if b != 0 and b != 0xFF) for v in values if isinstance(v, bytes))
            if live >= lamps:
                break
            if time.perf_counter() - started > READY_TIMEOUT_S:
                raise SystemExit(f"only {live} of {lamps} lamps live after {READY_TIMEOUT_S:.0f} s")
            await asyncio.sleep(1.0)
    print(f"ready {lamps} lamps live after {time.perf_counter() - started:.1f} s", flush=True)


# ---------------------------------------------------------------------------------------------------------
# The console, offscreen, in this process
# ---------------------------------------------------------------------------------------------------------


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0-100) of some values."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def run_console(
    url: str,
    user: str | None,
    password: str | None,
    security: str | None,
    frames: int,
    wave: bool,
    profile: str | None = None,
) -> None:
    """In a fresh process: start the console, print its start-up figures, measure full map updates, a live wave."""
    started = time.perf_counter()
    since_process = time.time() - psutil.Process().create_time()
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    import qasync
    from PyQt6.QtWidgets import QApplication

    from hmi.client import ClientOptions, ConsoleClient, Credentials
    from hmi.console import Console
    from hmi.theme import apply_theme

    imported = time.perf_counter() - started
    app = QApplication(["cityscada-console-bench"])
    app.setQuitOnLastWindowClosed(False)
    apply_theme(app)
    made_app = time.perf_counter() - started

    async def measure() -> None:
        client = ConsoleClient(Credentials(url, user, password, security), ClientOptions())
        with tempfile.TemporaryDirectory() as folder:
            console = Console(client, Path(folder) / "console.ini")
            console.window.resize(1600, 1000)
            before_start = time.perf_counter() - started
            profiler = None
            if profile:
                import cProfile

                profiler = cProfile.Profile()
                profiler.enable()
            times = await console.start()
            if profiler is not None and profile:
                profiler.disable()
                profiler.dump_stats(profile)
            try:
                report_start(times, imported, made_app, before_start, since_process, console)
                await measure_updates(console, frames)
                if wave:
                    await live_wave(console)
            finally:
                await console.stop()
                console.window.dispose()

    qasync.run(measure())


def report_start(
    times: dict[str, float], imported: float, made_app: float, before: float, since_process: float, console: Any
) -> None:
    """Print the start-up figures."""
    model = console.model
    first = before + times["first_complete_map"]
    subscribe = times["subscribed"] - times["first_complete_map"]
    counts = {kind.value: len(layer) for kind, layer in model.layers.items()}
    print(f"site: {model.title}: {counts}")
    print("console start-up (s from the console's start; imports and QApplication included):")
    print(f"  import Qt, pyqtgraph, asyncua, console   {imported:6.2f}")
    print(f"  QApplication and theme                   {made_app:6.2f}")
    for step in ("connected", "site_map", "drawn", "first_complete_map", "subscribed", "permissions"):
        print(f"  {step:<40} {before + times[step]:6.2f}")
    print(
        f"START TO FIRST COMPLETE MAP: {first:.2f} s (goal <= 4 s); from the process's start {first + since_process:.2f} s;"
        f" CPU time of the console process by then {console.cpu_times['first_complete_map']:.2f} s"
    )
    paths = len(model.watched_paths())
    print(f"SUBSCRIBE TO EVERYTHING WATCHED: {subscribe:.2f} s for {paths} monitored items (goal <= 5 s)")


async def measure_updates(console: Any, frames: int) -> None:
    """Full updates: every cabinet's LampStates decoded, 34,000 dots recoloured, the map painted."""
    import numpy as np

    from hmi.model import LAMP_DIMMED, LAMP_FAILED, LAMP_OFF, LAMP_ON
    from hmi.values import Change
    from scada.catalog import Kind

    model = console.model
    cmap = console.window.map
    cabinets = model.layers[Kind.CABINET]
    lamps = len(model.layers[Kind.LAMP])
    rng = np.random.default_rng(5)
    codes = np.array([LAMP_ON, LAMP_DIMMED, LAMP_OFF, LAMP_FAILED], dtype=np.uint8)
    sizes = [int(count) + 1 for count in cabinets.columns["lamps"]]
    decode, recolour, paint, total = [], [], [], []
    cmap.timer.stop()  # the frames below are driven by hand
    try:
        for _ in range(frames):
            changes = [
                Change(f"{path}/LampStates", rng.choice(codes, size).tobytes(), 0, None)
                for path, size in zip(cabinets.paths, sizes, strict=True)
            ]
            t0 = time.perf_counter()
            model.apply(changes)
            t1 = time.perf_counter()
            cmap.refresh()
            t2 = time.perf_counter()
            cmap.plot.viewport().repaint()
            t3 = time.perf_counter()
            decode.append(t1 - t0)
            recolour.append(t2 - t1)
            paint.append(t3 - t2)
            total.append(t3 - t0)
            await asyncio.sleep(0)
    finally:
        # back to the city's real states (the frames above fed made-up arrays)
        paths = model.watched_paths()
        values = await console.client.read(paths)
        model.apply(
            [
                Change(p, dv.Value.Value, dv.StatusCode.value, dv.SourceTimestamp)
                for p, dv in zip(paths, values, strict=True)
            ]
        )
        cmap.timer.start()

    def ms(values: list[float]) -> str:
        return f"mean {statistics.mean(values) * 1000:6.1f} ms, p95 {percentile(values, 95) * 1000:6.1f} ms"

    print(f"full map update, {lamps} lamps in {len(sizes)} LampStates arrays, {frames} frames at 1600 x 1000:")
    print(f"  decode LampStates   {ms(decode)}")
    print(f"  recolour all dots   {ms(recolour)}")
    print(f"  paint the map       {ms(paint)}")
    print(f"  whole frame         {ms(total)}")
    rate = 1 / statistics.mean(total)
    print(
        f"MAP UPDATE RATE, ALL {lamps} LAMPS CHANGING: {rate:.1f} frames/s (goal >= 10; the map refreshes at <= 10 Hz)"
    )


async def live_wave(console: Any) -> None:
    """Every cabinet forced off by the console, then back to automatic: the map follows 34,000 real lamps.

    The commands go through the server to the simulated cabinets; the map learns the result the normal way (the
    cabinets' next poll, LampStates, the subscription), so the time includes a cabinet poll period (5 s on Dijon).
    """
    from asyncua import ua

    from hmi.model import MapState
    from scada.catalog import Kind

    model = console.model
    cmap = console.window.map
    client = console.client
    cabinets = model.layers[Kind.CABINET]
    lamps = model.layers[Kind.LAMP]

    async def set_all(mode: int) -> list[Any]:
        semaphore = asyncio.Semaphore(32)

        async def one(path: str) -> Any:
            async with semaphore:
                return await client.call(path, "SetMode", ua.Variant(mode, ua.VariantType.Int32))

        return await asyncio.gather(*(one(path) for path in cabinets.paths))

    def count(state: MapState) -> int:
        return int((lamps.states == state).sum())

    def summary() -> str:
        shown = {s.label: count(s) for s in (MapState.ON, MapState.DIMMED, MapState.OFF, MapState.FAILED)}
        return ", ".join(f"{n} {label}" for label, n in shown.items() if n)

    for mode, label in ((2, "every cabinet forced off"), (0, "back to automatic")):
        frames_before = cmap.frames
        off_before = count(MapState.OFF)
        started = time.perf_counter()
        answers = await set_all(mode)
        commanded = time.perf_counter() - started
        refused = [a.text for a in answers if not a.ok]
        deadline = started + (30.0 if mode == 2 else 12.0)
        while time.perf_counter() < deadline:
            if mode == 2 and count(MapState.OFF) + count(MapState.FAILED) + count(MapState.NO_COMM) >= len(lamps):
                break
            await asyncio.sleep(0.05)
        took = time.perf_counter() - started
        frames = cmap.frames - frames_before
        print(
            f"live wave, {label}: {len(answers) - len(refused)} of {len(answers)} SetMode Good in {commanded:.2f} s; "
            f"after {took:.1f} s the map shows {summary()} (off before: {off_before}); "
            f"{frames} map refreshes ({frames / took:.1f} per s, the timer's cap is 10)"
        )
        if refused:
            print(f"  refused: {refused[:3]}")


# ---------------------------------------------------------------------------------------------------------


@dataclass
class Demo:
    """Simulators and a secure control server in their own processes, the console's certificate trusted."""

    url: str
    security: str
    control_port: int
    data_dir: Path
    children: list[subprocess.Popen[str]] = field(default_factory=list)

    def stop(self) -> None:
        """Stop the server, then the simulators."""
        for child in reversed(self.children):
            stop(child)


def start_demo(site: str, folder: Path, user: str | None, password: str | None) -> Demo:
    """The site's simulators and server (data in `folder`), the console's certificate trusted, every lamp live."""
    from hmi.security import ensure_certificate
    from scada.cli import READY_LINE

    control = free_port()
    demo = Demo("", "", control, folder / "server")
    try:
        t0 = time.perf_counter()
        command = [sys.executable, "-m", "scada.cli", "simulate", "--site", site, "--control-port", str(control)]
        demo.children.append(spawn(command, READY_LINE, "the simulators"))
        print(f"simulators of {site} ready in {time.perf_counter() - t0:.1f} s")
        port = free_port()
        t0 = time.perf_counter()
        command = [sys.executable, "-m", "scada.cli", "serve", "--site", site, "--port", str(port), "--host"]
        command += ["127.0.0.1", "--data-dir", str(demo.data_dir), "--historian", f"sqlite:///{folder}/history.sqlite"]
        demo.children.append(spawn(command, SERVING, "the server"))
        demo.url = f"opc.tcp://127.0.0.1:{port}/cityscada"
        print(f"server serving at {demo.url} after {time.perf_counter() - t0:.1f} s")
        own = asyncio.run(ensure_certificate(folder / "console-pki"))
        pki = demo.data_dir / Path(site).name / "pki"
        trust = [sys.executable, "-m", "scada.cli", "pki", "trust", str(own.cert), "--pki-dir", str(pki)]
        subprocess.run(trust, cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
        demo.security = f"Basic256Sha256,SignAndEncrypt,{own.cert},{own.key}"
        probe = [sys.executable, str(Path(__file__).resolve()), "--wait-ready", demo.url, "--security", demo.security]
        if user:
            probe += ["--user", user, "--password", password or ""]
        subprocess.run(probe, cwd=ROOT, check=True)
    except BaseException:
        demo.stop()
        raise
    return demo


def settle(threshold: float = 70.0, limit_s: float = 90.0) -> float:
    """Wait until the server's start-up work (first polls, historian catch-up) has eased; the load (%) then."""
    deadline = time.monotonic() + limit_s
    load = psutil.cpu_percent(interval=2.0)
    while load > threshold and time.monotonic() < deadline:
        load = psutil.cpu_percent(interval=2.0)
    return load


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark (or one of its children)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--site", default="config/dijon")
    parser.add_argument("--user", default="supervisor", help="log in as (default: the demo supervisor)")
    parser.add_argument("--password", default=None, help="default: the demo user's published password")
    parser.add_argument("--frames", type=int, default=30, help="full map updates to time")
    parser.add_argument("--no-wave", action="store_true", help="skip the live wave (SetMode on every cabinet)")
    parser.add_argument("--security", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--wait-ready", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--console-child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--profile", default=None, help="write a cProfile of the console's start to this file")
    args = parser.parse_args(argv)
    password = args.password if args.password is not None else f"{args.user}-demo-pass"
    if args.console_child is not None:
        run_console(args.console_child, args.user, password, args.security, args.frames, not args.no_wave, args.profile)
        return 0
    if args.wait_ready is not None:
        asyncio.run(wait_ready(args.wait_ready, args.user, password, args.security))
        return 0

    with tempfile.TemporaryDirectory(prefix="cityscada-console-bench-") as folder:
        demo = start_demo(args.site, Path(folder), args.user, password)
        try:
            console = [sys.executable, str(Path(__file__).resolve()), "--console-child", demo.url]
            console += ["--frames", str(args.frames), "--security", demo.security, "--user", args.user]
            console += ["--password", password]
            if args.no_wave:
                console.append("--no-wave")
            if args.profile:
                console += ["--profile", args.profile]
            load = settle()
            print(f"machine load before the console starts: {load:.0f} % of {psutil.cpu_count()} cores")
            subprocess.run(console, cwd=ROOT, check=True)
        finally:
            demo.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
