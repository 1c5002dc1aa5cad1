"""The console's incidents: report one by clicking on the map, follow its response, confirm/change/cancel actions.

Everything goes through the information model's Objects/City/Incidents: `ReportIncident(Kind, Latitude,
Longitude, Description, ReporterContact)`, `CloseIncident(IncidentId)`, and per open incident an object with Kind,
Latitude, Longitude, Description, Status, CreatedAt, Actions (JSON), Timeline (JSON), PendingActions,
FailedActions and the methods ConfirmAction / CancelAction / ChangeAction. The kinds offered are the ones the server
documents in ReportIncident's InputArguments (the Kind argument's description lists them).

The list of open incidents is the Incidents folder, browsed every POLL_MS (and at once after a report or a close:
the server announces no new object otherwise); each open incident's variables are watched (live actions and
timeline). The selected incident's actions are drawn on the map: its place, and a ring per device coloured by the
action's state.
"""

from __future__ import annotations

import functools
import json
import logging
from typing import TYPE_CHECKING

import pyqtgraph as pg
from asyncua import ua
from PyQt6.QtCore import Qt, QTimer
from PyQt6.QtGui import QAction, QKeySequence
from PyQt6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QPushButton,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from hmi import theme
from hmi.client import CallAnswer, ConsoleError
from hmi.incidentdialogs import ChangeActionDialog, ReportDialog
from hmi.incidentstate import (
    ACTION_COLOURS,
    DEFAULT_KINDS,
    INCIDENT_VARIABLES,
    IncidentMapLayer,
    OpenIncident,
    action_summary,
    parse_kinds,
    timeline_line,
)
from hmi.permissions import INCIDENTS, INCIDENTS_PATH
from hmi.tasks import spawn
from hmi.values import Change

if TYPE_CHECKING:
    from hmi.console import Console

log = logging.getLogger(__name__)

INCIDENTS_DOCK = "Incidents"
POLL_MS = 2000
ACTION_COLUMNS = ("Action", "Kind", "Device", "What", "State", "Answer")
INCIDENT_COLUMNS = ("Incident", "Kind", "Status", "Pending", "Failed", "Description")


