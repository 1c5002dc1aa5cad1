"""Historian benchmark, query part: a one-year trend of one tag (a sample a minute) downsampled for a plot.

Goal: 525,600 samples downsampled to 2,000 buckets (first/min/max/last each: a 4,000-pixel plot) in <= 200 ms on
SQLite; PostgreSQL is reported. Also timed: the same from raw samples only (no rollups), per-day aggregates over
the year (SQL GROUP BY + time weighting), one day of raw values, and the OPC UA-sized processed read (a year of
1-hour averages). Each figure is the median of --repeat warm runs (the first, cold run is printed too).

Usage: .venv/bin/python bench/historian_query.py [--pg postgresql://postgres@127.0.0.1:5432/postgres] [--no-pg]
The SQLite database is a temporary file; the PostgreSQL one a scratch database created and dropped. Rollups (15 min
and 1 day, Good values) are computed here from the generated samples, as the historian's rollup job would.
"""

from __future__ import annotations

import argparse
import math
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlalchemy import Engine, create_engine, insert, text  # noqa: E402

from historian import queries as q  # noqa: E402
from historian import trend  # noqa: E402
from historian.aggregates import Interpolation  # noqa: E402
from historian.engine import make_engine  # noqa: E402
from historian.migrations import upgrade_to_head  # noqa: E402
from historian.schema import DAY_US, INTERVAL_15M_US, US_PER_S  # noqa: E402

GOAL_MS = 200.0
YEAR_START = 1_735_689_600 * US_PER_S  # 2025-01-01T00:00:00Z
MINUTES = 525_600
BUCKETS = 2_000
TAG = "Lighting/CAB-0042/L-004113/PowerW"


