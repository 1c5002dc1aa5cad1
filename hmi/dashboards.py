"""The Energy and Parking dashboards: the city's figures now, and how they went over the nights and the day.

Energy: lighting power now, energy and legacy baseline today and the savings, live (Objects/City/Energy and
Energy/Districts/<district>/); the energy of each of the last nights against the baseline with the savings %
(GetEnergyReport, buckets of one night from local noon to noon); today's energy per district against its baseline.
A figure the server does not publish shows "—" with the server's status as tooltip.

Parking: capacity, occupied and free bays of every car park now (live), and occupancy over the day (5-minute
averages of each car park's Occupied since local midnight, read processed, then live values appended).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, datetime, time, timedelta, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import pyqtgraph as pg
from asyncua import ua
from PyQt6.QtCore import Qt
from PyQt6.QtWidgets import (
    QComboBox,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from hmi import theme
from hmi.client import ConsoleClient, ConsoleError
from hmi.history import merge_sorted, numeric, read_processed, samples
from hmi.model import CityModel
from hmi.tasks import spawn
from hmi.trends import release
from hmi.values import Change, format_value, is_stale, status_text
from hmi.watches import Watch
from scada.catalog import Kind

ENERGY = "Energy"
ENERGY_FIGURES: tuple[tuple[str, str, str, int], ...] = (
    ("LightingPowerKW", "Lighting power now", "kW", 1),
    ("LightingEnergyKWhToday", "Energy today", "kWh", 1),
    ("LightingBaselineKWhToday", "Legacy baseline today", "kWh", 1),
    ("LightingSavingsPercent", "Savings, 30 days", "%", 1),
    ("LightingSavingsPercentNight", "Savings this night", "%", 1),
)
NIGHTS = 7
NIGHT_S = 86_400
PARKING_FIGURES = ("Capacity", "Occupied", "Free", "Full")
PARKING_INTERVAL_S = 300.0
ENERGY_COLOUR, BASELINE_COLOUR = "#4fc3f7", "#78909c"


def site_zone(model: CityModel) -> tzinfo:
    """The site's time zone (SiteMap Site "timezone"); UTC when it names none the machine knows."""
    try:
        return ZoneInfo(str(model.site.get("timezone") or "UTC"))
    except (ZoneInfoNotFoundError, ValueError):
        return UTC


def night_starts(now: datetime, zone: tzinfo, nights: int = NIGHTS) -> tuple[datetime, datetime]:
    """Start and end of the last `nights` nights, each from local noon to the next noon; the last one holds now."""
    local = now.astimezone(zone)
    noon = datetime.combine(local.date(), time(12), zone)
    if local < noon:
        noon -= timedelta(days=1)
    end = noon + timedelta(days=1)
    return (end - timedelta(days=nights)).astimezone(UTC), end.astimezone(UTC)


def local_midnight(now: datetime, zone: tzinfo) -> datetime:
    """Today's local midnight (UTC)."""
    local = now.astimezone(zone)
    return datetime.combine(local.date(), time(0), zone).astimezone(UTC)


def _bars(plot: pg.PlotWidget, values: Sequence[float], baseline: Sequence[float], labels: Sequence[str]) -> None:
    """Energy and baseline side by side for each label, the savings % above each pair."""
    plot.clear()
    x = np.arange(len(values), dtype=float)
    plot.addItem(pg.BarGraphItem(x=x - 0.2, height=np.asarray(values), width=0.38, brush=ENERGY_COLOUR, name="energy"))
    plot.addItem(
        pg.BarGraphItem(x=x + 0.2, height=np.asarray(baseline), width=0.38, brush=BASELINE_COLOUR, name="baseline")
    )
    for position, (used, base) in enumerate(zip(values, baseline, strict=True)):
        if base > 0 and not math.isnan(used) and len(values) <= 8:  # more bars: the savings are in the table
            text = pg.TextItem(f"−{100.0 * (base - used) / base:.0f} %", color="#e0e0e0", anchor=(0.5, 1.0))
            text.setPos(position, max(used, base))
            plot.addItem(text)
    axis = plot.getPlotItem().getAxis("bottom")
    top = max([v for v in (*values, *baseline) if not math.isnan(v)], default=0.0)
    plot.setYRange(0.0, top * 1.2 if top > 0 else 1.0, padding=0)  # room for the savings labels
    short = [label if len(labels) <= 8 else label.split()[0][:6] for label in labels]
    axis.setTicks([list(enumerate(short))])


