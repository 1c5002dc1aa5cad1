"""The Part 9 state machine of one condition: Enabled, Active, Acked, Confirmed, Shelving, Suppressed, Retain.

A ConditionState changes only through its methods; a method that is not allowed in the current state raises an
AlarmError whose `.status` is the Part 9 status code the Acknowledge/Confirm/... method call answers with.
Standard library only (status codes as integers).
"""

from __future__ import annotations

from collections import deque
from datetime import datetime, timedelta
from typing import Any

from scada.alarms.definitions import AlarmKind
from scada.alarms.shelving import Shelving, transition_name
from scada.model import CommandError, Quality

# Part 4/9 status codes (values of asyncua.ua.StatusCodes).
BAD_EVENT_ID_UNKNOWN = 0x809A0000
BAD_CONDITION_ALREADY_DISABLED = 0x80980000
BAD_CONDITION_DISABLED = 0x80990000
BAD_CONDITION_ALREADY_ENABLED = 0x80CC0000
BAD_CONDITION_BRANCH_ALREADY_ACKED = 0x80CF0000
BAD_CONDITION_BRANCH_ALREADY_CONFIRMED = 0x80D00000
BAD_CONDITION_ALREADY_SHELVED = 0x80D10000
BAD_CONDITION_NOT_SHELVED = 0x80D20000
BAD_SHELVING_TIME_OUT_OF_RANGE = 0x80D30000

MAX_EVENT_IDS = 64
"""How many recent EventIds of a condition are kept to check the EventId argument of method calls."""


class AlarmError(CommandError):
    """A condition method is not allowed in the condition's current state."""


class UnknownConditionError(AlarmError):
    """No condition has that id."""

    status = Quality.BAD_NODE_ID_UNKNOWN


class EventIdUnknownError(AlarmError):
    """The EventId does not identify an event of this condition (or of its current activation)."""

    status = BAD_EVENT_ID_UNKNOWN


class AlreadyAckedError(AlarmError):
    """Acknowledge on an acknowledged condition."""

    status = BAD_CONDITION_BRANCH_ALREADY_ACKED


class AlreadyConfirmedError(AlarmError):
    """Confirm on a condition that is not waiting for confirmation."""

    status = BAD_CONDITION_BRANCH_ALREADY_CONFIRMED


class ConditionDisabledError(AlarmError):
    """The condition is disabled."""

    status = BAD_CONDITION_DISABLED


class AlreadyEnabledError(AlarmError):
    """Enable on an enabled condition."""

    status = BAD_CONDITION_ALREADY_ENABLED


class AlreadyDisabledError(AlarmError):
    """Disable on a disabled condition."""

    status = BAD_CONDITION_ALREADY_DISABLED


class AlreadyShelvedError(AlarmError):
    """The condition is already in the shelving state asked for."""

    status = BAD_CONDITION_ALREADY_SHELVED


class NotShelvedError(AlarmError):
    """Unshelve on a condition that is not shelved."""

    status = BAD_CONDITION_NOT_SHELVED


class ShelvingTimeError(AlarmError):
    """The shelving time is not positive or longer than MaxTimeShelved."""

    status = BAD_SHELVING_TIME_OUT_OF_RANGE


