"""Retention: rollups checked by hand, watermarks and late data, pruning per tag class, the scheduled jobs."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta

import pytest
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from sqlalchemy import Engine, func, insert, select

from historian.engine import make_engine
from historian.migrations import upgrade_to_head
from historian.retention import Bucket, RetentionPolicy, aggregate, rollup, run_retention, schedule_retention
from historian.schema import DAY_US, Command, Event, Rollup, Sample, Tag, to_us
from scada.model import Quality

T = datetime(2026, 3, 10, tzinfo=UTC)
M = 60_000_000  # a minute in µs
BAD = int(Quality.BAD_COMM)
UNCERTAIN = int(Quality.UNCERTAIN_LAST_USABLE)


def at(minutes: float) -> int:
    """T + minutes in µs."""
    return to_us(T) + int(minutes * M)


# ----------------------------------------------------------------------------------------------- pure


def test_aggregate_by_hand() -> None:
    samples = [
        (at(-10), 10.0, 0),  # in force at 0'
        (at(5), 20.0, 0),
        (at(10), 20.0, BAD),  # ends the held value
        (at(12), 30.0, UNCERTAIN),  # usable, not Good
        (at(40), 5.0, 0),
    ]
    got = aggregate(samples, at(0), 15 * M, 3, 60 * M)
    # 0'-15': 10 x 5' + 20 x 5' + (Bad: nothing for 2') + 30 x 3' = 240 over 13'
    # 15'-30': no sample (no row); 30'-45': 30 held from 12' until 40' (10'), then 5 for 5' = 325 over 15'
    assert got == [
        Bucket(at(0), 3, 20.0, 30.0, 25.0, pytest.approx(240 / 13), 20.0, 30.0, at(5), at(12), 1),  # type: ignore[arg-type]
        Bucket(at(30), 1, 5.0, 5.0, 5.0, pytest.approx(325 / 15), 5.0, 5.0, at(40), at(40), 1),  # type: ignore[arg-type]
    ]


def test_aggregate_hold_limit_and_unusable_buckets() -> None:
    samples = [(at(0), 8.0, 0), (at(20), None, BAD)]
    got = aggregate(samples, at(0), 15 * M, 2, 10 * M)  # a value holds 10' at most
    assert got[0].twa == 8.0 and got[0].count == 1
    assert got[1] == Bucket(at(15), 1, None, None, None, None, None, None, None, None, 0)


# ----------------------------------------------------------------------------------------------- database


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    """A migrated database with a lamp tag (1), a parking sensor tag (2) and a string tag (3)."""
    upgrade_to_head(db_url)
    engine = make_engine(db_url)
    with engine.begin() as conn:
        conn.execute(
            insert(Tag),
            [
                {"id": 1, "name": "Lighting/CAB-0001/L-000001/Level", "dtype": "Double", "tag_class": "lamp"},
                {
                    "id": 2,
                    "name": "Parking/PK-01/PS-01-0001/Occupied",
                    "dtype": "Boolean",
                    "tag_class": "parking_sensor",
                },
                {"id": 3, "name": "Signs/VMS-01/Message", "dtype": "String", "tag_class": "sign"},
            ],
        )
    yield engine
    engine.dispose()


def add(engine: Engine, tag_id: int, points: Sequence[tuple[int, float | None, int]], text: str | None = None) -> None:
    """Insert samples."""
    with engine.begin() as conn:
        conn.execute(
            insert(Sample),
            [{"tag_id": tag_id, "ts": ts, "value": v, "text": text, "quality": q} for ts, v, q in points],
        )


def rollups(engine: Engine, bucket: str) -> list[tuple[int, int, int, float | None, float | None]]:
    """(tag_id, start_ts, count, avg, twa) rows."""
    with engine.connect() as conn:
        rows = conn.execute(
            select(Rollup.tag_id, Rollup.start_ts, Rollup.count, Rollup.avg, Rollup.twa)
            .where(Rollup.bucket == bucket)
            .order_by(Rollup.tag_id, Rollup.start_ts)
        ).all()
    return [(a, b, c, None if d is None else round(d, 9), None if e is None else round(e, 9)) for a, b, c, d, e in rows]


def test_rollups_in_the_database_by_hand(engine: Engine) -> None:
    add(engine, 1, [(at(-10), 10.0, 0), (at(5), 20.0, 0), (at(10), 20.0, BAD), (at(12), 30.0, UNCERTAIN)])
    add(engine, 2, [(at(0), 1.0, 0), (at(7.5), 0.0, 0), (at(24 * 60 - 1), 1.0, 0)])
    add(engine, 3, [(at(1), None, 0)], text="HELLO")
    assert rollup(engine, "15m", at(0), at(30), hold_s=3600) == 3
    assert rollups(engine, "15m") == [
        (1, at(0), 3, 25.0, round(240 / 13, 9)),  # as in test_aggregate_by_hand
        (2, at(0), 2, 0.5, 0.5),  # 1 for 7.5', then 0 for 7.5'
        (3, at(0), 1, None, None),  # strings: counted, no numeric aggregate
    ]
    # 15'-30': tag 2 has no sample there: no row (its 0 holds, but a bucket row needs a sample)
    assert rollup(engine, "1d", at(0), at(24 * 60), hold_s=3600) == 3
    day = {row[0]: row for row in rollups(engine, "1d")}
    # sensor: 1 for 7.5', 0 until 60' after 7.5' (hold), unknown until 23:59, then 1 for 1' -> (7.5 + 1) / 68.5
    assert day[2] == (2, at(0), 3, round(2 / 3, 9), round(8.5 / 68.5, 9))
    with engine.connect() as conn:
        first, last, first_ts, last_ts = conn.execute(
            select(Rollup.first, Rollup.last, Rollup.first_ts, Rollup.last_ts).where(
                Rollup.tag_id == 1, Rollup.bucket == "1d"
            )
        ).one()
    assert (first, last, first_ts, last_ts) == (20.0, 30.0, at(5), at(12))
    assert rollup(engine, "15m", at(0), at(30), hold_s=3600) == 3  # idempotent: replaced, not added
    assert len(rollups(engine, "15m")) == 3


def test_watermark_late_data_and_pruning_per_class(engine: Engine) -> None:
    now = to_us(T) + 100 * DAY_US  # 100 days after T
    old, recent = to_us(T), now - 10 * DAY_US
    add(engine, 1, [(old + i * M, float(i), 0) for i in range(10)] + [(recent, 1.0, 0)])
    add(engine, 2, [(old, 1.0, 0), (now - 40 * DAY_US, 0.0, 0), (recent, 1.0, 0)])
    with engine.begin() as conn:
        conn.execute(insert(Event), [{"ts": ts, "source": "s", "event_type": "E", "severity": 1, "message": ""}
                                     for ts in (now - 800 * DAY_US, now - DAY_US)])  # fmt: skip
        conn.execute(insert(Command), [{"ts": ts, "origin": "o", "device_id": "d", "action": "a", "args": "{}",
                                        "status": 0, "message": ""} for ts in (now - 731 * DAY_US, now)])  # fmt: skip
    policy = RetentionPolicy(raw_days={"default": 90, "parking_sensor": 30}, max_buckets={"15m": 96 * 200, "1d": 200})
    report = run_retention(engine, policy, now_us=now)
    # everything was rolled up first (the first run starts at the oldest sample), then pruned
    assert report.rolled["15m"] == 1 + 1 + 3  # tag 1: 10 samples in one bucket + 1; tag 2: 3 buckets
    assert report.rolled["1d"] == 5
    assert report.deleted["samples:lamp"] == 10  # older than 90 days
    assert report.deleted["samples:parking_sensor"] == 2  # older than 30 days
    assert report.deleted["events"] == 1 and report.deleted["commands"] == 1
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(Sample)).scalar() == 2
        assert conn.execute(select(func.count()).select_from(Rollup)).scalar() == 10  # rollups outlive raw data

    # samples replayed late into an already rolled-up range are rolled up again from there
    late = now - 5 * DAY_US
    add(engine, 1, [(late, 7.0, 0)])
    assert run_retention(engine, policy, now_us=now, do_prune=False).rolled == {"15m": 0, "1d": 0}
    report = run_retention(engine, policy, now_us=now, late_since=late, do_prune=False)
    assert report.rolled["15m"] == 1 and report.buckets["1d"] == 4  # from the late day to yesterday
    assert (1, late, 1, 7.0, 7.0) in rollups(engine, "15m")


def test_prune_waits_for_rollups(engine: Engine) -> None:
    now = to_us(T) + 200 * DAY_US
    add(engine, 1, [(at(0), 1.0, 0), (at(120), 2.0, 0)])
    capped = RetentionPolicy(max_buckets={"15m": 4, "1d": 1})
    report = run_retention(engine, capped, now_us=now)
    # the backlog is capped per run: 15-minute rollups reached T + 1 h only, so the sample at T + 2 h stays
    assert report.watermarks["15m"] == (T + timedelta(hours=1)).isoformat()
    assert report.rolled == {"15m": 1, "1d": 1} and report.deleted["samples:lamp"] == 1
    report = run_retention(engine, RetentionPolicy(max_buckets={"15m": 96, "1d": 1}), now_us=now)
    assert report.rolled == {"15m": 1, "1d": 0} and report.deleted["samples:lamp"] == 1


async def test_schedule_retention_adds_jobs_that_run(engine: Engine) -> None:
    class FakeHistorian:
        def __init__(self, engine: Engine) -> None:
            self.engine = engine
            self.asked: list[str] = []

        def take_late_since(self, consumer: str = "rollup") -> int | None:
            self.asked.append(consumer)
            return None

    historian = FakeHistorian(engine)
    scheduler = AsyncIOScheduler(timezone="UTC")
    ids = schedule_retention(scheduler, historian, RetentionPolicy())
    assert ids == ["historian-rollups", "historian-prune"]
    scheduler.start()
    try:
        job = scheduler.get_job("historian-rollups")
        assert job is not None and job.max_instances == 1
        report = await job.func()
        assert report.rolled == {"15m": 0, "1d": 0} and historian.asked == ["rollup"]
    finally:
        scheduler.shutdown(wait=False)
        await asyncio.sleep(0)
