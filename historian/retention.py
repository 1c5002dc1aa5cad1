"""Retention: raw samples rolled up to 15-minute and daily aggregates, then pruned by age per tag class.

Rollups are computed from raw samples, bucket by bucket (UTC-aligned), per tag:
- ``count``: raw samples in the bucket (any quality); a bucket without samples has no row;
- ``min``, ``max``, ``avg``, ``first``, ``last`` (+ their times): over the *usable* samples (a number, not NaN,
  quality not Bad); ``good_count``: usable samples of Good quality;
- ``twa``: time-weighted average with step interpolation: each usable sample's value holds until the next sample,
  but at most ``hold_s`` (default 960 s; the historian stores every value at least every 900 s); the value in force
  at the bucket start (from the last sample before it) counts; a Bad sample ends the held value; twa is the
  integral over the covered time divided by the covered time.
Each run rolls up from a watermark (kept in ``historian_meta``) to the last bucket ended ``settle_s`` ago, at most
``max_buckets`` per run; samples replayed late from the journal move the watermark back (``Historian.take_late_since``).
Re-running a range replaces its rows: idempotent. Raw samples are only pruned once rolled up (the prune cutoff never
passes either watermark).
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import logging
import math
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from itertools import groupby
from typing import Any

from sqlalchemy import Connection, Engine, bindparam, delete, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import OperationalError

from historian.energy import EnergyConfig, align, compute_energy
from historian.schema import (
    DAY_US,
    INTERVAL_15M_US,
    US_PER_S,
    Command,
    EnergyInterval,
    Event,
    Incident,
    Meta,
    Rollup,
    Sample,
    Tag,
    from_us,
    to_us,
)
from historian.writer import bulk_insert
from scada.model import is_good, utcnow

log = logging.getLogger(__name__)

BUCKETS = {"15m": INTERVAL_15M_US, "1d": DAY_US}
_CHUNK = 500  # tag ids per query
Reading = tuple[int, float | None, int]


@dataclass(frozen=True, slots=True)
class RetentionPolicy:
    """How long each kind of data is kept, and how rollups are computed."""

    raw_days: Mapping[str, float] = field(default_factory=lambda: {"default": 90.0})  # per tag class
    rollup_days: Mapping[str, float] = field(default_factory=lambda: {"15m": 3650.0, "1d": 3650.0})
    events_days: float = 730.0
    commands_days: float = 730.0
    incidents_days: float = 730.0  # closed incidents, counted from their closing
    energy_lamp_days: float = 730.0  # per-lamp energy intervals
    energy_days: float = 3650.0  # cabinet, district and city energy intervals
    hold_s: float = 960.0
    settle_s: float = 120.0
    max_buckets: Mapping[str, int] = field(default_factory=lambda: {"15m": 96 * 7, "1d": 31})

    def raw_days_for(self, tag_class: str) -> float:
        """Raw retention of a tag class."""
        return float(self.raw_days.get(tag_class, self.raw_days.get("default", 90.0)))


@dataclass(slots=True)
class RetentionReport:
    """What a retention run did."""

    rolled: dict[str, int] = field(default_factory=dict)  # rollup rows written per bucket
    buckets: dict[str, int] = field(default_factory=dict)  # buckets processed per bucket kind
    deleted: dict[str, int] = field(default_factory=dict)  # rows deleted per table (samples per tag class)
    watermarks: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0

    def __str__(self) -> str:
        return (
            f"rolled {self.rolled} over {self.buckets} buckets, deleted {self.deleted}, "
            f"watermarks {self.watermarks}, {self.seconds:.2f} s"
        )


@dataclass(slots=True)
class Bucket:
    """One rollup row in the making."""

    start_ts: int
    count: int
    min: float | None
    max: float | None
    avg: float | None
    twa: float | None
    first: float | None
    last: float | None
    first_ts: int | None
    last_ts: int | None
    good_count: int


def _usable(value: float | None, quality: int) -> bool:
    """A number, not NaN, quality not Bad."""
    return value is not None and not math.isnan(value) and (quality & 0x80000000) == 0


def aggregate(samples: Sequence[Reading], start: int, width: int, n: int, hold_us: int) -> list[Bucket]:
    """Rollups of one tag over n buckets of `width` µs from `start`; samples sorted by ts (earlier ones give the
    value in force at `start`). Only buckets holding samples are returned."""
    out: list[Bucket] = []
    i, size = 0, len(samples)
    held: tuple[int, float] | None = None
    while i < size and samples[i][0] < start:
        ts, value, quality = samples[i]
        held = (ts, value) if _usable(value, quality) else None  # type: ignore[assignment]
        i += 1
    for k in range(n):
        s = start + k * width
        e = s + width
        integral = 0.0
        covered = 0
        cursor = s
        count = used = good = 0
        total = 0.0
        low = high = first = last = None
        first_ts = last_ts = None
        while i < size and samples[i][0] < e:
            ts, value, quality = samples[i]
            if held is not None:
                stop = min(ts, held[0] + hold_us)
                if stop > cursor:
                    integral += held[1] * (stop - cursor)
                    covered += stop - cursor
            cursor = ts
            count += 1
            if _usable(value, quality):
                assert value is not None
                used += 1
                total += value
                low = value if low is None or value < low else low
                high = value if high is None or value > high else high
                if first is None:
                    first, first_ts = value, ts
                last, last_ts = value, ts
                good += is_good(quality)
                held = (ts, value)
            else:
                held = None
            i += 1
        if held is not None:
            stop = min(e, held[0] + hold_us)
            if stop > cursor:
                integral += held[1] * (stop - cursor)
                covered += stop - cursor
        if count:
            avg = total / used if used else None
            twa = integral / covered if covered else None
            out.append(Bucket(s, count, low, high, avg, twa, first, last, first_ts, last_ts, good))
    return out


# ---------------------------------------------------------------------------------------------------------


def _meta_get(conn: Connection, key: str) -> str | None:
    """A value of historian_meta."""
    return conn.execute(select(Meta.value).where(Meta.key == key)).scalar()


def _meta_set(conn: Connection, key: str, value: str) -> None:
    """Upsert a value of historian_meta."""
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    stmt = dialect.insert(Meta).values(key=key, value=value)
    conn.execute(stmt.on_conflict_do_update(index_elements=[Meta.key], set_={"value": value}))


def _tag_ids(conn: Connection) -> list[int]:
    """Every tag id."""
    return list(conn.execute(select(Tag.id).order_by(Tag.id)).scalars())


def _samples(conn: Connection, ids: Sequence[int], lo: int, hi: int) -> Iterator[tuple[int, list[Reading]]]:
    """(tag_id, samples in [lo, hi)) for the given ids, chunk by chunk (primary-key range scans)."""
    query = (
        select(Sample.tag_id, Sample.ts, Sample.value, Sample.quality)
        .where(Sample.tag_id.in_(bindparam("ids", expanding=True)), Sample.ts >= lo, Sample.ts < hi)
        .order_by(Sample.tag_id, Sample.ts)
    )
    for start in range(0, len(ids), _CHUNK):
        rows = conn.execute(query, {"ids": list(ids[start : start + _CHUNK])}).all()
        for tag_id, group in groupby(rows, key=lambda row: row[0]):
            yield tag_id, [(ts, value, quality) for _, ts, value, quality in group]


def rollup(engine: Engine, bucket: str, start: int, end: int, *, hold_s: float = 960.0) -> int:
    """Compute (replacing) the `bucket` rollups of every tag for the buckets in [start, end) µs; rows written."""
    width = BUCKETS[bucket]
    start -= start % width
    n = max(0, -(-(end - start) // width))
    if n == 0:
        return 0
    hold_us = int(hold_s * US_PER_S)
    written = 0
    with engine.begin() as conn:
        conn.execute(
            delete(Rollup).where(Rollup.bucket == bucket, Rollup.start_ts >= start, Rollup.start_ts < start + n * width)
        )
        batch: list[dict[str, Any]] = []
        for tag_id, readings in _samples(conn, _tag_ids(conn), start - hold_us, start + n * width):
            for b in aggregate(readings, start, width, n, hold_us):
                batch.append(
                    {
                        "tag_id": tag_id, "bucket": bucket, "start_ts": b.start_ts, "count": b.count, "min": b.min,
                        "max": b.max, "avg": b.avg, "twa": b.twa, "first": b.first, "last": b.last,
                        "first_ts": b.first_ts, "last_ts": b.last_ts, "good_count": b.good_count,
                    }
                )  # fmt: skip
            if len(batch) >= 20_000:
                bulk_insert(conn, Rollup.__table__, batch)  # type: ignore[arg-type]
                written += len(batch)
                batch = []
        bulk_insert(conn, Rollup.__table__, batch)  # type: ignore[arg-type]
        written += len(batch)
    return written


def _watermark(conn: Connection, bucket: str) -> int | None:
    """Everything before this (µs) is rolled up for that bucket kind; None before the first run."""
    value = _meta_get(conn, f"rollup_{bucket}_until")
    return int(value) if value is not None else None


def roll_due(
    engine: Engine, policy: RetentionPolicy, now_us: int, late_since: int | None, report: RetentionReport
) -> None:
    """Roll up every bucket kind from its watermark to the last settled bucket (bounded per run)."""
    settle = int(policy.settle_s * US_PER_S)
    for bucket, width in BUCKETS.items():
        with engine.connect() as conn:
            mark = _watermark(conn, bucket)
            if mark is None:  # first run: from the oldest sample there is
                oldest = conn.execute(select(func.min(Sample.ts))).scalar()
                mark = (oldest - oldest % width) if oldest is not None else None
        until = now_us - settle
        until -= until % width
        if mark is None:
            mark = until
        if late_since is not None:
            mark = min(mark, late_since - late_since % width)
        stop = min(until, mark + policy.max_buckets.get(bucket, 96) * width)
        rows = rollup(engine, bucket, mark, stop, hold_s=policy.hold_s) if stop > mark else 0
        with engine.begin() as conn:
            _meta_set(conn, f"rollup_{bucket}_until", str(max(stop, mark)))
        report.rolled[bucket] = report.rolled.get(bucket, 0) + rows
        report.buckets[bucket] = report.buckets.get(bucket, 0) + max(0, (stop - mark) // width)
        report.watermarks[bucket] = from_us(max(stop, mark)).isoformat()


def prune(engine: Engine, policy: RetentionPolicy, now_us: int, report: RetentionReport) -> None:
    """Delete what is older than the policy keeps (raw samples never past the rollup watermarks)."""
    day = DAY_US

    def cutoff(days: float) -> int:
        return now_us - int(days * day)

    with engine.connect() as conn:
        marks = [_watermark(conn, bucket) for bucket in BUCKETS]
        classes: dict[str, list[int]] = {}
        for tag_id, tag_class in conn.execute(select(Tag.id, Tag.tag_class)):
            classes.setdefault(tag_class, []).append(tag_id)
    rolled_until = min((m for m in marks if m is not None), default=None)
    if rolled_until is None or any(m is None for m in marks):
        rolled_until = None  # nothing rolled up yet: keep every raw sample
    for tag_class, ids in sorted(classes.items()):
        if rolled_until is None:
            break
        limit = min(cutoff(policy.raw_days_for(tag_class)), rolled_until)
        deleted = 0
        for start in range(0, len(ids), _CHUNK):
            with engine.begin() as conn:
                result = conn.execute(
                    delete(Sample).where(Sample.tag_id.in_(ids[start : start + _CHUNK]), Sample.ts < limit)
                )
                deleted += max(result.rowcount, 0)
        report.deleted[f"samples:{tag_class}"] = deleted
    with engine.begin() as conn:
        for bucket in BUCKETS:
            limit = cutoff(policy.rollup_days.get(bucket, 3650.0))
            result = conn.execute(delete(Rollup).where(Rollup.bucket == bucket, Rollup.start_ts < limit))
            report.deleted[f"rollups:{bucket}"] = max(result.rowcount, 0)
        for name, table_ts, days in (
            ("events", Event.ts, policy.events_days),
            ("commands", Command.ts, policy.commands_days),
        ):
            result = conn.execute(delete(table_ts.class_).where(table_ts < cutoff(days)))
            report.deleted[name] = max(result.rowcount, 0)
        result = conn.execute(
            delete(Incident).where(Incident.closed_ts.is_not(None), Incident.closed_ts < cutoff(policy.incidents_days))
        )
        report.deleted["incidents"] = max(result.rowcount, 0)
        lamp = conn.execute(
            delete(EnergyInterval).where(
                EnergyInterval.scope == "lamp", EnergyInterval.start_ts < cutoff(policy.energy_lamp_days)
            )
        )
        rest = conn.execute(
            delete(EnergyInterval).where(
                EnergyInterval.scope != "lamp", EnergyInterval.start_ts < cutoff(policy.energy_days)
            )
        )
        report.deleted["energy_intervals"] = max(lamp.rowcount, 0) + max(rest.rowcount, 0)


def run_retention(
    engine: Engine,
    policy: RetentionPolicy | None = None,
    *,
    now_us: int | None = None,
    late_since: int | None = None,
    do_prune: bool = True,
) -> RetentionReport:
    """Roll up what is due, then (optionally) prune; returns and logs what was done."""
    policy = policy or RetentionPolicy()
    began = time.monotonic()
    now = now_us if now_us is not None else time.time_ns() // 1000
    report = RetentionReport()
    roll_due(engine, policy, now, late_since, report)
    if do_prune:
        prune(engine, policy, now, report)
    report.seconds = time.monotonic() - began
    log.info("historian retention: %s", report)
    return report


# ---------------------------------------------------------------------------------------------------------
# APScheduler 3 jobs
# ---------------------------------------------------------------------------------------------------------


async def _tolerant(
    what: str, historian: Any, consumer: str, late: int | None, work: Any, *args: Any, **kw: Any
) -> Any:
    """Run a maintenance job in a thread. The database away (the historian journals meanwhile) is not an error: the
    job is logged as skipped, the late marker it took is given back, and the next run covers the window (each
    run recomputes a trailing window). Afterwards the memory the job's readings took is given back to the system."""
    try:
        return await asyncio.to_thread(work, *args, **kw)
    except OperationalError as exc:
        give_back = getattr(historian, "give_back_late", None)
        if give_back is not None:
            give_back(consumer, late)
        log.warning("historian %s skipped, the database is not available: %s", what, str(exc).splitlines()[0])
        return None
    finally:
        await asyncio.to_thread(release_memory)


