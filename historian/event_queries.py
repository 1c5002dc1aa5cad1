"""Events and the command audit trail: filtered, keyset-paged queries (SQLAlchemy 2 Core, SQLite and PostgreSQL)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar

from sqlalchemy import ColumnElement, Connection, Row, and_, func, or_, select, true

from historian.queries import GOOD_BELOW, TimeLike, as_us, commands, events
from historian.schema import from_us

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Cursor:
    """Where a page ended: (ts, id) of its last row; pass it back to get the next page."""

    ts: int
    id: int


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """One page of rows and the cursor of the next page (None on the last page)."""

    items: list[T]
    next: Cursor | None


@dataclass(frozen=True, slots=True)
class EventQuery:
    """Filters of an event query (all optional, combined with AND)."""

    start: TimeLike | None = None
    end: TimeLike | None = None
    source_prefix: str | None = None  # a plain prefix of `source`
    event_types: Sequence[str] | None = None
    min_severity: int | None = None
    user: str | None = None
    text: str | None = None  # contained in the message, case-insensitive
    where: ColumnElement[bool] | None = None  # any extra condition on the events table


@dataclass(frozen=True, slots=True)
class EventRecord:
    """One stored event."""

    id: int
    ts: int
    source: str
    event_type: str
    severity: int
    message: str
    condition: str | None
    state: str | None
    user: str | None
    comment: str | None
    data: Any  # decoded JSON (None when absent)

    @property
    def time(self) -> datetime:
        """The event time as a UTC datetime."""
        return from_us(self.ts)


@dataclass(frozen=True, slots=True)
class CommandQuery:
    """Filters of a command (audit trail) query (all optional, combined with AND)."""

    start: TimeLike | None = None
    end: TimeLike | None = None
    device_prefix: str | None = None
    action: str | None = None
    origin: str | None = None
    user: str | None = None
    failed: bool | None = None  # True: only commands answered with a non-Good status; False: only Good ones
    text: str | None = None  # contained in the answer message, case-insensitive


@dataclass(frozen=True, slots=True)
class CommandRecord:
    """One audited command."""

    id: int
    ts: int
    user: str | None
    origin: str
    device_id: str
    action: str
    args: Any  # decoded JSON
    status: int
    message: str
    duration_ms: float | None

    @property
    def time(self) -> datetime:
        """The command time as a UTC datetime."""
        return from_us(self.ts)


def like_escape(text: str, escape: str = "\\") -> str:
    """Text with LIKE wildcards escaped (to embed in a pattern)."""
    return text.replace(escape, escape * 2).replace("%", escape + "%").replace("_", escape + "_")


def contains(column: Any, text: str) -> ColumnElement[bool]:
    """Case-insensitive 'column contains text' (same answer on SQLite and PostgreSQL)."""
    return func.lower(column).like("%" + like_escape(text.lower()) + "%", escape="\\")


def prefix(column: Any, text: str) -> ColumnElement[bool]:
    """'column starts with text' (case-sensitive on both backends: an exact range check on the prefix)."""
    return and_(column.like(like_escape(text) + "%", escape="\\"), func.substr(column, 1, len(text)) == text)


def _decode(text: str | None) -> Any:
    """JSON text -> Python value (the text itself when it is not JSON)."""
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return text


def _page(
    conn: Connection, table: Any, conditions: list[Any], limit: int, cursor: Cursor | None, descending: bool
) -> tuple[list[Row[Any]], Cursor | None]:
    """Keyset paging on (ts, id) over a filtered table."""
    if cursor is not None:
        if descending:
            conditions.append(or_(table.c.ts < cursor.ts, and_(table.c.ts == cursor.ts, table.c.id < cursor.id)))
        else:
            conditions.append(or_(table.c.ts > cursor.ts, and_(table.c.ts == cursor.ts, table.c.id > cursor.id)))
    order = (table.c.ts.desc(), table.c.id.desc()) if descending else (table.c.ts, table.c.id)
    query = select(table).where(and_(true(), *conditions)).order_by(*order)
    if limit > 0:
        query = query.limit(limit + 1)
    rows = list(conn.execute(query))
    next_cursor = None
    if limit > 0 and len(rows) > limit:
        del rows[limit:]
        next_cursor = Cursor(rows[-1].ts, rows[-1].id)
    return rows, next_cursor


def event_conditions(query: EventQuery) -> list[ColumnElement[bool]]:
    """The SQL conditions of an EventQuery on the events table."""
    e = events
    conditions: list[ColumnElement[bool]] = []
    if query.start is not None:
        conditions.append(e.c.ts >= as_us(query.start))
    if query.end is not None:
        conditions.append(e.c.ts < as_us(query.end))
    if query.source_prefix:
        conditions.append(prefix(e.c.source, query.source_prefix))
    if query.event_types is not None:
        conditions.append(e.c.event_type.in_(list(query.event_types)))
    if query.min_severity is not None:
        conditions.append(e.c.severity >= query.min_severity)
    if query.user is not None:
        conditions.append(e.c.user == query.user)
    if query.text:
        conditions.append(contains(e.c.message, query.text))
    if query.where is not None:
        conditions.append(query.where)
    return conditions


def event_record(row: Any) -> EventRecord:
    """EventRecord from a row of the events table."""
    return EventRecord(
        id=int(row.id),
        ts=int(row.ts),
        source=row.source,
        event_type=row.event_type,
        severity=int(row.severity),
        message=row.message,
        condition=row.condition,
        state=row.state,
        user=row.user,
        comment=row.comment,
        data=_decode(row.data),
    )


def query_events(
    conn: Connection, query: EventQuery, *, limit: int = 100, cursor: Cursor | None = None, descending: bool = True
) -> Page[EventRecord]:
    """One page of events matching the query, newest first unless descending=False."""
    rows, next_cursor = _page(conn, events, event_conditions(query), limit, cursor, descending)
    return Page([event_record(row) for row in rows], next_cursor)


def query_commands(
    conn: Connection, query: CommandQuery, *, limit: int = 100, cursor: Cursor | None = None, descending: bool = True
) -> Page[CommandRecord]:
    """One page of audited commands matching the query, newest first unless descending=False."""
    c = commands
    conditions: list[ColumnElement[bool]] = []
    if query.start is not None:
        conditions.append(c.c.ts >= as_us(query.start))
    if query.end is not None:
        conditions.append(c.c.ts < as_us(query.end))
    if query.device_prefix:
        conditions.append(prefix(c.c.device_id, query.device_prefix))
    if query.action is not None:
        conditions.append(c.c.action == query.action)
    if query.origin is not None:
        conditions.append(c.c.origin == query.origin)
    if query.user is not None:
        conditions.append(c.c.user == query.user)
    if query.failed is True:
        conditions.append(c.c.status >= GOOD_BELOW)
    elif query.failed is False:
        conditions.append(c.c.status < GOOD_BELOW)
    if query.text:
        conditions.append(contains(c.c.message, query.text))
    rows, next_cursor = _page(conn, commands, conditions, limit, cursor, descending)
    records = [
        CommandRecord(
            id=int(row.id),
            ts=int(row.ts),
            user=row.user,
            origin=row.origin,
            device_id=row.device_id,
            action=row.action,
            args=_decode(row.args),
            status=int(row.status),
            message=row.message,
            duration_ms=row.duration_ms,
        )
        for row in rows
    ]
    return Page(records, next_cursor)
