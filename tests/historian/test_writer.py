"""The bulk writers: idempotent sample inserts (direct COPY falls back to staging on a duplicate), tag creation."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Engine

from historian.engine import make_engine
from historian.ingest import TagInfo
from historian.migrations import upgrade_to_head
from historian.writer import PostgresWriter, writer_for


@pytest.fixture
def raw(db_url: str) -> Iterator[tuple[Any, Engine]]:
    """A DB-API connection on a migrated database, and its engine."""
    upgrade_to_head(db_url)
    engine = make_engine(db_url)
    proxy = engine.raw_connection()
    yield proxy.driver_connection, engine
    proxy.close()
    engine.dispose()


def count(conn: Any) -> int:
    """Rows in samples."""
    cur = conn.cursor()
    cur.execute("SELECT count(*) FROM samples")
    (n,) = cur.fetchone()
    cur.close()
    conn.commit()
    return int(n)


def test_tags_are_created_once_and_ids_cached(raw: tuple[Any, Engine]) -> None:
    conn, engine = raw
    writer = writer_for(engine.dialect.name)
    cache: dict[str, int] = {}
    infos = [TagInfo(f"Traffic/TLC-{i:03d}/Stage", True, "UInt16", "controller") for i in range(3)]
    writer.ensure_tags(conn, infos, cache)
    conn.commit()
    again: dict[str, int] = {}
    writer.ensure_tags(conn, infos, again)  # already there: same ids, no error
    conn.commit()
    assert cache == again and len(set(cache.values())) == 3


def test_duplicates_are_ignored_whatever_the_path(raw: tuple[Any, Engine]) -> None:
    conn, engine = raw
    writer = writer_for(engine.dialect.name)
    cache: dict[str, int] = {}
    writer.ensure_tags(conn, [TagInfo("Traffic/TLC-001/Stage", True, "UInt16", "controller")], cache)
    conn.commit()
    tag = cache["Traffic/TLC-001/Stage"]
    rows = [(tag, ts, float(ts), None, 0) for ts in range(100)]
    assert writer.write_samples(conn, rows, may_conflict=False) == 100
    conn.commit()
    # the same rows again as 'live' data (a COPY straight into samples would fail): nothing new, no error
    assert writer.write_samples(conn, [*rows[:50], (tag, 100, 1.0, None, 0)], may_conflict=False) == 1
    conn.commit()
    # a duplicate inside one batch, replay path
    assert writer.write_samples(conn, [(tag, 101, 1.0, None, 0)] * 2, may_conflict=True) == 1
    conn.commit()
    assert count(conn) == 102
    if isinstance(writer, PostgresWriter):
        assert writer.fallbacks == 1
