"""Stored events seen through OPC UA: the event type tree, event fields for select clauses, where clauses as SQL.

Fields (BrowseName of the select or where operand -> events column): EventId (id, 8 bytes big-endian), EventType
(event_type, mapped to a type NodeId), SourceNode and SourceName (source), Time and ReceiveTime (ts), Message,
Severity, ConditionName (condition), Comment, ClientUserId (user); cityscada extras: State, User, Condition, Data
(JSON text), EventTypeName (the stored type name). Other fields are null. Where clauses: And, Or, Not, Equals,
GreaterThan, LessThan, GreaterThanOrEqual, LessThanOrEqual, Between, InList, IsNull, Like (case-insensitive on
both backends) and OfType; other operators answer Bad_FilterOperatorUnsupported.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from asyncua import ua
from sqlalchemy import ColumnElement, Connection, and_, false, func, not_, or_, select, true

from historian import queries as q
from historian.event_queries import EventRecord
from historian.schema import from_us, to_us

OID = ua.ObjectIds
FO = ua.FilterOperator
_BASE_EVENT_TYPE = ua.NodeId(cast(Any, OID.BaseEventType))
_HAS_SUBTYPE = ua.NodeId(cast(Any, OID.HasSubtype))


class EventFilterError(Exception):
    """The event filter cannot be applied; `status` is the OPC UA status code to answer with."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class EventTypes:
    """The event type tree of an address space: type names to NodeIds, and subtype checks."""

    def __init__(self, aspace: Any, overrides: Mapping[str, ua.NodeId] | None = None) -> None:
        self._overrides = dict(overrides or {})
        self._parent: dict[ua.NodeId, ua.NodeId] = {}
        self._by_name: dict[str, ua.NodeId] = {"BaseEventType": _BASE_EVENT_TYPE}
        pending = [_BASE_EVENT_TYPE]
        while pending:
            parent = pending.pop()
            node = aspace.get(parent)
            if node is None:
                continue
            for ref in node.references:
                if ref.IsForward and ref.ReferenceTypeId == _HAS_SUBTYPE and ref.NodeId not in self._parent:
                    self._parent[ref.NodeId] = parent
                    if ref.BrowseName is not None and ref.BrowseName.Name:
                        self._by_name.setdefault(ref.BrowseName.Name, ref.NodeId)
                    pending.append(ref.NodeId)

    def nodeid(self, event_type: str) -> ua.NodeId:
        """The type NodeId of a stored event type name (override, same BrowseName, name + 'Type', else base)."""
        found = self._overrides.get(event_type)
        if found is not None:
            return found
        return self._by_name.get(event_type) or self._by_name.get(event_type + "Type") or _BASE_EVENT_TYPE

    def is_a(self, nodeid: ua.NodeId, ancestor: ua.NodeId) -> bool:
        """True when the type is the ancestor or one of its subtypes."""
        current: ua.NodeId | None = nodeid
        for _ in range(64):
            if current is None:
                return False
            if current == ancestor:
                return True
            current = self._parent.get(current)
        return False


@dataclass(frozen=True, slots=True)
class _Field:
    """An event field: the column it reads and how its values convert."""

    name: str
    column: str | None
    kind: str  # id, type, node, str, time, text, int, json


_FIELDS: dict[str, _Field] = {
    f.name: f
    for f in (
        _Field("EventId", "id", "id"),
        _Field("EventType", "event_type", "type"),
        _Field("SourceNode", "source", "node"),
        _Field("SourceName", "source", "str"),
        _Field("Time", "ts", "time"),
        _Field("ReceiveTime", "ts", "time"),
        _Field("Message", "message", "text"),
        _Field("Severity", "severity", "int"),
        _Field("ConditionName", "condition", "str"),
        _Field("Comment", "comment", "text"),
        _Field("ClientUserId", "user", "str"),
        _Field("State", "state", "str"),
        _Field("User", "user", "str"),
        _Field("Condition", "condition", "str"),
        _Field("Data", "data", "json"),
        _Field("EventTypeName", "event_type", "str"),
    )
}
_NULL_FIELD = _Field("", None, "str")


def field_of(operand: ua.SimpleAttributeOperand) -> _Field:
    """The field a select or where operand designates (a null field when the historian has no such column)."""
    path = list(operand.BrowsePath or [])
    if len(path) != 1 or operand.AttributeId != ua.AttributeIds.Value:
        return _NULL_FIELD
    return _FIELDS.get(path[0].Name, _NULL_FIELD)


