"""Backend-specific bulk writers: one transaction per batch on the raw DB-API connection (sqlite3 or psycopg 3).

SQLite: ``executemany`` of ``INSERT OR IGNORE`` (the primary key makes a replay idempotent).
PostgreSQL: binary ``COPY`` straight into ``samples`` when the batch cannot collide with stored rows (live data,
each (tag, ts) new by construction); when it may (journal replay, or a direct COPY that hit a duplicate) binary
COPY into a per-connection temporary staging table, then ``INSERT … SELECT … ON CONFLICT DO NOTHING``.
Events and commands carry a unique `uid`, incidents an `updated_ts` version: every write here is idempotent and
order-independent, which is what makes the journal's replay exactly-once.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Protocol

from sqlalchemy import Connection, Table, insert

from historian.ingest import TagInfo

IdRow = tuple[int, int, float | None, str | None, int]

_EVENT_COLS = (
    "ts",
    "source",
    "event_type",
    "severity",
    "message",
    "condition",
    "state",
    "user",
    "comment",
    "data",
    "uid",
)
_COMMAND_COLS = ("ts", "user", "origin", "device_id", "action", "args", "status", "message", "duration_ms", "uid")
_INCIDENT_COLS = (
    "id", "kind", "lat", "lon", "description", "contact", "status", "created_ts", "closed_ts", "timeline", "updated_ts",
)  # fmt: skip
_TAG_CHUNK = 400


def _quoted(cols: Sequence[str]) -> str:
    """Column list with every name quoted ("user" is reserved in PostgreSQL)."""
    return ", ".join(f'"{c}"' for c in cols)


class DuplicateRows(Exception):
    """A direct COPY met a row already stored (the caller retries through staging)."""


class BulkWriter(Protocol):
    """What the historian's writer thread needs from a backend."""

    backend: str

    def ensure_tags(self, conn: Any, infos: Iterable[TagInfo], cache: dict[str, int]) -> None:
        """Insert the tags not yet in `cache` (if missing from the table) and fill their ids into `cache`."""

    def write_samples(self, conn: Any, rows: Sequence[IdRow], *, may_conflict: bool) -> int:
        """Insert sample rows (not committing); returns how many were new."""

    def write_events(self, conn: Any, rows: Sequence[dict[str, Any]]) -> int:
        """Insert event rows, skipping uids already stored; returns how many were new."""

    def write_commands(self, conn: Any, rows: Sequence[dict[str, Any]]) -> int:
        """Insert command audit rows, skipping uids already stored; returns how many were new."""

    def upsert_incidents(self, conn: Any, rows: Sequence[dict[str, Any]]) -> int:
        """Insert or update incidents, never replacing a newer version; returns rows written."""


def _now_us() -> int:
    """Wall clock, µs since the epoch."""
    return time.time_ns() // 1000


class _Common:
    """SQL shared by both backends (parameter style differs: '?' or '%s')."""

    backend = ""
    mark = "?"

    def _marks(self, n: int) -> str:
        """n placeholders."""
        return ", ".join([self.mark] * n)

    def ensure_tags(self, conn: Any, infos: Iterable[TagInfo], cache: dict[str, int]) -> None:
        """Insert missing tags (ON CONFLICT DO NOTHING: concurrent writers are harmless) and cache every id."""
        todo = {info.name: info for info in infos if info.name not in cache}
        if not todo:
            return
        cur = conn.cursor()
        try:
            now = _now_us()
            cur.executemany(
                f"INSERT INTO tags (name, dtype, tag_class, unit, created_ts) VALUES ({self._marks(5)}) "
                "ON CONFLICT (name) DO NOTHING",
                [(i.name, i.dtype, i.tag_class, i.unit or None, now) for i in todo.values()],
            )
            names = list(todo)
            for start in range(0, len(names), _TAG_CHUNK):
                chunk = names[start : start + _TAG_CHUNK]
                cur.execute(f"SELECT name, id FROM tags WHERE name IN ({self._marks(len(chunk))})", chunk)
                for name, tag_id in cur.fetchall():
                    cache[name] = tag_id
        finally:
            cur.close()

    def _insert_ignore(self, conn: Any, table: str, cols: Sequence[str], rows: Sequence[dict[str, Any]]) -> int:
        """INSERT … ON CONFLICT DO NOTHING of dict rows; returns how many were new."""
        if not rows:
            return 0
        cur = conn.cursor()
        try:
            cur.executemany(
                f"INSERT INTO {table} ({_quoted(cols)}) VALUES ({self._marks(len(cols))}) ON CONFLICT DO NOTHING",
                [tuple(row[c] for c in cols) for row in rows],
            )
            return max(cur.rowcount, 0)
        finally:
            cur.close()

    def write_events(self, conn: Any, rows: Sequence[dict[str, Any]]) -> int:
        """Insert event rows idempotently (unique uid)."""
        return self._insert_ignore(conn, "events", _EVENT_COLS, rows)

    def write_commands(self, conn: Any, rows: Sequence[dict[str, Any]]) -> int:
        """Insert command rows idempotently (unique uid)."""
        return self._insert_ignore(conn, "commands", _COMMAND_COLS, rows)

    def upsert_incidents(self, conn: Any, rows: Sequence[dict[str, Any]]) -> int:
        """Upsert incidents; a row only replaces one with an older or equal updated_ts."""
        if not rows:
            return 0
        updates = ", ".join(f'"{c}" = excluded."{c}"' for c in _INCIDENT_COLS[1:])
        cur = conn.cursor()
        try:
            cur.executemany(
                f"INSERT INTO incidents ({_quoted(_INCIDENT_COLS)}) VALUES ({self._marks(len(_INCIDENT_COLS))}) "
                f"ON CONFLICT (id) DO UPDATE SET {updates} WHERE incidents.updated_ts <= excluded.updated_ts",
                [tuple(row[c] for c in _INCIDENT_COLS) for row in rows],
            )
            return max(cur.rowcount, 0)
        finally:
            cur.close()


