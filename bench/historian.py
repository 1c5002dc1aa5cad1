"""Historian benchmark, ingest part: rows/s through the Historian vs raw sqlite3.executemany and raw psycopg COPY.

Usage: .venv/bin/python bench/historian.py [--rows 1000000] [--pg postgresql://postgres@127.0.0.1:5432/postgres]
Each backend is measured in the same run on a fresh database (a temporary SQLite file; a scratch PostgreSQL
database created and dropped), with realistic lamp tags (34,000 lamps x Level/PowerW/EnergyKWh/On...).
Three figures per backend: the raw driver (one bulk call, one transaction), the bulk writer alone (the writer
thread's batches: tag ids, one transaction per batch) and end to end (Historian.submit() of ValueRecords, deadband
filter, queue, writer thread, flush) — the end-to-end figure is the one held against the goals.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sqlite3
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from historian.engine import make_engine
from historian.migrations import upgrade_to_head
from historian.service import Historian
from historian.writer import PostgresWriter, SqliteWriter
from scada.model import ValueRecord

GOALS = {"sqlite": (300_000, 0.6), "postgresql": (200_000, 0.8)}
VARS = ("Level", "PowerW", "EnergyKWh", "On", "LevelSetpoint", "BurningHours")
Rate = tuple[float, float]  # rows/s on the wall clock, rows/s of this process's CPU time


def make_records(rows: int, lamps: int = 34_000) -> tuple[list[ValueRecord], list[list[ValueRecord]]]:
    """A first poll of every tag (the warm-up: it creates the tags), then poll batches totalling `rows` records,
    every value changing beyond its deadband (all are stored)."""
    tags = [f"Lighting/CAB-{n // 100:04d}/L-{n:06d}/{var}" for n in range(lamps) for var in VARS]
    t0 = datetime.now(UTC).replace(microsecond=0)  # near now: the max-interval sweep has nothing to repeat
    polls: list[list[ValueRecord]] = []
    produced = -len(tags)
    poll = 0
    while produced < rows:
        ts = t0 + timedelta(seconds=poll)
        take = min(len(tags), rows - produced)
        batch = []
        for i in range(take):
            tag = tags[i]
            if tag.endswith("/On"):
                value: object = poll % 2 == 0
            elif tag.endswith("BurningHours"):
                value = 1000 + poll
            else:
                value = float((poll * 7 + i) % 100) + poll * 0.01
            batch.append(ValueRecord(tag, value, 0, ts))
        polls.append(batch)
        produced += take
        poll += 1
    return polls[0], polls[1:]


def timed(label: str, rows: int, action: Callable[[], object]) -> Rate:
    """Run an action; print and return its wall and CPU rates."""
    wall, cpu = time.perf_counter(), time.process_time()
    action()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    print(f"  {label:<46} {rows:>9,} rows {wall:6.2f} s = {rows / wall:>9,.0f} rows/s  (CPU {cpu:5.2f} s)")
    return rows / wall, rows / cpu


def id_rows(batches: list[list[ValueRecord]], ids: dict[str, int]) -> list[tuple[int, int, float, None, int]]:
    """The records as sample rows with integer tag ids (what the raw drivers insert)."""
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    out: list[tuple[int, int, float, None, int]] = []
    for batch in batches:
        ts = (batch[0].source_ts - epoch) // timedelta(microseconds=1)
        out.extend((ids[r.tag], ts, float(r.value), None, 0) for r in batch)
    return out


def tag_ids(batch: list[ValueRecord]) -> dict[str, int]:
    """Stable ids for the benchmark's tags (the raw runs insert them into `tags` before timing)."""
    return {r.tag: i for i, r in enumerate(batch, start=1)}