class IncidentsView(QWidget):
    """The "Incidents" dock: open incidents, the selected one's actions and timeline, report and close."""

    def __init__(self, console: Console) -> None:
        super().__init__()
        self.setObjectName("incidentsView")
        self.console = console
        self.client = console.client
        self.permissions = console.permissions
        self.kinds: list[str] = list(DEFAULT_KINDS)
        self.incidents: dict[str, OpenIncident] = {}
        self.selected_id: str | None = None
        self.report_dialog: ReportDialog | None = None
        self.change_dialog: ChangeActionDialog | None = None
        self.answers: list[tuple[str, CallAnswer]] = []
        """(what, server answer) of every command sent."""
        self.syncs = 0
        self._started = False

        self.report_button = QPushButton("Report incident…")
        self.report_button.setObjectName("incidentReport")
        self.report_button.setCheckable(True)
        self.report_button.setToolTip("Click, then click the incident's place on the map (Ctrl+Shift+I)")
        self.report_button.toggled.connect(self._on_report_toggled)
        self.answer = QLabel("")
        self.answer.setObjectName("incidentAnswer")
        self.answer.setWordWrap(True)
        top = QHBoxLayout()
        top.addWidget(self.report_button)
        top.addWidget(self.answer, 1)

        self.incident_table = _table(INCIDENT_COLUMNS, "incidentTable")
        self.incident_table.itemSelectionChanged.connect(self._on_incident_selected)
        self.action_table = _table(ACTION_COLUMNS, "incidentActions")
        self.action_table.itemSelectionChanged.connect(self._on_action_selected)
        self.confirm_button = QPushButton("Confirm")
        self.confirm_button.setObjectName("actionConfirm")
        self.confirm_button.clicked.connect(lambda: self._spawn_action("ConfirmAction"))
        self.change_button = QPushButton("Change…")
        self.change_button.setObjectName("actionChange")
        self.change_button.clicked.connect(self.open_change_dialog)
        self.cancel_button = QPushButton("Cancel action")
        self.cancel_button.setObjectName("actionCancel")
        self.cancel_button.clicked.connect(lambda: self._spawn_action("CancelAction"))
        self.close_button = QPushButton("Close incident")
        self.close_button.setObjectName("incidentClose")
        self.close_button.clicked.connect(lambda: spawn(self.close_selected(), name="incident-close"))
        action_row = QHBoxLayout()
        for button in (self.confirm_button, self.change_button, self.cancel_button):
            action_row.addWidget(button)
        action_row.addStretch(1)
        action_row.addWidget(self.close_button)
        self.timeline = QListWidget()
        self.timeline.setObjectName("incidentTimeline")

        lower = QWidget()
        lower_layout = QVBoxLayout(lower)
        lower_layout.setContentsMargins(0, 0, 0, 0)
        lower_layout.addWidget(QLabel("Proposed actions"))
        lower_layout.addWidget(self.action_table, 2)
        lower_layout.addLayout(action_row)
        lower_layout.addWidget(QLabel("Timeline"))
        lower_layout.addWidget(self.timeline, 1)
        splitter = QSplitter(Qt.Orientation.Vertical)
        splitter.addWidget(self.incident_table)
        splitter.addWidget(lower)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(top)
        layout.addWidget(splitter, 1)

        self.layer = IncidentMapLayer(console.window.map.plot)
        self.ringed: dict[str, str] = {}
        """Device id -> state of the selected incident's actions ringed on the map."""

        self.timer = QTimer(self)
        self.timer.setInterval(POLL_MS)
        self.timer.timeout.connect(self._poll)
        self.permissions.changed.connect(self.update_buttons)
        self.client.state_changed.connect(lambda _state: self.update_buttons())
        self.update_buttons()

    # ------------------------------------------------------------------ wiring

    @classmethod
    def install(cls, console: Console) -> IncidentsView:
        """Build the incidents dock of a console (its model loaded) and its shortcut (tabbed with the Device dock)."""
        view = cls(console)
        window = console.window
        dock = window.add_dock(INCIDENTS_DOCK, view, Qt.DockWidgetArea.RightDockWidgetArea, "Incidents", "Alt+I")
        device = window.docks.get("Device")
        if device is not None:
            window.tabifyDockWidget(device, dock)
            device.raise_()
        action = QAction("Report an incident", window)
        action.setShortcut(QKeySequence("Ctrl+Shift+I"))
        action.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
        action.triggered.connect(lambda _checked=False: view.begin_report())
        window.addAction(action)
        return view

    async def start(self) -> None:
        """Learn the kinds, list the open incidents, and keep the list current."""
        if self._started:
            return
        self._started = True
        await self.discover_kinds()
        await self.sync()
        self.timer.start()

    async def stop(self) -> None:
        """Stop following the incidents."""
        self._started = False
        self.timer.stop()
        self.console.window.map.pick_point(None)
        for dialog in (self.report_dialog, self.change_dialog):
            if dialog is not None:
                dialog.close()
        for incident in list(self.incidents.values()):
            if incident.watch is not None:
                await self.client.unwatch(incident.watch)

    def _poll(self) -> None:
        if self.client.connected:
            spawn(self.sync(), name="incidents-sync")

    async def discover_kinds(self) -> list[str]:
        """The kinds ReportIncident accepts, from the Kind argument's description (DEFAULT_KINDS otherwise)."""
        try:
            method = await self.client.method_id(INCIDENTS_PATH, "ReportIncident")
            node = await self.client.session().get_node(method).get_child("0:InputArguments")
            arguments = await node.read_value()
        except (ConsoleError, OSError, TimeoutError, ua.UaError) as exc:
            log.info("incident kinds not read (%s): the information model's are offered", exc)
            return self.kinds
        for argument in arguments or []:
            if getattr(argument, "Name", "") == "Kind":
                description = getattr(argument.Description, "Text", "") or ""
                kinds = parse_kinds(description)
                if kinds:
                    self.kinds = kinds
        return self.kinds

    # ------------------------------------------------------------------ following the incidents

    async def sync(self) -> list[str]:
        """Browse the Incidents folder: watch new incidents, forget closed ones; returns the open ids."""
        try:
            folder = self.client.session().get_node(self.client.nodeid(INCIDENTS_PATH))
            children = await folder.get_children(nodeclassmask=ua.NodeClass.Object)
        except (ConsoleError, OSError, TimeoutError, ua.UaError) as exc:
            log.debug("incidents not browsed: %s", exc)
            return list(self.incidents)
        ids = [str(child.nodeid.Identifier).removeprefix(f"{INCIDENTS_PATH}/") for child in children]
        for incident_id in ids:
            if incident_id not in self.incidents:
                incident = self.incidents[incident_id] = OpenIncident(incident_id)
                paths = [f"{INCIDENTS_PATH}/{incident_id}/{name}" for name in INCIDENT_VARIABLES]
                incident.watch = await self.client.watch(
                    paths, functools.partial(self._on_changes, incident), name=f"incident {incident_id}"
                )
        for incident_id in [i for i in self.incidents if i not in ids]:
            gone = self.incidents.pop(incident_id)
            if gone.watch is not None:
                await self.client.unwatch(gone.watch)
            if self.selected_id == incident_id:
                self.selected_id = None
        self.syncs += 1
        self._show_incidents()
        return ids

    def _on_changes(self, incident: OpenIncident, changes: list[Change]) -> None:
        if self.incidents.get(incident.id) is not incident:
            return
        for change in changes:
            if change.status & 0x80000000:
                continue
            name = change.path.rsplit("/", 1)[-1]
            incident.values[name] = change.value
            if name in ("Actions", "Timeline") and isinstance(change.value, str):
                try:
                    parsed = json.loads(change.value) if change.value else []
                except ValueError:
                    log.info("incident %s: %s is not JSON", incident.id, name)
                    continue
                if name == "Actions":
                    incident.actions = parsed
                else:
                    incident.timeline = parsed
        self._show_incidents()

    # ------------------------------------------------------------------ display

    def _show_incidents(self) -> None:
        table = self.incident_table
        table.blockSignals(True)
        table.setRowCount(len(self.incidents))
        for row, incident in enumerate(self.incidents.values()):
            v = incident.values
            cells = (
                incident.id,
                v.get("Kind", ""),
                v.get("Status", ""),
                v.get("PendingActions", ""),
                v.get("FailedActions", ""),
                v.get("Description", ""),
            )
            for column, value in enumerate(cells):
                table.setItem(row, column, QTableWidgetItem("" if value is None else str(value)))
            if incident.id == self.selected_id:
                table.selectRow(row)
        table.blockSignals(False)
        if self.selected_id is None and self.incidents:
            self.select_incident(next(reversed(self.incidents)))
        else:
            self._show_selected()
        self._draw_places()

    def select_incident(self, incident_id: str | None) -> None:
        """Show an incident's actions and timeline (and its actions on the map)."""
        self.selected_id = incident_id if incident_id in self.incidents else None
        ids = list(self.incidents)
        if self.selected_id is not None:
            self.incident_table.blockSignals(True)
            self.incident_table.selectRow(ids.index(self.selected_id))
            self.incident_table.blockSignals(False)
        self._show_selected()
        self._draw_places()

    def _on_incident_selected(self) -> None:
        rows = {index.row() for index in self.incident_table.selectedIndexes()}
        ids = list(self.incidents)
        if rows:
            self.selected_id = ids[min(rows)] if min(rows) < len(ids) else None
            self._show_selected()
            self._draw_places()

    @property
    def selected(self) -> OpenIncident | None:
        """The incident shown."""
        return self.incidents.get(self.selected_id) if self.selected_id else None

    def _show_selected(self) -> None:
        incident = self.selected
        actions = incident.actions if incident is not None else []
        selected_action = self.selected_action_id()
        table = self.action_table
        table.blockSignals(True)
        table.setRowCount(len(actions))
        for row, action in enumerate(actions):
            answer = action.get("message") or ""
            if action.get("status"):
                answer = f"status 0x{int(action['status']):08X} {answer}".strip()
            cells = (
                action.get("id", ""),
                action.get("kind", ""),
                action.get("device") or "operators",
                action_summary(action),
                action.get("state", ""),
                answer,
            )
            for column, value in enumerate(cells):
                item = QTableWidgetItem(str(value))
                if column == 4:
                    item.setForeground(pg.mkColor(ACTION_COLOURS.get(str(value), theme.TEXT)))
                table.setItem(row, column, item)
            if action.get("id") == selected_action:
                table.selectRow(row)
        table.blockSignals(False)
        table.resizeColumnsToContents()
        self.timeline.clear()
        for step in incident.timeline if incident is not None else []:
            self.timeline.addItem(timeline_line(step))
        self.timeline.scrollToBottom()
        self.update_buttons()

    def _draw_places(self) -> None:
        model = self.console.model
        if model is not None and not self.console.window.map.disposed:
            self.ringed = self.layer.draw(model, list(self.incidents.values()), self.selected)

    def selected_action_id(self) -> str | None:
        """The id of the action selected in the table."""
        rows = {index.row() for index in self.action_table.selectedIndexes()}
        incident = self.selected
        if not rows or incident is None or min(rows) >= len(incident.actions):
            return None
        return str(incident.actions[min(rows)].get("id"))

    def select_action(self, action_id: str) -> None:
        """Select an action of the shown incident (and ring its device on the map)."""
        incident = self.selected
        if incident is None:
            return
        for row, action in enumerate(incident.actions):
            if action.get("id") == action_id:
                self.action_table.selectRow(row)

    def _on_action_selected(self) -> None:
        incident = self.selected
        action = incident.action(self.selected_action_id() or "") if incident is not None else None
        model = self.console.model
        if action is not None and model is not None:
            ref = model.ref(str(action.get("device") or ""))
            if ref is not None:
                self.console.window.map.select(ref)
        self.update_buttons()

    def update_buttons(self) -> None:
        """Enable what the user may do on what is selected (nothing while disconnected)."""
        connected = self.client.connected
        incident = self.selected
        action = incident.action(self.selected_action_id() or "") if incident is not None else None
        state = str(action.get("state")) if action is not None else ""
        on_device = action is not None and bool(action.get("device"))
        may = self.permissions.may_call
        self.report_button.setEnabled(connected and may(INCIDENTS, "ReportIncident"))
        self.close_button.setEnabled(connected and incident is not None and may(INCIDENTS, "CloseIncident"))
        self.confirm_button.setEnabled(
            connected and on_device and state in ("proposed", "failed") and may(INCIDENTS, "ConfirmAction")
        )
        self.change_button.setEnabled(
            connected
            and on_device
            and action is not None
            and action.get("kind") in ("sign", "traffic")
            and may(INCIDENTS, "ChangeAction")
        )
        self.cancel_button.setEnabled(
            connected and action is not None and state != "cancelled" and may(INCIDENTS, "CancelAction")
        )

    # ------------------------------------------------------------------ reporting

    def begin_report(self) -> None:
        """Report mode: the next click on the map places the incident (then the report dialog opens)."""
        if not self.report_button.isChecked():
            self.report_button.setChecked(True)  # toggled -> _on_report_toggled
        else:
            self._on_report_toggled(True)

    def _on_report_toggled(self, on: bool) -> None:
        window = self.console.window
        if on:
            window.map.pick_point(self.place_report)
            window.status.showMessage("Click the incident's place on the map (Esc: cancel with the button)", 15000)
        else:
            window.map.pick_point(None)

    def place_report(self, lat: float, lon: float) -> ReportDialog:
        """Open the report dialog for a place (what the map click in report mode does)."""
        self.report_button.blockSignals(True)
        self.report_button.setChecked(False)
        self.report_button.blockSignals(False)
        if self.report_dialog is not None:
            self.report_dialog.close()
        dialog = ReportDialog(self.kinds, lat, lon, self)
        dialog.accepted.connect(
            lambda: spawn(
                self.report(dialog.kind(), lat, lon, dialog.description(), dialog.contact()), name="incident-report"
            )
        )
        self.report_dialog = dialog
        dialog.open()
        return dialog

    async def report(self, kind: str, lat: float, lon: float, description: str, contact: str) -> CallAnswer:
        """ReportIncident; the new incident is listed and selected. The server's answer is shown and returned."""
        answer = await self.client.call(
            INCIDENTS_PATH,
            "ReportIncident",
            ua.Variant(kind, ua.VariantType.String),
            ua.Variant(float(lat), ua.VariantType.Double),
            ua.Variant(float(lon), ua.VariantType.Double),
            ua.Variant(description, ua.VariantType.String),
            ua.Variant(contact, ua.VariantType.String),
        )
        new_id = str(answer.outputs[0]) if answer.ok and answer.outputs else ""
        self._show_answer(f"ReportIncident {kind}" + (f" → {new_id}" if new_id else ""), answer, "ReportIncident")
        if new_id:
            await self.sync()
            self.select_incident(new_id)
        return answer

    # ------------------------------------------------------------------ commands

    def _spawn_action(self, method: str) -> None:
        incident, action_id = self.selected_id, self.selected_action_id()
        if incident is not None and action_id is not None:
            spawn(self.call_action(incident, action_id, method), name=f"incident-{method}")

    async def call_action(self, incident_id: str, action_id: str, method: str, *extra: ua.Variant) -> CallAnswer:
        """ConfirmAction, CancelAction or ChangeAction (extra: Text, Pictogram, Plan) of one action."""
        answer = await self.client.call(
            f"{INCIDENTS_PATH}/{incident_id}", method, ua.Variant(action_id, ua.VariantType.String), *extra
        )
        state = f" ({answer.outputs[0]})" if answer.outputs else ""
        self._show_answer(f"{method} {incident_id} {action_id}{state}", answer, method)
        return answer

    def open_change_dialog(self) -> ChangeActionDialog | None:
        """Open the change dialog of the selected sign or traffic action."""
        incident = self.selected
        action = incident.action(self.selected_action_id() or "") if incident is not None else None
        if incident is None or action is None:
            return None
        if self.change_dialog is not None:
            self.change_dialog.close()
        dialog = ChangeActionDialog(action, self)
        incident_id, action_id = incident.id, str(action.get("id"))
        dialog.accepted.connect(
            lambda: spawn(self.call_action(incident_id, action_id, "ChangeAction", *dialog.arguments()))
        )
        self.change_dialog = dialog
        dialog.open()
        return dialog

    async def close_selected(self) -> CallAnswer | None:
        """CloseIncident of the selected incident (its devices are restored by the server)."""
        incident_id = self.selected_id
        if incident_id is None:
            return None
        return await self.close_incident(incident_id)

    async def close_incident(self, incident_id: str) -> CallAnswer:
        """CloseIncident; the list is browsed again at once."""
        answer = await self.client.call(INCIDENTS_PATH, "CloseIncident", ua.Variant(incident_id, ua.VariantType.String))
        self._show_answer(f"CloseIncident {incident_id}", answer, "CloseIncident")
        await self.sync()
        return answer

    def _show_answer(self, what: str, answer: CallAnswer, method: str) -> None:
        self.answers.append((what, answer))
        self.answer.setText(f"{what}: {answer.text}")
        theme.set_role(self.answer, answer="good" if answer.ok else "bad")
        self.permissions.learn(INCIDENTS, method, answer.status)


def _table(columns: tuple[str, ...], name: str) -> QTableWidget:
    table = QTableWidget(0, len(columns))
    table.setObjectName(name)
    table.setHorizontalHeaderLabels(list(columns))
    table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
    table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    table.verticalHeader().setVisible(False)  # type: ignore[union-attr]
    table.horizontalHeader().setStretchLastSection(True)  # type: ignore[union-attr]
    return table


__all__ = [
    "INCIDENTS_DOCK",
    "ChangeActionDialog",
    "IncidentsView",
    "OpenIncident",
    "ReportDialog",
    "action_summary",
    "parse_kinds",
]