class EventFields:
    """Turns stored events into OPC UA event fields, and OPC UA where clauses into SQL on the events table."""

    def __init__(self, types: EventTypes, nodeid_for_source: Callable[[str], ua.NodeId | None]) -> None:
        self.types = types
        self.nodeid_for_source = nodeid_for_source

    # -- select ---------------------------------------------------------------------------------------------

    def values(self, record: EventRecord, select_clauses: Sequence[ua.SimpleAttributeOperand]) -> list[ua.Variant]:
        """The event's fields in the order of the select clauses."""
        return [self.value(record, field_of(clause)) for clause in select_clauses]

    def value(self, record: EventRecord, field: _Field) -> ua.Variant:
        """One field of a stored event as a Variant (null when absent)."""
        if field.column is None:
            return ua.Variant()
        raw = record.data if field.column == "data" else getattr(record, field.column)
        if raw is None:
            return ua.Variant()
        kind = field.kind
        if kind == "id":
            return ua.Variant(int(raw).to_bytes(8, "big"), ua.VariantType.ByteString)
        if kind == "type":
            return ua.Variant(self.types.nodeid(raw), ua.VariantType.NodeId)
        if kind == "node":
            nodeid = self.nodeid_for_source(raw)
            return ua.Variant(nodeid, ua.VariantType.NodeId) if nodeid is not None else ua.Variant()
        if kind == "time":
            return ua.Variant(from_us(int(raw)), ua.VariantType.DateTime)
        if kind == "text":
            return ua.Variant(ua.LocalizedText(str(raw)), ua.VariantType.LocalizedText)
        if kind == "int":
            return ua.Variant(int(raw), ua.VariantType.UInt16)
        if kind == "json":
            import json

            return ua.Variant(json.dumps(raw, separators=(",", ":")), ua.VariantType.String)
        return ua.Variant(str(raw), ua.VariantType.String)

    # -- where ----------------------------------------------------------------------------------------------

    def compile_where(self, conn: Connection, content: ua.ContentFilter | None) -> ColumnElement[bool] | None:
        """The where clause as a SQL condition on the events table (None: no clause); raises EventFilterError."""
        if content is None or not content.Elements:
            return None
        compiler = _WhereCompiler(self, conn, list(content.Elements))
        try:
            return compiler.element(0, frozenset())
        except EventFilterError:
            raise
        except (ValueError, TypeError, AttributeError, IndexError) as error:  # a malformed filter from the wire
            raise EventFilterError(ua.StatusCodes.BadEventFilterInvalid, f"invalid where clause: {error}") from error


_MIRROR = {FO.GreaterThan: FO.LessThan, FO.LessThan: FO.GreaterThan}
_MIRROR[FO.GreaterThanOrEqual] = FO.LessThanOrEqual
_MIRROR[FO.LessThanOrEqual] = FO.GreaterThanOrEqual
_COMPARE: dict[FO, Callable[[Any, Any], Any]] = {
    FO.Equals: operator.eq,
    FO.GreaterThan: operator.gt,
    FO.LessThan: operator.lt,
    FO.GreaterThanOrEqual: operator.ge,
    FO.LessThanOrEqual: operator.le,
}


