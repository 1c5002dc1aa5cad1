"""The console's parts wired together: connection, city model, map, device panels, permissions, banner.

`Console.start()` is the start-up sequence, timed step by step (bench/console.py prints the figures):

1. connect and log in;
2. read the SiteMap (the whole site's geometry: three variables, one Read) and build the model;
3. draw the map;
4. read the state of everything the map watches (one batched Read) and colour the map: the first complete map;
5. watch the same variables (monitored items in batches): from here on the map follows the city;
6. ask the server what the user may do (permissions), and show who is logged in.
"""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path

from PyQt6.QtCore import QObject, QSettings, Qt, pyqtSignal

from hmi.alarms import AlarmsView
from hmi.analysis import AnalysisViews
from hmi.client import ConnectionState, ConsoleClient, ConsoleError
from hmi.incidents import IncidentsView
from hmi.mainwindow import MainWindow
from hmi.model import CityModel, DeviceRef
from hmi.panels import PanelContext
from hmi.panels.area import PanelArea
from hmi.permissions import Permissions
from hmi.tasks import drain
from hmi.values import Change, status_text
from hmi.watches import Watch

log = logging.getLogger(__name__)

SITE_MAP_PATHS = ("SiteMap/Site", "SiteMap/Devices", "SiteMap/Streets")
DEVICE_DOCK = "Device"
DEVICE_DOCK_WIDTH = 560  # px: two columns of values without a scroll bar


def default_settings_path() -> Path:
    """Where the window layout is kept by default (~/.config/cityscada/console.ini)."""
    return Path.home() / ".config" / "cityscada" / "console.ini"


class Console(QObject):
    """One console: a client of one server, its window and views."""

    started = pyqtSignal()

    def __init__(self, client: ConsoleClient, settings_path: str | Path | None = None) -> None:
        super().__init__()
        self.client = client
        path = Path(settings_path) if settings_path is not None else default_settings_path()
        path.parent.mkdir(parents=True, exist_ok=True)
        self.settings = QSettings(str(path), QSettings.Format.IniFormat)
        self.window = MainWindow(self.settings)
        self.permissions = Permissions(client.user, self)
        self.model: CityModel | None = None
        self.panels: PanelArea | None = None
        self.analysis: AnalysisViews | None = None
        self.alarms: AlarmsView | None = None
        self.incidents: IncidentsView | None = None
        self.map_watch: Watch | None = None
        self.times: dict[str, float] = {}
        self.cpu_times: dict[str, float] = {}
        self.window.banner.follow(client)
        self.window.map.device_activated.connect(self.open_panel)
        self.permissions.changed.connect(self._show_user)
        client.state_changed.connect(self._on_state)
        self._show_user()
        self._on_state(client.state.value)

    async def start(self, *, show: bool = True) -> dict[str, float]:
        """Connect, draw the whole map, watch it, learn the permissions; returns the time of each step (s)."""
        started = time.perf_counter()

        def mark(step: str) -> None:
            self.times[step] = time.perf_counter() - started
            self.cpu_times[step] = time.process_time()  # the process's CPU time (s) at that step

        await self.client.connect()
        mark("connected")
        site_doc, devices_doc, streets_doc = await self.client.read(list(SITE_MAP_PATHS))
        for path, dv in zip(SITE_MAP_PATHS, (site_doc, devices_doc, streets_doc), strict=True):
            if dv.StatusCode is not None and not dv.StatusCode.is_good():
                raise ConsoleError(f"the server does not publish {path} ({status_text(dv.StatusCode.value)})")
        model = CityModel.from_documents(*(_string(dv) for dv in (site_doc, devices_doc, streets_doc)))
        self.model = model
        mark("site_map")
        self.window.setWindowTitle(f"cityscada console — {model.title}")
        self.analysis = AnalysisViews(self.client, model, self.window)  # Trends, Energy, Parking docks
        context = PanelContext(self.client, model, self.permissions, services={"trend": self.analysis.trend})
        self.panels = PanelArea(context)
        self.window.add_dock(DEVICE_DOCK, self.panels, Qt.DockWidgetArea.RightDockWidgetArea, "Device", "Ctrl+D")
        self.alarms = AlarmsView.install(self)  # Alarms dock, alarm banner, map rings
        self.incidents = IncidentsView.install(self)  # Incidents dock, report-by-map-click
        restored = self.window.restore_layout(map_view=False)
        if not restored:
            self.window.resizeDocks([self.window.docks[DEVICE_DOCK]], [DEVICE_DOCK_WIDTH], Qt.Orientation.Horizontal)
        self.window.map.set_model(model)
        if restored:
            self.window.restore_map_view()
        if show:
            self.window.show()
        mark("drawn")
        paths = model.watched_paths()
        values = await self.client.read(paths)
        model.apply(
            [
                Change(path, dv.Value.Value if dv.Value is not None else None, _status(dv), dv.SourceTimestamp)
                for path, dv in zip(paths, values, strict=True)
            ]
        )
        self.window.map.refresh()
        if show:
            self.window.map.plot.viewport().repaint()
        mark("first_complete_map")
        self.map_watch = await self.client.watch(paths, model.apply, name="map")
        mark("subscribed")
        await self.permissions.discover(self.client, model)
        mark("permissions")
        await self.analysis.start()
        mark("analysis")
        await self.alarms.start()
        await self.incidents.start()
        mark("alarms_incidents")
        self._show_user()
        self.started.emit()
        return dict(self.times)

    async def stop(self) -> None:
        """Close the panels, stop watching and disconnect (the layout is saved)."""
        self.window.save_layout()
        if self.panels is not None:
            self.panels.close_all()
        if self.analysis is not None:
            await self.analysis.stop()
        if self.alarms is not None:
            self.alarms.stop()
        if self.incidents is not None:
            await self.incidents.stop()
        try:
            async with asyncio.timeout(5.0):
                await drain()
        except TimeoutError:
            log.warning("console tasks still running at stop")
        await self.client.close()
        self.client.state_changed.disconnect(self._on_state)

    def open_panel(self, ref: DeviceRef) -> None:
        """Open (or bring forward) a device's panel."""
        if self.panels is None:
            return
        self.window.show_dock(DEVICE_DOCK)
        self.panels.open(ref)

    def _show_user(self) -> None:
        security = self.client.credentials.security_label
        self.window.set_user(f"user {self.permissions.summary()} · security {security}")

    def _on_state(self, state: str) -> None:
        client = self.client
        if self.model is not None:
            self.model.set_stale(state != ConnectionState.CONNECTED.value)
        if state == ConnectionState.CONNECTED.value:
            text = f"connected to {client.credentials.url}"
            if client.sessions > 1:
                text += f" (reconnected, session {client.sessions})"
        elif state == ConnectionState.LOST.value:
            text = "CONNECTION LOST — reconnecting"
        else:
            text = state
        self.window.set_connection(text)


def _string(dv: object) -> str:
    variant = getattr(dv, "Value", None)
    value = variant.Value if variant is not None else None
    if not isinstance(value, str):
        raise ConsoleError(f"a SiteMap variable holds {type(value).__name__}, not a String")
    return value


def _status(dv: object) -> int:
    status = getattr(dv, "StatusCode", None)
    return int(status.value) if status is not None else 0