class EnergyDashboard(QWidget):
    """Lighting energy: figures now, nights against the baseline, districts today."""

    def __init__(self, client: ConsoleClient, model: CityModel, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("energyDashboard")
        self.client = client
        self.model = model
        self.zone = site_zone(model)
        self.districts: list[tuple[str, str]] = [
            (str(d["id"]), str(d.get("name") or d["id"])) for d in model.site.get("districts") or []
        ]
        self.values: dict[str, Any] = {}
        self.statuses: dict[str, int] = {}
        self.report: dict[str, list[Any]] = {}
        self.report_status = ""
        self._watch: Watch | None = None

        figures = QGroupBox("City lighting")
        grid = QGridLayout(figures)
        self.figure_labels: dict[str, QLabel] = {}
        for column, (name, caption, _unit, _digits) in enumerate(ENERGY_FIGURES):
            title = QLabel(caption)
            theme.set_role(title, role="caption")
            value = QLabel("—")
            value.setObjectName(f"energy:{name}")
            value.setStyleSheet("font-size: 22px; font-weight: 600;")
            grid.addWidget(title, 0, column)
            grid.addWidget(value, 1, column)
            self.figure_labels[name] = value

        self.scope = QComboBox()
        self.scope.addItem("City", "City")
        for district_id, name in self.districts:
            self.scope.addItem(name, district_id)
        self.scope.currentIndexChanged.connect(lambda _i: spawn(self.load_report(), name="energy report"))
        self.report_note = QLabel("")
        self.report_note.setObjectName("energyReportNote")
        self.nights_plot = pg.PlotWidget()
        self.nights_plot.setLabel("left", "kWh per night")
        self.nights_plot.setMouseEnabled(x=False, y=False)
        nights = QGroupBox(f"Energy per night, last {NIGHTS} nights (blue) against the legacy baseline (grey)")
        nights_layout = QVBoxLayout(nights)
        row = QHBoxLayout()
        row.addWidget(QLabel("Scope"))
        row.addWidget(self.scope)
        row.addWidget(self.report_note, 1)
        nights_layout.addLayout(row)
        nights_layout.addWidget(self.nights_plot)

        districts = QGroupBox("Districts today")
        districts_layout = QHBoxLayout(districts)
        self.table = QTableWidget(len(self.districts), len(ENERGY_FIGURES))
        self.table.setObjectName("energyDistricts")
        self.table.setHorizontalHeaderLabels([caption for _n, caption, _u, _d in ENERGY_FIGURES])
        self.table.setVerticalHeaderLabels([name for _i, name in self.districts])
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)  # type: ignore[union-attr]
        self.districts_plot = pg.PlotWidget()
        self.districts_plot.setLabel("left", "kWh today")
        self.districts_plot.setMouseEnabled(x=False, y=False)
        districts_layout.addWidget(self.table, 3)
        districts_layout.addWidget(self.districts_plot, 2)

        layout = QVBoxLayout(self)
        layout.addWidget(figures)
        layout.addWidget(nights, 1)
        layout.addWidget(districts, 1)

    def paths(self) -> list[str]:
        """The watched variables: the city's five figures, then each district's."""
        names = [name for name, _c, _u, _d in ENERGY_FIGURES]
        city = [f"{ENERGY}/{name}" for name in names]
        return city + [f"{ENERGY}/Districts/{d}/{name}" for d, _n in self.districts for name in names]

    async def start(self) -> None:
        """Watch the figures and ask the nights' report."""
        if self._watch is None:
            self._watch = await self.client.watch(self.paths(), self.on_changes, name="energy dashboard")
        await self.load_report()

    async def stop(self) -> None:
        """Stop watching and release the plots (idempotent)."""
        watch, self._watch = self._watch, None
        if watch is not None:
            await self.client.unwatch(watch)
        release(self.nights_plot, self.districts_plot)

    def on_changes(self, changes: list[Change]) -> None:
        """Show new figures (a Bad one greyed out, its status as tooltip)."""
        for change in changes:
            self.statuses[change.path] = change.status
            if change.value is not None:
                self.values[change.path] = change.value
        self._show_figures()

    def figure(self, path: str) -> float | None:
        """A figure's last value (None when never received)."""
        value = self.values.get(path)
        return None if value is None else numeric(value)

    def _show_figures(self) -> None:
        for name, _caption, unit, digits in ENERGY_FIGURES:
            self._show(self.figure_labels[name], f"{ENERGY}/{name}", unit, digits)
        for row, (district_id, _name) in enumerate(self.districts):
            for column, (name, _caption, unit, digits) in enumerate(ENERGY_FIGURES):
                item = self.table.item(row, column) or _new_item(self.table, row, column)
                path = f"{ENERGY}/Districts/{district_id}/{name}"
                item.setText(format_value(self.figure(path), unit, digits))
                status = self.statuses.get(path, 0)
                item.setToolTip("" if not is_stale(status) else status_text(status))
                item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        used = [self.figure(f"{ENERGY}/Districts/{d}/LightingEnergyKWhToday") for d, _n in self.districts]
        base = [self.figure(f"{ENERGY}/Districts/{d}/LightingBaselineKWhToday") for d, _n in self.districts]
        if self.districts and all(v is not None for v in used + base):
            _bars(
                self.districts_plot, [v or 0.0 for v in used], [v or 0.0 for v in base], [n for _i, n in self.districts]
            )

    def _show(self, label: QLabel, path: str, unit: str, digits: int) -> None:
        status = self.statuses.get(path)
        label.setText(format_value(self.figure(path), unit, digits))
        stale = status is not None and is_stale(status)
        label.setToolTip(status_text(status) if stale and status is not None else path)
        label.setEnabled(not stale)

    async def load_report(self) -> None:
        """The energy of the last nights of the chosen scope against the baseline (GetEnergyReport)."""
        scope = str(self.scope.currentData() or "City")
        start, end = night_starts(datetime.now(UTC), self.zone)
        answer = await self.client.call(
            f"{ENERGY}",
            "GetEnergyReport",
            ua.Variant(scope, ua.VariantType.String),
            ua.Variant(start, ua.VariantType.DateTime),
            ua.Variant(end, ua.VariantType.DateTime),
            ua.Variant(NIGHT_S, ua.VariantType.UInt32),
        )
        if not answer.ok or len(answer.outputs) < 3:
            self.report = {}
            self.report_status = answer.text
            self.report_note.setText(f"energy report not available: {answer.text}")
            self.nights_plot.clear()
            return
        starts, energy, baseline = (list(v or []) for v in answer.outputs[:3])
        self.report = {"starts": starts, "energy": energy, "baseline": baseline}
        self.report_status = "Good"
        saved = sum(baseline) - sum(energy)
        share = f" · saved {saved:.0f} kWh ({100.0 * saved / sum(baseline):.0f} %)" if sum(baseline) > 0 else ""
        self.report_note.setText(f"{scope}: {sum(energy):.0f} kWh over {len(energy)} nights{share}")
        labels = [_night_label(moment, self.zone) for moment in starts]
        _bars(self.nights_plot, [float(v) for v in energy], [float(v) for v in baseline], labels)


