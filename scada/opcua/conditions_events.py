"""Condition events as asyncua's event monitored items consume them: field values by browse path, fast.

asyncua's MonitoredItemService evaluates an event for a monitored item with `event.emitting_node` (the notifier
it is reported through), `where_clause_evaluator.eval(event)` (getattr of the first browse name of each operand)
and `event.to_event_fields(select_clauses)`. `ConditionEvent` duck-types that: its fields are two dicts of
ready-made Variants keyed by the browse path joined with "/" ("ActiveState/Id"; "NodeId" is the ConditionId,
selected with an empty browse path and AttributeId NodeId): the condition's constant fields, shared by all its
events, and the fields of this event. A select clause that names no field of the event answers a null Variant.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, cast

from asyncua import ua

from scada.alarms.definitions import AlarmKind, ConditionClass
from scada.alarms.shelving import Shelving
from scada.alarms.state import ConditionState
from scada.opcua.nodes import ns0, scalar_variant, status_code

_VT = ua.VariantType
NULL = ua.Variant()

SERVER_NODE = ns0(ua.ObjectIds.Server)
CONDITION_TYPE = ns0(ua.ObjectIds.ConditionType)
EVENT_TYPES: dict[str, ua.NodeId] = {
    "OffNormalAlarmType": ns0(ua.ObjectIds.OffNormalAlarmType),
    "SystemOffNormalAlarmType": ns0(ua.ObjectIds.SystemOffNormalAlarmType),
}
CONDITION_CLASSES: dict[ConditionClass, tuple[ua.NodeId, str]] = {
    ConditionClass.MAINTENANCE: (ns0(ua.ObjectIds.MaintenanceConditionClassType), "Maintenance"),
    ConditionClass.SYSTEM: (ns0(ua.ObjectIds.SystemConditionClassType), "System"),
    ConditionClass.PROCESS: (ns0(ua.ObjectIds.ProcessConditionClassType), "Process"),
    ConditionClass.SAFETY: (ns0(ua.ObjectIds.SafetyConditionClassType), "Safety"),
}
SHELVING_STATES: dict[Shelving, ua.NodeId] = {
    Shelving.UNSHELVED: ns0(ua.ObjectIds.ShelvedStateMachineType_Unshelved),
    Shelving.TIMED: ns0(ua.ObjectIds.ShelvedStateMachineType_TimedShelved),
    Shelving.ONE_SHOT: ns0(ua.ObjectIds.ShelvedStateMachineType_OneShotShelved),
}
SHELVING_TRANSITIONS: dict[str, ua.NodeId] = {
    name: ns0(getattr(ua.ObjectIds, f"ShelvedStateMachineType_{name}"))
    for name in (
        "UnshelvedToTimedShelved",
        "UnshelvedToOneShotShelved",
        "TimedShelvedToUnshelved",
        "TimedShelvedToOneShotShelved",
        "OneShotShelvedToUnshelved",
        "OneShotShelvedToTimedShelved",
    )
}
REFRESH_START = ns0(ua.ObjectIds.RefreshStartEventType)
REFRESH_END = ns0(ua.ObjectIds.RefreshEndEventType)

# Two-state variables: (browse name, text when True, text when False).
TWO_STATES: tuple[tuple[str, str, str], ...] = (
    ("EnabledState", "Enabled", "Disabled"),
    ("ActiveState", "Active", "Inactive"),
    ("AckedState", "Acknowledged", "Unacknowledged"),
    ("ConfirmedState", "Confirmed", "Unconfirmed"),
    ("SuppressedState", "Suppressed", "Unsuppressed"),
)


def variant(value: Any, vtype: ua.VariantType) -> ua.Variant:
    """A scalar Variant without asyncua's type guessing (see scada.opcua.nodes.scalar_variant)."""
    return scalar_variant(value, vtype)


def _text(text: str) -> ua.Variant:
    return variant(ua.LocalizedText(text), _VT.LocalizedText)


TRUE = variant(True, _VT.Boolean)
FALSE = variant(False, _VT.Boolean)
_STATE_TEXT: dict[tuple[str, bool], ua.Variant] = {}
for _name, _true, _false in TWO_STATES:
    _STATE_TEXT[(_name, True)] = _text(_true)
    _STATE_TEXT[(_name, False)] = _text(_false)
_SHELVING_TEXT = {state: _text(state.display) for state in Shelving}
_SHELVING_ID = {state: variant(nodeid, _VT.NodeId) for state, nodeid in SHELVING_STATES.items()}
_TRANSITION_TEXT = {name: _text(name) for name in SHELVING_TRANSITIONS}
_TRANSITION_ID = {name: variant(nodeid, _VT.NodeId) for name, nodeid in SHELVING_TRANSITIONS.items()}
_QUALITY: dict[int, ua.Variant] = {}


def _quality(code: int) -> ua.Variant:
    found = _QUALITY.get(code)
    if found is None:
        found = _QUALITY[code] = variant(status_code(code), _VT.StatusCode)
    return found


