"""The Historian service on SQLite and PostgreSQL: migrations, batches, filtering, events, outages, journal replay."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from historian_proxy import TcpProxy
from sqlalchemy import Engine, inspect, text

from historian.engine import make_engine
from historian.ingest import CommandAudit, incident_row
from historian.journal import KIND_EVENTS, KIND_INCIDENTS, KIND_SAMPLES, Journal, encode_frame
from historian.migrations import current_revision, upgrade_to_head
from historian.schema import Base, to_us
from historian.service import Historian
from scada.model import Quality, ValueRecord, WriteRequest, WriteResult

T0 = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=5)
BAD = int(Quality.BAD_COMM)


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    """An engine on the test database, for checking what the historian wrote."""
    engine = make_engine(db_url)
    yield engine
    engine.dispose()


def fast(url: str, tmp_path: Path, **kwargs: Any) -> Historian:
    """A historian with short intervals (and a short SQLite busy timeout) for tests."""
    options: dict[str, Any] = {
        "journal_dir": tmp_path / "journal",
        "flush_interval_s": 0.05,
        "retry_min_s": 0.05,
        "retry_max_s": 0.2,
        "batch_size": 500,
        "queue_size": 20_000,
    }
    options.update(kwargs)
    if url.startswith("sqlite"):
        options.setdefault("engine_kwargs", {"connect_args": {"timeout": 0.05}})
    return Historian(url, **options)


def stored(engine: Engine) -> list[tuple[str, int, float | None, str | None, int]]:
    """Every sample with its tag name, in (name, ts) order."""
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT t.name, s.ts, s.value, s.text, s.quality FROM samples s JOIN tags t ON t.id = s.tag_id "
                "ORDER BY t.name, s.ts"
            )
        ).all()
    return [tuple(row) for row in rows]  # type: ignore[misc]


def scalar(engine: Engine, sql: str) -> Any:
    """One value."""
    with engine.connect() as conn:
        return conn.execute(text(sql)).scalar()


# ---------------------------------------------------------------------------------------------------------


def test_migrations_create_exactly_the_schema(db_url: str, engine: Engine) -> None:
    upgrade_to_head(db_url)
    upgrade_to_head(db_url)  # idempotent
    assert current_revision(engine) == "0001"
    names = set(inspect(engine).get_table_names())
    assert {"tags", "samples", "events", "commands", "incidents", "energy_intervals", "rollups"} <= names
    with engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata) == []
    pk = inspect(engine).get_pk_constraint("samples")
    assert pk["constrained_columns"] == ["tag_id", "ts"]
    if engine.dialect.name == "sqlite":
        assert "WITHOUT ROWID" in scalar(engine, "SELECT sql FROM sqlite_master WHERE name = 'samples'")


async def test_batches_store_every_accepted_row_once(db_url: str, engine: Engine, tmp_path: Path) -> None:
    historian = fast(db_url, tmp_path, batch_size=400)
    calls: list[int] = []
    original = historian._writer.write_samples

    def counting(conn: Any, rows: Any, *, may_conflict: bool) -> int:
        calls.append(len(rows))
        return original(conn, rows, may_conflict=may_conflict)

    historian._writer.write_samples = counting  # type: ignore[method-assign]
    await historian.start()
    expected = set()
    tags = [f"Lighting/CAB-0001/L-{i:06d}/Level" for i in range(40)]
    for step in range(50):
        ts = T0 + timedelta(seconds=step)
        records = [ValueRecord(tag, float(step * 2 + i), 0, ts) for i, tag in enumerate(tags)]
        historian.submit(records)
        expected |= {(r.tag, to_us(ts), r.value) for r in records}
    assert await historian.flush()
    await historian.stop()
    rows = stored(engine)
    assert len(rows) == 2000 and {(n, ts, v) for n, ts, v, _, _ in rows} == expected
    assert historian.stats().stored == 2000 and historian.stats().queue_high_water >= 400
    assert max(calls) <= 400 and sum(calls) == 2000 and len(calls) == 5  # 2000 rows in batches of 400
    assert scalar(engine, "SELECT tag_class FROM tags WHERE name = 'Lighting/CAB-0001/L-000000/Level'") == "lamp"


async def test_storage_by_exception_end_to_end(db_url: str, engine: Engine, tmp_path: Path) -> None:
    historian = fast(db_url, tmp_path)
    await historian.start()
    level, message = "Lighting/CAB-0001/L-000001/Level", "Signs/VMS-01/Message"
    seq: list[tuple[Any, ...]] = [
        (level, 50.0, 0),
        (level, 50.5, 1),
        (level, 52.0, 2),
        (level, 52.0, 3, BAD),
        (level, 52.0, 4),
    ]
    seq += [(message, "A", 0), (message, "A", 1), (message, "B", 2), ("Lighting/CAB-0001/L-000001/PresenceCount", 3, 0)]
    for tag, value, sec, *quality in seq:
        historian.submit([ValueRecord(tag, value, quality[0] if quality else 0, T0 + timedelta(seconds=sec))])
    assert await historian.flush()
    await historian.stop()
    ts = [to_us(T0 + timedelta(seconds=s)) for s in range(5)]
    assert stored(engine) == [
        (level, ts[0], 50.0, None, 0),
        (level, ts[2], 52.0, None, 0),
        (level, ts[3], 52.0, None, BAD),
        (level, ts[4], 52.0, None, 0),
        (message, ts[0], None, "A", 0),
        (message, ts[2], None, "B", 0),
    ]
    stats = historian.stats()
    assert (stats.received, stats.stored, stats.filtered, stats.not_historized) == (9, 6, 2, 1)


async def test_events_commands_and_incidents(db_url: str, engine: Engine, tmp_path: Path) -> None:
    historian = fast(db_url, tmp_path)
    await historian.start()
    historian.record_event(
        source="Lighting/CAB-0001/L-000001", event_type="LampFailureAlarm", message="lamp failure", severity=700,
        ts=T0, condition="LampFailure", state="Active", data={"level": 50.0},
    )  # fmt: skip
    request = WriteRequest("L-000001", "set_level", {"Level": 40.0}, user="alice", origin="opcua-method")
    historian.record_command(CommandAudit.of(request, WriteResult(), T0, 12.5))
    historian.record_command(
        CommandAudit.of(request, WriteResult(int(Quality.BAD_COMM), "no answer"), T0 + timedelta(seconds=1), 3000.0)
    )
    later = T0 + timedelta(minutes=1)
    historian.upsert_incident("INC-1", kind="accident", lat=47.3, lon=5.0, created=T0, updated=later, status="closed")
    historian.upsert_incident("INC-1", kind="accident", lat=47.3, lon=5.0, created=T0, updated=T0)  # older: loses
    historian.upsert_incident("INC-2", kind="roadworks", lat=47.3, lon=5.0, created=T0, contact=b"\x01secret")
    assert await historian.flush()
    await historian.stop()
    with engine.connect() as conn:
        event = conn.execute(text("SELECT source, event_type, severity, ts, data, state FROM events")).one()
        commands = conn.execute(text('SELECT "user", origin, args, status, message FROM commands ORDER BY ts')).all()
        incidents = conn.execute(text("SELECT id, status, contact FROM incidents ORDER BY id")).all()
    assert event == ("Lighting/CAB-0001/L-000001", "LampFailureAlarm", 700, to_us(T0), '{"level":50.0}', "Active")
    assert [tuple(c) for c in commands] == [
        ("alice", "opcua-method", '{"Level":40.0}', 0, "accepted"),
        ("alice", "opcua-method", '{"Level":40.0}', int(Quality.BAD_COMM), "no answer"),
    ]
    assert [(i, s, bytes(c) if c is not None else None) for i, s, c in incidents] == [
        ("INC-1", "closed", None),
        ("INC-2", "open", b"\x01secret"),
    ]
    stats = historian.stats()
    assert (stats.events, stats.commands) == (1, 2)


# ---------------------------------------------------------------------------------------------------------
# The database goes away under steady ingest
# ---------------------------------------------------------------------------------------------------------


@dataclass
class Link:
    """How the historian reaches the database, and how the test cuts and restores it."""

    url: str
    backend: str
    proxy: TcpProxy | None = None
    lock: sqlite3.Connection | None = None
    path: str = ""

    async def cut(self) -> None:
        """Make the database unusable for the historian."""
        if self.proxy is not None:
            await self.proxy.cut()
        else:  # another process holds the write lock: every write fails with 'database is locked'
            self.lock = sqlite3.connect(self.path, isolation_level=None, timeout=5)
            self.lock.execute("BEGIN EXCLUSIVE")

    async def restore(self) -> None:
        """Give the database back."""
        if self.proxy is not None:
            await self.proxy.restore()
        elif self.lock is not None:
            self.lock.execute("COMMIT")
            self.lock.close()
            self.lock = None


@pytest.fixture
async def link(db_url: str, backend: str) -> AsyncIterator[Link]:
    """SQLite: the file itself (cut = an exclusive lock). PostgreSQL: a TCP proxy that the test cuts."""
    if backend == "sqlite":
        yield Link(db_url, backend, path=db_url.split("///", 1)[1])
        return
    head, tail = db_url.rsplit("@", 1)
    hostport, name = tail.split("/", 1)
    host, port = hostport.split(":")
    proxy = TcpProxy(host, int(port))
    await proxy.start()
    try:
        yield Link(f"{head}@127.0.0.1:{proxy.port}/{name}", backend, proxy=proxy)
    finally:
        await proxy.stop()


async def wait_for(predicate: Any, within_s: float = 10.0) -> None:
    """Poll a condition (every 10 ms) until it holds; fail after within_s."""
    for _ in range(int(within_s / 0.01)):
        if predicate():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"condition not met within {within_s} s")


async def test_database_away_under_steady_ingest_loses_and_duplicates_nothing(
    link: Link, engine: Engine, tmp_path: Path
) -> None:
    historian = fast(link.url, tmp_path)
    await historian.start()
    tags = [f"Lighting/CAB-0002/L-{i:06d}/PowerW" for i in range(25)]
    expected: set[tuple[str, int, float]] = set()
    events = 0

    async def ingest(steps: range) -> None:
        nonlocal events
        for step in steps:
            ts = T0 + timedelta(milliseconds=10 * step)
            records = [ValueRecord(tag, float(step % 100) + i, 0, ts) for i, tag in enumerate(tags)]
            historian.submit(records)
            expected.update((r.tag, to_us(ts), r.value) for r in records)
            if step % 10 == 0:
                historian.record_event(source="Lighting/CAB-0002", event_type="Test", message=f"step {step}", ts=ts)
                events += 1
            await asyncio.sleep(0.005)

    await ingest(range(0, 30))
    assert await historian.flush()
    await link.cut()
    await ingest(range(30, 60))
    await wait_for(lambda: not historian.stats().db_up and historian.stats().journaled > 0)
    await ingest(range(60, 90))
    down = historian.stats()
    await link.restore()
    await ingest(range(90, 120))
    assert await historian.flush(within_s=30)
    await historian.stop()

    stats = historian.stats()
    assert down.journal_backlog_bytes > 0 and stats.replayed > 0 and stats.db_up
    assert stats.journal_backlog_bytes == 0 and stats.rejected == 0
    rows = stored(engine)
    assert len(rows) == len(expected) == 120 * 25
    assert {(n, ts, v) for n, ts, v, _, _ in rows} == expected
    assert scalar(engine, "SELECT count(*) FROM events") == events == 12
    assert scalar(engine, "SELECT count(DISTINCT message) FROM events") == 12
    if link.proxy is not None:
        assert link.proxy.accepted >= 2  # it reconnected through the restored link


async def test_database_away_at_start_then_back(link: Link, engine: Engine, tmp_path: Path) -> None:
    upgrade_to_head(str(engine.url.render_as_string(hide_password=False)))
    await link.cut()
    historian = fast(link.url, tmp_path)
    await historian.start()
    historian.submit([ValueRecord("Traffic/TLC-001/Stage", 3, 0, T0)])
    await wait_for(lambda: historian.stats().journaled == 1)
    assert not historian.stats().db_up
    await link.restore()
    assert await historian.flush(within_s=30)
    await historian.stop()
    assert stored(engine) == [("Traffic/TLC-001/Stage", to_us(T0), 3.0, None, 0)]


async def test_queue_overflow_goes_to_the_journal_and_comes_back(db_url: str, engine: Engine, tmp_path: Path) -> None:
    historian = fast(db_url, tmp_path, queue_size=1000, batch_size=200)
    await historian.start()
    tags = [f"Parking/PK-01/PS-01-{i:04d}/Occupied" for i in range(500)]
    for step in range(6):  # 3000 rows submitted without yielding: the writer cannot drain in between
        historian.submit([ValueRecord(tag, step % 2 == 0, 0, T0 + timedelta(seconds=step)) for tag in tags])
    stats = historian.stats()
    assert stats.overflowed == 2000 and stats.queue_high_water == 1000 and stats.queue_depth == 1000
    assert await historian.flush()
    await historian.stop()
    assert len(stored(engine)) == 3000 and historian.stats().replayed == 2000


async def test_a_crashed_historians_journal_is_replayed_in_order(db_url: str, engine: Engine, tmp_path: Path) -> None:
    journal_dir = tmp_path / "journal"
    journal = Journal(journal_dir)
    level = "Lighting/CAB-0003/L-000001/Level"
    journal.append(KIND_SAMPLES, [[level, to_us(T0) + i, float(i), None, 0] for i in range(3)])
    for n in range(3):
        journal.append(KIND_EVENTS, [_event(f"e{n}", n)])
    newer = incident_row("INC-9", kind="hazard", lat=1.0, lon=2.0, created=T0, status="closed", updated=T0)
    older = incident_row("INC-9", kind="hazard", lat=1.0, lon=2.0, created=T0, updated=T0 - timedelta(seconds=1))
    journal.append(KIND_INCIDENTS, [newer])
    journal.append(KIND_INCIDENTS, [older])
    journal.append(KIND_SAMPLES, [[level, to_us(T0) + 1, 1.0, None, 0]])  # a duplicate (already in the 1st frame)
    journal.close()
    (segment,) = journal_dir.glob("seg-*.jnl")
    torn = encode_frame(KIND_EVENTS, [_event("torn", 99)])
    append_bytes(segment, torn[:-5])  # the crash happened in the middle of this frame

    historian = fast(db_url, tmp_path)
    await historian.start()
    assert await historian.flush()
    await historian.stop()
    assert [row[1:3] for row in stored(engine)] == [(to_us(T0) + i, float(i)) for i in range(3)]
    with engine.connect() as conn:
        messages = conn.execute(text("SELECT message FROM events ORDER BY id")).scalars().all()
        status = conn.execute(text("SELECT status FROM incidents WHERE id = 'INC-9'")).scalar()
    assert messages == ["e0", "e1", "e2"]  # replayed in append order; the torn frame is ignored
    assert status == "closed"  # the newer version wins although the older one was replayed after it
    assert historian.journal.torn_frames == 1 and historian.stats().journal_backlog_bytes == 0


def append_bytes(path: Path, data: bytes) -> None:
    """Append raw bytes to a file."""
    with path.open("ab") as handle:
        handle.write(data)


def _event(message: str, n: int) -> dict[str, Any]:
    """An events row as the journal holds it."""
    return {
        "ts": to_us(T0) + n, "source": "test", "event_type": "Test", "severity": 100, "message": message,
        "condition": None, "state": None, "user": None, "comment": None, "data": json.dumps({"n": n}),
        "uid": f"{n:032x}",
    }  # fmt: skip


async def test_a_refused_row_is_isolated_and_the_writer_goes_on(db_url: str, engine: Engine, tmp_path: Path) -> None:
    historian = fast(db_url, tmp_path)
    await historian.start()
    historian.record_event(source="a", event_type="Test", message="before")
    historian.record_event(source="b", event_type="Test", message="poison", severity=2**70)  # out of any int range
    historian.record_event(source="c", event_type="Test", message="after")
    historian.submit([ValueRecord("Traffic/TLC-001/Stage", 1, 0, T0)])
    assert await historian.flush()
    historian.record_event(source="d", event_type="Test", message="later")
    assert await historian.flush()
    await historian.stop()
    with engine.connect() as conn:
        messages = conn.execute(text("SELECT message FROM events ORDER BY id")).scalars().all()
    assert messages == ["before", "after", "later"]
    assert len(stored(engine)) == 1
    assert historian.stats().rejected == 1 and (tmp_path / "journal" / "rejected.jnl").stat().st_size > 0


async def test_start_and_stop_are_idempotent(db_url: str, tmp_path: Path) -> None:
    historian = fast(db_url, tmp_path)
    await historian.start()
    await historian.start()
    await historian.stop()
    await historian.stop()
