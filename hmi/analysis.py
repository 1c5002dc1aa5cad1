"""The console's analysis docks (Trends, Energy, Parking): created with the window, hidden until asked for.

`AnalysisViews(client, model, window)` registers the three docks before the window's layout is restored (so a
remembered layout brings them back where they were), `trend(paths)` is what a device panel's Trend button calls,
`start()` begins the dashboards' watches once the map is up, `stop()` ends every watch.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from PyQt6.QtCore import Qt

from hmi.client import ConsoleClient, ConsoleError
from hmi.dashboards import EnergyDashboard, ParkingDashboard
from hmi.mainwindow import MainWindow
from hmi.model import CityModel
from hmi.trends import TrendView

log = logging.getLogger(__name__)

TRENDS_DOCK, ENERGY_DOCK, PARKING_DOCK = "Trends", "Energy", "Parking"


class AnalysisViews:
    """The Trends, Energy and Parking docks of one console."""

    def __init__(self, client: ConsoleClient, model: CityModel, window: MainWindow) -> None:
        self.window = window
        self.trends = TrendView(client)
        self.energy = EnergyDashboard(client, model)
        self.parking = ParkingDashboard(client, model)
        bottom = Qt.DockWidgetArea.BottomDockWidgetArea
        docks = [
            window.add_dock(TRENDS_DOCK, self.trends, bottom, "Trends", "Alt+T"),
            window.add_dock(ENERGY_DOCK, self.energy, bottom, "Energy", "Alt+E"),
            window.add_dock(PARKING_DOCK, self.parking, bottom, "Parking", "Alt+P"),
        ]
        window.tabifyDockWidget(docks[0], docks[1])
        window.tabifyDockWidget(docks[1], docks[2])
        for dock in docks:
            dock.hide()

    def trend(self, paths: Sequence[str]) -> None:
        """Show the Trends dock with these variables added (a device panel's Trend button)."""
        self.window.show_dock(TRENDS_DOCK)
        self.trends.trend(paths)

    async def start(self) -> None:
        """Browse the tag tree's first level, read the dashboards' history and watch their figures."""
        for step in (self.trends.tree.load_root, self.energy.start, self.parking.start):
            try:
                await step()
            except ConsoleError as exc:
                log.warning("analysis views: %s", exc)

    async def stop(self) -> None:
        """Stop every watch of the three views."""
        for view in (self.trends, self.energy, self.parking):
            await view.stop()
