"""Alarm transitions as journaled: one AlarmTransition per state change, and the adapter to the historian.

The engine calls a `journal` callback (never blocking) with every transition; `historian_journal(historian)`
turns a Historian (historian.service, duck-typed: anything with a `record_event(**fields)` method) into such a
callback, writing each transition to the historian's events table.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

log = logging.getLogger(__name__)

TRANSITIONS = (
    "raised",
    "cleared",
    "acknowledged",
    "confirmed",
    "commented",
    "shelved",
    "unshelved",
    "suppressed",
    "unsuppressed",
    "enabled",
    "disabled",
)
"""Every value of AlarmTransition.transition."""


@dataclass(frozen=True, slots=True)
class AlarmTransition:
    """One state change of one condition, with who caused it (None: the system) and the states after it."""

    ts: datetime  # when it happened (the value's source time for raised/cleared)
    source: str  # the device id
    path: str  # the device's NodeId path (SourceNode)
    condition: str  # ConditionName, e.g. "LampFailure"
    kind: str  # alarm kind key, e.g. "lamp_failure"
    event_type: str  # BrowseName of the OPC UA event type
    transition: str  # one of TRANSITIONS
    severity: int
    active: bool
    acked: bool
    confirmed: bool
    shelved: bool
    suppressed: bool
    user: str | None
    comment: str | None
    message: str
    detail: str = ""  # e.g. "timed 3600 s", "shelving time expired", "while suppressed: no acknowledgement needed"


Journal = Callable[[AlarmTransition], None]


class EventRecorder(Protocol):
    """What the historian offers for events (historian.service.Historian.record_event)."""

    def record_event(self, **fields: Any) -> None:
        """Queue one event row."""


def historian_journal(historian: EventRecorder) -> Journal:
    """A journal callback writing each transition as a row of the historian's events table."""

    def record(transition: AlarmTransition) -> None:
        historian.record_event(
            source=transition.path,
            event_type=transition.event_type,
            message=transition.message,
            severity=transition.severity,
            ts=transition.ts,
            condition=transition.condition,
            state=transition.transition,
            user=transition.user,
            comment=transition.comment,
            data={
                "device": transition.source,
                "kind": transition.kind,
                "active": transition.active,
                "acked": transition.acked,
                "confirmed": transition.confirmed,
                "shelved": transition.shelved,
                "suppressed": transition.suppressed,
                **({"detail": transition.detail} if transition.detail else {}),
            },
        )

    return record
