"""The state of an incident as the service keeps it: its actions, each action's timing, its timeline.

JSON views (`as_dict`) are what the address space shows (Actions, Timeline) and what the historian stores; they
never hold the reporter's contact (the record keeps only its ciphertext, outside every view).
"""

from __future__ import annotations

import asyncio
import enum
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from scada.incidents.planner import ActionKind, Command


class ActionState(enum.StrEnum):
    """Where an action stands."""

    PROPOSED = "proposed"  # waiting for an operator (or for the automatic execution)
    SENDING = "sending"  # the command is on its way to the device
    CONFIRMED = "confirmed"  # the device accepted it
    FAILED = "failed"  # the device refused it or could not be reached (status says which)
    CANCELLED = "cancelled"  # withdrawn by an operator; the device was restored


def iso(moment: datetime | None) -> str | None:
    """ISO 8601 text of a timestamp (None stays None)."""
    return None if moment is None else moment.isoformat()


def seconds_between(start: datetime, end: datetime | None) -> float | None:
    """end - start in seconds, rounded to the millisecond (None when end is None)."""
    return None if end is None else round((end - start).total_seconds(), 3)


@dataclass(slots=True, eq=False)
class ActionRecord:
    """One action of an incident's response, with its timing."""

    id: str
    kind: ActionKind
    device_id: str | None
    command: Command | None
    proposed_at: datetime
    distance_m: float | None = None
    state: ActionState = ActionState.PROPOSED
    sent_at: datetime | None = None
    confirmed_at: datetime | None = None
    failed_at: datetime | None = None
    cancelled_at: datetime | None = None
    status: int | None = None
    message: str = ""
    before: dict[str, Any] | None = None  # what the device showed or ran before the first send
    restore: dict[str, Any] | None = None  # the last restore step (cancel or close)
    severity: int = 0  # notification
    text: str = ""  # notification
    lock: asyncio.Lock = field(default_factory=asyncio.Lock, repr=False)

    @property
    def on_device(self) -> bool:
        """True for an action that commands a device (not the notification)."""
        return self.device_id is not None

    def as_dict(self, reported_at: datetime) -> dict[str, Any]:
        """JSON-able view, with seconds since the report for each step."""
        return {
            "id": self.id,
            "kind": self.kind.value,
            "device": self.device_id,
            "command": None if self.command is None else self.command.as_dict(),
            "distance_m": None if self.distance_m is None else round(self.distance_m, 1),
            "state": self.state.value,
            "status": self.status,
            "message": self.message,
            "text": self.text,
            "severity": self.severity,
            "proposed_at": iso(self.proposed_at),
            "sent_at": iso(self.sent_at),
            "confirmed_at": iso(self.confirmed_at),
            "failed_at": iso(self.failed_at),
            "cancelled_at": iso(self.cancelled_at),
            "confirm_s": seconds_between(reported_at, self.confirmed_at),
            "before": self.before,
            "restore": self.restore,
        }


@dataclass(slots=True, eq=False)
class IncidentRecord:
    """An incident: what was reported, the actions of its response, the timeline of every step."""

    id: str
    kind: str
    lat: float
    lon: float
    description: str
    reported_by: str | None
    reported_at: datetime
    auto_execute: bool
    contact: bytes | None = None  # ciphertext only (scada.incidents.vault)
    status: str = "open"  # open, closing, closed
    closed_at: datetime | None = None
    closed_by: str | None = None
    responded_at: datetime | None = None  # when every device action was first confirmed
    actions: dict[str, ActionRecord] = field(default_factory=dict)
    timeline: list[dict[str, Any]] = field(default_factory=list)
    running: set[asyncio.Task[None]] = field(default_factory=set, repr=False)
    settled: asyncio.Event = field(default_factory=asyncio.Event, repr=False)

    def device_actions(self) -> list[ActionRecord]:
        """The actions that command a device."""
        return [action for action in self.actions.values() if action.on_device]

    def all_confirmed(self) -> datetime | None:
        """When the last device action was confirmed, if every (not cancelled) one is confirmed now; else None."""
        live = [a for a in self.device_actions() if a.state is not ActionState.CANCELLED]
        if not live or any(a.state is not ActionState.CONFIRMED or a.confirmed_at is None for a in live):
            return None
        return max(a.confirmed_at for a in live if a.confirmed_at is not None)

    @property
    def response_seconds(self) -> float | None:
        """Seconds from the report to every device action confirmed (the first time they all were), else None."""
        return seconds_between(self.reported_at, self.responded_at)

    @property
    def failed(self) -> list[ActionRecord]:
        """Device actions that failed."""
        return [a for a in self.device_actions() if a.state is ActionState.FAILED]

    def actions_view(self) -> list[dict[str, Any]]:
        """Every action as JSON-able data, in proposal order."""
        return [action.as_dict(self.reported_at) for action in self.actions.values()]

    def summary(self) -> dict[str, Any]:
        """The incident as JSON-able data (no contact)."""
        return {
            "id": self.id,
            "kind": self.kind,
            "lat": self.lat,
            "lon": self.lon,
            "description": self.description,
            "reported_by": self.reported_by,
            "reported_at": iso(self.reported_at),
            "auto_execute": self.auto_execute,
            "status": self.status,
            "closed_at": iso(self.closed_at),
            "closed_by": self.closed_by,
            "response_s": self.response_seconds,
            "actions": self.actions_view(),
        }
