"""The main window: the city map in the centre, docks registered by name, shortcuts, layout kept between sessions.

Other views join the window through `add_dock(name, widget, area)`: each dock gets a View menu entry and its place
is saved with the window's layout (QSettings: geometry, dock state and the map's view, in an INI file whose path
the console is given, so tests point it at a temporary folder).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from functools import partial

from PyQt6.QtCore import QByteArray, QSettings, Qt, pyqtSignal
from PyQt6.QtGui import QAction, QCloseEvent, QKeySequence
from PyQt6.QtWidgets import (
    QDockWidget,
    QLabel,
    QMainWindow,
    QMenu,
    QMenuBar,
    QMessageBox,
    QStatusBar,
    QVBoxLayout,
    QWidget,
)

from hmi.banner import ConnectionBanner
from hmi.mapview import KIND_LABELS, CityMap
from hmi.model import MAP_KINDS

log = logging.getLogger(__name__)

LAYOUT_VERSION = 1
SHORTCUTS: tuple[tuple[str, str], ...] = (
    ("Ctrl+F", "find a device by id"),
    ("Ctrl+= / Ctrl++", "zoom in"),
    ("Ctrl+-", "zoom out"),
    ("Ctrl+0", "show the whole site"),
    ("Ctrl+1 … Ctrl+5", "show or hide lamps, cabinets, intersections, signs, car parks"),
    ("Ctrl+Shift+F", "state filter"),
    ("Ctrl+W", "close the device panel in front"),
    ("Alt+A", "show or hide the alarm list"),
    ("Ctrl+Shift+A", "acknowledge the selected alarms (with the comment typed)"),
    ("Ctrl+Shift+S", "shelve the selected alarms (for the duration chosen)"),
    ("Alt+I", "show or hide the incidents"),
    ("Alt+T / Alt+E / Alt+P", "show or hide the trends, the energy dashboard, the parking dashboard"),
    ("Ctrl+Shift+I", "report an incident: the next click on the map places it"),
    ("F11", "full screen"),
    ("F1", "this list"),
    ("Ctrl+Q", "quit"),
)


class MainWindow(QMainWindow):
    """The console's window."""

    closing = pyqtSignal()

    def __init__(self, settings: QSettings, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("cityscadaConsole")
        self.setWindowTitle("cityscada console")
        self.settings = settings
        self.docks: dict[str, QDockWidget] = {}
        self.map = CityMap()
        self.banner = ConnectionBanner()
        central = QWidget()
        layout = QVBoxLayout(central)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addWidget(self.banner)
        layout.addWidget(self.map, 1)
        self.setCentralWidget(central)
        self.setDockOptions(
            QMainWindow.DockOption.AnimatedDocks
            | QMainWindow.DockOption.AllowTabbedDocks
            | QMainWindow.DockOption.AllowNestedDocks
        )
        self.user_label = QLabel("not logged in")
        self.user_label.setObjectName("userLabel")
        self.connection_label = QLabel("")
        self.connection_label.setObjectName("connectionLabel")
        self.status = QStatusBar()
        self.setStatusBar(self.status)
        self.status.addPermanentWidget(self.connection_label)
        self.status.addPermanentWidget(self.user_label)
        self.map.status_message.connect(lambda text: self.status.showMessage(text, 8000))
        self._build_menus()
        self.resize(1500, 920)

    # ------------------------------------------------------------------ docks

    def add_dock(
        self,
        name: str,
        widget: QWidget,
        area: Qt.DockWidgetArea = Qt.DockWidgetArea.RightDockWidgetArea,
        title: str | None = None,
        shortcut: str | None = None,
    ) -> QDockWidget:
        """Register a view as a dock (its place is saved with the layout); `name` must be unique and stable."""
        if name in self.docks:
            raise ValueError(f"a dock named {name!r} is already registered")
        dock = QDockWidget(title or name, self)
        dock.setObjectName(f"dock:{name}")
        dock.setWidget(widget)
        dock.setFeatures(
            QDockWidget.DockWidgetFeature.DockWidgetMovable
            | QDockWidget.DockWidgetFeature.DockWidgetFloatable
            | QDockWidget.DockWidgetFeature.DockWidgetClosable
        )
        self.addDockWidget(area, dock)
        action = dock.toggleViewAction()
        if action is not None:
            if shortcut:
                action.setShortcut(QKeySequence(shortcut))
            self.docks_menu.addAction(action)
        self.docks[name] = dock
        return dock

    def add_banner(self, widget: QWidget) -> None:
        """Add a permanent strip above the map, under the connection banner (e.g. the alarm banner)."""
        layout = self.centralWidget().layout()  # type: ignore[union-attr]
        assert isinstance(layout, QVBoxLayout)
        layout.insertWidget(layout.indexOf(self.map), widget)

    def show_dock(self, name: str) -> None:
        """Show and raise a dock."""
        dock = self.docks[name]
        dock.show()
        dock.raise_()

    # ------------------------------------------------------------------ menus and shortcuts

    def _action(self, text: str, keys: str | list[str], slot: Callable[[], object], menu: QMenu) -> QAction:
        action = QAction(text, self)
        if isinstance(keys, list):
            action.setShortcuts([QKeySequence(k) for k in keys])
        elif keys:
            action.setShortcut(QKeySequence(keys))
        action.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
        action.triggered.connect(lambda _checked=False: slot())
        menu.addAction(action)
        self.addAction(action)
        return action

    def _build_menus(self) -> None:
        bar = QMenuBar(self)
        self.setMenuBar(bar)
        console = _menu(bar.addMenu("&Console"))
        self._action("&Quit", "Ctrl+Q", self.close, console)
        view = _menu(bar.addMenu("&View"))
        self._action("&Find device…", "Ctrl+F", self.map.focus_search, view)
        self._action("Zoom &in", ["Ctrl+=", "Ctrl++"], lambda: self.map.zoom(0.7), view)
        self._action("Zoom &out", "Ctrl+-", lambda: self.map.zoom(1 / 0.7), view)
        self._action("&Whole site", "Ctrl+0", self.map.fit, view)
        self._action("&State filter…", "Ctrl+Shift+F", self.map.state_button.showMenu, view)
        layers = _menu(view.addMenu("&Layers"))
        for number, kind in enumerate(MAP_KINDS, start=1):
            self._action(KIND_LABELS[kind], f"Ctrl+{number}", partial(self.map.toggle_kind, kind), layers)
        self._action("F&ull screen", "F11", self._toggle_full_screen, view)
        self.docks_menu = _menu(view.addMenu("&Docks"))
        help_menu = _menu(bar.addMenu("&Help"))
        self._action("&Keyboard shortcuts", "F1", self.show_shortcuts, help_menu)

    def _toggle_full_screen(self) -> None:
        self.showNormal() if self.isFullScreen() else self.showFullScreen()

    def show_shortcuts(self) -> None:
        """List the keyboard shortcuts."""
        rows = "".join(f"<tr><td><b>{keys}</b></td><td>&nbsp;&nbsp;{what}</td></tr>" for keys, what in SHORTCUTS)
        QMessageBox.information(self, "Keyboard shortcuts", f"<table>{rows}</table>")

    # ------------------------------------------------------------------ status

    def set_user(self, text: str) -> None:
        """Who is logged in (permanent status bar field)."""
        self.user_label.setText(f"  {text}  ")

    def set_connection(self, text: str) -> None:
        """The connection's state (permanent status bar field)."""
        self.connection_label.setText(f"  {text}  ")

    # ------------------------------------------------------------------ layout persistence

    def save_layout(self) -> None:
        """Remember geometry, docks and the map's view."""
        if self.map.disposed:
            return
        settings = self.settings
        settings.setValue("layout/version", LAYOUT_VERSION)
        settings.setValue("window/geometry", self.saveGeometry())
        settings.setValue("window/state", self.saveState(LAYOUT_VERSION))
        settings.setValue("map/state", json.dumps(self.map.save_state()))
        settings.sync()

    def restore_layout(self, *, map_view: bool = True) -> bool:
        """Apply the remembered layout (after the docks are registered); False when there is none."""
        settings = self.settings
        if settings.value("layout/version") is None:
            return False
        geometry = settings.value("window/geometry")
        if isinstance(geometry, QByteArray):
            self.restoreGeometry(geometry)
        state = settings.value("window/state")
        if isinstance(state, QByteArray):
            self.restoreState(state, LAYOUT_VERSION)
        if map_view:
            self.restore_map_view()
        return True

    def restore_map_view(self) -> None:
        """Apply the remembered map view and filters (once the map has a site)."""
        raw = self.settings.value("map/state")
        if isinstance(raw, str) and raw:
            try:
                self.map.restore_state(json.loads(raw))
            except ValueError as exc:
                log.info("map state not restored: %s", exc)

    def dispose(self) -> None:
        """Close the window (its layout is saved) and release the map's scene: before dropping the window."""
        self.close()
        self.banner.stop()
        self.map.dispose()

    def closeEvent(self, event: QCloseEvent | None) -> None:
        """Save the layout, release the map (closing the console's window ends it), then close."""
        self.save_layout()
        self.map.dispose()
        self.closing.emit()
        super().closeEvent(event)


def _menu(menu: QMenu | None) -> QMenu:
    """A menu Qt just created (never None)."""
    if menu is None:
        raise RuntimeError("Qt did not create the menu")
    return menu
