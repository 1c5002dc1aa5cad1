"""The alarm views' widgets: the banner of unacknowledged alarms, the map's alarm rings, the history dialog.

The AlarmsView (hmi.alarms) owns one of each and feeds them from the AlarmFeed.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pyqtgraph as pg
from PyQt6.QtCore import Qt, QTimer
from PyQt6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QDialog,
    QFrame,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSizePolicy,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from hmi import theme
from hmi.alarmfeed import HISTORY_FIELDS, AlarmFeed, AlarmRecord, summary_line
from hmi.alarmtable import severity_colour
from hmi.client import ConsoleError
from hmi.model import MapState
from hmi.tasks import spawn

if TYPE_CHECKING:
    from hmi.console import Console

CUE_SEVERITY = 500
BANNER_TOP = 3
FLASH_TICKS = 12  # banner flashes: toggles at 250 ms
HISTORY_RANGES: tuple[tuple[str, float], ...] = (
    ("last hour", 3600.0),
    ("last 24 hours", 86400.0),
    ("last 7 days", 7 * 86400.0),
    ("last 30 days", 30 * 86400.0),
)
BANNER_CALM = f"QFrame#alarmBanner {{ background: {theme.SURFACE}; border-bottom: 1px solid {theme.BORDER}; }}"
BANNER_ALERT = "QFrame#alarmBanner { background: #4a2a0c; border-bottom: 2px solid #ff8a1f; }"
BANNER_FLASH = "QFrame#alarmBanner { background: #a34a0a; border-bottom: 2px solid #ffd0a0; }"


class AlarmBanner(QFrame):
    """A strip across the top of the window: how many alarms are unacknowledged and the three most severe."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("alarmBanner")
        self.label = QLabel("No unacknowledged alarms")
        self.label.setObjectName("alarmBannerText")
        self.label.setTextFormat(Qt.TextFormat.RichText)
        self.label.setStyleSheet("background: transparent;")
        # long alarm texts must not widen the window: the label takes the width it is given and clips the rest
        self.label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.label.setMinimumWidth(0)
        self.open_button = QPushButton("Alarms")
        self.open_button.setToolTip("Show the alarm list (Alt+A)")
        layout = QHBoxLayout(self)
        layout.setContentsMargins(12, 4, 12, 4)
        layout.addWidget(self.label, 1)
        layout.addWidget(self.open_button)
        self.count = 0
        self.top: list[AlarmRecord] = []
        self.flashes = 0
        """How many times the banner started flashing (new alarms at or above the cue severity)."""
        self._ticks = 0
        self._timer = QTimer(self)
        self._timer.setInterval(250)
        self._timer.timeout.connect(self._tick)
        self.setStyleSheet(BANNER_CALM)

    def show_records(self, attention: list[AlarmRecord]) -> None:
        """Show the count and the top BANNER_TOP of the unacknowledged alarms (most severe first)."""
        self.count = len(attention)
        self.top = attention[:BANNER_TOP]
        if not attention:
            self.label.setText(f'<span style="color:{theme.TEXT_DIM}">No unacknowledged alarms</span>')
        else:
            parts = [
                f'<span style="color:{severity_colour(r.severity)}">■ {r.severity}</span> '
                f"<b>{r.source_name}</b> {_escape(r.message)}"
                for r in self.top
            ]
            more = f" &nbsp; … +{self.count - len(self.top)}" if self.count > len(self.top) else ""
            self.label.setText(
                f"<b>{summary_line(attention).upper()}</b> &nbsp; " + " &nbsp;·&nbsp; ".join(parts) + more
            )
        if not self._timer.isActive():
            self.setStyleSheet(BANNER_ALERT if attention else BANNER_CALM)

    def flash(self) -> None:
        """Flash for a few seconds (a new high-severity alarm)."""
        self.flashes += 1
        self._ticks = FLASH_TICKS
        self._timer.start()
        self._tick()

    @property
    def flashing(self) -> bool:
        """True while the banner flashes."""
        return self._timer.isActive()

    def _tick(self) -> None:
        self._ticks -= 1
        if self._ticks <= 0:
            self._timer.stop()
            self.setStyleSheet(BANNER_ALERT if self.count else BANNER_CALM)
            return
        self.setStyleSheet(BANNER_FLASH if self._ticks % 2 else BANNER_ALERT)

    def stop(self) -> None:
        """Stop flashing."""
        self._timer.stop()


class AlarmRings:
    """Rings on the map around devices with an active, unacknowledged alarm (in the alarm colour)."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.item = pg.ScatterPlotItem(
            size=20, symbol="o", pen=pg.mkPen(theme.STATE_COLOURS[MapState.ALARM], width=2), brush=None
        )
        self.item.setZValue(99)
        console.window.map.plot.addItem(self.item)
        self.sources: list[str] = []

    def show_sources(self, device_ids: set[str]) -> None:
        """Ring these devices (ids of the map's model; unknown ids are skipped)."""
        model = self.console.model
        if model is None or self.console.window.map.disposed:
            return
        xs: list[float] = []
        ys: list[float] = []
        shown: list[str] = []
        for device_id in sorted(device_ids):
            ref = model.ref(device_id)
            if ref is None:
                continue
            x, y = model.position(ref)
            xs.append(x)
            ys.append(y)
            shown.append(device_id)
        self.sources = shown
        self.item.setData(x=xs, y=ys)


class AlarmHistoryDialog(QDialog):
    """The journal of one alarm (HistoryRead of its source's events) over a chosen range."""

    def __init__(self, feed: AlarmFeed, record: AlarmRecord, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("alarmHistory")
        self.setWindowTitle(f"History — {record.source_name} {record.kind}")
        self.feed = feed
        self.record = record
        self.range = QComboBox()
        for label, _seconds in HISTORY_RANGES:
            self.range.addItem(label)
        self.range.setCurrentIndex(1)
        self.range.currentIndexChanged.connect(lambda _i: spawn(self.load(), name="alarm-history"))
        self.status = QLabel("")
        self.table = QTableWidget(0, len(HISTORY_FIELDS))
        self.table.setHorizontalHeaderLabels(list(HISTORY_FIELDS))
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.horizontalHeader().setStretchLastSection(True)  # type: ignore[union-attr]
        self.rows: list[dict[str, Any]] = []
        top = QHBoxLayout()
        top.addWidget(QLabel(f"{record.message}"), 1)
        top.addWidget(self.range)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.table, 1)
        layout.addWidget(self.status)
        self.resize(900, 420)

    async def load(self) -> list[dict[str, Any]]:
        """Read the chosen range of the alarm's journal and fill the table (newest last)."""
        seconds = HISTORY_RANGES[self.range.currentIndex()][1]
        end = datetime.now(UTC)
        self.status.setText("reading the journal…")
        try:
            rows = await self.feed.history(
                self.record.source_path, end - timedelta(seconds=seconds), end + timedelta(seconds=5), self.record.kind
            )
        except (ConsoleError, OSError, TimeoutError) as exc:
            self.status.setText(str(exc))
            return []
        self.rows = rows
        self.table.setRowCount(len(rows))
        for row, event in enumerate(rows):
            for column, name in enumerate(HISTORY_FIELDS):
                value = event.get(name)
                if isinstance(value, datetime):
                    text = value.astimezone().strftime("%d/%m %H:%M:%S")
                else:
                    text = "" if value is None else str(value)
                self.table.setItem(row, column, QTableWidgetItem(text))
        self.table.resizeColumnsToContents()
        self.status.setText(f"{len(rows)} journal events")
        return rows


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
