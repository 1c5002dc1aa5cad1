"""Screenshots of the console's main views, offscreen, for docs/img/ (and the README).

Starts the Dijon demo (simulators and the secure server in their own processes, the console's certificate trusted,
a few faults injected so that the map shows every state; see bench/console.py) or uses a running server (--url),
opens the console offscreen at 1600 x 1000, logged in as the demo supervisor, and saves:

    docs/img/console-map.png       the whole city map
    docs/img/console-cabinet.png   a district zoomed in, a cabinet's panel open
    docs/img/console-sign.png      a message sign's panel: the message being prepared and its preview
    docs/img/console-trends.png    the Trends dock: lighting power, a cabinet's mains voltage, a car park's occupancy
    docs/img/console-energy.png    the Energy dashboard: power now, today, nights and districts against the baseline
    docs/img/console-parking.png   the Parking dashboard: free bays now and occupancy over the day
    docs/img/console-alarms.png    the Alarms dock, and docs/img/console-incidents.png the Incidents dock (when the
                                   console registers docks of those names; skipped with a note otherwise)

Views add their own shots to SHOTS.

Usage: .venv/bin/python tools/screenshots.py [--url opc.tcp://host:port/cityscada --user U --password P]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
import urllib.request
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
OUT = ROOT / "docs" / "img"
SIZE = (1600, 1000)


def inject(control_port: int, device: str, fault: str, **params: Any) -> None:
    """Raise a fault in the simulators through their HTTP control channel."""
    body = json.dumps({"device": device, "fault": fault, "on": True, **params}).encode()
    request = urllib.request.Request(
        f"http://127.0.0.1:{control_port}/faults", body, {"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        answer.read()


def demo_faults(control_port: int, site_dir: Path) -> None:
    """A few faults, so that the map shows failed lamps, an alarm and a device out of reach."""
    from scada.site.loader import load_site

    site = load_site(site_dir)
    lamps = list(site.lamps())
    for lamp in lamps[137::1400]:
        inject(control_port, lamp.id, "lamp_failure")
    cabinets = list(site.cabinets)
    inject(control_port, cabinets[7], "door")
    inject(control_port, cabinets[42], "offline")
    controllers = list(site.controllers)
    inject(control_port, controllers[3], "conflict")
    time.sleep(12.0)  # two cabinet polls


async def shoot(window: Any, name: str) -> Path:
    """Save the window as docs/img/<name>.png."""
    for _ in range(3):
        await asyncio.sleep(0.2)  # let the map's 10 Hz refresh and the panels' first values land
    window.repaint()
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / f"{name}.png"
    if not window.grab().save(str(path)):
        raise SystemExit(f"could not write {path}")
    print(f"wrote {path.relative_to(ROOT)}")
    return path


async def shot_map(console: Any) -> None:
    """The whole city."""
    console.window.map.fit()
    await shoot(console.window, "console-map")


async def shot_cabinet(console: Any) -> None:
    """A district zoomed in, with a cabinet's panel."""
    from scada.catalog import Kind

    model = console.model
    cabinet = model.ref_at(Kind.CABINET, 7)
    console.window.map.select(cabinet)
    console.window.map.center_on(cabinet, 900.0)
    console.open_panel(cabinet)
    await wait_for(lambda: console.panels.panel(cabinet.id).values.get("Mode") is not None)
    await shoot(console.window, "console-cabinet")


async def shot_sign(console: Any) -> None:
    """A sign's panel with a message being prepared."""
    from scada.catalog import Kind

    sign = console.model.ref_at(Kind.SIGN, 0)
    console.window.map.select(sign)
    console.window.map.center_on(sign, 1500.0)
    console.open_panel(sign)
    panel = console.panels.panel(sign.id)
    await wait_for(lambda: panel.values.get("Message") is not None)
    panel.set_message("ACCIDENT A 800 M\nVOIE DE DROITE\nFERMEE", pictogram=1, flashing=False)
    await shoot(console.window, "console-sign")


async def show_bottom_dock(console: Any, name: str, height: int = 560) -> None:
    """Show and raise a dock (Trends, Energy, Parking, Alarms, Incidents) at a readable size."""
    from PyQt6.QtCore import Qt

    window = console.window
    dock = window.docks[name]
    area = window.dockWidgetArea(dock)
    for other_name, other in window.docks.items():  # one dock of its area at a time: the window keeps its size
        if other_name != name and window.dockWidgetArea(other) == area:
            other.hide()
    window.show_dock(name)
    window.resize(*SIZE)
    if area == Qt.DockWidgetArea.BottomDockWidgetArea:
        window.resizeDocks([dock], [height], Qt.Orientation.Vertical)
    else:
        window.resizeDocks([dock], [600], Qt.Orientation.Horizontal)
    console.window.map.fit()


