"""The console's view of the server's alarms: one Part 9 event subscription, the current conditions, their methods.

`AlarmFeed` subscribes to the events of the Server object on every session (an event filter selecting the Part 9
fields the views need, ConditionId included) and asks for a ConditionRefresh, so that after a (re)connection the
model holds exactly the retained conditions of the server: those not sent again between RefreshStart and
RefreshEnd are dropped. Every later event updates one condition (keyed by its ConditionId's path); an event whose
Retain is false removes it. Acknowledge and shelving are the standard methods of Part 9 called on the condition
(Acknowledge with the EventId of its latest event) and on its ShelvingState, each answered with the server's status.
The history of an alarm is a HistoryRead of events on its source (the journal).

Nothing here draws: the widgets (hmi.alarms) follow the `changed` / `raised` signals.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from asyncua import ua
from PyQt6.QtCore import QObject, QTimer, pyqtSignal

from hmi.client import CallAnswer, ConsoleClient, ConsoleError
from hmi.tasks import spawn

log = logging.getLogger(__name__)

_O = ua.ObjectIds


def _ns0(identifier: int) -> ua.NodeId:
    """A standard NodeId (asyncua's annotations want its own int subclass)."""
    return ua.NodeId(cast(Any, identifier))


SERVER = _ns0(_O.Server)
CONDITION_TYPE = _ns0(_O.ConditionType)
REFRESH = _ns0(_O.ConditionType_ConditionRefresh)
REFRESH_START = _ns0(_O.RefreshStartEventType)
REFRESH_END = _ns0(_O.RefreshEndEventType)
ACKNOWLEDGE = _ns0(_O.AcknowledgeableConditionType_Acknowledge)
CONFIRM = _ns0(_O.AcknowledgeableConditionType_Confirm)
TIMED_SHELVE = _ns0(_O.ShelvedStateMachineType_TimedShelve2)
ONE_SHOT_SHELVE = _ns0(_O.ShelvedStateMachineType_OneShotShelve2)
UNSHELVE = _ns0(_O.ShelvedStateMachineType_Unshelve2)
EMIT_MS = 100
ALARM_TARGET = "alarm"
"""The Permissions target of the alarm methods ("Acknowledge", "Shelve")."""

EVENT_FIELDS: tuple[str, ...] = (
    "EventId",
    "EventType",
    "SourceNode",
    "SourceName",
    "Time",
    "Message",
    "Severity",
    "ConditionName",
    "Retain",
    "EnabledState/Id",
    "ActiveState/Id",
    "AckedState/Id",
    "ConfirmedState/Id",
    "SuppressedState/Id",
    "ShelvingState/CurrentState",
    "ShelvingState/UnshelveTime",
    "Comment",
    "ClientUserId",
)
HISTORY_FIELDS: tuple[str, ...] = ("Time", "ConditionName", "State", "Message", "Severity", "User", "Comment")
"""What the alarm history shows of each journal event (State: raised, acknowledged, shelved, ...)."""


def event_filter() -> ua.EventFilter:
    """The select clauses of the alarm subscription: EVENT_FIELDS, then the ConditionId (the condition's NodeId)."""
    evfilter = ua.EventFilter()
    evfilter.SelectClauses = [_operand(name) for name in EVENT_FIELDS]
    condition_id = ua.SimpleAttributeOperand()
    condition_id.TypeDefinitionId = CONDITION_TYPE
    condition_id.BrowsePath = []
    condition_id.AttributeId = ua.AttributeIds.NodeId
    evfilter.SelectClauses.append(condition_id)
    return evfilter


def _operand(path: str) -> ua.SimpleAttributeOperand:
    operand = ua.SimpleAttributeOperand()
    operand.TypeDefinitionId = _ns0(_O.BaseEventType)
    operand.BrowsePath = [ua.QualifiedName(part, 0) for part in path.split("/")]
    operand.AttributeId = ua.AttributeIds.Value
    return operand


@dataclass(slots=True)
class AlarmRecord:
    """One condition as its latest event describes it."""

    key: str  # the ConditionId's path, e.g. "Lighting/CAB-0002/L-002002/Alarms/LampFailure"
    condition_id: ua.NodeId
    source_path: str  # the device object's path (SourceNode)
    source_name: str  # the device id
    kind: str  # ConditionName, e.g. "LampFailure"
    message: str
    severity: int
    time: datetime | None
    active: bool
    acked: bool
    confirmed: bool
    enabled: bool
    suppressed: bool
    shelving: str  # "Unshelved", "Timed Shelved", "One Shot Shelved" (the server's CurrentState text)
    unshelve_ms: float
    comment: str
    user: str
    event_id: bytes
    district: str = ""

    @property
    def shelved(self) -> bool:
        """True while the condition is shelved (timed or one-shot)."""
        return bool(self.shelving) and not self.shelving.replace(" ", "").lower().startswith("unshelved")

    @property
    def needs_attention(self) -> bool:
        """Unacknowledged and neither shelved nor suppressed: what the banner counts."""
        return not self.acked and not self.shelved and not self.suppressed


def record_of(event: Any, ns: int, district_of: Callable[[str], str]) -> AlarmRecord | None:
    """The record of a condition event (None for an event that is not a condition's)."""
    condition_id = getattr(event, "NodeId", None)
    if not isinstance(condition_id, ua.NodeId) or not isinstance(condition_id.Identifier, str):
        return None
    source = getattr(event, "SourceNode", None)
    source_path = str(source.Identifier) if isinstance(source, ua.NodeId) and source.NamespaceIndex == ns else ""
    name = str(getattr(event, "SourceName", "") or "")
    shelving = getattr(event, "ShelvingState/CurrentState", None)
    return AlarmRecord(
        key=str(condition_id.Identifier),
        condition_id=condition_id,
        source_path=source_path,
        source_name=name,
        kind=str(getattr(event, "ConditionName", "") or ""),
        message=_text(getattr(event, "Message", None)),
        severity=int(getattr(event, "Severity", 0) or 0),
        time=getattr(event, "Time", None),
        active=bool(getattr(event, "ActiveState/Id", False)),
        acked=bool(getattr(event, "AckedState/Id", True)),
        confirmed=bool(getattr(event, "ConfirmedState/Id", True)),
        enabled=getattr(event, "EnabledState/Id", True) is not False,
        suppressed=bool(getattr(event, "SuppressedState/Id", False)),
        shelving=_text(shelving) or "Unshelved",
        unshelve_ms=float(getattr(event, "ShelvingState/UnshelveTime", 0.0) or 0.0),
        comment=_text(getattr(event, "Comment", None)),
        user=str(getattr(event, "ClientUserId", "") or ""),
        event_id=bytes(getattr(event, "EventId", b"") or b""),
        district=district_of(name),
    )


def _text(value: Any) -> str:
    if isinstance(value, ua.LocalizedText):
        return value.Text or ""
    return "" if value is None else str(value)


class AlarmFeed(QObject):
    """The retained conditions of the server, kept current through events (restored after every reconnection)."""

    changed = pyqtSignal()
    """Some conditions changed, appeared or went (emitted once per batch of events)."""
    raised = pyqtSignal(object)
    """A condition newly became active and unacknowledged (AlarmRecord), live (not replayed by a refresh)."""
    refreshed = pyqtSignal()
    """A ConditionRefresh ended: the conditions are those of the server."""

    def __init__(self, client: ConsoleClient, district_of: Callable[[str], str] | None = None) -> None:
        super().__init__()
        self.client = client
        self.district_of = district_of or (lambda _device: "")
        self.records: dict[str, AlarmRecord] = {}
        self.events = 0
        """Condition events received."""
        self.refreshes = 0
        """ConditionRefresh cycles completed."""
        self.subscription_id: int | None = None
        self._subscription: Any = None
        self._refreshing: set[str] | None = None  # keys not yet sent again by the refresh under way
        self._shelving_ids: dict[str, ua.NodeId] = {}
        self._started = False
        self._emit_timer = QTimer(self)
        self._emit_timer.setSingleShot(True)
        self._emit_timer.setInterval(EMIT_MS)
        self._emit_timer.timeout.connect(self.changed.emit)

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Subscribe now (when connected) and again after every reconnection."""
        if self._started:
            return
        self._started = True
        self.client.session_ready.connect(self._on_session)
        if self.client.connected:
            await self.subscribe()

    def stop(self) -> None:
        """Stop following reconnections (the subscription ends with the session)."""
        if self._started:
            self._started = False
            self.client.session_ready.disconnect(self._on_session)

    def _on_session(self) -> None:
        spawn(self.subscribe(), name="alarm-subscribe")

    async def subscribe(self) -> None:
        """Create the event subscription on the current session and refresh the conditions."""
        try:
            session = self.client.session()
            opts = self.client.options
            self._subscription = await session.create_subscription(opts.publishing_ms, self)
            self.subscription_id = int(self._subscription.subscription_id)
            self._shelving_ids.clear()
            await self._subscription.subscribe_events(SERVER, evfilter=event_filter(), queuesize=10000)
            await self.refresh()
        except (ConsoleError, OSError, TimeoutError, ua.UaError) as exc:
            log.info("alarm subscription not created (%s): retried on reconnection", exc)

    async def refresh(self) -> CallAnswer:
        """ConditionRefresh of this subscription (the retained conditions are sent again)."""
        if self.subscription_id is None:
            return CallAnswer(ua.StatusCodes.BadNoSubscription)
        arg = ua.Variant(self.subscription_id, ua.VariantType.UInt32)
        return await self.client.call_node(CONDITION_TYPE, REFRESH, arg)

    # ------------------------------------------------------------------ events (asyncua's handler protocol)

    def event_notification(self, event: Any) -> None:
        """One event of the subscription (asyncua calls this in the loop's thread)."""
        event_type = getattr(event, "EventType", None)
        if event_type == REFRESH_START:
            self._refreshing = set(self.records)
            return
        if event_type == REFRESH_END:
            gone = self._refreshing or set()
            self._refreshing = None
            for key in gone:
                self.records.pop(key, None)
            self.refreshes += 1
            self._emit_timer.stop()
            self.changed.emit()
            self.refreshed.emit()
            return
        try:
            ns = self.client.ns
        except ConsoleError:
            return
        record = record_of(event, ns, self.district_of)
        if record is None:
            return
        self.events += 1
        replayed = self._refreshing is not None
        if replayed and self._refreshing is not None:
            self._refreshing.discard(record.key)
        before = self.records.get(record.key)
        if not getattr(event, "Retain", True):
            self.records.pop(record.key, None)
        else:
            self.records[record.key] = record
        newly = record.active and not record.acked and (before is None or before.acked or not before.active)
        if newly and not replayed:
            self.raised.emit(record)
        self._emit()

    def _emit(self) -> None:
        """Coalesce: a burst of events (a refresh, a flood) is one `changed` at most every EMIT_MS."""
        if not self._emit_timer.isActive():
            self._emit_timer.start()

    def flush(self) -> None:
        """Emit `changed` now if events are waiting for the coalescing timer (tests, screenshot scripts)."""
        if self._emit_timer.isActive():
            self._emit_timer.stop()
            self.changed.emit()

    def status_change_notification(self, status: Any) -> None:
        """The subscription's status changed (the console's own connection watch reacts to losses)."""
        log.info("alarm subscription status %s", status)

    # ------------------------------------------------------------------ queries

    def sorted_records(self) -> list[AlarmRecord]:
        """Every retained condition, most severe first, then newest first."""
        return sorted(self.records.values(), key=_rank)

    def attention(self) -> list[AlarmRecord]:
        """The unacknowledged conditions (not shelved, not suppressed), most severe first."""
        return [r for r in self.sorted_records() if r.needs_attention]

    def unacked_sources(self) -> set[str]:
        """Device ids with an active, unacknowledged condition (the map rings them)."""
        return {r.source_name for r in self.records.values() if r.active and r.needs_attention}

    # ------------------------------------------------------------------ methods

    async def acknowledge(self, key: str, comment: str) -> CallAnswer:
        """Acknowledge a condition (the EventId of its latest event) with a comment: the server's answer."""
        return await self._event_call(key, ACKNOWLEDGE, comment)

    async def confirm(self, key: str, comment: str) -> CallAnswer:
        """Confirm an acknowledged condition (the site asks for it after the return to normal): the answer."""
        return await self._event_call(key, CONFIRM, comment)

    async def _event_call(self, key: str, method: ua.NodeId, comment: str) -> CallAnswer:
        record = self.records.get(key)
        if record is None:
            return CallAnswer(ua.StatusCodes.BadNodeIdUnknown, message=f"no alarm {key}")
        return await self.client.call_node(
            record.condition_id,
            method,
            ua.Variant(record.event_id, ua.VariantType.ByteString),
            ua.Variant(ua.LocalizedText(comment), ua.VariantType.LocalizedText),
        )

    async def shelve(self, key: str, comment: str, duration_s: float | None) -> CallAnswer:
        """Timed shelve (`duration_s`) or one-shot shelve (None) with a comment: the server's answer."""
        text = ua.Variant(ua.LocalizedText(comment), ua.VariantType.LocalizedText)
        if duration_s is None:
            return await self._shelving_call(key, ONE_SHOT_SHELVE, text)
        ms = ua.Variant(float(duration_s) * 1000.0, ua.VariantType.Double)
        return await self._shelving_call(key, TIMED_SHELVE, ms, text)

    async def unshelve(self, key: str, comment: str) -> CallAnswer:
        """Unshelve with a comment: the server's answer."""
        text = ua.Variant(ua.LocalizedText(comment), ua.VariantType.LocalizedText)
        return await self._shelving_call(key, UNSHELVE, text)

    async def _shelving_call(self, key: str, method: ua.NodeId, *args: ua.Variant) -> CallAnswer:
        record = self.records.get(key)
        if record is None:
            return CallAnswer(ua.StatusCodes.BadNodeIdUnknown, message=f"no alarm {key}")
        try:
            shelving = await self._shelving_id(record)
        except (ConsoleError, OSError, TimeoutError, ua.UaError) as exc:
            return CallAnswer(ua.StatusCodes.BadNodeIdUnknown, message=f"ShelvingState of {key}: {exc}")
        return await self.client.call_node(shelving, method, *args)

    async def _shelving_id(self, record: AlarmRecord) -> ua.NodeId:
        """The condition's ShelvingState (browsed once per session: browsing makes the condition's variables)."""
        found = self._shelving_ids.get(record.key)
        if found is None:
            node = await self.client.session().get_node(record.condition_id).get_child("0:ShelvingState")
            found = self._shelving_ids[record.key] = node.nodeid
        return found

    async def rights(self) -> tuple[bool | None, bool | None]:
        """May this user acknowledge, and shelve? The server's per-user UserExecutable of the standard Acknowledge
        and TimedShelve2 methods (None where it gives no answer: the server's own check still applies)."""
        answers = await self.client.read([ACKNOWLEDGE, TIMED_SHELVE], ua.AttributeIds.UserExecutable)
        return tuple(  # type: ignore[return-value]
            bool(dv.Value.Value)
            if (dv.StatusCode is None or dv.StatusCode.is_good())
            and dv.Value is not None
            and dv.Value.Value is not None
            else None
            for dv in answers
        )

    async def history(
        self, source_path: str, start: datetime, end: datetime, kind: str = "", max_events: int = 1000
    ) -> list[dict[str, Any]]:
        """The journal of a device's alarms between two times (HistoryRead of events), oldest first.

        Each event is a dict of HISTORY_FIELDS; `kind` keeps the events of one ConditionName. ConsoleError when the
        server refuses the read (no historian: BadHistoryOperationUnsupported).
        """
        evfilter = ua.EventFilter()
        evfilter.SelectClauses = [_operand(name) for name in HISTORY_FIELDS]
        details = ua.ReadEventDetails()
        details.StartTime = start
        details.EndTime = end
        details.NumValuesPerNode = max_events
        details.Filter = evfilter
        out: list[dict[str, Any]] = []
        events = await self.client.history_read(
            self.client.nodeid(source_path), details, f"alarm history of {source_path}", limit=max_events
        )
        for fields in events:
            values = [variant.Value for variant in fields.EventFields]
            row = dict(zip(HISTORY_FIELDS, values, strict=False))
            row["Message"] = _text(row.get("Message"))
            row["Comment"] = _text(row.get("Comment"))
            if not kind or row.get("ConditionName") == kind:
                out.append(row)
        return out[:max_events]


def _rank(record: AlarmRecord) -> tuple[int, float]:
    stamp = record.time.timestamp() if record.time is not None else 0.0
    return (-record.severity, -stamp)


def summary_line(records: Sequence[AlarmRecord]) -> str:
    """ "3 unacknowledged alarms" (the banner's count)."""
    count = len(records)
    return f"{count} unacknowledged alarm{'s' if count != 1 else ''}"