class SqliteWriter(_Common):
    """SQLite: executemany of INSERT OR IGNORE on the sqlite3 connection."""

    backend = "sqlite"
    mark = "?"
    SAMPLES_SQL = "INSERT OR IGNORE INTO samples (tag_id, ts, value, text, quality) VALUES (?, ?, ?, ?, ?)"

    def write_samples(self, conn: Any, rows: Sequence[IdRow], *, may_conflict: bool) -> int:
        """Insert samples; duplicates of stored (tag_id, ts) are ignored."""
        if not rows:
            return 0
        cur = conn.cursor()
        try:
            cur.executemany(self.SAMPLES_SQL, rows)
            return max(cur.rowcount, 0)
        finally:
            cur.close()


class PostgresWriter(_Common):
    """PostgreSQL: binary COPY, directly or through a temporary staging table."""

    backend = "postgresql"
    mark = "%s"
    TYPES = ("int4", "int8", "float8", "text", "int8")
    COPY_DIRECT = "COPY samples (tag_id, ts, value, text, quality) FROM STDIN (FORMAT BINARY)"
    COPY_STAGE = "COPY samples_stage (tag_id, ts, value, text, quality) FROM STDIN (FORMAT BINARY)"
    STAGE_DDL = (
        "CREATE TEMP TABLE IF NOT EXISTS samples_stage "
        "(tag_id int4, ts int8, value float8, text text, quality int8) ON COMMIT DELETE ROWS"
    )
    MERGE = (
        "INSERT INTO samples (tag_id, ts, value, text, quality) "
        "SELECT tag_id, ts, value, text, quality FROM samples_stage ON CONFLICT DO NOTHING"
    )

    def ensure_tags(self, conn: Any, infos: Iterable[TagInfo], cache: dict[str, int]) -> None:
        """Insert missing tags in one statement (unnest of arrays) and cache every id."""
        todo = [info for info in infos if info.name not in cache]
        if not todo:
            return
        names = [i.name for i in todo]
        cur = conn.cursor()
        try:
            cur.execute(
                "INSERT INTO tags (name, dtype, tag_class, unit, created_ts) "
                "SELECT * FROM unnest(%s::varchar[], %s::varchar[], %s::varchar[], %s::varchar[], %s::int8[]) "
                "ON CONFLICT (name) DO NOTHING",
                (names, [i.dtype for i in todo], [i.tag_class for i in todo], [i.unit or None for i in todo],
                 [_now_us()] * len(todo)),
            )  # fmt: skip
            cur.execute("SELECT name, id FROM tags WHERE name = ANY(%s)", (names,))
            for name, tag_id in cur.fetchall():
                cache[name] = tag_id
        finally:
            cur.close()

    def __init__(self, *, direct: bool = True) -> None:
        self.direct = direct  # False: always stage (measured slower; kept for the benchmark)
        self.fallbacks = 0  # direct COPYs that met a duplicate and were redone through staging

    def _copy(self, cur: Any, sql: str, rows: Sequence[IdRow]) -> None:
        """Binary COPY of rows."""
        with cur.copy(sql) as copy:
            copy.set_types(self.TYPES)
            write = copy.write_row
            for row in rows:
                write(row)

    def write_samples(self, conn: Any, rows: Sequence[IdRow], *, may_conflict: bool) -> int:
        """Insert samples: direct COPY when no duplicate is possible, else stage and merge ignoring conflicts."""
        import psycopg

        if not rows:
            return 0
        if self.direct and not may_conflict:
            cur = conn.cursor()
            try:
                cur.execute("SAVEPOINT direct_copy")
                self._copy(cur, self.COPY_DIRECT, rows)
                cur.execute("RELEASE SAVEPOINT direct_copy")
                return len(rows)
            except psycopg.errors.UniqueViolation:
                cur.execute("ROLLBACK TO SAVEPOINT direct_copy")
                self.fallbacks += 1
            finally:
                cur.close()
        cur = conn.cursor()
        try:
            cur.execute(self.STAGE_DDL)
            self._copy(cur, self.COPY_STAGE, rows)
            cur.execute(self.MERGE)
            inserted = max(cur.rowcount, 0)
            cur.execute("TRUNCATE samples_stage")
            return inserted
        finally:
            cur.close()


def writer_for(backend: str) -> BulkWriter:
    """The bulk writer of a backend ('sqlite' or 'postgresql')."""
    if backend == "sqlite":
        return SqliteWriter()
    if backend == "postgresql":
        return PostgresWriter()
    raise ValueError(f"no bulk writer for {backend!r}")


def bulk_insert(conn: Connection, table: Table, rows: Sequence[Mapping[str, Any]]) -> None:
    """Insert many dict rows inside the connection's transaction: COPY on PostgreSQL (psycopg's executemany is
    about 10x slower there), executemany on SQLite."""
    if not rows:
        return
    cols = list(rows[0])
    if conn.dialect.name != "postgresql":
        conn.execute(insert(table), list(rows))
        return
    dbapi = conn.connection.driver_connection
    assert dbapi is not None
    with dbapi.cursor() as cur, cur.copy(f"COPY {table.name} ({_quoted(cols)}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row([row[c] for c in cols])
