"""Security events: one hook for every producer (authenticator, transport, personal data), fanned out to sinks.

Producers call `SecurityEvents.emit(kind, details)` from any thread (the password check runs in worker threads);
the event is handed to the event loop, rate-limited per (kind, client) so that a flood of refused attempts cannot
flood the journal, and given to every sink: the historian's event journal (`journal_sink`) and the OPC UA event
emitter of the server. Details never hold a password or a reporter's contact: producers do not put them there,
and `scrub` drops any key that looks like a secret anyway.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from scada.model import utcnow

log = logging.getLogger(__name__)

SOURCE = "Security"
EVENT_TYPE = "SecurityEvent"
SECRET_KEYS = frozenset({"password", "secret", "contact", "reporter_contact", "private_key", "plaintext"})

SEVERITY: dict[str, int] = {
    "login_succeeded": 100,
    "login_failed": 500,
    "login_locked_out": 700,
    "login_refused_locked": 600,
    "certificate_refused": 600,  # a user certificate no user holds
    "login_refused_insecure_channel": 600,
    "user_certificate_time_invalid": 500,
    "channel_refused": 600,  # an application certificate not trusted (or invalid) at OpenSecureChannel
    "access_denied": 500,  # a service refused to the session's user (anonymous write, read without the right)
    "personal_data_read": 300,
    "personal_data_refused": 600,
    "personal_data_purged": 200,
    "server_certificate_renewed": 300,
}
UNLIMITED = frozenset({"personal_data_read", "personal_data_refused", "personal_data_purged"})
"""Audit events never dropped by the rate limit (every access to personal data is journaled)."""
SUCCESSES = frozenset({"login_succeeded", "personal_data_read", "personal_data_purged", "server_certificate_renewed"})


@dataclass(frozen=True, slots=True)
class SecurityEvent:
    """One security event as the sinks receive it."""

    kind: str
    ts: datetime
    severity: int
    message: str
    user: str | None
    client: str | None
    details: Mapping[str, Any] = field(default_factory=dict)

    @property
    def success(self) -> bool:
        """False for refusals and failures (OPC UA audit events' Status)."""
        return self.kind in SUCCESSES


class JournalLike(Protocol):
    """The historian's record_event (historian.service.Historian)."""

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


Sink = Callable[[SecurityEvent], Any]


def scrub(details: Mapping[str, Any]) -> dict[str, Any]:
    """The details without any key naming a secret, values made JSON-friendly (str for unknown types)."""
    clean: dict[str, Any] = {}
    for key, value in details.items():
        if key.lower() in SECRET_KEYS or "password" in key.lower():
            continue
        clean[key] = value if isinstance(value, str | int | float | bool | type(None)) else str(value)
    return clean


def describe(kind: str, details: Mapping[str, Any]) -> str:
    """A one-line message for an event."""
    who = details.get("username") or details.get("user") or "anonymous"
    where = details.get("client")
    text = f"{kind.replace('_', ' ')}: {who}"
    if details.get("incident"):
        text += f" incident {details['incident']}"
    if details.get("service"):
        text += f" {details['service']}"
    if details.get("reason"):
        text += f" ({details['reason']})"
    if where:
        text += f" from {where}"
    return text


def journal_sink(journal: JournalLike) -> Sink:
    """A sink writing each event to the historian's event journal (source "Security", type "SecurityEvent")."""

    def sink(event: SecurityEvent) -> None:
        journal.record_event(
            source=SOURCE,
            event_type=EVENT_TYPE,
            message=event.message,
            severity=event.severity,
            ts=event.ts,
            state=event.kind,
            user=event.user,
            data={**event.details, "client": event.client},
        )

    return sink


class SecurityEvents:
    """The security event hook: thread-safe, rate-limited per (kind, client), fanned out to sinks on the loop."""

    def __init__(
        self,
        *,
        clock: Callable[[], datetime] = utcnow,
        per_minute: int = 20,
        loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        self.clock = clock
        self.per_minute = per_minute
        self.sinks: list[Sink] = []
        self._loop = loop
        self._windows: dict[tuple[str, str | None], tuple[float, int, int]] = {}  # start, emitted, suppressed
        self._lock = threading.Lock()
        self._tasks: set[asyncio.Future[Any]] = set()

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        """The loop the sinks run on (set when the server starts)."""
        self._loop = loop

    def add_sink(self, sink: Sink) -> None:
        """Give every later event to `sink` too (a function, or a coroutine function)."""
        self.sinks.append(sink)

    def __call__(self, kind: str, details: Mapping[str, Any]) -> None:
        """The hook producers call (Authenticator.on_security_event and the like)."""
        self.emit(kind, details)

    def emit(self, kind: str, details: Mapping[str, Any]) -> None:
        """Record one event from any thread; dropped (and counted) beyond `per_minute` per (kind, client)."""
        clean = scrub(details)
        client = clean.get("client")
        suppressed = self._admit(kind, client if isinstance(client, str) else None)
        if suppressed is None:
            return
        if suppressed:
            clean["suppressed_before"] = suppressed
        user = clean.get("username") or clean.get("user")
        event = SecurityEvent(
            kind=kind,
            ts=self.clock(),
            severity=SEVERITY.get(kind, 500),
            message=describe(kind, clean),
            user=user if isinstance(user, str) else None,
            client=client if isinstance(client, str) else None,
            details=clean,
        )
        loop = self._loop
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if loop is None or running is loop:
            self._dispatch(event)
        elif not loop.is_closed():
            loop.call_soon_threadsafe(self._dispatch, event)

    def _admit(self, kind: str, client: str | None) -> int | None:
        """None to drop; else how many events of this key were dropped since the last one let through."""
        if kind in UNLIMITED:
            return 0
        now = time.monotonic()
        key = (kind, client)
        with self._lock:
            start, emitted, suppressed = self._windows.get(key, (now, 0, 0))
            if now - start >= 60.0:
                start, emitted = now, 0
            if emitted >= self.per_minute:
                self._windows[key] = (start, emitted, suppressed + 1)
                return None
            self._windows[key] = (start, emitted + 1, 0)
            if len(self._windows) > 10_000:
                self._windows = {k: v for k, v in self._windows.items() if now - v[0] < 60.0}
            return suppressed

    def _dispatch(self, event: SecurityEvent) -> None:
        for sink in self.sinks:
            try:
                result = sink(event)
            except Exception:
                log.exception("security event sink %r failed on %s", sink, event.kind)
                continue
            if asyncio.iscoroutine(result):
                task = asyncio.ensure_future(result)
                self._tasks.add(task)
                task.add_done_callback(self._done)

    def _done(self, task: asyncio.Future[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("security event sink failed: %r", task.exception())

    async def drain(self) -> None:
        """Wait for the sinks' pending coroutines (at stop)."""
        if self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