def _new_item(table: QTableWidget, row: int, column: int) -> QTableWidgetItem:
    """A cell's item, created and placed in the table (the table owns it from then on)."""
    item = QTableWidgetItem()
    table.setItem(row, column, item)
    return item


def _night_label(moment: Any, zone: tzinfo) -> str:
    if not isinstance(moment, datetime):
        return str(moment)
    stamp = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return f"{stamp.astimezone(zone):%a %d}"


class ParkingDashboard(QWidget):
    """Car parks: capacity, occupied and free now; occupancy over the day."""

    def __init__(self, client: ConsoleClient, model: CityModel, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("parkingDashboard")
        self.client = client
        self.zone = site_zone(model)
        layer = model.layers[Kind.PARKING_SITE]
        names = layer.columns.get("name") or layer.ids
        self.sites: list[tuple[str, str, str]] = [
            (device_id, str(name), path) for device_id, name, path in zip(layer.ids, names, layer.paths, strict=True)
        ]
        self.values: dict[str, Any] = {}
        self.statuses: dict[str, int] = {}
        self.curves: dict[str, pg.PlotDataItem] = {}
        self.series: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        self.history_error = ""
        self._watch: Watch | None = None

        self.totals = QLabel("—")
        self.totals.setObjectName("parkingTotals")
        self.totals.setStyleSheet("font-size: 20px; font-weight: 600;")
        self.table = QTableWidget(len(self.sites), 1 + len(PARKING_FIGURES))
        self.table.setObjectName("parkingTable")
        self.table.setHorizontalHeaderLabels(["Car park", *PARKING_FIGURES])
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        for row, (device_id, name, _path) in enumerate(self.sites):
            self.table.setItem(row, 0, QTableWidgetItem(f"{device_id}  {name}"))
        self.plot = pg.PlotWidget(axisItems={"bottom": pg.DateAxisItem()})
        self.plot.setLabel("left", "occupied bays (5-min average, then live)")
        legend = self.plot.getPlotItem().addLegend(offset=(10, 10))
        for number, (device_id, _name, _path) in enumerate(self.sites):
            colour = pg.intColor(number, hues=max(1, len(self.sites)))
            self.curves[device_id] = self.plot.plot(pen=pg.mkPen(colour, width=1.6), name=device_id)
        legend.setVisible(len(self.sites) <= 12)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)  # type: ignore[union-attr]
        side_by_side = QHBoxLayout()
        side_by_side.addWidget(self.table, 2)
        side_by_side.addWidget(self.plot, 3)
        layout = QVBoxLayout(self)
        layout.addWidget(self.totals)
        layout.addLayout(side_by_side, 1)

    def paths(self) -> list[str]:
        """Every car park's Capacity, Occupied, Free and Full."""
        return [f"{path}/{name}" for _id, _n, path in self.sites for name in PARKING_FIGURES]

    async def start(self) -> None:
        """Read today's occupancy, then watch the car parks."""
        await self.load_day()
        if self._watch is None:
            self._watch = await self.client.watch(self.paths(), self.on_changes, name="parking dashboard")

    async def stop(self) -> None:
        """Stop watching and release the plot (idempotent)."""
        watch, self._watch = self._watch, None
        if watch is not None:
            await self.client.unwatch(watch)
        self.curves.clear()
        release(self.plot)

    async def load_day(self) -> None:
        """5-minute averages of each car park's Occupied since local midnight."""
        now = datetime.now(UTC)
        start = local_midnight(now, self.zone)
        errors = []
        for device_id, _name, path in self.sites:
            try:
                values = await read_processed(
                    self.client, f"{path}/Occupied", start, now, PARKING_INTERVAL_S, "Average"
                )
            except (ConsoleError, ua.UaError, OSError, TimeoutError) as exc:
                errors.append(str(exc))
                values = []
            self.series[device_id] = samples(values)
            self.curves[device_id].setData(*self.series[device_id], connect="finite")
        self.history_error = "; ".join(errors)
        self.plot.getPlotItem().vb.setXRange(start.timestamp(), (now + timedelta(minutes=10)).timestamp(), padding=0)

    def on_changes(self, changes: list[Change]) -> None:
        """New figures: the table, the totals, and live points of the day's curves."""
        for change in changes:
            self.statuses[change.path] = change.status
            if change.value is not None:
                self.values[change.path] = change.value
        for row, (_id, _name, path) in enumerate(self.sites):
            for column, name in enumerate(PARKING_FIGURES, start=1):
                item = self.table.item(row, column) or _new_item(self.table, row, column)
                status = self.statuses.get(f"{path}/{name}", 0)
                item.setText(format_value(self.values.get(f"{path}/{name}")))
                item.setToolTip(status_text(status) if is_stale(status) else "")
                item.setForeground(pg.mkColor("#8a8a8a" if is_stale(status) else "#e0e0e0"))
        for change in changes:
            for device_id, _name, path in self.sites:
                if change.path == f"{path}/Occupied":
                    moment = (change.source_ts or datetime.now(UTC)).timestamp()
                    value = math.nan if is_stale(change.status) else numeric(change.value)
                    times, values = self.series.get(device_id, (np.empty(0), np.empty(0)))
                    self.series[device_id] = merge_sorted(times, values, [(moment, value)])
                    curve = self.curves.get(device_id)
                    if curve is not None:
                        curve.setData(*self.series[device_id], connect="finite")
        capacity, free = self.total("Capacity"), self.total("Free")
        self.totals.setText(f"{free} free of {capacity} bays in {len(self.sites)} car parks")

    def total(self, name: str) -> int:
        """The sum of a figure over the car parks whose value is known."""
        return sum(int(self.values.get(f"{path}/{name}") or 0) for _id, _n, path in self.sites)
