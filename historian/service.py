"""The Historian service: fed by the core without ever blocking it, writes in batches, journals when the DB is away.

Threads: ``submit()``, ``record_event()``, ``record_command()`` and ``upsert_incident()`` run in the event loop
(the filter and two bounded deques, no I/O unless the queue overflows). One writer thread owns the database
connection: each cycle it replays the journal backlog (in append order) and writes the queued batches, one
transaction per batch. When the database is away (connection refused, timeout, any OperationalError) the batch
in hand and everything queued go to the disk journal, and the database is probed again with exponential backoff.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from datetime import datetime
from operator import itemgetter
from pathlib import Path
from typing import Any

import sqlalchemy.exc
from sqlalchemy import Engine

from historian.engine import backend_name, make_engine
from historian.ingest import (
    AuditLike,
    Deadband,
    SampleFilter,
    SampleRow,
    TagInfo,
    TagResolver,
    command_row,
    event_row,
    incident_row,
)
from historian.journal import (
    KIND_COMMANDS,
    KIND_EVENTS,
    KIND_INCIDENTS,
    KIND_SAMPLES,
    KINDS,
    Frame,
    Journal,
    JournalError,
)
from historian.migrations import upgrade_to_head
from historian.writer import BulkWriter, IdRow, writer_for
from scada.model import ValueRecord

log = logging.getLogger(__name__)

_PK = itemgetter(0, 1)  # (tag_id, ts) of a sample row
_CYCLE_BUDGET_S = 0.5  # a writer cycle returns to the loop after this long (stop/flush stay responsive)


@dataclass(frozen=True, slots=True)
class HistorianStats:
    """A snapshot of the historian's counters (published as variables by the core)."""

    received: int  # value records submitted
    stored: int  # sample rows inserted (duplicates ignored by the database are not counted)
    filtered: int  # records not stored: within deadband, unchanged or stale
    not_historized: int  # records of tags that are not historized
    repeated: int  # held values stored again after max_interval_s
    journaled: int  # rows and events written to the disk journal (database away or queue overflow)
    overflowed: int  # of which: queue overflow
    replayed: int  # rows and events read back from the journal into the database
    rejected: int  # rows and events the database refused (kept in rejected.jnl)
    events: int  # events inserted
    commands: int  # command audit rows inserted
    incidents: int  # incident upserts written
    queue_depth: int
    queue_high_water: int
    journal_backlog_bytes: int
    db_up: bool
    last_error: str

    def as_dict(self) -> dict[str, Any]:
        """The counters as a plain dict."""
        return asdict(self)


class _Away(Exception):
    """The database could not be connected to or migrated (carries the cause)."""

    def __init__(self, cause: BaseException) -> None:
        super().__init__(str(cause))
        self.cause = cause


def _is_db_away(exc: BaseException) -> bool:
    """True for errors meaning 'the database cannot be reached or used right now' (retry later)."""
    import psycopg

    if isinstance(exc, (sqlalchemy.exc.OperationalError, sqlalchemy.exc.InterfaceError, sqlalchemy.exc.TimeoutError)):
        return True
    if isinstance(exc, (sqlite3.OperationalError, sqlite3.InterfaceError)):
        return True
    if isinstance(exc, (psycopg.OperationalError, psycopg.InterfaceError)):
        return True
    if isinstance(exc, psycopg.errors.UndefinedTable):  # schema gone: migrate again, then retry
        return True
    return isinstance(exc, (OSError, TimeoutError))