class HistorianRun:
    """Ingest through the Historian: the warm-up poll (tag creation) first, then the timed polls."""

    def __init__(self, url: str, warm: list[ValueRecord], polls: list[list[ValueRecord]], batch_size: int) -> None:
        self.url, self.warm, self.polls, self.batch_size = url, warm, polls, batch_size
        self.tag_creation_s = 0.0

    def run(self) -> Rate:
        """Run it; returns the timed part's rates."""
        return asyncio.run(self._run())

    async def _run(self) -> Rate:
        journal = Path(tempfile.mkdtemp(prefix="cityscada-bench-journal-"))
        historian = Historian(self.url, journal_dir=journal, batch_size=self.batch_size, queue_size=2_000_000)
        await historian.start()
        try:
            started = time.perf_counter()
            historian.submit(self.warm)
            if not await historian.flush(within_s=600):
                raise RuntimeError(f"historian did not flush: {historian.stats()}")
            self.tag_creation_s = time.perf_counter() - started
            rows = sum(len(batch) for batch in self.polls)

            async def ingest() -> None:
                for batch in self.polls:
                    historian.submit(batch)
                    await asyncio.sleep(0)
                if not await historian.flush(within_s=600):
                    raise RuntimeError(f"historian did not flush: {historian.stats()}")

            wall, cpu = time.perf_counter(), time.process_time()
            await ingest()
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            print(
                f"  {'Historian.submit -> flush (end to end)':<46} {rows:>9,} rows {wall:6.2f} s = "
                f"{rows / wall:>9,.0f} rows/s  (CPU {cpu:5.2f} s)"
            )
            stats = historian.stats()
            if stats.journaled or stats.rejected or stats.stored != rows + len(self.warm):
                raise RuntimeError(f"unexpected historian counters: {stats}")
            print(
                f"  (warm-up: {len(self.warm):,} records creating {len(self.warm):,} tags: {self.tag_creation_s:.2f} s)"
            )
            return rows / wall, rows / cpu
        finally:
            await historian.stop()


def insert_tags(conn: Any, ids: dict[str, int], mark: str) -> None:
    """Create the tags rows with the given ids (DB-API connection)."""
    cur = conn.cursor()
    cur.executemany(
        f"INSERT INTO tags (id, name, dtype, tag_class) VALUES ({mark}, {mark}, 'Double', 'lamp')",
        [(i, name) for name, i in ids.items()],
    )
    conn.commit()


def count(url: str) -> int:
    """Rows in samples."""
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return int(conn.exec_driver_sql("SELECT count(*) FROM samples").scalar() or 0)
    finally:
        engine.dispose()


def bench_sqlite(warm: list[ValueRecord], polls: list[list[ValueRecord]], batch_size: int) -> dict[str, Rate]:
    """Raw sqlite3.executemany vs the bulk writer vs the Historian, each into a fresh migrated file."""
    print("SQLite (file, WAL, synchronous=FULL)")
    tmp = Path(tempfile.mkdtemp(prefix="cityscada-bench-"))
    ids = tag_ids(warm)
    data = id_rows(polls, ids)
    rows = len(data)
    results: dict[str, Rate] = {}

    raw_url = f"sqlite:///{tmp / 'raw.db'}"
    upgrade_to_head(raw_url)
    raw = sqlite3.connect(tmp / "raw.db")
    raw.execute("PRAGMA journal_mode=WAL")
    raw.execute("PRAGMA synchronous=FULL")
    raw.execute("PRAGMA cache_size=-65536")
    insert_tags(raw, ids, "?")

    def raw_insert() -> None:
        raw.executemany("INSERT INTO samples (tag_id, ts, value, text, quality) VALUES (?, ?, ?, ?, ?)", data)
        raw.commit()

    results["raw"] = timed("raw sqlite3.executemany (1 transaction)", rows, raw_insert)
    raw.close()
    assert count(raw_url) == rows

    writer_url = f"sqlite:///{tmp / 'writer.db'}"
    upgrade_to_head(writer_url)
    engine = make_engine(writer_url)
    proxy = engine.raw_connection()
    conn = proxy.driver_connection
    assert conn is not None
    insert_tags(conn, ids, "?")
    writer = SqliteWriter()

    def writer_insert() -> None:
        for start in range(0, len(data), batch_size):
            writer.write_samples(conn, data[start : start + batch_size], may_conflict=False)
            conn.commit()

    results["writer"] = timed(f"SqliteWriter, {batch_size:,}-row transactions", rows, writer_insert)
    proxy.close()
    engine.dispose()

    url = f"sqlite:///{tmp / 'historian.db'}"
    results["historian"] = HistorianRun(url, warm, polls, batch_size).run()
    if count(url) != rows + len(warm):
        raise RuntimeError(f"historian stored {count(url)} rows, expected {rows + len(warm)}")
    for path in tmp.iterdir():
        if path.is_file():
            path.unlink()
    return results


