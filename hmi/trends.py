"""Maintenance trends: variables picked from the address space (or a device panel) plotted over a time range.

A range of up to six hours is read raw; a longer one as time-weighted averages with ~1,000 intervals
(`hmi.history.plan_read`). When the range ends now, live values from a watch are appended as they come. One Y axis
per engineering unit (the variable's EngineeringUnits property), a vertical cursor showing the time and every
pen's value there, pan and zoom with the mouse, export as PNG (the plot as shown) and CSV (every sample). Bad
samples are gaps, never a line drawn through them.
"""

from __future__ import annotations

import contextlib
import csv
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pyqtgraph as pg
from asyncua import ua
from PyQt6 import sip
from PyQt6.QtCore import QDateTime, QPointF, Qt
from PyQt6.QtWidgets import (
    QComboBox,
    QDateTimeEdit,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSplitter,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from hmi.client import ConsoleClient, ConsoleError
from hmi.history import ReadPlan, merge_sorted, numeric, plan_read, read_plan, samples, ua_session, value_at
from hmi.mapview import DISPOSED_PLOTS
from hmi.tagtree import CLASS_ROLE, PATH_ROLE, TagTree
from hmi.tasks import spawn
from hmi.values import Change, is_stale
from hmi.watches import Watch

log = logging.getLogger(__name__)

RANGES: tuple[tuple[str, float | None], ...] = (
    ("10 minutes", 600.0),
    ("1 hour", 3600.0),
    ("6 hours", 6 * 3600.0),
    ("24 hours", 86400.0),
    ("7 days", 7 * 86400.0),
    ("30 days", 30 * 86400.0),
    ("1 year", 365 * 86400.0),
    ("5 years", 5 * 365 * 86400.0),
    ("Custom", None),
)
COLOURS = ("#4fc3f7", "#ffb74d", "#81c784", "#e57373", "#ba68c8", "#fff176", "#4db6ac", "#f06292", "#a1887f")


@dataclass(slots=True)
class Pen:
    """One plotted variable: its samples (epoch seconds, values with NaN gaps), curve, unit and live watch."""

    path: str
    unit: str
    colour: str
    curve: pg.PlotDataItem
    times: np.ndarray = field(default_factory=lambda: np.empty(0))
    values: np.ndarray = field(default_factory=lambda: np.empty(0))
    watch: Watch | None = None
    history_count: int = 0  # samples that came from HistoryRead (the rest are live)

    def redraw(self) -> None:
        """Give the curve the current samples."""
        self.curve.setData(self.times, self.values, connect="finite")


class TrendView(QWidget):
    """The Trends dock: tag tree on the left, range tools, cursor read-out and the plot on the right."""

    def __init__(self, client: ConsoleClient, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("trendView")
        self.client = client
        self.pens: dict[str, Pen] = {}
        self.plan: ReadPlan | None = None
        self.live = True  # the range ends now: live values are appended
        self.span_s: float = 3600.0
        self.loading = 0
        self.last_error = ""
        self._disposed = False
        self._axes: dict[str, pg.ViewBox] = {}
        self._extra_axes: list[pg.AxisItem] = []

        self.tree = TagTree(client)
        self.tree.itemDoubleClicked.connect(self._tree_activated)
        self.range_box = QComboBox()
        self.range_box.setObjectName("trendRange")
        for label, seconds in RANGES:
            self.range_box.addItem(label, seconds)
        self.range_box.setCurrentIndex(1)
        self.range_box.currentIndexChanged.connect(self._range_chosen)
        now = QDateTime.currentDateTime()
        self.custom_start = QDateTimeEdit(now.addSecs(-86400))
        self.custom_end = QDateTimeEdit(now)
        self.apply_custom = QPushButton("Apply")
        self.apply_custom.clicked.connect(self._custom_applied)
        for edit in (self.custom_start, self.custom_end):
            edit.setCalendarPopup(True)
            edit.setDisplayFormat("yyyy-MM-dd HH:mm")
        self.png_button = QPushButton("PNG…")
        self.png_button.clicked.connect(lambda: self._export_dialog("png"))
        self.csv_button = QPushButton("CSV…")
        self.csv_button.clicked.connect(lambda: self._export_dialog("csv"))
        self.clear_button = QPushButton("Clear")
        self.clear_button.clicked.connect(lambda: spawn(self.clear(), name="trend clear"))
        tools = QHBoxLayout()
        tools.addWidget(QLabel("Range"))
        tools.addWidget(self.range_box)
        tools.addWidget(self.custom_start)
        tools.addWidget(self.custom_end)
        tools.addWidget(self.apply_custom)
        tools.addStretch(1)
        for button in (self.png_button, self.csv_button, self.clear_button):
            tools.addWidget(button)
        self.status = QLabel("double-click a variable, or use Trend in a device panel")
        self.status.setObjectName("trendStatus")
        self.readout = QLabel("")
        self.readout.setObjectName("trendReadout")
        self.readout.setTextFormat(Qt.TextFormat.RichText)

        self.plot = pg.PlotWidget(axisItems={"bottom": pg.DateAxisItem()})
        self.plot.setObjectName("trendPlot")
        self.item = self.plot.getPlotItem()
        self.item.showGrid(x=True, y=True, alpha=0.25)
        self.legend = self.item.addLegend(offset=(10, 10))
        self.crosshair = pg.InfiniteLine(angle=90, movable=False, pen=pg.mkPen("#cfd8dc", style=Qt.PenStyle.DashLine))
        self.item.addItem(self.crosshair, ignoreBounds=True)
        self.item.vb.sigResized.connect(self._sync_views)
        self.plot.scene().sigMouseMoved.connect(self._mouse_moved)

        right = QWidget()
        column = QVBoxLayout(right)
        column.setContentsMargins(0, 0, 0, 0)
        column.addLayout(tools)
        column.addWidget(self.status)
        column.addWidget(self.readout)
        column.addWidget(self.plot, 1)
        splitter = QSplitter()
        splitter.addWidget(self.tree)
        splitter.addWidget(right)
        splitter.setSizes([260, 900])
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(splitter)
        self._show_custom(False)

    # ------------------------------------------------------------------ ranges

    def _show_custom(self, visible: bool) -> None:
        for widget in (self.custom_start, self.custom_end, self.apply_custom):
            widget.setVisible(visible)

    def _range_chosen(self, index: int) -> None:
        seconds = self.range_box.itemData(index)
        self._show_custom(seconds is None)
        if seconds is not None:
            spawn(self.set_span(float(seconds)), name="trend range")

    def _custom_applied(self) -> None:
        start = self.custom_start.dateTime().toPyDateTime().astimezone(UTC)
        end = self.custom_end.dateTime().toPyDateTime().astimezone(UTC)
        spawn(self.set_range(start, end), name="trend custom range")

    async def set_span(self, seconds: float) -> None:
        """Show the last `seconds` up to now, following live values."""
        self.span_s = seconds
        self.live = True
        index = self.range_box.findData(seconds)
        if index >= 0 and index != self.range_box.currentIndex():
            self.range_box.blockSignals(True)  # the combo box shows the span; no second reload
            self.range_box.setCurrentIndex(index)
            self.range_box.blockSignals(False)
            self._show_custom(False)
        await self.reload()

    async def set_range(self, start: datetime, end: datetime) -> None:
        """Show a fixed range (no live values appended)."""
        self.live = False
        self.plan = plan_read(start, end)
        await self.reload(self.plan)

    def current_plan(self) -> ReadPlan:
        """The plan of the range shown (the last `span_s` to now when live)."""
        if self.live or self.plan is None:
            end = datetime.now(UTC)
            return plan_read(end - timedelta(seconds=self.span_s), end)
        return self.plan

    # ------------------------------------------------------------------ pens

    def trend(self, paths: Sequence[str]) -> None:
        """Add variables to the trend (from a Qt slot: the device panel's Trend button, the tree)."""
        spawn(self.add(paths), name="trend add")

    def _tree_activated(self, item: QTreeWidgetItem, _column: int) -> None:
        if item.data(0, CLASS_ROLE) == int(ua.NodeClass.Variable):
            self.trend([str(item.data(0, PATH_ROLE))])

    async def add(self, paths: Sequence[str]) -> list[Pen]:
        """Add pens (already plotted paths are kept), read their history and watch them."""
        added: list[Pen] = []
        for path in paths:
            if path in self.pens:
                continue
            unit = await self.unit_of(path)
            colour = COLOURS[len(self.pens) % len(COLOURS)]
            curve = pg.PlotDataItem(pen=pg.mkPen(colour, width=1.6), name=f"{path} [{unit}]" if unit else path)
            curve.setDownsampling(auto=True, method="peak")
            curve.setClipToView(True)
            pen = Pen(path, unit, colour, curve)
            viewbox = self._viewbox_for(unit)
            if viewbox is self.item.vb:
                self.item.addItem(curve)
            else:
                viewbox.addItem(curve)
                self.legend.addItem(curve, curve.name())
            self.pens[path] = pen
            added.append(pen)
        if added:
            await self.reload(pens=added)
            for pen in added:
                pen.watch = await self.client.watch([pen.path], self._live_changes, name=f"trend {pen.path}")
        return added

    async def remove(self, path: str) -> None:
        """Take a pen off the plot and stop watching it."""
        pen = self.pens.pop(path, None)
        if pen is None:
            return
        if pen.watch is not None:
            await self.client.unwatch(pen.watch)
        viewbox = pen.curve.getViewBox()
        if viewbox is self.item.vb:
            self.item.removeItem(pen.curve)
        elif viewbox is not None:
            viewbox.removeItem(pen.curve)
        self.legend.removeItem(pen.curve)

    async def clear(self) -> None:
        """Remove every pen and axis."""
        for path in list(self.pens):
            await self.remove(path)
        scene = self.item.scene()
        for axis in self._extra_axes:  # deleted now, not left to the garbage collector (see release)
            self.item.layout.removeItem(axis)
            scene.removeItem(axis)
            sip.delete(axis)
        for unit, viewbox in list(self._axes.items()):
            if viewbox is not self.item.vb:
                scene.removeItem(viewbox)
                sip.delete(viewbox)
            del self._axes[unit]
        self._extra_axes.clear()
        self.item.hideAxis("right")
        self.item.getAxis("left").setLabel("")

    async def unit_of(self, path: str) -> str:
        """The variable's engineering unit (its EngineeringUnits property), "" when it has none."""
        try:
            node = ua_session(self.client).get_node(self.client.nodeid(path))
            refs = await node.get_references(refs=ua.ObjectIds.HasProperty, direction=ua.BrowseDirection.Forward)
            for ref in refs:
                if ref.BrowseName.Name == "EngineeringUnits":
                    info = await ua_session(self.client).get_node(ref.NodeId).read_value()
                    return str(info.DisplayName.Text or "") if info is not None else ""
        except (ConsoleError, ua.UaError, OSError, TimeoutError) as exc:
            log.info("unit of %s not read: %s", path, exc)
        return ""

    def _viewbox_for(self, unit: str) -> pg.ViewBox:
        """The view box of a unit: the main one for the first, one more with its own axis for each other."""
        found = self._axes.get(unit)
        if found is not None:
            return found
        label = unit or "value"
        if not self._axes:
            self.item.getAxis("left").setLabel(label)
            self._axes[unit] = self.item.vb
            return self.item.vb
        viewbox = pg.ViewBox()
        if len(self._axes) == 1:
            self.item.showAxis("right")
            axis = self.item.getAxis("right")
        else:
            axis = pg.AxisItem("right")
            self.item.layout.addItem(axis, 2, 2 + len(self._axes))
            self._extra_axes.append(axis)
        axis.setLabel(label)
        self.item.scene().addItem(viewbox)
        axis.linkToView(viewbox)
        viewbox.setXLink(self.item.vb)
        viewbox.enableAutoRange(axis=pg.ViewBox.YAxis)
        self._axes[unit] = viewbox
        self._sync_views()
        return viewbox

    def _sync_views(self) -> None:
        for viewbox in self._axes.values():
            if viewbox is not self.item.vb:
                viewbox.setGeometry(self.item.vb.sceneBoundingRect())
                viewbox.linkedViewChanged(self.item.vb, viewbox.XAxis)

    # ------------------------------------------------------------------ data

    async def reload(self, plan: ReadPlan | None = None, pens: Sequence[Pen] | None = None) -> None:
        """Read the history of the range for every pen (or the given ones) and show the range."""
        plan = plan or self.current_plan()
        self.plan = plan
        self.loading += 1
        errors: list[str] = []
        try:
            for pen in pens if pens is not None else list(self.pens.values()):
                try:
                    values = await read_plan(self.client, pen.path, plan)
                except (ConsoleError, ua.UaError, OSError, TimeoutError) as exc:
                    errors.append(str(exc))
                    values = []
                pen.times, pen.values = samples(values)
                pen.history_count = len(pen.times)
                pen.redraw()
        finally:
            self.loading -= 1
        self.last_error = "; ".join(errors)
        self.item.vb.setXRange(plan.start.timestamp(), plan.end.timestamp(), padding=0)
        for viewbox in self._axes.values():
            viewbox.enableAutoRange(axis=pg.ViewBox.YAxis)
        shown = f"{plan.start.astimezone():%Y-%m-%d %H:%M} → {plan.end.astimezone():%Y-%m-%d %H:%M}"
        self.status.setText(
            f"{shown} · {plan.mode}{' + live' if self.live else ''}" + (f" · {self.last_error}" if errors else "")
        )

    def _live_changes(self, changes: list[Change]) -> None:
        if not self.live:
            return
        fresh: dict[str, list[tuple[float, float]]] = {}
        for change in changes:
            pen = self.pens.get(change.path)
            if pen is None:
                continue
            moment = (change.source_ts or datetime.now(UTC)).timestamp()
            value = math.nan if is_stale(change.status) or change.value is None else numeric(change.value)
            fresh.setdefault(change.path, []).append((moment, value))
        for path, points in fresh.items():
            pen = self.pens[path]
            pen.times, pen.values = merge_sorted(pen.times, pen.values, points)
            pen.redraw()

    # ------------------------------------------------------------------ cursor

    def _mouse_moved(self, position: QPointF) -> None:
        if self.item.vb.sceneBoundingRect().contains(position):
            x = self.item.vb.mapSceneToView(position).x()
            self.crosshair.setPos(x)
            self.readout.setText(self.cursor_text(x))

    def cursor_text(self, moment: float) -> str:
        """The cursor's read-out: its time and the value of every pen there."""
        parts = [f"<b>{datetime.fromtimestamp(moment).astimezone():%Y-%m-%d %H:%M:%S}</b>"]
        for pen in self.pens.values():
            value = value_at(pen.times, pen.values, moment)
            shown = "—" if math.isnan(value) else f"{value:.6g} {pen.unit}".strip()
            parts.append(f"<span style='color:{pen.colour}'>{pen.path}</span> {shown}")
        return " &nbsp; ".join(parts)

    # ------------------------------------------------------------------ export

    def _export_dialog(self, kind: str) -> None:
        name, _ = QFileDialog.getSaveFileName(self, f"Export trend as {kind.upper()}", f"trend.{kind}")
        if name:
            self.export_png(Path(name)) if kind == "png" else self.export_csv(Path(name))

    def export_png(self, path: Path) -> Path:
        """The plot as shown, as a PNG file."""
        if not self.plot.grab().save(str(path), "PNG"):
            raise OSError(f"could not write {path}")
        return path

    def export_csv(self, path: Path) -> int:
        """Every sample of every pen (time UTC ISO 8601, variable, value, unit; an empty value is a gap); rows."""
        rows = 0
        with path.open("w", newline="", encoding="utf-8") as out:
            writer = csv.writer(out)
            writer.writerow(["time", "variable", "value", "unit"])
            for pen in self.pens.values():
                for moment, value in zip(pen.times, pen.values, strict=True):
                    stamp = datetime.fromtimestamp(float(moment), UTC).isoformat(timespec="milliseconds")
                    writer.writerow([stamp, pen.path, "" if math.isnan(value) else repr(float(value)), pen.unit])
                    rows += 1
        return rows

    async def stop(self) -> None:
        """Stop every pen's watch and release the plot."""
        for pen in self.pens.values():
            watch, pen.watch = pen.watch, None
            if watch is not None:
                await self.client.unwatch(watch)
        self.dispose()

    def dispose(self) -> None:
        """Release the plot's scene in order while everything is alive (idempotent; see CityMap.dispose)."""
        scene = self.plot.scene()
        if self._disposed:
            return
        self._disposed = True
        with contextlib.suppress(TypeError, RuntimeError):
            if scene is not None:
                scene.sigMouseMoved.disconnect(self._mouse_moved)
            self.item.vb.sigResized.disconnect(self._sync_views)
        self._axes.clear()
        self._extra_axes.clear()
        release(self.plot)


def release(*plots: pg.PlotWidget) -> None:
    """Take plots out of their window for good: hidden, parentless and kept alive (see CityMap.dispose: destroying
    a pyqtgraph plot while Qt runs let its Python overrides run on half-destroyed items and crashed)."""
    for plot in plots:
        if sip.isdeleted(plot) or plot in DISPOSED_PLOTS:
            continue
        plot.hide()
        plot.setParent(None)
        DISPOSED_PLOTS.append(plot)