class Historian:
    """The historian service (idempotent start/stop); see the module docstring for its threads and guarantees."""

    def __init__(
        self,
        url: str,
        *,
        journal_dir: Path,
        deadbands: Mapping[str, Deadband] | None = None,
        max_interval_s: float = 900.0,
        queue_size: int = 500_000,
        batch_size: int = 50_000,
        flush_interval_s: float = 1.0,
        retry_min_s: float = 0.5,
        retry_max_s: float = 30.0,
        migrate: bool = True,
        stop_timeout_s: float = 30.0,
        clock: Callable[[], int] | None = None,
        engine_kwargs: Mapping[str, Any] | None = None,
    ) -> None:
        if queue_size < batch_size or batch_size <= 0:
            raise ValueError("need 0 < batch_size <= queue_size")
        self.url = url
        self.backend = backend_name(url)
        self.queue_size = queue_size
        self.batch_size = batch_size
        self.flush_interval_s = flush_interval_s
        self.retry_min_s = retry_min_s
        self.retry_max_s = retry_max_s
        self.migrate = migrate
        self.stop_timeout_s = stop_timeout_s
        self.resolver = TagResolver(deadbands)
        self.filter = SampleFilter(self.resolver, max_interval_s, clock)
        self.journal = Journal(Path(journal_dir))
        self._engine_kwargs = dict(engine_kwargs or {})
        self._engine: Engine | None = None
        self._writer: BulkWriter = writer_for(self.backend)
        self._samples: deque[SampleRow] = deque()
        self._others: deque[tuple[int, dict[str, Any]]] = deque()
        self._ids: dict[str, int] = {}  # tag name -> id (the tags table is append-only)
        self._names: dict[int, str] = {}  # tag id -> name
        self._conn: Any = None  # the writer thread's pooled raw connection
        self._migrated = False
        self._executor: ThreadPoolExecutor | None = None
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._stopping = False
        self._db_up = False
        self._db_known = False
        self._down_since = 0.0
        self._next_probe = 0.0
        self._backoff = retry_min_s
        self._overflowing = False
        self._memory_overflow = False
        # earliest sample ts replayed late, per consumer (rollups and energy must redo from there)
        self._late: dict[str, int | None] = {"rollup": None, "energy": None}
        # counters (each written by one thread only)
        self._inflight = 0  # rows taken from the queues by the writer thread and not yet stored or journaled
        self._high_water = 0
        self._overflowed = 0
        self._journaled = 0
        self._replayed = 0
        self._rejected = 0
        self._stored = 0
        self._events = 0
        self._commands = 0
        self._incidents = 0
        self._last_error = ""

    # -- lifecycle ---------------------------------------------------------------------------------------

    @property
    def engine(self) -> Engine:
        """The engine of the historian database (created on first use; readers may share it)."""
        if self._engine is None:
            self._engine = make_engine(self.url, **self._engine_kwargs)
        return self._engine

    async def start(self) -> None:
        """Start the writer (idempotent); the database need not be reachable: data is journaled until it is."""
        if self._task is not None:
            return
        self._stopping = False
        self._wake = asyncio.Event()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="historian-writer")
        # migrate now when the database is there, so that other services find the schema from the start
        await asyncio.get_running_loop().run_in_executor(self._executor, self._migrate_if_reachable)
        self._task = asyncio.create_task(self._run(), name="historian-writer")
        log.info("historian started on %s (journal %s)", self.backend, self.journal.directory)

    async def stop(self) -> None:
        """Write or journal everything still queued, then stop (idempotent)."""
        if self._task is None:
            return
        self._stopping = True
        self._wake.set()
        try:
            await asyncio.wait_for(asyncio.shield(self._task), self.stop_timeout_s)
        except TimeoutError:
            log.error("historian writer did not finish within %.0f s; cancelling", self.stop_timeout_s)
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._task = None
        executor, self._executor = self._executor, None
        assert executor is not None
        await asyncio.get_running_loop().run_in_executor(executor, self._final_drain)
        executor.shutdown(wait=True)
        log.info("historian stopped: %s", self.stats())

    def _final_drain(self) -> None:
        """In the writer thread at stop: whatever is still queued goes to the journal, then close everything."""
        self._drain_to_journal()
        self.journal.close()
        self._close_conn(invalidate=False)
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None

    # -- feeding (event loop thread) ---------------------------------------------------------------------

    def submit(self, records: Sequence[ValueRecord]) -> None:
        """Take value records from the core (never blocks, never drops): filter, then queue or journal overflow."""
        rows: list[SampleRow] = []
        if self.filter.filter(records, rows):
            self._enqueue_samples(rows)

    def register_tag(
        self,
        name: str,
        *,
        dtype: str = "Double",
        tag_class: str = "system",
        unit: str = "",
        deadband: Deadband | None = None,
        eu_range: tuple[float, float] | None = None,
    ) -> TagInfo:
        """Historize a tag outside the catalog (energy totals, system counters)."""
        info = self.resolver.register(
            name, dtype=dtype, tag_class=tag_class, unit=unit, deadband=deadband, eu_range=eu_range
        )
        self.filter.forget(name)
        return info

    def record_event(
        self,
        *,
        source: str,
        event_type: str,
        message: str = "",
        severity: int = 500,
        ts: datetime | None = None,
        condition: str | None = None,
        state: str | None = None,
        user: str | None = None,
        comment: str | None = None,
        data: Mapping[str, Any] | None = None,
    ) -> None:
        """Queue an event or alarm transition (same guarantees as samples: batched, journaled, exactly once)."""
        row = event_row(
            source=source, event_type=event_type, message=message, severity=severity, ts=ts, condition=condition,
            state=state, user=user, comment=comment, data=data, now_us=self.filter.clock(),
        )  # fmt: skip
        self._enqueue_other(KIND_EVENTS, row)

    def record_command(self, audit: AuditLike) -> None:
        """Queue a command audit record (who, what, when, arguments, the device's answer)."""
        self._enqueue_other(KIND_COMMANDS, command_row(audit))

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
        """Queue the current state of an incident (a later `updated` always wins, whatever the write order)."""
        row = incident_row(
            incident_id, kind=kind, lat=lat, lon=lon, description=description, contact=contact, status=status,
            created=created, closed=closed, timeline=timeline, updated=updated, now_us=self.filter.clock(),
        )  # fmt: skip
        self._enqueue_other(KIND_INCIDENTS, row)

    def _enqueue_samples(self, rows: list[SampleRow]) -> None:
        """Queue rows up to the bound; the overflow goes to the journal."""
        queue = self._samples
        room = self.queue_size - len(queue)
        if len(rows) <= room:
            queue.extend(rows)
            if self._overflowing:
                self._overflowing = False
                log.info("historian queue has room again")
        else:
            if room > 0:
                queue.extend(rows[:room])
            self._overflow(KIND_SAMPLES, self._named(rows[max(room, 0) :]))
        depth = len(queue)
        if depth > self._high_water:
            self._high_water = depth
        if depth >= self.batch_size:
            self._wake.set()

    def _enqueue_other(self, kind: int, row: dict[str, Any]) -> None:
        """Queue an event, command or incident row; the overflow goes to the journal."""
        if len(self._others) < self.queue_size:
            self._others.append((kind, row))
            self._wake.set()
        else:
            self._overflow(kind, [row])

    def _overflow(self, kind: int, items: list[Any]) -> None:
        """The queue is full: journal the items (flushed to the OS now, fsynced by the writer)."""
        if not self._overflowing:
            self._overflowing = True
            log.warning("historian queue full (%d): overflow goes to the disk journal", self.queue_size)
        try:
            self.journal.append(kind, items, sync=False)
        except JournalError as exc:  # the disk refuses too: keep them in memory rather than lose them
            if not self._memory_overflow:
                self._memory_overflow = True
                log.error("historian journal unusable (%s): keeping the overflow in memory", exc)
            if kind == KIND_SAMPLES:
                self._samples.extend(tuple(item) for item in items)
            else:
                self._others.extend((kind, item) for item in items)
            return
        self._overflowed += len(items)

    # -- the writer task (event loop) -------------------------------------------------------------------

    async def _run(self) -> None:
        """Wake on a full batch or every flush interval, sweep, and run one writer cycle in the writer thread."""
        loop = asyncio.get_running_loop()
        more = False
        while True:
            if not more and not self._stopping:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.flush_interval_s)
            self._wake.clear()
            swept: list[SampleRow] = []
            if self.filter.sweep(swept):
                self._enqueue_samples(swept)
            try:
                more = await loop.run_in_executor(self._executor, self._cycle)
            except Exception:  # the writer never dies
                log.exception("historian writer cycle failed")
                more = False
            if self._stopping and (not more or not self._db_up):
                return

    async def flush(self, within_s: float = 30.0) -> bool:
        """Run writer cycles until everything submitted so far is in the database and the journal backlog is
        replayed (True); False if that did not happen within `within_s` (the database is away)."""
        deadline = time.monotonic() + within_s
        loop = asyncio.get_running_loop()
        while self._executor is not None:
            more = await loop.run_in_executor(self._executor, self._cycle)
            # queues first, then in-flight rows: the writer counts a batch in flight before popping it
            if not self._samples and not self._others and not self._inflight and self._db_up and self.journal.empty():
                return True
            if time.monotonic() >= deadline:
                return False
            if not more:
                await asyncio.sleep(0.02)
        return False

    # -- the writer thread --------------------------------------------------------------------------------

    def _cycle(self) -> bool:
        """One round in the writer thread: replay backlog, write queued batches; True if work remains."""
        self.journal.sync()
        if not self._db_up and time.monotonic() < self._next_probe:
            self._drain_to_journal()
            return False
        deadline = time.monotonic() + _CYCLE_BUDGET_S
        backlog = self.journal.backlog_bytes
        try:
            try:
                conn = self._connection()
            except Exception as exc:  # unreachable, or migrations impossible: both mean 'retry later'
                if not _is_db_away(exc):
                    log.exception("historian database unusable")
                raise _Away(exc) from exc
            while time.monotonic() < deadline:
                wrote = self._write_live(conn, deadline)
                if not self.journal.empty():
                    wrote += self._replay(conn)
                if not wrote:
                    break
            self._set_up(backlog)
        except Exception as exc:
            if not isinstance(exc, _Away) and not _is_db_away(exc):
                raise
            self._set_down(exc.cause if isinstance(exc, _Away) else exc)
            self._drain_to_journal()
            return False
        return bool(self._samples or self._others) or not self.journal.empty()

    def _migrate_if_reachable(self) -> None:
        """In the writer thread at start: bring the schema to head; if the database is away, the writer retries."""
        if not self.migrate or self._migrated:
            return
        try:
            upgrade_to_head(self.url, self.engine)
            self._migrated = True
        except Exception as exc:
            log.warning("historian database not reachable at start (%s); data is journaled until it is", exc)

    def _connection(self) -> Any:
        """The writer's DB-API connection (connect and migrate on first use or after a failure)."""
        if self._conn is None:
            if self.migrate and not self._migrated:
                upgrade_to_head(self.url, self.engine)
                self._migrated = True
            proxy = self.engine.raw_connection()
            self._conn = proxy
        return self._conn.driver_connection

    def _close_conn(self, *, invalidate: bool) -> None:
        """Return (or throw away, after an error) the writer's connection."""
        proxy, self._conn = self._conn, None
        if proxy is None:
            return
        try:
            if invalidate:
                proxy.invalidate()
            else:
                proxy.close()
        except Exception as exc:
            log.debug("closing the historian connection: %s", exc)

    def _take(self) -> tuple[list[SampleRow], list[tuple[int, dict[str, Any]]]]:
        """Pop up to batch_size queued samples and events; they count as in flight (for flush) until _done()."""
        n_samples = min(len(self._samples), self.batch_size)
        n_others = min(len(self._others), self.batch_size)
        self._inflight += n_samples + n_others  # before popping: flush() never sees them nowhere
        pop_sample, pop_other = self._samples.popleft, self._others.popleft
        return [pop_sample() for _ in range(n_samples)], [pop_other() for _ in range(n_others)]

    def _done(self, samples: list[SampleRow], others: list[tuple[int, dict[str, Any]]]) -> None:
        """A taken batch is in the database, the journal or back in the queue."""
        self._inflight -= len(samples) + len(others)

    def _write_live(self, conn: Any, deadline: float) -> int:
        """Write queued batches until the queue is empty or the deadline passed; on a DB error the batch in hand
        goes to the journal."""
        written = 0
        while (self._samples or self._others) and (not written or time.monotonic() < deadline):
            samples, others = self._take()
            try:
                try:
                    self._write(conn, samples, others, may_conflict=False)
                except Exception as exc:
                    if _is_db_away(exc):
                        raise
                    self._isolate(conn, samples, others, exc, may_conflict=False)
            except Exception as exc:
                if _is_db_away(exc):  # the whole batch: rows already written are ignored on replay
                    self._journal_batch(samples, others)
                raise
            finally:
                self._done(samples, others)
            written += len(samples) + len(others)
        return written

    def _write(
        self, conn: Any, samples: list[SampleRow], others: Sequence[tuple[int, dict[str, Any]]], *, may_conflict: bool
    ) -> None:
        """One transaction: samples (tags created first, committed on their own), events, commands, incidents."""
        try:
            if samples:
                rows = self._resolve(conn, samples)
                rows.sort(key=_PK)  # primary-key order: B-tree locality (measured: -20 % CPU on SQLite inserts)
                stored = self._writer.write_samples(conn, rows, may_conflict=may_conflict)
            else:
                stored = 0
            counts = {KIND_EVENTS: 0, KIND_COMMANDS: 0, KIND_INCIDENTS: 0}
            if others:
                by_kind: dict[int, list[dict[str, Any]]] = {KIND_EVENTS: [], KIND_COMMANDS: [], KIND_INCIDENTS: []}
                for kind, row in others:
                    by_kind[kind].append(row)
                counts[KIND_EVENTS] = self._writer.write_events(conn, by_kind[KIND_EVENTS])
                counts[KIND_COMMANDS] = self._writer.write_commands(conn, by_kind[KIND_COMMANDS])
                counts[KIND_INCIDENTS] = self._writer.upsert_incidents(conn, by_kind[KIND_INCIDENTS])
            conn.commit()
        except Exception as exc:
            if _is_db_away(exc):
                self._close_conn(invalidate=True)
                if "no such table" in str(exc) or "UndefinedTable" in type(exc).__name__:
                    self._migrated = False
            else:
                with contextlib.suppress(Exception):
                    conn.rollback()
            raise
        self._stored += stored
        self._events += counts[KIND_EVENTS]
        self._commands += counts[KIND_COMMANDS]
        self._incidents += counts[KIND_INCIDENTS]

    def _resolve(self, conn: Any, samples: list[SampleRow]) -> list[IdRow]:
        """Rows with tag ids: names (new tags, journal frames) are resolved, creating the tags that do not exist
        in their own committed transaction (so that every cached id is a committed one)."""
        if not any(row[0].__class__ is str for row in samples):
            return samples  # type: ignore[return-value]
        ids = self._ids
        names = {row[0] for row in samples if row[0].__class__ is str}
        missing = sorted(str(name) for name in names if name not in ids)  # ids in path order: B-tree locality
        if missing:
            self._writer.ensure_tags(conn, [self.resolver.resolve(name) for name in missing], ids)
            conn.commit()
            for name in missing:
                self._names[ids[name]] = name
        self.filter.assign_ids({str(name): ids[str(name)] for name in names})
        return [(ids[t] if t.__class__ is str else t, ts, v, x, q) for t, ts, v, x, q in samples]  # type: ignore[index,misc]

    def _named(self, samples: list[SampleRow]) -> list[list[Any]]:
        """Rows as the journal holds them: with tag names, not ids."""
        names = self._names
        return [[names[t] if t.__class__ is int else t, ts, v, x, q] for t, ts, v, x, q in samples]  # type: ignore[index]

    def _replay(self, conn: Any) -> int:
        """Replay the next journal frames in append order, acknowledging each after its commit."""
        done = 0
        for frame in self.journal.pending(max_frames=8):
            try:
                samples, others = _frame_rows(frame)
            except (ValueError, TypeError, IndexError) as exc:
                log.error("unreadable journal frame (%s): kept in rejected.jnl", exc)
                self._rejected += len(frame.items)
                self.journal.reject(frame)
                continue
            try:
                self._write(conn, samples, others, may_conflict=True)
            except Exception as exc:
                if _is_db_away(exc):
                    raise
                self._isolate(conn, samples, others, exc, may_conflict=True)
            self.journal.acknowledge(frame)
            self._replayed += len(frame.items)
            done += len(frame.items)
            if samples:
                first = min(row[1] for row in samples)
                for consumer, late in self._late.items():
                    if late is None or first < late:
                        self._late[consumer] = first
        if done and self.journal.empty():
            log.info("historian journal replayed: backlog cleared (%d rows replayed in total)", self._replayed)
        return done

    def _journal_batch(self, samples: list[SampleRow], others: list[tuple[int, dict[str, Any]]]) -> bool:
        """Append a batch the database did not take to the journal (fsynced); if the disk refuses, put the batch
        back at the head of the queues (kept in memory, never dropped) and return False."""
        try:
            if samples:
                self.journal.append(KIND_SAMPLES, self._named(samples))
                self._journaled += len(samples)
                samples = []
            while others:
                kind = others[0][0]
                run = 0
                while run < len(others) and others[run][0] == kind:
                    run += 1
                self.journal.append(kind, [row for _, row in others[:run]])
                self._journaled += run
                others = others[run:]
        except JournalError as exc:
            self._last_error = str(exc)
            log.error("historian journal unusable (%s): %d rows stay in memory", exc, len(samples) + len(others))
            self._samples.extendleft(reversed(samples))
            self._others.extendleft(reversed(others))
            return False
        return True

    def _drain_to_journal(self) -> None:
        """Move everything queued to the journal (the database is away or we are stopping)."""
        while self._samples or self._others:
            samples, others = self._take()
            try:
                if not self._journal_batch(samples, others):
                    return
            finally:
                self._done(samples, others)

    def _isolate(
        self,
        conn: Any,
        samples: list[SampleRow],
        others: list[tuple[int, dict[str, Any]]],
        exc: Exception,
        *,
        may_conflict: bool,
    ) -> None:
        """The database refused a batch as invalid (not an outage): bisect it so that only the offending rows
        are rejected (kept in rejected.jnl) and the others are written."""
        if len(samples) + len(others) <= 1:
            log.error("the database refused a row (%s): kept in rejected.jnl", exc)
            if samples:
                self.journal.reject(Frame(0, 0, 0, KIND_SAMPLES, self._named(samples)), acknowledge=False)
            for kind, row in others:
                self.journal.reject(Frame(0, 0, 0, kind, [row]), acknowledge=False)
            self._rejected += len(samples) + len(others)
            return
        halves: list[tuple[list[SampleRow], list[tuple[int, dict[str, Any]]]]]
        if len(samples) > 1:
            middle = len(samples) // 2
            halves = [(samples[:middle], []), (samples[middle:], []), ([], others)]
        else:
            middle = len(others) // 2
            halves = [(samples, []), ([], others[:middle]), ([], others[middle:])]
        for part_samples, part_others in halves:
            if not part_samples and not part_others:
                continue
            try:
                self._write(conn, part_samples, part_others, may_conflict=may_conflict)
            except Exception as inner:
                if _is_db_away(inner):
                    raise
                self._isolate(conn, part_samples, part_others, inner, may_conflict=may_conflict)

    def _set_up(self, backlog: int) -> None:
        """The database answered: log the recovery once."""
        if not self._db_up:
            if self._db_known:
                log.warning(
                    "historian database back after %.1f s; replaying the journal backlog (%d bytes)",
                    time.monotonic() - self._down_since, backlog,
                )  # fmt: skip
            else:
                log.info("historian database connected (%s)", self.backend)
            self._db_up = True
            self._db_known = True
            self._backoff = self.retry_min_s

    def _set_down(self, exc: BaseException) -> None:
        """The database is away: log once, schedule the next probe with exponential backoff."""
        self._last_error = " ".join(f"{type(exc).__name__}: {exc}".split())[:500]
        self._close_conn(invalidate=True)
        if self._db_up or not self._db_known:
            log.warning("historian database unreachable (%s): buffering to the journal", self._last_error)
            self._down_since = time.monotonic()
            self._backoff = self.retry_min_s
        else:
            self._backoff = min(self._backoff * 2, self.retry_max_s)
        self._db_up = False
        self._db_known = True
        self._next_probe = time.monotonic() + self._backoff

    # -- reporting ----------------------------------------------------------------------------------------

    def stats(self) -> HistorianStats:
        """The current counters."""
        c = self.filter.counters
        return HistorianStats(
            received=c.received,
            stored=self._stored,
            filtered=c.filtered,
            not_historized=c.not_historized,
            repeated=c.repeated,
            journaled=self._journaled + self._overflowed,
            overflowed=self._overflowed,
            replayed=self._replayed,
            rejected=self._rejected,
            events=self._events,
            commands=self._commands,
            incidents=self._incidents,
            queue_depth=len(self._samples) + len(self._others),
            queue_high_water=self._high_water,
            journal_backlog_bytes=self.journal.backlog_bytes,
            db_up=self._db_up,
            last_error=self._last_error,
        )

    def take_late_since(self, consumer: str = "rollup") -> int | None:
        """The earliest timestamp (µs) of samples replayed from the journal since this consumer's last call
        ("rollup" or "energy": what was computed from there on must be computed again)."""
        late = self._late.get(consumer)
        self._late[consumer] = None
        return late

    def give_back_late(self, consumer: str, late: int | None) -> None:
        """A consumer whose run failed returns what take_late_since gave it (kept if earlier than a newer one)."""
        if late is None:
            return
        current = self._late.get(consumer)
        self._late[consumer] = late if current is None else min(current, late)


def _frame_rows(frame: Frame) -> tuple[list[SampleRow], list[tuple[int, dict[str, Any]]]]:
    """A journal frame's content as writer input."""
    if frame.kind == KIND_SAMPLES:
        return [(r[0], int(r[1]), r[2], r[3], int(r[4])) for r in frame.items], []
    if frame.kind in KINDS:
        return [], [(frame.kind, row) for row in frame.items]
    raise ValueError(f"unknown journal frame kind {frame.kind}")