_TIMES: dict[datetime, ua.Variant] = {}
_MAX_TIMES = 4096
_EMPTY_TEXT = _text("")
_EMPTY_STRING = variant("", _VT.String)
_ZERO = variant(0.0, _VT.Double)


def _time(moment: datetime) -> ua.Variant:
    """The DateTime Variant of a moment (shared: a burst of alarms carries a handful of distinct times)."""
    found = _TIMES.get(moment)
    if found is None:
        if len(_TIMES) >= _MAX_TIMES:
            _TIMES.clear()
        found = _TIMES[moment] = variant(moment, _VT.DateTime)
    return found


def _text_like(previous: ua.Variant | None, text: str) -> ua.Variant:
    """A LocalizedText Variant of `text`, reusing the previous event's when the text did not change."""
    if not text:
        return _EMPTY_TEXT
    if previous is not None and previous.Value.Text == text:
        return previous
    return _text(text)


def shared_fields(kind: AlarmKind, severity: int, max_shelved_ms: float, since: datetime) -> dict[str, ua.Variant]:
    """The fields every condition of one alarm kind shares (type, name, class, severity, state names)."""
    class_id, class_name = CONDITION_CLASSES[kind.condition_class]
    severity_variant = variant(severity, _VT.UInt16)
    fields: dict[str, ua.Variant] = {
        "EventType": variant(EVENT_TYPES[kind.event_type], _VT.NodeId),
        "ConditionName": variant(kind.condition, _VT.String),
        "ConditionClassId": variant(class_id, _VT.NodeId),
        "ConditionClassName": _text(class_name),
        "BranchId": variant(ua.NodeId(), _VT.NodeId),
        "Severity": severity_variant,
        "LastSeverity": severity_variant,
        "LastSeverity/SourceTimestamp": variant(since, _VT.DateTime),
        "MaxTimeShelved": variant(float(max_shelved_ms), _VT.Double),
        "SupportsFilteredRetain": FALSE,
    }
    for name, _true, _false in TWO_STATES:
        fields[f"{name}/TrueState"] = _STATE_TEXT[(name, True)]
        fields[f"{name}/FalseState"] = _STATE_TEXT[(name, False)]
    return fields


def own_fields(
    condition_id: ua.NodeId, source: ua.NodeId, source_name: str, input_node: ua.NodeId
) -> dict[str, ua.Variant]:
    """The fields of one condition that all its events share (NodeId is the ConditionId)."""
    return {
        "NodeId": variant(condition_id, _VT.NodeId),
        "SourceNode": variant(source, _VT.NodeId),
        "SourceName": variant(source_name, _VT.String),
        "InputNode": variant(input_node, _VT.NodeId),
    }


_STATE_FIELDS: dict[tuple[bool, bool, bool, bool, bool, Shelving, bool], dict[str, ua.Variant]] = {}


def _state_fields(
    enabled: bool, active: bool, acked: bool, confirmed: bool, suppressed: bool, shelving: Shelving, retain: bool
) -> dict[str, ua.Variant]:
    """The fields that depend only on the condition's states (one dict per combination, copied per event)."""
    key = (enabled, active, acked, confirmed, suppressed, shelving, retain)
    found = _STATE_FIELDS.get(key)
    if found is None:
        found = {
            "Retain": TRUE if retain else FALSE,
            "SuppressedOrShelved": TRUE if (suppressed or shelving is not Shelving.UNSHELVED) else FALSE,
            "ShelvingState/CurrentState": _SHELVING_TEXT[shelving],
            "ShelvingState/CurrentState/Id": _SHELVING_ID[shelving],
        }
        for name, state in zip(
            ("EnabledState", "ActiveState", "AckedState", "ConfirmedState", "SuppressedState"),
            (enabled, active, acked, confirmed, suppressed),
            strict=True,
        ):
            text = _STATE_TEXT[(name, state)]
            found[name] = text
            found[name + "/Id"] = TRUE if state else FALSE
            found[name + "/EffectiveDisplayName"] = text
        _STATE_FIELDS[key] = found
    return found


def dynamic_fields(
    cond: ConditionState, event_id: bytes, now: datetime, previous: dict[str, ua.Variant] | None = None
) -> dict[str, ua.Variant]:
    """The fields of one event: the condition's states as they are now (unchanged values reuse `previous`)."""
    shelved = cond.shelving is not Shelving.UNSHELVED
    fields = _state_fields(
        cond.enabled, cond.active, cond.acked, cond.confirmed, cond.suppressed, cond.shelving, cond.retain
    ).copy()
    get = previous.get if previous is not None else _NOTHING.get
    fields["EventId"] = variant(event_id, _VT.ByteString)
    fields["ReceiveTime"] = _time(now)
    fields["Message"] = _text_like(get("Message"), cond.message)
    fields["Quality"] = _quality(cond.quality)
    fields["Comment"] = _text_like(get("Comment"), cond.comment)
    fields["ClientUserId"] = variant(cond.user, _VT.String) if cond.user else _EMPTY_STRING
    fields["ShelvingState/UnshelveTime"] = variant(cond.unshelve_in(now), _VT.Double) if shelved else _ZERO
    for name, moment in (
        ("Time", cond.time),
        ("Quality/SourceTimestamp", cond.quality_time),
        ("Comment/SourceTimestamp", cond.comment_time),
        ("EnabledState/TransitionTime", cond.enabled_time),
        ("ActiveState/TransitionTime", cond.active_time),
        ("AckedState/TransitionTime", cond.acked_time),
        ("ConfirmedState/TransitionTime", cond.confirmed_time),
        ("SuppressedState/TransitionTime", cond.suppressed_time),
    ):
        before = get(name)
        fields[name] = before if before is not None and before.Value is moment else _time(moment)
    if cond.last_transition is not None:
        fields["ShelvingState/LastTransition"] = _TRANSITION_TEXT[cond.last_transition]
        fields["ShelvingState/LastTransition/Id"] = _TRANSITION_ID[cond.last_transition]
        fields["ShelvingState/LastTransition/TransitionTime"] = _time(cond.shelving_time)
    return fields


