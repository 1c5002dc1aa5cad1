"""The incident's chronicle: timeline entries, their events in the journal (historian), the incident row.

Each step is appended to the incident's timeline with its time since the report and journaled at once as an
event (source "Incidents/<id>", event_type IncidentEvent, state = the step); the incident row (with the whole
timeline and the contact's ciphertext) is upserted at most once per event-loop iteration, and the listeners (the
address space) are told at the same time. Incident ids are INC-<local date>-<daily sequence>.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping, Sequence
from datetime import date, datetime
from typing import Any, Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from scada.incidents.records import ActionRecord, IncidentRecord, iso, seconds_between

log = logging.getLogger(__name__)

EVENT_TYPE = "IncidentEvent"
STEP_SEVERITY = 300  # timeline events; failures and the notification carry their own

Listener = Callable[[IncidentRecord], None]


class IncidentJournal(Protocol):
    """What the service writes to the historian (historian.service.Historian satisfies it)."""

    def record_event(
        self,
        *,
        source: str,
        event_type: str,
        message: str = "",
        severity: int = 500,
        ts: datetime | None = None,
        state: str | None = None,
        user: str | None = None,
        data: Mapping[str, Any] | None = None,
    ) -> None:
        """Queue one event (never blocks)."""
        ...

    def upsert_incident(
        self,
        incident_id: str,
        *,
        kind: str,
        lat: float,
        lon: float,
        created: datetime,
        description: str = "",
        contact: bytes | None = None,
        status: str = "open",
        closed: datetime | None = None,
        timeline: Sequence[Mapping[str, Any]] = (),
        updated: datetime | None = None,
    ) -> None:
        """Queue the current state of an incident row (never blocks)."""
        ...


class IncidentIds:
    """Ids INC-<local date>-<daily sequence>; `first_sequence(day)` gives the highest already used that day."""

    def __init__(self, timezone: str, first_sequence: Callable[[date], int] | None = None) -> None:
        try:
            self._tz = ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError):
            log.warning("unknown time zone %r: incident ids use UTC dates", timezone)
            self._tz = ZoneInfo("UTC")
        self._first = first_sequence
        self._day: date | None = None
        self._sequence = 0

    def next(self, moment: datetime, taken: Callable[[str], bool]) -> str:
        """A new id for an incident reported at `moment`."""
        day = moment.astimezone(self._tz).date()
        if day != self._day:
            self._day = day
            self._sequence = self._first(day) if self._first is not None else 0
        while True:
            self._sequence += 1
            incident_id = f"INC-{day:%Y%m%d}-{self._sequence:04d}"
            if not taken(incident_id):
                return incident_id


class Chronicle:
    """Writes timeline steps, journal events and coalesced incident rows; tells the listeners."""

    def __init__(
        self,
        journal: IncidentJournal | None,
        clock: Callable[[], datetime],
        lookup: Callable[[str], IncidentRecord | None],
    ) -> None:
        self._journal = journal
        self._clock = clock
        self._lookup = lookup
        self.listeners: list[Listener] = []
        self._dirty: set[str] = set()
        self._flush_scheduled = False

    def step(
        self,
        record: IncidentRecord,
        step: str,
        user: str | None,
        text: str,
        *,
        action: ActionRecord | None = None,
        severity: int = STEP_SEVERITY,
        at: datetime | None = None,
    ) -> None:
        """One timeline entry, journaled as an event."""
        ts = at or self._clock()
        entry: dict[str, Any] = {
            "ts": iso(ts),
            "t": seconds_between(record.reported_at, ts),
            "step": step,
            "user": user,
            "text": text,
        }
        if action is not None:
            entry["action"] = action.id
            entry["device"] = action.device_id
            if action.status is not None:
                entry["status"] = action.status
        record.timeline.append(entry)
        if self._journal is not None:
            try:
                self._journal.record_event(
                    source=f"Incidents/{record.id}",
                    event_type=EVENT_TYPE,
                    message=text,
                    severity=severity,
                    ts=ts,
                    state=step,
                    user=user,
                    data={k: v for k, v in entry.items() if k not in ("ts", "text", "user", "step")},
                )
            except Exception:
                log.exception("journal of incident %s failed", record.id)
        self.touch(record)

    def touch(self, record: IncidentRecord) -> None:
        """Mark the incident changed; the row and the listeners are updated once per loop iteration."""
        self._dirty.add(record.id)
        if not self._flush_scheduled:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self.flush)

    def flush(self) -> None:
        """Upsert the rows of the changed incidents and tell the listeners, now."""
        self._flush_scheduled = False
        dirty, self._dirty = self._dirty, set()
        for incident_id in dirty:
            record = self._lookup(incident_id)
            if record is None:
                continue
            if self._journal is not None:
                try:
                    self._journal.upsert_incident(
                        record.id,
                        kind=record.kind,
                        lat=record.lat,
                        lon=record.lon,
                        created=record.reported_at,
                        description=record.description,
                        contact=record.contact,
                        status="closed" if record.status == "closed" else "open",
                        closed=record.closed_at,
                        timeline=list(record.timeline),
                        updated=self._clock(),
                    )
                except Exception:
                    log.exception("journal of incident %s failed", record.id)
            for listener in self.listeners:
                try:
                    listener(record)
                except Exception:
                    log.exception("incident listener %r failed", listener)