def bench_postgres(
    warm: list[ValueRecord], polls: list[list[ValueRecord]], batch_size: int, admin_url: str
) -> dict[str, Rate] | None:
    """Raw psycopg binary COPY vs the bulk writer (direct and staged) vs the Historian, on a scratch database."""
    import psycopg

    try:
        admin = psycopg.connect(admin_url, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as exc:
        print(f"PostgreSQL skipped: {exc}")
        return None
    name = f"cityscada_bench_{uuid.uuid4().hex[:8]}"
    admin.execute(f"CREATE DATABASE {name}")
    url = f"{admin_url.rsplit('/', 1)[0]}/{name}"
    print("PostgreSQL (local server, binary COPY)")
    results: dict[str, Rate] = {}
    try:
        upgrade_to_head(url)
        ids = tag_ids(warm)
        data = id_rows(polls, ids)
        rows = len(data)
        with psycopg.connect(url) as conn:
            insert_tags(conn, ids, "%s")

            def raw_copy() -> None:
                sql = "COPY samples (tag_id, ts, value, text, quality) FROM STDIN (FORMAT BINARY)"
                with conn.cursor() as cur, cur.copy(sql) as cp:
                    cp.set_types(["int4", "int8", "float8", "text", "int8"])
                    for row in data:
                        cp.write_row(row)
                conn.commit()

            results["raw"] = timed("raw psycopg COPY (1 transaction)", rows, raw_copy)
            for key, label, writer, conflict in (
                ("writer", "PostgresWriter direct COPY", PostgresWriter(direct=True), False),
                ("writer_staged", "PostgresWriter staged COPY + ON CONFLICT", PostgresWriter(direct=False), True),
            ):
                conn.execute("TRUNCATE samples")
                conn.commit()

                def writer_insert(writer: PostgresWriter = writer, conflict: bool = conflict) -> None:
                    for start in range(0, len(data), batch_size):
                        writer.write_samples(conn, data[start : start + batch_size], may_conflict=conflict)
                        conn.commit()

                results[key] = timed(f"{label}, {batch_size // 1000}k-row tx", rows, writer_insert)
            conn.execute("TRUNCATE samples")
            conn.execute("TRUNCATE tags CASCADE")
            conn.commit()
        results["historian"] = HistorianRun(url, warm, polls, batch_size).run()
        if count(url) != rows + len(warm):
            raise RuntimeError(f"historian stored {count(url)} rows, expected {rows + len(warm)}")
    finally:
        admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        admin.close()
    return results


def verdict(backend: str, results: dict[str, Rate]) -> str:
    """The end-to-end figure against the goals (wall clock; CPU-time ratios for a loaded machine)."""
    goal_rate, goal_ratio = GOALS[backend]
    rate, cpu_rate = results["historian"]
    ratio = rate / results["raw"][0]
    ok = rate >= goal_rate and ratio >= goal_ratio
    return (
        f"  => {backend}: {rate:,.0f} rows/s (goal >= {goal_rate:,}), {ratio:.2f}x raw (goal >= {goal_ratio}) "
        f"[{'OK' if ok else 'BELOW GOAL'}]; CPU-time ratio {cpu_rate / results['raw'][1]:.2f}x; "
        f"bulk writer alone {results['writer'][0] / results['raw'][0]:.2f}x raw"
    )


def main() -> None:
    """Run the ingest benchmark and print the figures and ratios."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--batch-size", type=int, default=50_000)
    parser.add_argument("--lamps", type=int, default=34_000)
    parser.add_argument(
        "--pg", default=os.environ.get("CITYSCADA_PG_ADMIN", "postgresql://postgres@127.0.0.1:5432/postgres")
    )
    parser.add_argument("--skip-pg", action="store_true")
    args = parser.parse_args()
    warm, polls = make_records(args.rows, args.lamps)
    print(
        f"{args.rows:,} rows of {len(warm):,} lamp tags in {len(polls)} polls (after a warm-up poll); load {os.getloadavg()[0]:.1f}"
    )
    lines = [verdict("sqlite", bench_sqlite(warm, polls, args.batch_size))]
    if not args.skip_pg:
        pg = bench_postgres(warm, polls, args.batch_size, args.pg)
        if pg is not None:
            lines.append(verdict("postgresql", pg))
            lines.append(
                f"  => staged COPY + ON CONFLICT runs at {pg['writer_staged'][0] / pg['writer'][0]:.2f}x the direct COPY"
            )
    print("\n".join(lines))


if __name__ == "__main__":
    main()