def release_memory() -> None:
    """Ask the C allocator to return free heap pages to the system (glibc's malloc_trim; elsewhere nothing): a job
    that read a million readings (freed by reference counting, no cycles) would otherwise leave the process that
    much larger. No gc.collect(): a full collection of the server's heap would stall the event loop."""
    if _LIBC is not None:
        _LIBC.malloc_trim(0)


def _libc() -> Any:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.malloc_trim  # noqa: B018 - glibc only
    except (OSError, AttributeError):
        return None
    return libc


_LIBC = _libc()


def schedule_retention(
    scheduler: Any,
    historian: Any,
    policy: RetentionPolicy | None = None,
    *,
    site: Any = None,
    energy: EnergyConfig | None = None,
    energy_lookback: timedelta = timedelta(hours=1),
) -> list[str]:
    """Add the historian's jobs to an AsyncIOScheduler: rollups every 15 min, prune daily at 00:20 UTC, and
    (with a site) energy intervals every 15 min; the work runs in a thread. Returns the job ids."""
    from apscheduler.triggers.cron import CronTrigger

    policy = policy or RetentionPolicy()
    energy_config = energy or EnergyConfig()
    common = {"max_instances": 1, "coalesce": True, "misfire_grace_time": 600, "replace_existing": True}

    async def rollups() -> RetentionReport | None:
        late = historian.take_late_since("rollup")
        return await _tolerant(
            "rollups",
            historian,
            "rollup",
            late,
            run_retention,
            historian.engine,
            policy,
            late_since=late,
            do_prune=False,
        )

    async def daily() -> RetentionReport | None:
        late = historian.take_late_since("rollup")
        return await _tolerant(
            "pruning",
            historian,
            "rollup",
            late,
            run_retention,
            historian.engine,
            policy,
            late_since=late,
            do_prune=True,
        )

    scheduler.add_job(rollups, CronTrigger(minute="2,17,32,47", timezone="UTC"), id="historian-rollups", **common)
    scheduler.add_job(daily, CronTrigger(hour=0, minute=20, timezone="UTC"), id="historian-prune", **common)
    ids = ["historian-rollups", "historian-prune"]
    if site is not None:

        async def energy_job() -> Any:
            now = utcnow()
            start = now - energy_lookback
            late = historian.take_late_since("energy")
            if late is not None:
                start = min(start, max(from_us(late), now - timedelta(days=7)))
            settled = to_us(now - timedelta(seconds=energy_config.max_gap_s))
            end = from_us(align(settled, energy_config.interval_us))
            return await _tolerant(
                "energy intervals", historian, "energy", late, compute_energy, historian.engine, site, start, end,
                energy_config,
            )  # fmt: skip

        scheduler.add_job(energy_job, CronTrigger(minute="3,18,33,48", timezone="UTC"), id="historian-energy", **common)
        ids.append("historian-energy")
    return ids