async def shot_trends(console: Any) -> None:
    """The Trends view: the city's lighting power, a cabinet's mains voltage and a car park's occupancy."""
    from scada.catalog import Kind

    views = console.analysis
    cabinet = console.model.ref_at(Kind.CABINET, 7)
    park = console.model.ref_at(Kind.PARKING_SITE, 0)
    paths = ["Energy/LightingPowerKW", f"{cabinet.path}/MainsVoltage", f"{park.path}/Occupied"]
    await show_bottom_dock(console, "Trends", 600)
    await views.trends.set_span(600.0)
    await views.trends.add(paths)
    await wait_for(lambda: all(len(pen.times) for pen in views.trends.pens.values()))
    await asyncio.sleep(2.0)  # a few live points
    moment = min(float(pen.times[-1]) for pen in views.trends.pens.values())  # every pen has a value there
    views.trends.crosshair.setPos(moment)
    views.trends.readout.setText(views.trends.cursor_text(moment))
    await shoot(console.window, "console-trends")


async def shot_energy(console: Any) -> None:
    """The Energy dashboard: power now, energy and savings today, nights and districts against the baseline."""
    energy = console.analysis.energy
    await show_bottom_dock(console, "Energy", 640)
    await energy.load_report()
    await wait_for(lambda: energy.figure("Energy/LightingPowerKW") is not None)
    await shoot(console.window, "console-energy")


async def shot_parking(console: Any) -> None:
    """The Parking dashboard: capacity and free bays now, occupancy over the day."""
    parking = console.analysis.parking
    await show_bottom_dock(console, "Parking", 600)
    await wait_for(lambda: parking.total("Capacity") > 0)
    await shoot(console.window, "console-parking")


def dock_shot(dock: str, image: str) -> Callable[[Any], Awaitable[None]]:
    """A screenshot of a bottom dock registered by another view (Alarms, Incidents), skipped when it is absent."""

    async def shot(console: Any) -> None:
        if dock not in console.window.docks:
            print(f"skipped {image}: the console has no {dock} dock (hmi/{dock.lower()}.py not wired yet)")
            return
        await show_bottom_dock(console, dock, 520)
        await asyncio.sleep(1.0)  # the view's first rows
        await shoot(console.window, image)

    shot.__name__ = f"shot_{dock.lower()}"
    return shot


SHOTS: list[Callable[[Any], Awaitable[None]]] = [
    shot_map,
    shot_cabinet,
    shot_sign,
    shot_trends,
    shot_energy,
    shot_parking,
    dock_shot("Alarms", "console-alarms"),
    dock_shot("Incidents", "console-incidents"),
]
"""Every screenshot, in order (a view registering a dock adds its own with dock_shot or a function)."""


async def wait_for(predicate: Callable[[], object]) -> None:
    """Poll until true, 15 s at most (the event loop keeps running)."""
    deadline = time.monotonic() + 15.0
    while not predicate():
        if time.monotonic() > deadline:
            raise SystemExit("the console did not show what the screenshot needs in time")
        await asyncio.sleep(0.1)


def take(url: str, user: str | None, password: str | None, security: str | None) -> None:
    """Open the console offscreen and take every shot."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    import qasync
    from PyQt6.QtWidgets import QApplication

    from hmi.client import ConsoleClient, Credentials
    from hmi.console import Console
    from hmi.theme import apply_theme

    app = QApplication(["cityscada-screenshots"])
    app.setQuitOnLastWindowClosed(False)
    apply_theme(app)

    async def run() -> None:
        with tempfile.TemporaryDirectory() as folder:
            credentials = Credentials(url, user, password, security)
            console = Console(ConsoleClient(credentials), Path(folder) / "console.ini")
            console.window.resize(*SIZE)
            await console.start()
            try:
                for shot in SHOTS:
                    await shot(console)
            finally:
                await console.stop()
                console.window.dispose()

    qasync.run(run())


def main(argv: list[str] | None = None) -> int:
    """Start the demo (or use --url) and write the screenshots."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default=None, help="a running server (default: start the Dijon demo)")
    parser.add_argument("--site", default="config/dijon")
    parser.add_argument("--user", default="supervisor", help="log in as (default: the demo supervisor)")
    parser.add_argument("--password", default=None, help="default: the demo user's published password")
    parser.add_argument("--security", default="auto", help="with --url: as `cityscada hmi --security`")
    args = parser.parse_args(argv)
    password = args.password if args.password is not None else f"{args.user}-demo-pass"
    if args.url:
        from hmi.security import resolve_security

        take(args.url, args.user, password, asyncio.run(resolve_security(args.security, args.user)))
        return 0
    from bench.console import start_demo

    with tempfile.TemporaryDirectory(prefix="cityscada-screenshots-") as folder:
        demo = start_demo(args.site, Path(folder), args.user, password)
        try:
            demo_faults(demo.control_port, ROOT / args.site)
            take(demo.url, args.user, password, demo.security)
        finally:
            demo.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