def year_of_samples(seed: int = 1) -> list[tuple[int, float, int]]:
    """(ts, value, quality): a lamp's power every minute for a year (night on, dimming, noise, rare comm losses)."""
    rnd = random.Random(seed)
    rows = []
    for minute in range(MINUTES):
        ts = YEAR_START + minute * 60 * US_PER_S
        hour = (minute // 60) % 24 + (minute % 60) / 60
        night = hour >= 18 or hour < 7
        level = (0.5 if 0 <= hour < 5 else 1.0) if night else 0.0
        value = round(level * 120 + rnd.gauss(0, 1.5) + 2 * math.sin(minute / 5000), 2)
        quality = 0x80050000 if rnd.random() < 0.001 else 0
        rows.append((ts, value, quality))
    return rows


def rollups(rows: list[tuple[int, float, int]], tag_id: int, name: str, size: int) -> list[dict[str, Any]]:
    """Rollup rows of one bucket size: count, Good count, min/max/avg/first/last of Good values, step TWA."""
    out = []
    i = 0
    while i < len(rows):
        start = rows[i][0] - rows[i][0] % size
        members = []
        while i < len(rows) and rows[i][0] < start + size:
            members.append(rows[i])
            i += 1
        good = [r for r in members if r[2] == 0]
        values = [r[1] for r in good]
        out.append(
            {
                "tag_id": tag_id,
                "bucket": name,
                "start_ts": start,
                "count": len(members),
                "good_count": len(good),
                "min": min(values, default=None),
                "max": max(values, default=None),
                "avg": sum(values) / len(values) if values else None,
                "twa": sum(values) / len(values) if values else None,  # regular samples: TWA == mean
                "first": good[0][1] if good else None,
                "last": good[-1][1] if good else None,
                "first_ts": good[0][0] if good else None,
                "last_ts": good[-1][0] if good else None,
            }
        )
    return out


def load(engine: Engine, rows: list[tuple[int, float, int]]) -> float:
    """Insert the tag, its samples and rollups; returns the seconds taken."""
    started = time.perf_counter()
    with engine.begin() as conn:
        conn.execute(insert(q.tags), [{"id": 1, "name": TAG, "dtype": "Double", "tag_class": "bench"}])
        batch = 50_000
        for i in range(0, len(rows), batch):
            conn.execute(
                insert(q.samples),
                [
                    {"tag_id": 1, "ts": ts, "value": v, "text": None, "quality": qual}
                    for ts, v, qual in rows[i : i + batch]
                ],
            )
        conn.execute(insert(q.rollups), rollups(rows, 1, "15m", INTERVAL_15M_US))
        conn.execute(insert(q.rollups), rollups(rows, 1, "1d", DAY_US))
    with engine.connect() as conn:
        conn.execute(text("ANALYZE"))
        conn.commit()
    return time.perf_counter() - started


def timed(engine: Engine, action: Callable[[Any], Any], repeat: int) -> tuple[float, float, float, Any]:
    """(cold ms, median warm ms, median warm CPU ms of this process, last result), a fresh connection each run.

    The CPU figure is what the wall time would be on an idle machine for SQLite (in-process); for PostgreSQL it
    leaves out the server's work.
    """
    walls, cpus = [], []
    result = None
    for _ in range(repeat + 1):
        with engine.connect() as conn:
            started, cpu = time.perf_counter(), time.process_time()
            result = action(conn)
            walls.append((time.perf_counter() - started) * 1000)
            cpus.append((time.process_time() - cpu) * 1000)
    return walls[0], statistics.median(walls[1:]), statistics.median(cpus[1:]), result


def run(label: str, engine: Engine, repeat: int) -> dict[str, float]:
    """Load a year and time the queries; prints one line per figure."""
    rows = year_of_samples()
    seconds = load(engine, rows)
    print(f"\n{label}: loaded {len(rows):,} samples + rollups in {seconds:.1f} s")
    end = YEAR_START + MINUTES * 60 * US_PER_S
    pixels = 2 * BUCKETS
    figures: dict[str, float] = {}
    cases: list[tuple[str, Callable[[Any], Any]]] = [
        ("trend, year -> 2,000 buckets (rollups)", lambda c: trend.downsample(c, 1, YEAR_START, end, pixels)),
        (
            "trend, year -> 2,000 buckets (raw only)",
            lambda c: trend.downsample(c, 1, YEAR_START, end, pixels, use_rollups=False),
        ),
        (
            "trend, one week -> 2,000 buckets (raw)",
            lambda c: trend.downsample(c, 1, YEAR_START, YEAR_START + 7 * DAY_US, pixels),
        ),
        (
            "aggregate, year by day (avg, twa, min, max...)",
            lambda c: q.aggregate(c, 1, YEAR_START, end, 86_400, hold_until=end),
        ),
        (
            "bucket stats, year by hour (sloped)",
            lambda c: q.bucket_stats(c, 1, YEAR_START, end, 3600 * US_PER_S, interpolation=Interpolation.SLOPED),
        ),
        ("raw, one day (1,440 values)", lambda c: q.read_raw(c, 1, YEAR_START, YEAR_START + DAY_US)),
    ]
    for name, action in cases:
        cold, warm, cpu, result = timed(engine, action, repeat)
        size = len(result.points) if isinstance(result, q.RawPage) else len(result)
        figures[name] = warm
        print(f"  {name:<48} {warm:8.1f} ms  cpu {cpu:7.1f} ms  cold {cold:7.1f} ms  {size:>6} rows")
    return figures


def main() -> int:
    """Run the benchmark on SQLite and (unless --no-pg) PostgreSQL; exit 1 when the SQLite goal is missed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432/postgres", help="admin URL")
    parser.add_argument("--no-pg", action="store_true")
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    goal = "trend, year -> 2,000 buckets (rollups)"
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{Path(folder) / 'historian.db'}"
        upgrade_to_head(url)
        engine = make_engine(url)
        try:
            sqlite = run("SQLite (WAL file)", engine, args.repeat)
        finally:
            engine.dispose()
    if not args.no_pg:
        name = f"bench_query_{uuid.uuid4().hex[:8]}"
        admin = create_engine(args.pg.replace("postgresql://", "postgresql+psycopg://"), isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f"CREATE DATABASE {name}"))
        try:
            url = admin.url.set(database=name).render_as_string(hide_password=False)
            upgrade_to_head(url)
            engine = make_engine(url)
            try:
                run("PostgreSQL", engine, args.repeat)
            finally:
                engine.dispose()
        finally:
            with admin.connect() as conn:
                conn.execute(text(f"DROP DATABASE {name} WITH (FORCE)"))
            admin.dispose()
    verdict = "met" if sqlite[goal] <= GOAL_MS else "MISSED"
    load = os.getloadavg()[0]
    print(f"\ngoal: {goal} <= {GOAL_MS:.0f} ms on SQLite: {sqlite[goal]:.1f} ms, {verdict}")
    print(f"(load average {load:.1f} on {os.cpu_count()} CPUs: with other work running, compare the cpu figures)")
    return 0 if sqlite[goal] <= GOAL_MS else 1


if __name__ == "__main__":
    raise SystemExit(main())
