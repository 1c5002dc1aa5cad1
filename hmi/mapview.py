"""The city map: every lamp, cabinet, intersection, sign and car park at its position, coloured by its state.

One scatter item per kind (hmi.scatter.CityScatter), streets as one curve. Colours change in bulk: the model marks
kinds dirty and a 10 Hz timer recolours them (a few ms for 34,000 lamps). Failed and unreachable lamps are drawn
again, larger, on top. Hover and click use a vectorised nearest-point search of their own (pyqtgraph's hover makes
one Python object per point).
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pyqtgraph as pg
from PyQt6 import sip
from PyQt6.QtCore import QPointF, QStringListModel, Qt, QTimer, pyqtSignal
from PyQt6.QtGui import QAction, QCloseEvent, QColor, QCursor
from PyQt6.QtWidgets import (
    QCompleter,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMenu,
    QToolButton,
    QToolTip,
    QVBoxLayout,
    QWidget,
)

from hmi import theme
from hmi.model import LAMP_CODE_LABELS, LAMP_CODE_MASK, LAMP_PRESENCE, MAP_KINDS, CityModel, DeviceRef, MapState
from hmi.scatter import CityScatter, brush_table, recolour, set_points_visible
from scada.catalog import Kind

log = logging.getLogger(__name__)

KIND_LABELS: dict[Kind, str] = {
    Kind.LAMP: "Lamps",
    Kind.CABINET: "Cabinets",
    Kind.CONTROLLER: "Intersections",
    Kind.SIGN: "Signs",
    Kind.PARKING_SITE: "Car parks",
}
KIND_STYLE: dict[Kind, tuple[str, float]] = {
    Kind.LAMP: ("o", 5.0),
    Kind.CABINET: ("s", 10.0),
    Kind.CONTROLLER: ("t1", 13.0),
    Kind.SIGN: ("d", 14.0),
    Kind.PARKING_SITE: ("s", 16.0),
}
KIND_NAMES: dict[Kind, str] = {
    Kind.LAMP: "lamp",
    Kind.CABINET: "cabinet",
    Kind.CONTROLLER: "intersection",
    Kind.SIGN: "sign",
    Kind.PARKING_SITE: "car park",
    Kind.PARKING_SENSOR: "bay sensor",
}
REFRESH_MS = 100  # recolour at most 10 times a second, whatever the rate of changes
ALERT_STATES = (MapState.FAILED, MapState.NO_COMM)  # lamps drawn again, larger, on top
MAX_ALERTS = 5000
HIT_PIXELS = 4.0  # a device is under the pointer within its radius plus this many pixels


DISPOSED_PLOTS: list[Any] = []
"""The plots of disposed maps, kept out of every window and never destroyed while Qt runs (see CityMap.dispose)."""


class SafeScaleBar(pg.ScaleBar):  # type: ignore[misc]
    """pyqtgraph's scale bar, made safe for teardown: it connects to its view's sigRangeChanged each time its parent
    changes (several connections) and, when a scene is destroyed item by item, may be asked to measure a view whose
    child group is already deleted (a segmentation fault seen in the test suite). It stops following a deleted
    view, and `detach()` removes every connection first."""

    detached = False

    def updateBar(self) -> None:
        view = self.parentItem()
        if self.detached or view is None or sip.isdeleted(view) or sip.isdeleted(getattr(view, "childGroup", view)):
            return
        super().updateBar()

    def detach(self) -> None:
        """Stop following the view (every connection to its sigRangeChanged is removed)."""
        self.detached = True
        view = self.parentItem()
        if view is None or sip.isdeleted(view):
            return
        for _ in range(16):  # one connection per parent change
            try:
                view.sigRangeChanged.disconnect(self.updateBar)
            except (TypeError, RuntimeError):
                break


class CityMap(QWidget):
    """The map widget: toolbar (search, kind and state filters, fit), the plot, and a legend line."""

    device_activated = pyqtSignal(object)
    """A device was clicked or found by the search (DeviceRef): open its panel."""
    status_message = pyqtSignal(str)
    """What the pointer is on (for the status bar)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("cityMap")
        self.model: CityModel | None = None
        self.scatters: dict[Kind, pg.ScatterPlotItem] = {}
        self.visible_kinds: set[Kind] = set(MAP_KINDS)
        self.visible_states: set[MapState] = set(MapState)
        self._brushes = brush_table(theme.STATE_COLOURS)
        self._stale_brushes = brush_table(theme.STALE_COLOURS)
        self._hovered: DeviceRef | None = None
        self.selected: DeviceRef | None = None
        self._pick: Callable[[float, float], object] | None = None
        self.frames = 0
        """How many recolours were done."""
        self.disposed = False
        self.last_refresh_s = 0.0

        self.plot = pg.PlotWidget()
        self.plot.setObjectName("mapPlot")
        self.plot.hideAxis("left")
        self.plot.hideAxis("bottom")
        self.plot.hideButtons()
        self.plot.setMenuEnabled(False)
        self.view = self.plot.getViewBox()
        self.view.setAspectLocked(True)
        self.view.setBackgroundColor(theme.MAP_BACKGROUND)
        self.streets = pg.PlotCurveItem(pen=pg.mkPen(theme.STREET, width=2), connect="finite")
        self.plot.addItem(self.streets)
        self.highlight = pg.ScatterPlotItem(
            size=22, symbol="o", pen=pg.mkPen("#ffffff", width=2), brush=pg.mkBrush(0, 0, 0, 0)
        )
        self.highlight.setZValue(100)
        self.lamp_alerts = CityScatter(symbol="o", size=9, pen=pg.mkPen("#0b0d10", width=1), brush=None)
        self.lamp_alerts.setZValue(10.5)  # above the lamps, below the cabinets
        self.scale_bar = SafeScaleBar(size=500, suffix="m", brush=theme.TEXT_DIM)
        self.scale_bar.setParentItem(self.view)
        self.scale_bar.anchor((1, 1), (1, 1), offset=(-30, -20))
        scene = self.plot.scene()
        scene.sigMouseMoved.connect(self._on_mouse_moved)
        scene.sigMouseClicked.connect(self._on_mouse_clicked)

        self.search = QLineEdit()
        self.search.setObjectName("mapSearch")
        self.search.setPlaceholderText("Find a device by id (Ctrl+F)")
        self.search.setClearButtonEnabled(True)
        self.search.setMinimumWidth(240)
        self.search.setMaximumWidth(320)
        self.search.returnPressed.connect(self._on_search)
        self._completions = QStringListModel(self)
        completer = QCompleter(self._completions, self)
        completer.setCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
        completer.setMaxVisibleItems(12)
        completer.activated.connect(lambda text: self.find_device(text))
        self.search.setCompleter(completer)

        toolbar = QHBoxLayout()
        toolbar.setContentsMargins(6, 4, 6, 4)
        toolbar.addWidget(self.search)
        self.kind_buttons: dict[Kind, QToolButton] = {}
        for number, kind in enumerate(MAP_KINDS, start=1):
            button = QToolButton()
            button.setText(KIND_LABELS[kind])
            button.setCheckable(True)
            button.setChecked(True)
            button.setToolTip(f"Show or hide {KIND_LABELS[kind].lower()} (Ctrl+{number})")
            button.toggled.connect(lambda on, k=kind: self.set_kind_visible(k, on))
            self.kind_buttons[kind] = button
            toolbar.addWidget(button)
        self.state_button = QToolButton()
        self.state_button.setText("States")
        self.state_button.setToolTip("Show only devices in some states (Ctrl+Shift+F)")
        self.state_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        menu = QMenu(self.state_button)
        self.state_actions: dict[MapState, QAction] = {}
        for state in MapState:
            action = QAction(state.label, menu)
            action.setCheckable(True)
            action.setChecked(True)
            action.toggled.connect(lambda on, s=state: self._on_state_toggled(s, on))
            menu.addAction(action)
            self.state_actions[state] = action
        menu.addSeparator()
        menu.addAction("Show all states", lambda: self.set_state_filter(set(MapState)))
        menu.addAction("Only failures and alarms", lambda: self.set_state_filter(ATTENTION_STATES))
        self.state_button.setMenu(menu)
        toolbar.addWidget(self.state_button)
        fit = QToolButton()
        fit.setText("Fit")
        fit.setToolTip("Show the whole site (Ctrl+0)")
        fit.clicked.connect(self.fit)
        toolbar.addWidget(fit)
        toolbar.addStretch(1)
        self.legend = QLabel()
        self.legend.setObjectName("mapLegend")
        self.legend.setTextFormat(Qt.TextFormat.RichText)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addLayout(toolbar)
        layout.addWidget(self.plot, 1)
        legend_row = QHBoxLayout()
        legend_row.setContentsMargins(8, 2, 8, 2)
        legend_row.addWidget(self.legend)
        layout.addLayout(legend_row)

        self.timer = QTimer(self)
        self.timer.setInterval(REFRESH_MS)
        self.timer.timeout.connect(self.refresh)

    # ------------------------------------------------------------------ building

    def set_model(self, model: CityModel) -> None:
        """Draw a site: streets, one scatter per kind (initial colours), search completions; then fit."""
        for item in self.scatters.values():
            self.plot.removeItem(item)
        self.scatters.clear()
        self.model = model
        if model.streets:
            xs: list[np.ndarray] = []
            ys: list[np.ndarray] = []
            for line in model.streets:
                xs.extend((line[:, 0], np.array([np.nan])))
                ys.extend((line[:, 1], np.array([np.nan])))
            self.streets.setData(np.concatenate(xs), np.concatenate(ys), connect="finite")
        else:
            self.streets.setData([], [])
        outline = pg.mkPen("#0b0d10", width=1)
        for z, kind in enumerate(MAP_KINDS):
            layer = model.layers[kind]
            symbol, size = KIND_STYLE[kind]
            item = CityScatter(
                x=layer.x,
                y=layer.y,
                symbol=symbol,
                size=size,
                pen=None if kind is Kind.LAMP else outline,
                brush=self._brushes[int(MapState.UNKNOWN)],  # one brush: per-point brushes come from recolour()
                hoverable=False,
                name=kind.value,
            )
            item.setZValue(10 + z)
            item.setVisible(kind in self.visible_kinds)
            self.plot.addItem(item)
            self.scatters[kind] = item
        if self.highlight.scene() is None:
            self.plot.addItem(self.highlight)
            self.plot.addItem(self.lamp_alerts)
        self._completions.setStringList(model.all_ids())
        model.take_dirty()
        self.refresh(force=True)
        self.fit()
        self.timer.start()

    # ------------------------------------------------------------------ refresh

    def refresh(self, force: bool = False) -> float:
        """Recolour the kinds whose states changed (all when forced); returns the seconds it took."""
        model = self.model
        if model is None or self.disposed:
            return 0.0
        dirty = model.take_dirty()
        if force:
            dirty = set(MAP_KINDS)
        if not dirty:
            return 0.0
        started = time.perf_counter()
        brushes = self._stale_brushes if model.stale else self._brushes
        for kind in dirty:
            item = self.scatters.get(kind)
            if item is None:
                continue
            states = model.layers[kind].states
            recolour(item, states, brushes)
            self._apply_state_filter(kind)
        if Kind.LAMP in dirty:
            self._update_alerts(brushes)
        self._update_legend()
        self.frames += 1
        self.last_refresh_s = time.perf_counter() - started
        return self.last_refresh_s

    def _update_alerts(self, brushes: np.ndarray) -> None:
        """Failed and unreachable lamps drawn again, larger, above the others (a failure must not hide in a street)."""
        model = self.model
        item = self.scatters.get(Kind.LAMP)
        if model is None or item is None:
            return
        layer = model.layers[Kind.LAMP]
        wanted = np.zeros(len(MapState), dtype=bool)
        wanted[[int(s) for s in ALERT_STATES if s in self.visible_states]] = True
        rows = np.flatnonzero(wanted[layer.states])
        if len(rows) > MAX_ALERTS:  # most of the city is in trouble: the lamps' own dots say it
            rows = rows[:0]
        self.lamp_alerts.setData(x=layer.x[rows], y=layer.y[rows])
        if len(rows):
            recolour(self.lamp_alerts, layer.states[rows], brushes)
        self.lamp_alerts.setVisible(item.isVisible())

    def _apply_state_filter(self, kind: Kind) -> None:
        if self.model is None or kind not in self.scatters:
            return
        if len(self.visible_states) == len(MapState):
            visible = np.ones(len(self.model.layers[kind]), dtype=bool)
        else:
            wanted = np.zeros(len(MapState), dtype=bool)
            wanted[[int(s) for s in self.visible_states]] = True
            visible = wanted[self.model.layers[kind].states]
        set_points_visible(self.scatters[kind], visible)

    def _update_legend(self) -> None:
        model = self.model
        if model is None:
            return
        counts = np.bincount(model.layers[Kind.LAMP].states, minlength=len(MapState))
        colours = theme.STALE_COLOURS if model.stale else theme.STATE_COLOURS
        parts = [
            f'<span style="color:{colours[state]}">●</span> {state.label} {int(counts[int(state)])}'
            for state in (MapState.ON, MapState.DIMMED, MapState.OFF, MapState.FAILED, MapState.NO_COMM)
        ]
        stale = ' &nbsp; <b style="color:#e5534b">values not current</b>' if model.stale else ""
        self.legend.setText("Lamps: " + " &nbsp; ".join(parts) + stale)

    def brush_colour(self, ref: DeviceRef) -> str:
        """The fill colour (#rrggbb) the map gives a device now."""
        item = self.scatters[ref.kind]
        brush = item.data["brush"][ref.row]
        return str(QColor(brush.color()).name())

    def point_visible(self, ref: DeviceRef) -> bool:
        """True when the device's point is drawn (its kind shown and its state not filtered out)."""
        item = self.scatters[ref.kind]
        return bool(item.isVisible() and item.data["visible"][ref.row])

    # ------------------------------------------------------------------ filters and view

    def set_kind_visible(self, kind: Kind, visible: bool) -> None:
        """Show or hide a kind's layer."""
        if visible:
            self.visible_kinds.add(kind)
        else:
            self.visible_kinds.discard(kind)
        if kind in self.scatters:
            self.scatters[kind].setVisible(visible)
        if kind is Kind.LAMP:
            self.lamp_alerts.setVisible(visible)
        button = self.kind_buttons[kind]
        if button.isChecked() != visible:
            button.setChecked(visible)

    def toggle_kind(self, kind: Kind) -> None:
        """Flip a kind's visibility (keyboard shortcut)."""
        self.set_kind_visible(kind, kind not in self.visible_kinds)

    def _on_state_toggled(self, state: MapState, on: bool) -> None:
        states = set(self.visible_states)
        if on:
            states.add(state)
        else:
            states.discard(state)
        self.set_state_filter(states)

    def set_state_filter(self, states: set[MapState]) -> None:
        """Show only devices whose state is one of `states` (every state: no filter)."""
        self.visible_states = set(states)
        for state, action in self.state_actions.items():
            if action.isChecked() != (state in states):
                action.blockSignals(True)
                action.setChecked(state in states)
                action.blockSignals(False)
        filtered = len(states) != len(MapState)
        self.state_button.setText("States (filtered)" if filtered else "States")
        for kind in self.scatters:
            self._apply_state_filter(kind)
        if self.model is not None:
            self._update_alerts(self._stale_brushes if self.model.stale else self._brushes)

    def fit(self) -> None:
        """Show the whole site."""
        model = self.model
        if model is None:
            return
        xs = [layer.x for layer in model.layers.values() if len(layer)]
        ys = [layer.y for layer in model.layers.values() if len(layer)]
        if not xs:
            return
        x = np.concatenate(xs)
        y = np.concatenate(ys)
        self.view.setRange(
            xRange=(float(x.min()), float(x.max())), yRange=(float(y.min()), float(y.max())), padding=0.05
        )

    def zoom(self, factor: float) -> None:
        """Zoom in (factor < 1) or out (factor > 1) around the view's centre."""
        self.view.scaleBy((factor, factor))

    def center_on(self, ref: DeviceRef, span_m: float = 400.0) -> None:
        """Centre the view on a device, `span_m` metres across."""
        if self.model is None:
            return
        x, y = self.model.position(ref)
        half = span_m / 2
        self.view.setRange(xRange=(x - half, x + half), yRange=(y - half, y + half), padding=0)

    def select(self, ref: DeviceRef | None) -> None:
        """Ring a device on the map (None: no ring)."""
        self.selected = ref
        if ref is None or self.model is None:
            self.highlight.setData([], [])
            return
        x, y = self.model.position(ref)
        self.highlight.setData([x], [y])

    def find_device(self, text: str) -> DeviceRef | None:
        """Find a device by id (exact, case-insensitive, or the only id starting with it): select, centre, open."""
        model = self.model
        wanted = text.strip()
        if model is None or not wanted:
            return None
        ref = model.ref(wanted) or model.ref(wanted.upper())
        if ref is None:
            matches = [i for i in model.all_ids() if i.upper().startswith(wanted.upper())]
            ref = model.ref(matches[0]) if len(matches) == 1 else None
        if ref is None:
            self.status_message.emit(f"no device {wanted!r}")
            return None
        if ref.kind in MAP_KINDS:
            self.set_kind_visible(ref.kind, True)
        self.select(ref)
        self.center_on(ref)
        self.device_activated.emit(ref)
        return ref

    def _on_search(self) -> None:
        self.find_device(self.search.text())

    def focus_search(self) -> None:
        """Put the cursor in the search box (Ctrl+F)."""
        self.search.setFocus(Qt.FocusReason.ShortcutFocusReason)
        self.search.selectAll()

    # ------------------------------------------------------------------ pointer

    def device_at(self, x: float, y: float) -> DeviceRef | None:
        """The shown device nearest to (x, y) local metres within its symbol's radius, top layer first."""
        model = self.model
        if model is None:
            return None
        pixel_w, pixel_h = self.view.viewPixelSize()
        pixel = max(pixel_w, pixel_h)
        for kind in reversed(MAP_KINDS):
            item = self.scatters.get(kind)
            if item is None or not item.isVisible():
                continue
            layer = model.layers[kind]
            radius = (KIND_STYLE[kind][1] / 2 + HIT_PIXELS) * pixel
            dx = layer.x - x
            dy = layer.y - y
            near = (np.abs(dx) <= radius) & (np.abs(dy) <= radius) & item.data["visible"]
            if not near.any():
                continue
            rows = np.flatnonzero(near)
            distances = dx[rows] ** 2 + dy[rows] ** 2
            best = int(rows[int(np.argmin(distances))])
            return model.ref_at(kind, best)
        return None

    def describe(self, ref: DeviceRef) -> str:
        """One or two lines about a device for the tooltip and the status bar."""
        model = self.model
        if model is None:
            return ref.id
        info = model.info(ref)
        state = model.state(ref).label
        if ref.kind is Kind.LAMP:
            code = model.lamp_code(ref)
            state = LAMP_CODE_LABELS.get(code & LAMP_CODE_MASK, state)
            if code & LAMP_PRESENCE and code != 0xFF:
                state += ", presence"
            street = model.street_names.get(str(info.get("street", "")), "")
            where = f"cabinet {info.get('cabinet', '')}" + (f", {street}" if street else "")
        else:
            where = " · ".join(str(info[k]) for k in ("name", "district") if info.get(k))
        stale = " (last known)" if model.stale else ""
        return f"{ref.id} — {KIND_NAMES[ref.kind]}: {state}{stale}\n{where}"

    def _on_mouse_moved(self, scene_pos: QPointF) -> None:
        if self.model is None or not self.plot.sceneBoundingRect().contains(scene_pos):
            return
        point = self.view.mapSceneToView(scene_pos)
        ref = self.device_at(point.x(), point.y())
        if ref == self._hovered:
            return
        self._hovered = ref
        if ref is None:
            QToolTip.hideText()
            self.status_message.emit("")
            return
        text = self.describe(ref)
        QToolTip.showText(QCursor.pos(), text, self.plot)
        self.status_message.emit(text.replace("\n", " — "))

    def pick_point(self, callback: Callable[[float, float], object] | None) -> None:
        """The next left click on the map gives its (latitude, longitude) to `callback` instead of opening a device
        (placing an incident); None cancels."""
        self._pick = callback
        if callback is None:
            self.plot.unsetCursor()
        else:
            self.plot.setCursor(Qt.CursorShape.CrossCursor)

    def _on_mouse_clicked(self, event: Any) -> None:
        if self.model is None or event.button() != Qt.MouseButton.LeftButton:
            return
        point = self.view.mapSceneToView(event.scenePos())
        pick = self._pick
        if pick is not None:
            self.pick_point(None)
            pick(*self.model.projection.to_latlon(point.x(), point.y()))
            return
        ref = self.device_at(point.x(), point.y())
        if ref is not None:
            self.activate(ref)

    def activate(self, ref: DeviceRef) -> None:
        """Select a device and ask for its panel (what a click does)."""
        self.select(ref)
        self.device_activated.emit(ref)

    def dispose(self) -> None:
        """Stop refreshing and take the plot out of the window for good (idempotent).

        Destroying a pyqtgraph plot while Qt runs lets pyqtgraph's Python overrides (ViewBox.resizeEvent and
        itemChange, the scale bar following the view) run on half-destroyed items: segmentation faults, seen both
        when the scene was left to the garbage collector and when the plot was deleted at once (the second only in
        the full test suite). So the disposed plot is not destroyed: its timers and signals are stopped, it is
        hidden, taken out of the window (whose destruction no longer reaches it) and kept in `DISPOSED_PLOTS` for
        the life of the process (PyQt6 destroys nothing at exit). A console disposes its one map when it closes;
        the test suite, a few dozen small ones.
        """
        if self.disposed:
            return
        self.disposed = True
        self.timer.stop()
        scene = self.plot.scene()
        if scene is not None:
            with contextlib.suppress(TypeError, RuntimeError):
                scene.sigMouseMoved.disconnect(self._on_mouse_moved)
                scene.sigMouseClicked.disconnect(self._on_mouse_clicked)
        self.scale_bar.detach()
        self.scatters.clear()
        self.plot.hide()
        self.plot.setParent(None)
        DISPOSED_PLOTS.append(self.plot)

    def closeEvent(self, event: QCloseEvent | None) -> None:
        """A map closed as a window of its own releases its scene."""
        self.dispose()
        super().closeEvent(event)

    # ------------------------------------------------------------------ layout persistence

    def save_state(self) -> dict[str, Any]:
        """What the map remembers between sessions: view range, shown kinds, state filter."""
        (x0, x1), (y0, y1) = self.view.viewRange()
        return {
            "range": [x0, x1, y0, y1],
            "kinds": sorted(k.value for k in self.visible_kinds),
            "states": sorted(int(s) for s in self.visible_states),
        }

    def restore_state(self, state: dict[str, Any]) -> None:
        """Apply what save_state returned (unknown or malformed entries are ignored)."""
        try:
            kinds = {Kind(k) for k in state.get("kinds", [k.value for k in MAP_KINDS])}
            for kind in MAP_KINDS:
                self.set_kind_visible(kind, kind in kinds)
            states = {MapState(int(s)) for s in state.get("states", [int(s) for s in MapState])}
            self.set_state_filter(states or set(MapState))
            x0, x1, y0, y1 = (float(v) for v in state["range"])
            if x1 > x0 and y1 > y0:
                self.view.setRange(xRange=(x0, x1), yRange=(y0, y1), padding=0)
        except (KeyError, TypeError, ValueError) as exc:
            log.info("map layout not restored: %s", exc)


ATTENTION_STATES = {MapState.FAILED, MapState.ALARM, MapState.NO_COMM}
"""The states an operator filters on to see what needs attention."""