class _WhereCompiler:
    """Compiles the elements of one ContentFilter (element 0 is the root)."""

    def __init__(self, fields: EventFields, conn: Connection, elements: list[ua.ContentFilterElement]) -> None:
        self.fields = fields
        self.conn = conn
        self.elements = elements
        self._stored_types: list[str] | None = None

    def stored_types(self) -> list[str]:
        """The event type names present in the events table."""
        if self._stored_types is None:
            rows = self.conn.execute(select(q.events.c.event_type).distinct())
            self._stored_types = [row[0] for row in rows]
        return self._stored_types

    def element(self, index: int, seen: frozenset[int]) -> ColumnElement[bool]:
        """SQL for one element (operands resolved recursively, cycles refused)."""
        if index < 0 or index >= len(self.elements) or index in seen:
            raise EventFilterError(ua.StatusCodes.BadEventFilterInvalid, f"bad element index {index}")
        seen = seen | {index}
        element = self.elements[index]
        op = FO(element.FilterOperator)
        operands = list(element.FilterOperands)
        if op in (FO.And, FO.Or):
            self._arity(operands, 2)
            parts = [self.boolean(o, seen) for o in operands]
            return and_(*parts) if op == FO.And else or_(*parts)
        if op == FO.Not:
            self._arity(operands, 1)
            return not_(self.boolean(operands[0], seen))
        if op == FO.OfType:
            self._arity(operands, 1)
            return self.of_type(self.literal(operands[0]))
        if op in _COMPARE:
            self._arity(operands, 2)
            return self.compare(op, operands[0], operands[1])
        if op == FO.IsNull:
            self._arity(operands, 1)
            field = self.field(operands[0])
            return q.events.c[field.column].is_(None) if field.column else true()
        if op == FO.Between:
            self._arity(operands, 3)
            return and_(
                self.compare(FO.GreaterThanOrEqual, operands[0], operands[1]),
                self.compare(FO.LessThanOrEqual, operands[0], operands[2]),
            )
        if op == FO.InList:
            if len(operands) < 2:
                raise EventFilterError(ua.StatusCodes.BadEventFilterInvalid, "InList needs a list")
            return or_(*(self.compare(FO.Equals, operands[0], other) for other in operands[1:]))
        if op == FO.Like:
            self._arity(operands, 2)
            return self.like(operands[0], operands[1])
        raise EventFilterError(ua.StatusCodes.BadFilterOperatorUnsupported, f"operator {op.name} is not supported")

    @staticmethod
    def _arity(operands: list[Any], count: int) -> None:
        """Refuse an element with the wrong number of operands."""
        if len(operands) != count:
            raise EventFilterError(ua.StatusCodes.BadEventFilterInvalid, f"expected {count} operands")

    def boolean(self, operand: Any, seen: frozenset[int]) -> ColumnElement[bool]:
        """An operand of And/Or/Not: another element, or a Boolean literal."""
        if isinstance(operand, ua.ElementOperand):
            return self.element(int(operand.Index), seen)
        if isinstance(operand, ua.LiteralOperand):
            return true() if bool(self.literal(operand)) else false()
        raise EventFilterError(ua.StatusCodes.BadEventFilterInvalid, "a logical operand must be an element")

    def field(self, operand: Any) -> _Field:
        """The field of a SimpleAttributeOperand."""
        if isinstance(operand, ua.SimpleAttributeOperand):
            return field_of(operand)
        if isinstance(operand, ua.AttributeOperand):
            raise EventFilterError(ua.StatusCodes.BadFilterOperandInvalid, "AttributeOperand is not supported")
        raise EventFilterError(ua.StatusCodes.BadEventFilterInvalid, "expected an attribute operand")

    @staticmethod
    def literal(operand: Any) -> Any:
        """The Python value of a LiteralOperand."""
        if not isinstance(operand, ua.LiteralOperand):
            raise EventFilterError(ua.StatusCodes.BadEventFilterInvalid, "expected a literal operand")
        value = operand.Value
        return value.Value if isinstance(value, ua.Variant) else value

    def compare(self, op: FO, left: Any, right: Any) -> ColumnElement[bool]:
        """A comparison between a field and a literal (either side), or two literals."""
        if isinstance(left, ua.LiteralOperand) and isinstance(right, ua.LiteralOperand):
            return true() if _COMPARE[op](self.literal(left), self.literal(right)) else false()
        if isinstance(left, ua.LiteralOperand):
            left, right, op = right, left, _MIRROR.get(op, op)
        field = self.field(left)
        literal = self.literal(right)
        if field.column is None or literal is None:
            return false()  # a null operand makes the comparison false
        column = q.events.c[field.column]
        if field.kind == "type":
            if op != FO.Equals or not isinstance(literal, ua.NodeId):
                raise EventFilterError(ua.StatusCodes.BadFilterOperatorUnsupported, "EventType compares by Equals")
            names = [name for name in self.stored_types() if self.fields.types.nodeid(name) == literal]
            return column.in_(names) if names else false()
        converted = self.convert(field, literal)
        if converted is None:
            return false()
        return _COMPARE[op](column, converted)

    def convert(self, field: _Field, literal: Any) -> Any:
        """A literal in the column's domain (None when it cannot match anything)."""
        kind = field.kind
        if kind == "time":
            return to_us(literal) if isinstance(literal, datetime) else None
        if kind == "id":
            return int.from_bytes(literal, "big") if isinstance(literal, bytes) and len(literal) == 8 else None
        if kind == "node":
            if isinstance(literal, ua.NodeId) and literal.NodeIdType == ua.NodeIdType.String:
                return str(literal.Identifier)
            return None
        if kind == "int":
            return int(literal) if isinstance(literal, int | float) and not isinstance(literal, bool) else None
        if isinstance(literal, ua.LocalizedText):
            return literal.Text
        return literal if isinstance(literal, str) else str(literal)

    def of_type(self, literal: Any) -> ColumnElement[bool]:
        """OfType: the stored types that are that type or one of its subtypes."""
        if not isinstance(literal, ua.NodeId):
            raise EventFilterError(ua.StatusCodes.BadEventFilterInvalid, "OfType needs a type NodeId")
        types = self.fields.types
        names = [name for name in self.stored_types() if types.is_a(types.nodeid(name), literal)]
        return q.events.c.event_type.in_(names) if names else false()

    def like(self, left: Any, right: Any) -> ColumnElement[bool]:
        """Like with the OPC UA wildcards % and _ (escape \\); [..] sets are not supported."""
        field = self.field(left)
        pattern = self.literal(right)
        if field.column is None or pattern is None:
            return false()
        if isinstance(pattern, ua.LocalizedText):
            pattern = pattern.Text or ""
        text = str(pattern)
        if any(ch == "[" and (i == 0 or text[i - 1] != "\\") for i, ch in enumerate(text)):
            raise EventFilterError(ua.StatusCodes.BadFilterOperatorUnsupported, "Like sets [..] are not supported")
        return func.lower(q.events.c[field.column]).like(text.lower(), escape="\\")
