"""The console's alarms: a permanent banner, the alarm list (filters, acknowledge, shelve), history, map rings.

`AlarmsView.install(console)` builds everything on a console whose city model is loaded: the AlarmFeed (events of
the Server object, hmi.alarmfeed), the "Alarms" dock with the list, the banner under the connection banner, rings
on the map around devices with an active unacknowledged alarm, and the keyboard shortcuts; `start()` subscribes.

Acknowledge and shelve act on the selected rows, one server call per alarm, each answer listed (the server's
status name). Whether the user may acknowledge or shelve is asked of the server once (the per-user UserExecutable
of the standard methods, AlarmFeed.rights), and learnt again from every BadUserAccessDenied: the buttons of a user without the right
are disabled. A new alarm highlights its row; from `cue_severity` up it also flashes the banner and beeps.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from asyncua import ua
from PyQt6.QtCore import QItemSelectionModel, Qt
from PyQt6.QtGui import QAction, QColor, QKeySequence
from PyQt6.QtWidgets import (
    QAbstractItemView,
    QApplication,
    QCheckBox,
    QComboBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QListWidget,
    QPushButton,
    QSpinBox,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from hmi import theme
from hmi.alarmfeed import ALARM_TARGET, AlarmFeed, AlarmRecord
from hmi.alarmtable import RECORD_ROLE, AlarmFilter, AlarmTableModel
from hmi.alarmwidgets import CUE_SEVERITY, AlarmBanner, AlarmHistoryDialog, AlarmRings
from hmi.client import CallAnswer, ConsoleError
from hmi.tasks import spawn
from scada.model import Quality

if TYPE_CHECKING:
    from hmi.console import Console

log = logging.getLogger(__name__)

ALARMS_DOCK = "Alarms"
KNOWN_KINDS = (
    "LampFailure",
    "CommunicationLost",
    "DoorOpen",
    "MainsFailure",
    "ControllerFault",
    "SignalLampFailure",
    "SignFault",
    "CarParkFull",
)
"""The ConditionNames of the information model (the kind filter adds any other the server sends)."""


class AlarmsView(QWidget):
    """The alarm list with its filters and commands (the "Alarms" dock)."""

    def __init__(self, console: Console) -> None:
        super().__init__()
        self.setObjectName("alarmsView")
        self.console = console
        model = console.model
        self.feed = AlarmFeed(console.client, self._district_of)
        self.permissions = console.permissions
        self.cue_severity = CUE_SEVERITY
        """New alarms at or above this severity flash the banner and beep."""
        self.cues = 0
        """How many audible/visual cues were given."""
        self.answers: list[tuple[str, str, CallAnswer]] = []
        """(alarm key, command, server answer) of every command sent, oldest first."""
        self._probed = False
        self.table_model = AlarmTableModel(self)
        self.proxy = AlarmFilter(self)
        self.proxy.setSourceModel(self.table_model)
        self.banner = AlarmBanner()
        self.rings = AlarmRings(console)
        self.history_dialog: AlarmHistoryDialog | None = None

        self.filter_boxes: dict[str, QCheckBox] = {}
        filters = QHBoxLayout()
        for name, label in (
            ("active_only", "Active"),
            ("unacked_only", "Unacknowledged"),
            ("shelved_only", "Shelved"),
            ("suppressed_only", "Suppressed"),
        ):
            box = QCheckBox(label)
            box.setObjectName(f"alarmFilter_{name}")
            box.toggled.connect(lambda on, n=name: self.proxy.set_filter(**{n: on}))
            self.filter_boxes[name] = box
            filters.addWidget(box)
        self.district_box = QComboBox()
        self.district_box.setObjectName("alarmDistrict")
        self.district_box.addItem("All districts", "")
        districts = model.site.get("districts", []) if model is not None else []
        for district in districts:
            self.district_box.addItem(str(district.get("name") or district.get("id")), str(district.get("id")))
        self.district_box.currentIndexChanged.connect(
            lambda _i: self.proxy.set_filter(district=self.district_box.currentData() or "")
        )
        self.kind_box = QComboBox()
        self.kind_box.setObjectName("alarmKind")
        self.kind_box.addItem("All kinds", "")
        for kind in KNOWN_KINDS:
            self.kind_box.addItem(kind, kind)
        self.kind_box.currentIndexChanged.connect(
            lambda _i: self.proxy.set_filter(kind=self.kind_box.currentData() or "")
        )
        filters.addWidget(self.district_box)
        filters.addWidget(self.kind_box)
        filters.addStretch(1)
        self.count_label = QLabel("")
        filters.addWidget(self.count_label)

        self.table = QTableView()
        self.table.setObjectName("alarmTable")
        self.table.setModel(self.proxy)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.table.setAlternatingRowColors(True)
        self.table.verticalHeader().setVisible(False)  # type: ignore[union-attr]
        header = self.table.horizontalHeader()
        assert header is not None
        header.setStretchLastSection(False)
        header.setSectionResizeMode(5, QHeaderView.ResizeMode.Stretch)
        self.table.doubleClicked.connect(self._on_double_click)
        selection = self.table.selectionModel()
        assert selection is not None
        selection.selectionChanged.connect(lambda *_: self.update_buttons())

        self.comment = QLineEdit()
        self.comment.setObjectName("alarmComment")
        self.comment.setPlaceholderText("Comment (sent with acknowledge or shelve)")
        self.ack_button = QPushButton("Acknowledge")
        self.ack_button.setObjectName("alarmAcknowledge")
        self.ack_button.setToolTip("Acknowledge the selected alarms with the comment (Ctrl+Shift+A)")
        self.ack_button.clicked.connect(lambda: spawn(self.acknowledge_selected(), name="alarm-ack"))
        self.confirm_button = QPushButton("Confirm")
        self.confirm_button.setObjectName("alarmConfirm")
        self.confirm_button.setToolTip("Confirm the selected acknowledged alarms (the repair is done)")
        self.confirm_button.clicked.connect(lambda: spawn(self.confirm_selected(), name="alarm-confirm"))
        self.shelve_minutes = QSpinBox()
        self.shelve_minutes.setObjectName("alarmShelveMinutes")
        self.shelve_minutes.setRange(1, 24 * 60)
        self.shelve_minutes.setValue(60)
        self.shelve_minutes.setSuffix(" min")
        self.shelve_button = QPushButton("Shelve")
        self.shelve_button.setObjectName("alarmShelve")
        self.shelve_button.setToolTip("Shelve the selected alarms for the duration (Ctrl+Shift+S)")
        self.shelve_button.clicked.connect(
            lambda: spawn(self.shelve_selected(self.shelve_minutes.value() * 60.0), name="alarm-shelve")
        )
        self.one_shot_button = QPushButton("One-shot")
        self.one_shot_button.setObjectName("alarmOneShot")
        self.one_shot_button.setToolTip("Shelve the selected alarms until they return to normal")
        self.one_shot_button.clicked.connect(lambda: spawn(self.shelve_selected(None), name="alarm-one-shot"))
        self.unshelve_button = QPushButton("Unshelve")
        self.unshelve_button.setObjectName("alarmUnshelve")
        self.unshelve_button.clicked.connect(lambda: spawn(self.unshelve_selected(), name="alarm-unshelve"))
        self.history_button = QPushButton("History…")
        self.history_button.setObjectName("alarmHistoryButton")
        self.history_button.clicked.connect(self.open_history)
        commands = QHBoxLayout()
        commands.addWidget(self.comment, 1)
        for widget in (
            self.ack_button,
            self.confirm_button,
            self.shelve_minutes,
            self.shelve_button,
            self.one_shot_button,
            self.unshelve_button,
            self.history_button,
        ):
            commands.addWidget(widget)
        self.answer_list = QListWidget()
        self.answer_list.setObjectName("alarmAnswers")
        self.answer_list.setMaximumHeight(70)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(filters)
        layout.addWidget(self.table, 1)
        layout.addLayout(commands)
        layout.addWidget(self.answer_list)

        self.feed.changed.connect(self.refresh)
        self.feed.raised.connect(self._on_raised)
        self.permissions.changed.connect(self.update_buttons)
        console.client.state_changed.connect(lambda _state: self.update_buttons())
        self.banner.open_button.clicked.connect(lambda: console.window.show_dock(ALARMS_DOCK))
        self.update_buttons()

    # ------------------------------------------------------------------ wiring

    @classmethod
    def install(cls, console: Console) -> AlarmsView:
        """Build the alarm views of a console (its model loaded): dock, banner, map rings, shortcuts."""
        view = cls(console)
        window = console.window
        window.add_dock(ALARMS_DOCK, view, Qt.DockWidgetArea.BottomDockWidgetArea, "Alarms", "Alt+A")
        window.add_banner(view.banner)
        for text, keys, slot in (
            ("Acknowledge selected alarms", "Ctrl+Shift+A", lambda: spawn(view.acknowledge_selected())),
            ("Shelve selected alarms", "Ctrl+Shift+S", lambda: spawn(view.shelve_selected(view.shelve_seconds()))),
        ):
            action = QAction(text, window)
            action.setShortcut(QKeySequence(keys))
            action.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
            action.triggered.connect(lambda _checked=False, s=slot: s())
            window.addAction(action)
        return view

    async def start(self) -> None:
        """Subscribe to the server's alarms (and again after every reconnection)."""
        await self.feed.start()

    def stop(self) -> None:
        """Stop following the server and close the history dialog."""
        self.feed.stop()
        self.banner.stop()
        if self.history_dialog is not None:
            self.history_dialog.close()

    def _district_of(self, device_id: str) -> str:
        model = self.console.model
        if model is None:
            return ""
        ref = model.ref(device_id)
        if ref is None:
            return ""
        info = model.info(ref)
        if "district" in info:
            return str(info["district"] or "")
        cabinet = model.ref(str(info.get("cabinet") or info.get("site") or ""))
        return str(model.info(cabinet).get("district") or "") if cabinet is not None else ""

    # ------------------------------------------------------------------ display

    def refresh(self) -> None:
        """Show the feed's conditions: list, banner, map rings, kind filter entries."""
        selected = set(self.selected_keys())
        records = self.feed.sorted_records()
        self.table_model.set_records(records)
        for record in records:
            if record.kind and self.kind_box.findData(record.kind) < 0:
                self.kind_box.addItem(record.kind, record.kind)
        self.select_keys(selected)
        attention = self.feed.attention()
        self.banner.show_records(attention)
        self.rings.show_sources(self.feed.unacked_sources())
        self.count_label.setText(f"{self.proxy.rowCount()} of {len(records)} shown")
        self.update_buttons()
        if not self._probed and records and self.console.client.connected:
            self._probed = True
            spawn(self.probe_rights(), name="alarm-rights")

    def _on_raised(self, record: AlarmRecord) -> None:
        self.table_model.flash(record.key)
        if record.severity >= self.cue_severity:
            self.cues += 1
            self.banner.flash()
            QApplication.beep()

    async def probe_rights(self) -> None:
        """Ask the server whether this user may acknowledge and shelve (UserExecutable), and set the buttons."""
        try:
            ack, shelve = await self.feed.rights()
        except (ConsoleError, ua.UaError, OSError, TimeoutError) as exc:
            log.info("alarm rights not read: %s", exc)
            return
        for method, allowed in (("Acknowledge", ack), ("Shelve", shelve)):
            if allowed is False:  # as a refusal would: disabled for the session
                self.permissions.learn(ALARM_TARGET, method, Quality.BAD_USER_ACCESS_DENIED)
            elif allowed:
                self.permissions.executable[(ALARM_TARGET, method)] = True
        self.update_buttons()

    def update_buttons(self) -> None:
        """Enable the commands the user may send on the rows selected (all disabled while disconnected)."""
        selected = bool(self.selected_keys())
        connected = self.console.client.connected
        may_ack = self.permissions.may_call(ALARM_TARGET, "Acknowledge")
        may_shelve = self.permissions.may_call(ALARM_TARGET, "Shelve")
        self.ack_button.setEnabled(connected and selected and may_ack)
        self.confirm_button.setEnabled(connected and selected and may_ack)
        for button in (self.shelve_button, self.one_shot_button, self.unshelve_button):
            button.setEnabled(connected and selected and may_shelve)
        self.shelve_minutes.setEnabled(may_shelve)
        self.history_button.setEnabled(connected and len(self.selected_keys()) == 1)
        self.ack_button.setToolTip(
            "Acknowledge the selected alarms with the comment (Ctrl+Shift+A)"
            if may_ack
            else "The server does not allow this user to acknowledge alarms"
        )
        self.shelve_button.setToolTip(
            "Shelve the selected alarms for the duration (Ctrl+Shift+S)"
            if may_shelve
            else "The server does not allow this user to shelve alarms"
        )

    # ------------------------------------------------------------------ selection

    def selected_keys(self) -> list[str]:
        """The condition keys of the selected rows, in the list's order."""
        selection = self.table.selectionModel()
        if selection is None:
            return []
        rows = sorted({index.row() for index in selection.selectedRows()})
        keys = []
        for row in rows:
            record = self.proxy.index(row, 0).data(RECORD_ROLE)
            if isinstance(record, AlarmRecord):
                keys.append(record.key)
        return keys

    def select_keys(self, keys: set[str] | list[str]) -> None:
        """Select the rows of these conditions (the others are unselected)."""
        selection = self.table.selectionModel()
        if selection is None:
            return
        wanted = set(keys)
        selection.clearSelection()
        flags = QItemSelectionModel.SelectionFlag.Select | QItemSelectionModel.SelectionFlag.Rows
        for row in range(self.proxy.rowCount()):
            index = self.proxy.index(row, 0)
            record = index.data(RECORD_ROLE)
            if isinstance(record, AlarmRecord) and record.key in wanted:
                selection.select(index, flags)

    def visible_keys(self) -> list[str]:
        """The keys of the rows the filters let through, in order."""
        out = []
        for row in range(self.proxy.rowCount()):
            record = self.proxy.index(row, 0).data(RECORD_ROLE)
            if isinstance(record, AlarmRecord):
                out.append(record.key)
        return out

    def shelve_seconds(self) -> float:
        """The shelving duration chosen (s)."""
        return self.shelve_minutes.value() * 60.0

    # ------------------------------------------------------------------ commands

    async def acknowledge_selected(self, comment: str | None = None) -> list[tuple[str, CallAnswer]]:
        """Acknowledge every selected alarm with the comment; each answer is listed and returned."""
        text = self.comment.text() if comment is None else comment
        return await self._each("Acknowledge", lambda key: self.feed.acknowledge(key, text), "Acknowledge")

    async def confirm_selected(self, comment: str | None = None) -> list[tuple[str, CallAnswer]]:
        """Confirm every selected (acknowledged) alarm with the comment."""
        text = self.comment.text() if comment is None else comment
        return await self._each("Confirm", lambda key: self.feed.confirm(key, text), "Acknowledge")

    async def shelve_selected(
        self, duration_s: float | None, comment: str | None = None
    ) -> list[tuple[str, CallAnswer]]:
        """Shelve every selected alarm, timed (`duration_s`) or one-shot (None), with the comment."""
        text = self.comment.text() if comment is None else comment
        name = "One-shot shelve" if duration_s is None else f"Shelve {duration_s / 60:g} min"
        return await self._each(name, lambda key: self.feed.shelve(key, text, duration_s), "Shelve")

    async def unshelve_selected(self, comment: str | None = None) -> list[tuple[str, CallAnswer]]:
        """Unshelve every selected alarm."""
        text = self.comment.text() if comment is None else comment
        return await self._each("Unshelve", lambda key: self.feed.unshelve(key, text), "Shelve")

    async def _each(self, name: str, call: Any, right: str) -> list[tuple[str, CallAnswer]]:
        keys = self.selected_keys()
        out: list[tuple[str, CallAnswer]] = []
        for key in keys:
            answer = await call(key)
            out.append((key, answer))
            self.answers.append((key, name, answer))
            record = self.feed.records.get(key)
            who = f"{record.source_name} {record.kind}" if record is not None else key
            self.answer_list.insertItem(0, f"{name} {who}: {answer.text}")
            item = self.answer_list.item(0)
            if item is not None:
                item.setForeground(QColor(theme.GOOD if answer.ok else theme.BAD))
            self.permissions.learn(ALARM_TARGET, right, answer.status)
        while self.answer_list.count() > 50:
            self.answer_list.takeItem(self.answer_list.count() - 1)
        if out:
            good = sum(1 for _key, answer in out if answer.ok)
            self.console.window.status.showMessage(f"{name}: {good} of {len(out)} accepted by the server", 8000)
        return out

    # ------------------------------------------------------------------ history

    def open_history(self) -> AlarmHistoryDialog | None:
        """Open the history of the (single) selected alarm and start reading it."""
        keys = self.selected_keys()
        record = self.feed.records.get(keys[0]) if keys else None
        if record is None:
            return None
        if self.history_dialog is not None:
            self.history_dialog.close()
        dialog = AlarmHistoryDialog(self.feed, record, self)
        self.history_dialog = dialog
        dialog.show()
        spawn(dialog.load(), name="alarm-history")
        return dialog

    def _on_double_click(self, index: Any) -> None:
        record = index.data(RECORD_ROLE)
        if not isinstance(record, AlarmRecord) or self.console.model is None:
            return
        ref = self.console.model.ref(record.source_name)
        if ref is not None:
            self.console.window.map.select(ref)
            self.console.window.map.center_on(ref)


__all__ = ["ALARMS_DOCK", "AlarmBanner", "AlarmHistoryDialog", "AlarmRings", "AlarmsView"]
