"""The alarm list's Qt models: one row per retained condition (AlarmTableModel) and its filters (AlarmFilter).

The table model takes the feed's records as a whole on every change (a few hundred rows at most: the server
retains what is active or unacknowledged), most severe first. Rows of alarms raised in the last FLASH_S seconds
are highlighted; unacknowledged rows are bold.
"""

from __future__ import annotations

import time
from typing import Any

from PyQt6.QtCore import QAbstractTableModel, QModelIndex, QObject, QSortFilterProxyModel, Qt
from PyQt6.QtGui import QBrush, QColor, QFont

from hmi import theme
from hmi.alarmfeed import AlarmRecord

COLUMNS: tuple[str, ...] = ("Time", "Sev.", "Source", "District", "Kind", "Message", "State", "Ack", "Shelving")
FLASH_S = 10.0
"""How long a newly raised alarm's row stays highlighted."""
RECORD_ROLE = Qt.ItemDataRole.UserRole + 1
NEW_ROW = QColor("#5a3a12")
SEVERITY_COLOURS: tuple[tuple[int, str], ...] = ((800, theme.BAD), (500, theme.WARNING), (0, theme.TEXT))


def severity_colour(severity: int) -> str:
    """The text colour of a severity (red from 800, amber from 500)."""
    return next(colour for limit, colour in SEVERITY_COLOURS if severity >= limit)


class AlarmTableModel(QAbstractTableModel):
    """The retained conditions, most severe first."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.records: list[AlarmRecord] = []
        self.flash_until: dict[str, float] = {}

    def set_records(self, records: list[AlarmRecord]) -> None:
        """Show these records (already sorted)."""
        self.beginResetModel()
        self.records = list(records)
        now = time.monotonic()
        self.flash_until = {key: until for key, until in self.flash_until.items() if until > now}
        self.endResetModel()

    def flash(self, key: str) -> None:
        """Highlight a row for FLASH_S seconds (a new alarm)."""
        self.flash_until[key] = time.monotonic() + FLASH_S
        row = self.row_of(key)
        if row is not None:
            self.dataChanged.emit(self.index(row, 0), self.index(row, len(COLUMNS) - 1))

    def flashing(self, key: str) -> bool:
        """True while a row is highlighted."""
        return self.flash_until.get(key, 0.0) > time.monotonic()

    def row_of(self, key: str) -> int | None:
        """The row of a condition, or None."""
        for row, record in enumerate(self.records):
            if record.key == key:
                return row
        return None

    def rowCount(self, parent: QModelIndex | None = None) -> int:
        return 0 if parent is not None and parent.isValid() else len(self.records)

    def columnCount(self, parent: QModelIndex | None = None) -> int:
        return 0 if parent is not None and parent.isValid() else len(COLUMNS)

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if role == Qt.ItemDataRole.DisplayRole and orientation == Qt.Orientation.Horizontal:
            return COLUMNS[section]
        return None

    def data(self, index: QModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or index.row() >= len(self.records):
            return None
        record = self.records[index.row()]
        column = index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            return cell_text(record, column)
        if role == RECORD_ROLE:
            return record
        if role == Qt.ItemDataRole.ForegroundRole:
            if record.shelved or record.suppressed:
                return QBrush(QColor(theme.TEXT_DIM))
            if column == 1 or (record.active and not record.acked):
                return QBrush(QColor(severity_colour(record.severity)))
            return None
        if role == Qt.ItemDataRole.BackgroundRole and self.flashing(record.key):
            return QBrush(NEW_ROW)
        if role == Qt.ItemDataRole.FontRole and not record.acked:
            font = QFont()
            font.setBold(True)
            return font
        if role == Qt.ItemDataRole.ToolTipRole:
            extra = f"\nComment ({record.user}): {record.comment}" if record.comment else ""
            return f"{record.key}\n{record.message}{extra}"
        return None


def cell_text(record: AlarmRecord, column: int) -> str:
    """The text of one cell."""
    if column == 0:
        return record.time.astimezone().strftime("%d/%m %H:%M:%S") if record.time is not None else ""
    if column == 1:
        return str(record.severity)
    if column == 2:
        return record.source_name
    if column == 3:
        return record.district
    if column == 4:
        return record.kind
    if column == 5:
        return record.message
    if column == 6:
        states = ["active" if record.active else "normal"]
        if record.suppressed:
            states.append("suppressed")
        if not record.enabled:
            states.append("disabled")
        return ", ".join(states)
    if column == 7:
        if not record.acked:
            return "UNACK"
        return "acked" if record.confirmed else "acked, to confirm"
    if column == 8:
        if not record.shelved:
            return ""
        left = f" ({record.unshelve_ms / 60000:.0f} min)" if record.unshelve_ms else ""
        return record.shelving + left
    return ""


class AlarmFilter(QSortFilterProxyModel):
    """Filters of the alarm list: only active, only unacknowledged, only shelved, only suppressed, a district, a kind.

    A flag left off does not filter; every flag on must hold.
    """

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.active_only = False
        self.unacked_only = False
        self.shelved_only = False
        self.suppressed_only = False
        self.district = ""
        self.kind = ""

    def set_filter(self, **flags: Any) -> None:
        """Change filters by name (active_only, unacked_only, shelved_only, suppressed_only, district, kind)."""
        for name, value in flags.items():
            if not hasattr(self, name) or name.startswith("_"):
                raise AttributeError(f"no alarm filter {name!r}")
            setattr(self, name, value)
        self.invalidateFilter()

    def filterAcceptsRow(self, source_row: int, source_parent: QModelIndex) -> bool:
        model = self.sourceModel()
        if not isinstance(model, AlarmTableModel) or source_row >= len(model.records):
            return False
        return self.accepts(model.records[source_row])

    def accepts(self, record: AlarmRecord) -> bool:
        """True when a record passes every filter."""
        if self.active_only and not record.active:
            return False
        if self.unacked_only and record.acked:
            return False
        if self.shelved_only and not record.shelved:
            return False
        if self.suppressed_only and not record.suppressed:
            return False
        if self.district and record.district != self.district:
            return False
        return not (self.kind and record.kind != self.kind)