_NOTHING: dict[str, ua.Variant] = {}


# -- select clauses -----------------------------------------------------------------------------------------

_KEYS: dict[int, tuple[Sequence[ua.SimpleAttributeOperand], list[str | None]]] = {}
_MAX_KEYS = 512


def clause_key(clause: ua.SimpleAttributeOperand) -> str | None:
    """The field key a select clause names (None: no field of a condition event)."""
    path = clause.BrowsePath
    if not path:
        return "NodeId" if clause.AttributeId == ua.AttributeIds.NodeId else None
    if clause.AttributeId != ua.AttributeIds.Value:
        return None
    if any(name.NamespaceIndex != 0 for name in path):
        return None
    return "/".join(name.Name for name in path)


def field_keys(clauses: Sequence[ua.SimpleAttributeOperand]) -> list[str | None]:
    """The field keys of a monitored item's select clauses (cached per clause list)."""
    cached = _KEYS.get(id(clauses))
    if cached is not None and cached[0] is clauses:
        return cached[1]
    keys = [clause_key(clause) for clause in clauses]
    if len(_KEYS) >= _MAX_KEYS:
        _KEYS.clear()
    _KEYS[id(clauses)] = (clauses, keys)
    return keys


class ConditionEvent:
    """One event notification: what asyncua's monitored items need of an event object.

    Fields are looked up in the event's own fields, then the condition's, then those shared by its alarm kind.
    """

    __slots__ = ("emitting_node", "fields", "own", "shared")

    def __init__(
        self,
        fields: dict[str, ua.Variant],
        own: dict[str, ua.Variant],
        shared: dict[str, ua.Variant],
        emitting_node: ua.NodeId = SERVER_NODE,
    ) -> None:
        self.fields = fields
        self.own = own
        self.shared = shared
        self.emitting_node = emitting_node

    def field(self, key: str | None) -> ua.Variant:
        """The Variant of a field key (null when the event has no such field)."""
        if key is None:
            return NULL
        found = self.fields.get(key)
        if found is None:
            found = self.own.get(key)
            if found is None:
                found = self.shared.get(key, NULL)
        return found

    def to_event_fields(self, select_clauses: Sequence[ua.SimpleAttributeOperand]) -> list[ua.Variant]:
        """The EventFields of a monitored item's EventFieldList, in the order of its select clauses."""
        fields = self.fields.get
        own = self.own.get
        shared = self.shared.get
        out: list[ua.Variant] = []
        append = out.append
        for key in field_keys(select_clauses):
            if key is None:
                append(NULL)
                continue
            found = fields(key)
            if found is None:
                found = own(key)
                if found is None:
                    found = shared(key, NULL)
            append(found)
        return out

    def __getattr__(self, name: str) -> Any:
        """Field values by browse name, for asyncua's where-clause evaluator (None when absent)."""
        if name.startswith("_") or name in ConditionEvent.__slots__:
            raise AttributeError(name)
        return self.field(name).Value

    @property
    def event_id(self) -> bytes:
        """The EventId of this event."""
        return cast(bytes, self.fields["EventId"].Value)

    def __repr__(self) -> str:
        return f"ConditionEvent({self.field('NodeId').Value}, {self.field('Message').Value})"


_REFRESH_SEQ = itertools.count(1)


def refresh_event(start: bool, prefix: bytes) -> ConditionEvent:
    """A RefreshStartEvent or RefreshEndEvent from the Server object."""
    now = datetime.now(UTC)
    name = "RefreshStart" if start else "RefreshEnd"
    fields = {
        "EventId": variant(prefix + next(_REFRESH_SEQ).to_bytes(8, "big"), _VT.ByteString),
        "EventType": variant(REFRESH_START if start else REFRESH_END, _VT.NodeId),
        "SourceNode": variant(SERVER_NODE, _VT.NodeId),
        "SourceName": variant("Server", _VT.String),
        "Time": _time(now),
        "ReceiveTime": _time(now),
        "Message": _text(f"ConditionRefresh: {name}"),
        "Severity": variant(100, _VT.UInt16),
    }
    return ConditionEvent(fields, {}, {})