class ConditionState:
    """One condition (a device x an alarm kind): its Part 9 states, texts and the EventIds it was reported with."""

    __slots__ = (
        "acked",
        "acked_time",
        "activation",
        "active",
        "active_time",
        "comment",
        "comment_time",
        "confirmed",
        "confirmed_time",
        "device_id",
        "district",
        "enabled",
        "enabled_time",
        "event_ids",
        "input_tag",
        "kind",
        "label",
        "last_transition",
        "message",
        "parent",
        "path",
        "quality",
        "quality_time",
        "revision",
        "severity",
        "shelving",
        "shelving_time",
        "source_path",
        "suppressed",
        "suppressed_time",
        "time",
        "unshelve_at",
        "user",
        "value",
    )

    def __init__(
        self,
        kind: AlarmKind,
        *,
        device_id: str,
        source_path: str,
        label: str,
        district: str,
        severity: int,
        now: datetime,
        parent: str | None = None,
    ) -> None:
        self.kind = kind
        self.device_id = device_id
        self.source_path = source_path
        self.path = f"{source_path}/Alarms/{kind.condition}"
        """The condition's id: the string of its NodeId (ns=<city>;s=<path>)."""
        self.input_tag = f"{source_path}/{kind.variable}"
        self.label = label
        self.district = district
        self.parent = parent  # the cabinet whose flood alarms suppress this one (lamps), else None
        self.severity = severity
        self.enabled = True
        self.active = False
        self.acked = True
        self.confirmed = True
        self.suppressed = False
        self.shelving = Shelving.UNSHELVED
        self.last_transition: str | None = None
        self.unshelve_at: datetime | None = None
        self.quality: int = Quality.GOOD
        self.comment = ""
        self.user: str | None = None
        self.value: Any = None
        self.message = kind.message(False, label, "")
        self.enabled_time = self.active_time = self.acked_time = self.confirmed_time = now
        self.suppressed_time = self.shelving_time = self.quality_time = self.comment_time = self.time = now
        self.activation = 0
        self.event_ids: deque[tuple[bytes, int]] = deque(maxlen=MAX_EVENT_IDS)
        self.revision = 0

    def __repr__(self) -> str:
        return (
            f"ConditionState({self.path}, enabled={self.enabled}, active={self.active}, acked={self.acked}, "
            f"confirmed={self.confirmed}, shelving={self.shelving.value}, suppressed={self.suppressed})"
        )

    # -- derived states ------------------------------------------------------------------------------------

    @property
    def retain(self) -> bool:
        """Part 9 Retain: worth showing (enabled, not suppressed by design, and active, unacked or unconfirmed)."""
        return self.enabled and not self.suppressed and (self.active or not self.acked or not self.confirmed)

    @property
    def shelved(self) -> bool:
        """True when timed or one-shot shelved."""
        return self.shelving is not Shelving.UNSHELVED

    def unshelve_in(self, now: datetime) -> float:
        """UnshelveTime: milliseconds until the shelving ends (0 when unshelved)."""
        if self.unshelve_at is None or not self.shelved:
            return 0.0
        return max(0.0, (self.unshelve_at - now).total_seconds() * 1000.0)

    # -- EventIds --------------------------------------------------------------------------------------------

    def note_event(self, event_id: bytes) -> None:
        """Remember the EventId of an event just reported for this condition."""
        self.event_ids.append((event_id, self.activation))

    def check_event(self, event_id: bytes | None, *, current_activation: bool) -> None:
        """EventIdUnknownError unless `event_id` is one of this condition's recent events (None: not checked)."""
        if event_id is None:
            return
        for known, activation in self.event_ids:
            if known == event_id:
                if current_activation and activation != self.activation:
                    break
                return
        raise EventIdUnknownError(f"EventId {event_id.hex()} is not an event of {self.path} to act upon")

    # -- value-driven transitions --------------------------------------------------------------------------

    def _changed(self, now: datetime) -> None:
        self.time = now
        self.revision += 1

    def set_active(self, active: bool, now: datetime, value: Any) -> None:
        """Activate (a new activation: unacknowledged) or return to normal."""
        self.value = value
        self.active = active
        self.active_time = now
        if active:
            self.activation += 1
            self.acked, self.acked_time = False, now
            self.confirmed, self.confirmed_time = True, now
        self.message = self.kind.message(active, self.label, value)
        self._changed(now)

    def set_quality(self, quality: int, now: datetime) -> None:
        """The status of the watched value changed."""
        self.quality = quality
        self.quality_time = now
        self._changed(now)

    def set_suppressed(self, suppressed: bool, now: datetime) -> None:
        """Suppressed by design (flood) or released."""
        self.suppressed = suppressed
        self.suppressed_time = now
        self._changed(now)

    def reset_unannounced(self, now: datetime) -> None:
        """Back to normal while suppressed: nobody saw this activation, so it needs no acknowledgement."""
        if not self.acked:
            self.acked, self.acked_time = True, now
        if not self.confirmed:
            self.confirmed, self.confirmed_time = True, now
        self._changed(now)

    def set_message(self, message: str, now: datetime) -> None:
        """Change the message (e.g. the count of suppressed alarms of a flood parent)."""
        self.message = message
        self._changed(now)

    # -- operator transitions ------------------------------------------------------------------------------

    def _require_enabled(self) -> None:
        if not self.enabled:
            raise ConditionDisabledError(f"{self.path} is disabled")

    def _set_comment(self, comment: str | None, user: str | None, now: datetime) -> None:
        if comment:
            self.comment, self.comment_time = comment, now
        self.user = user

    def acknowledge(
        self, event_id: bytes | None, comment: str | None, user: str | None, now: datetime, *, confirm: bool
    ) -> None:
        """Acknowledge; with `confirm`, the condition then waits for Confirm."""
        self._require_enabled()
        self.check_event(event_id, current_activation=True)
        if self.acked:
            raise AlreadyAckedError(f"{self.path} is already acknowledged")
        self.acked, self.acked_time = True, now
        if confirm:
            self.confirmed, self.confirmed_time = False, now
        self._set_comment(comment, user, now)
        self._changed(now)

    def confirm(self, event_id: bytes | None, comment: str | None, user: str | None, now: datetime) -> None:
        """Confirm an acknowledged condition."""
        self._require_enabled()
        self.check_event(event_id, current_activation=True)
        if self.confirmed:
            raise AlreadyConfirmedError(f"{self.path} is not waiting for confirmation")
        self.confirmed, self.confirmed_time = True, now
        self._set_comment(comment, user, now)
        self._changed(now)

    def add_comment(self, event_id: bytes | None, comment: str | None, user: str | None, now: datetime) -> None:
        """Attach a comment (any recent EventId of the condition)."""
        self._require_enabled()
        self.check_event(event_id, current_activation=False)
        self.comment, self.comment_time = comment or "", now
        self.user = user
        self._changed(now)

    def enable(self, now: datetime) -> None:
        """Enable (the engine then evaluates the watched value again)."""
        if self.enabled:
            raise AlreadyEnabledError(f"{self.path} is already enabled")
        self.enabled, self.enabled_time = True, now
        self._changed(now)

    def disable(self, now: datetime) -> None:
        """Disable: the process is ignored; the condition returns to normal, acknowledged and confirmed."""
        if not self.enabled:
            raise AlreadyDisabledError(f"{self.path} is already disabled")
        self.enabled, self.enabled_time = False, now
        if self.active:
            self.active, self.active_time = False, now
            self.message = self.kind.message(False, self.label, self.value)
        self.acked = self.confirmed = True
        self.acked_time = self.confirmed_time = now
        self._changed(now)

    def _shelve(self, state: Shelving, now: datetime, until: datetime | None) -> None:
        self.last_transition = transition_name(self.shelving, state)
        self.shelving, self.shelving_time, self.unshelve_at = state, now, until
        self._changed(now)

    def timed_shelve(self, seconds: float, max_seconds: float, now: datetime) -> None:
        """Shelve for `seconds` (0 < seconds <= max_seconds)."""
        self._require_enabled()
        if self.shelving is Shelving.TIMED:
            raise AlreadyShelvedError(f"{self.path} is already timed shelved")
        if not 0.0 < seconds <= max_seconds:
            raise ShelvingTimeError(f"shelving time {seconds:g} s is outside 0..{max_seconds:g} s (MaxTimeShelved)")
        self._shelve(Shelving.TIMED, now, now + timedelta(seconds=seconds))

    def one_shot_shelve(self, max_seconds: float, now: datetime) -> None:
        """Shelve until the alarm returns to normal (at most MaxTimeShelved)."""
        self._require_enabled()
        if self.shelving is Shelving.ONE_SHOT:
            raise AlreadyShelvedError(f"{self.path} is already one-shot shelved")
        self._shelve(Shelving.ONE_SHOT, now, now + timedelta(seconds=max_seconds))

    def unshelve(self, now: datetime) -> None:
        """End the shelving (the Unshelve method)."""
        self._require_enabled()
        if self.shelving is Shelving.UNSHELVED:
            raise NotShelvedError(f"{self.path} is not shelved")
        self.end_shelving(now)

    def end_shelving(self, now: datetime) -> None:
        """End the shelving without checks (time expired, one-shot alarm cleared)."""
        if self.shelving is not Shelving.UNSHELVED:
            self._shelve(Shelving.UNSHELVED, now, None)
