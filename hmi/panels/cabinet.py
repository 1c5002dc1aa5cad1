"""The cabinet panel: mode, lamps, energy, door, mains; set the mode, force on/off for a time, set all levels.

Forcing for a duration: the cabinet's `Override(Mode, Minutes, Reason)` and `CancelOverride()` (the server's
maintenance override: time-limited, audited, ended by the server whether or not this console still runs). A server
without them (its lighting automation off) is forced with SetMode(1 or 2) and returned to automatic with SetMode(0)
by this console when the time is up (`ForceKeeper`, shared by all panels so that closing a panel does not cancel
it), only while the console runs: the panel says which.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime
from typing import Any

from asyncua import ua
from PyQt6.QtCore import QObject, QTimer, pyqtSignal
from PyQt6.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
)

from hmi import theme
from hmi.client import CallAnswer, ConsoleClient
from hmi.model import MapState
from hmi.panels.base import DevicePanel, Field, PanelContext
from hmi.tasks import spawn
from scada.catalog import Kind

log = logging.getLogger(__name__)

MODES = {0: "automatic", 1: "all on", 2: "all off"}
FORCE_NOTE = (
    "The server's maintenance override: it returns the cabinet to automatic when the time is up, and the audit "
    "trail keeps who forced it and why."
)
FORCE_NOTE_CONSOLE = (
    "This server has no override method (its lighting automation is off): the return to automatic (SetMode 0) is "
    "sent by this console when the time is up, and only while it runs."
)
DEFAULT_REASON = "maintenance (console)"


class ForceKeeper(QObject):
    """Cabinets forced on/off by this console, and the timers that return them to automatic."""

    changed = pyqtSignal(str)
    """A cabinet's force started, ended or was cancelled (its object path)."""

    def __init__(self, client: ConsoleClient, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.client = client
        self._until: dict[str, float] = {}
        self._timers: dict[str, QTimer] = {}
        self.last_release: dict[str, CallAnswer] = {}

    @classmethod
    def of(cls, context: PanelContext) -> ForceKeeper:
        """The console's keeper (created on first use)."""
        keeper = context.services.get("forces")
        if keeper is None:
            keeper = context.services["forces"] = cls(context.client)
        return keeper  # type: ignore[no-any-return]

    def hold(self, path: str, seconds: float) -> None:
        """Return the cabinet to automatic in `seconds` (replacing an earlier hold)."""
        self.cancel(path)
        timer = QTimer(self)
        timer.setSingleShot(True)
        timer.timeout.connect(lambda: spawn(self.release(path), name=f"release {path}"))
        timer.start(max(0, round(seconds * 1000)))
        self._timers[path] = timer
        self._until[path] = time.monotonic() + seconds
        self.changed.emit(path)

    def cancel(self, path: str) -> None:
        """Forget a hold without sending anything."""
        timer = self._timers.pop(path, None)
        if timer is not None:
            timer.stop()
            timer.deleteLater()
        if self._until.pop(path, None) is not None:
            self.changed.emit(path)

    def remaining(self, path: str) -> float | None:
        """Seconds until the cabinet returns to automatic, None when not held."""
        until = self._until.get(path)
        return None if until is None else max(0.0, until - time.monotonic())

    async def release(self, path: str) -> CallAnswer:
        """Return the cabinet to automatic now (SetMode 0)."""
        self.cancel(path)
        answer = await self.client.call(path, "SetMode", ua.Variant(0, ua.VariantType.Int32))
        self.last_release[path] = answer
        if not answer.ok:
            log.warning("returning %s to automatic failed: %s", path, answer.text)
        self.changed.emit(path)
        return answer


class CabinetPanel(DevicePanel):
    """One lighting cabinet (segment controller) and a summary of its lamps."""

    kind = Kind.CABINET
    fields = (
        Field("Mode", "Mode", names=MODES),
        Field("CommunicationOk", "Communication"),
        Field("LampCount", "Lamps", digits=0),
        Field("EnergyKWh", "Energy"),
        Field("MainsVoltage", "Mains voltage", digits=0),
        Field("MainsFailure", "Mains failure"),
        Field("DoorOpen", "Door open"),
        Field("Fault", "Fault"),
        Field("LocalControl", "Local control"),
        Field("PresenceBoostLevel", "Presence boost", digits=0),
        Field("PresenceHoldSeconds", "Presence hold", digits=0),
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.keeper = ForceKeeper.of(self.context)
        self.server_override: bool | None = None  # does the server have Override? (None: not asked yet)
        self._server_until: dict[str, tuple[datetime, int]] = self.context.services.setdefault("override_until", {})
        self.keeper.changed.connect(self._on_force_changed)
        self.context.model.states_changed.connect(self._schedule_summary)
        self._summary_timer = QTimer(self)
        self._summary_timer.setSingleShot(True)
        self._summary_timer.setInterval(500)
        self._summary_timer.timeout.connect(self.update_summary)
        self._tick = QTimer(self)
        self._tick.setInterval(1000)
        self._tick.timeout.connect(self._show_remaining)
        self.update_summary()
        self._show_remaining()

    def build_extra(self, layout: QVBoxLayout) -> None:
        """The lamps' states, counted from the cabinet's LampStates."""
        self.summary = QLabel("")
        self.summary.setObjectName("lampSummary")
        self.summary.setWordWrap(True)
        layout.addWidget(self.summary)

    def _schedule_summary(self) -> None:
        if not self._summary_timer.isActive():
            self._summary_timer.start()

    def update_summary(self) -> None:
        """Count the cabinet's lamps per state."""
        model = self.context.model
        rows = model.lamps_of(self.ref.id)
        counts = model.state_counts(Kind.LAMP, rows) if rows else {}
        colours = theme.STALE_COLOURS if model.stale else theme.STATE_COLOURS
        parts = [
            f'<span style="color:{colours[state]}">●</span> {state.label} {counts[state]}'
            for state in MapState
            if counts.get(state)
        ]
        self.summary.setText(f"{len(rows)} lamps: " + (" &nbsp; ".join(parts) if parts else "no state yet"))

    def build_commands(self, layout: QVBoxLayout) -> None:
        """Set mode; force on/off for a time (console-held return to automatic); set all levels."""
        row = QHBoxLayout()
        self.mode = QComboBox()
        self.mode.setObjectName("modeValue")
        for value, name in MODES.items():
            self.mode.addItem(name, value)
        set_mode = QPushButton("Set mode")
        set_mode.setObjectName("setMode")
        set_mode.clicked.connect(
            lambda: self.send("SetMode", ua.Variant(int(self.mode.currentData()), ua.VariantType.Int32))
        )
        row.addWidget(self.mode)
        row.addWidget(self.gate("SetMode", set_mode))
        row.addStretch(1)
        layout.addLayout(row)

        force_box = QGroupBox("Force for a time")
        force_layout = QVBoxLayout(force_box)
        force_row = QHBoxLayout()
        self.force_mode = QComboBox()
        self.force_mode.setObjectName("forceMode")
        self.force_mode.addItem("on", 1)
        self.force_mode.addItem("off", 2)
        self.force_minutes = QSpinBox()
        self.force_minutes.setObjectName("forceMinutes")
        self.force_minutes.setRange(1, 480)
        self.force_minutes.setValue(30)
        self.force_minutes.setSuffix(" min")
        force = QPushButton("Force")
        force.setObjectName("force")
        force.clicked.connect(
            lambda: spawn(self.force(int(self.force_mode.currentData()), self.force_minutes.value() * 60.0))
        )
        back = QPushButton("Back to automatic")
        back.setObjectName("forceCancel")
        back.clicked.connect(lambda: spawn(self.end_force()))
        self.force_reason = QLineEdit()
        self.force_reason.setObjectName("forceReason")
        self.force_reason.setPlaceholderText(f"reason (default: {DEFAULT_REASON})")
        for widget in (self.force_mode, self.force_minutes, self.force_reason):
            force_row.addWidget(widget)
        force_row.addWidget(self.gate("Override", force))
        force_row.addWidget(self.gate("CancelOverride", back))
        force_row.addStretch(1)
        force_layout.addLayout(force_row)
        self.force_state = QLabel("")
        self.force_state.setObjectName("forceState")
        force_layout.addWidget(self.force_state)
        self.force_note = note = QLabel(FORCE_NOTE)
        note.setWordWrap(True)
        theme.set_role(note, role="caption")
        force_layout.addWidget(note)
        layout.addWidget(force_box)

        levels = QHBoxLayout()
        self.all_levels = QDoubleSpinBox()
        self.all_levels.setObjectName("allLevelsValue")
        self.all_levels.setRange(0.0, 100.0)
        self.all_levels.setDecimals(0)
        self.all_levels.setSuffix(" %")
        self.all_levels.setValue(100.0)
        set_all = QPushButton("Set all levels")
        set_all.setObjectName("setAllLevels")
        set_all.clicked.connect(
            lambda: self.send("SetAllLevels", ua.Variant(float(self.all_levels.value()), ua.VariantType.Double))
        )
        levels.addWidget(self.all_levels)
        levels.addWidget(self.gate("SetAllLevels", set_all))
        levels.addStretch(1)
        layout.addLayout(levels)

    async def force(self, mode: int, seconds: float, reason: str | None = None) -> CallAnswer:
        """Force the cabinet on (1) or off (2) for `seconds`: the server's override, else held by this console."""
        reason = (reason if reason is not None else self.force_reason.text()).strip() or DEFAULT_REASON
        answer = await self.call(
            "Override",
            ua.Variant(int(mode), ua.VariantType.Int32),
            ua.Variant(seconds / 60.0, ua.VariantType.Double),
            ua.Variant(reason, ua.VariantType.String),
        )
        if answer.status != ua.StatusCodes.BadNoMatch:  # the server has the method: its answer is the answer
            self.server_override = True
            self.force_note.setText(FORCE_NOTE)
            if answer.ok and answer.outputs and isinstance(answer.outputs[0], datetime):
                until = answer.outputs[0]
                self._server_until[self.ref.path] = (until if until.tzinfo else until.replace(tzinfo=UTC), int(mode))
                self._show_remaining()
            return answer
        self.server_override = False
        self.force_note.setText(FORCE_NOTE_CONSOLE)
        answer = await self.call("SetMode", ua.Variant(int(mode), ua.VariantType.Int32))
        if answer.ok:
            self.keeper.hold(self.ref.path, seconds)
        return answer

    async def end_force(self) -> CallAnswer:
        """Back to automatic now (CancelOverride, or SetMode 0 on a server without overrides)."""
        if self.server_override is not False:
            answer = await self.call("CancelOverride")
            if answer.status != ua.StatusCodes.BadNoMatch:
                self._server_until.pop(self.ref.path, None)
                self._show_remaining()
                return answer
        self.keeper.cancel(self.ref.path)
        return await self.call("SetMode", ua.Variant(0, ua.VariantType.Int32))

    def _on_force_changed(self, path: str) -> None:
        if path == self.ref.path:
            self._show_remaining()

    def _show_remaining(self) -> None:
        held = self._server_until.get(self.ref.path)
        forced_mode: int | None = None
        if held is not None:
            until, forced_mode = held
            remaining: float | None = (until - datetime.now(UTC)).total_seconds()
            if remaining is not None and remaining <= 0:
                self._server_until.pop(self.ref.path, None)
                self._tick.stop()
                self.force_state.setText("back to automatic (ended by the server)")
                return
            held_by = "the server"
        else:
            remaining = self.keeper.remaining(self.ref.path)
            held_by = "this console"
        if remaining is None:
            self._tick.stop()
            released = self.keeper.last_release.get(self.ref.path)
            text = f"returned to automatic: {released.text}" if released is not None else "not forced from here"
            self.force_state.setText(text)
            return
        if not self._tick.isActive():
            self._tick.start()
        minutes, seconds = divmod(int(remaining + 0.5), 60)
        current = forced_mode if forced_mode is not None else self.values.get("Mode")
        mode = MODES.get(current, "forced") if isinstance(current, int) else "forced"
        self.force_state.setText(f"{mode}: back to automatic in {minutes}:{seconds:02d} (held by {held_by})")
