"""Historian queries on SQLite and PostgreSQL: tags, raw pages and bounds, bucket statistics, downsampling, events."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator, Sequence

import pytest
from sqlalchemy import Connection, Engine, insert, update

from historian import aggregates as agg
from historian import event_queries as eq
from historian import queries as q
from historian import retention, trend
from historian.aggregates import Interpolation, Point
from historian.engine import make_engine
from historian.migrations import upgrade_to_head

S = 1_000_000
BAD = 0x80050000
T0 = 1_767_225_600 * S  # 2026-01-01T00:00:00Z


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    """A migrated historian database."""
    upgrade_to_head(db_url)
    engine = make_engine(db_url)
    yield engine
    engine.dispose()


def add_tag(conn: Connection, tag_id: int, name: str, dtype: str = "Double") -> None:
    """Insert one tag row."""
    conn.execute(insert(q.tags), [{"id": tag_id, "name": name, "dtype": dtype, "tag_class": "test"}])


def add_points(conn: Connection, tag_id: int, points: Sequence[Point]) -> None:
    """Insert raw samples (strings go to `text`)."""
    rows = [
        {
            "tag_id": tag_id,
            "ts": p.ts,
            "value": None if isinstance(p.value, str) else p.value,
            "text": p.value if isinstance(p.value, str) else None,
            "quality": p.quality,
        }
        for p in points
    ]
    for i in range(0, len(rows), 20_000):
        conn.execute(insert(q.samples), rows[i : i + 20_000])


def random_series(seed: int, count: int, start: int, step_max_s: int = 50, bad_ratio: float = 0.1) -> list[Point]:
    """Irregular points with some Bad and Uncertain ones."""
    rnd = random.Random(seed)
    ts, points = start, []
    for _ in range(count):
        ts += rnd.randint(1, step_max_s * S)
        quality = 0 if rnd.random() > bad_ratio else rnd.choice([BAD, 0x40900000])
        points.append(Point(ts, round(rnd.uniform(0, 100), 3), quality))
    return points


# --- tags ------------------------------------------------------------------------------------------------------

NAMES = [
    "Lighting/CAB-0001/L-000001/PowerW",
    "Lighting/CAB-0001/L-000002/PowerW",
    "Lighting/CAB-0002/L-000003/PowerW",
    "Lighting/CAB-0001/L-000001/Level",
    "Lighting/CAB-0001/EnergyKWh",
    "Lighting/CAB_0003/L-000004/PowerW",
    "lighting/CAB-0001/L-000009/PowerW",
    "Traffic/TLC-001/Stage",
]


def test_resolve_tags_globs(engine: Engine) -> None:
    with engine.begin() as conn:
        for number, name in enumerate(NAMES, start=1):
            add_tag(conn, number, name)
    with engine.connect() as conn:

        def names(pattern: str | list[str]) -> list[str]:
            return [info.name for info in q.resolve_tags(conn, pattern)]

        assert names("Lighting/CAB-00*/L-*/PowerW") == NAMES[0:3]  # case-sensitive, '-' is not a wildcard
        assert names("Lighting/*/PowerW") == []  # '*' stays inside one segment
        assert names("Lighting/**/PowerW") == sorted([*NAMES[0:3], NAMES[5]])
        assert names("Lighting/CAB-0001/L-00000?/*") == sorted([NAMES[0], NAMES[1], NAMES[3]])
        assert names("Lighting/CAB-000[12]/L-*/PowerW") == NAMES[0:3]
        assert names(["Traffic/TLC-001/Stage", "Lighting/CAB-0001/EnergyKWh", "Nope/X"]) == sorted(
            ["Traffic/TLC-001/Stage", "Lighting/CAB-0001/EnergyKWh"]
        )
        assert q.tag_info(conn, "Traffic/TLC-001/Stage").id == 8
        with pytest.raises(q.UnknownTagError):
            q.tag_info(conn, "Traffic/TLC-999/Stage")
        assert q.tag_ids(conn, ["Traffic/TLC-001/Stage", "missing"]) == {"Traffic/TLC-001/Stage": 8}


# --- raw ---------------------------------------------------------------------------------------------------------


def test_read_raw_pages_bounds_and_direction(engine: Engine) -> None:
    points = [Point(T0 + i * 10 * S, float(i), BAD if i == 4 else 0) for i in range(10)]
    with engine.begin() as conn:
        add_tag(conn, 1, "A/B/X")
        add_points(conn, 1, points)
    with engine.connect() as conn:
        whole = q.read_raw(conn, 1, T0, T0 + 100 * S)
        assert whole.points == points and not whole.more
        # half-open: a point at `end` is excluded, one at `start` included
        assert q.read_raw(conn, 1, T0 + 10 * S, T0 + 30 * S).points == points[1:3]
        # pages of 3, resumed with `after`, ascending and descending
        for descending in (False, True):
            seen: list[Point] = []
            after = None
            while True:
                page = q.read_raw(conn, 1, T0, T0 + 100 * S, limit=3, descending=descending, after=after)
                seen.extend(page.points)
                if not page.more:
                    break
                after = page.resume
            assert seen == (points[::-1] if descending else points)
        bounded = q.read_raw(conn, 1, T0 + 15 * S, T0 + 35 * S, bounds=True)
        assert bounded.points == points[2:4]
        assert bounded.start_bound == points[1] and bounded.end_bound == points[4]
        exact = q.read_raw(conn, 1, T0 + 20 * S, T0 + 40 * S, bounds=True)
        assert exact.start_bound == points[2] and exact.end_bound == points[4]
        outside = q.read_raw(conn, 1, T0 - 50 * S, T0 + 500 * S, bounds=True)
        assert outside.start_bound is None and outside.end_bound is None
        assert q.data_extent(conn, 1) == (points[0].ts, points[-1].ts)
        assert q.data_extent(conn, 2) is None
        assert q.bound_before(conn, 1, T0 + 45 * S, good_only=True) == points[3]  # the Bad one at 40 s skipped
        assert q.bound_after(conn, 1, T0 + 35 * S, good_only=True) == points[5]


def test_strings_and_values_at(engine: Engine) -> None:
    with engine.begin() as conn:
        add_tag(conn, 1, "Signs/VMS-01/Message", "String")
        add_tag(conn, 2, "A/B/Y")
        add_points(conn, 1, [Point(T0, "ROADWORKS", 0), Point(T0 + 60 * S, "", 0)])
        add_points(conn, 2, [Point(T0, 1.0, 0), Point(T0 + 10 * S, 2.0, BAD), Point(T0 + 20 * S, 3.0, 0)])
    with engine.connect() as conn:
        assert [p.value for p in q.read_raw(conn, 1, T0, T0 + 100 * S).points] == ["ROADWORKS", ""]
        times = [T0 - S, T0, T0 + 5 * S, T0 + 15 * S, T0 + 25 * S]
        simple = q.values_at(conn, 2, times)
        assert [v.ts for v in simple] == times
        assert simple[0].status == agg.BAD_NO_DATA
        assert (simple[1].value, simple[1].status) == (1.0, 0)  # a raw value exactly there
        assert (simple[2].value, simple[2].status) == (1.0, agg.with_bits(agg.GOOD, agg.INTERPOLATED))
        assert simple[3].value is None and simple[3].status == BAD  # simple bounds: the Bad value holds
        assert simple[4].value == 3.0
        interpolated = q.values_at(conn, 2, times, simple_bounds=False)
        assert interpolated[3].value == 1.0  # the last Good value, the Bad one skipped
        assert agg.status_code(interpolated[3].status) == agg.UNCERTAIN_DATA_SUBNORMAL


# --- buckets ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("interpolation", list(Interpolation))
def test_bucket_stats_in_sql_equal_the_reference(engine: Engine, interpolation: Interpolation) -> None:
    points = random_series(7, 1500, T0)
    with engine.begin() as conn:
        add_tag(conn, 1, "A/B/Z")
        add_points(conn, 1, points)
    start, end, width = points[50].ts - 3, points[1400].ts + 11, 313 * S
    with engine.connect() as conn:
        from_sql = q.bucket_stats(conn, 1, start, end, width, interpolation=interpolation)
    reference = agg.stats_from_points(points, start, end, width, interpolation)
    assert len(from_sql) == len(reference) > 100
    for got, want in zip(from_sql, reference, strict=True):
        for name in ("start", "end", "count", "good", "first", "last", "first_good", "last_good", "covered"):
            assert getattr(got, name) == getattr(want, name), name
        for name in ("vmin", "vmax", "vsum", "area"):
            a, b = getattr(got, name), getattr(want, name)
            assert (a is None and b is None) or a == pytest.approx(b, rel=1e-9), name


def test_aggregate_by_hand(engine: Engine) -> None:
    # value 10 set at -10 s (in effect at the start), 20 at 20 s, a Bad 40 at 50 s, 30 at 70 s, 50 at 150 s
    points = [
        Point(T0 - 10 * S, 10.0, 0),
        Point(T0 + 20 * S, 20.0, 0),
        Point(T0 + 50 * S, 40.0, BAD),
        Point(T0 + 70 * S, 30.0, 0),
        Point(T0 + 150 * S, 50.0, 0),
    ]
    with engine.begin() as conn:
        add_tag(conn, 1, "A/B/H")
        add_points(conn, 1, points)
    with engine.connect() as conn:
        stepped = q.aggregate(conn, 1, T0, T0 + 300 * S, 100, hold_until=T0 + 200 * S)
        sloped = q.aggregate(
            conn, 1, T0, T0 + 200 * S, 100, interpolation=Interpolation.SLOPED, hold_until=T0 + 200 * S
        )
    first, second, third = stepped
    assert (first.count, first.bad, first.min, first.max) == (2, 1, 20.0, 30.0)
    assert first.avg == pytest.approx(25.0)
    assert first.twa == pytest.approx((10 * 20 + 20 * 30 + 30 * 30) / 80)  # the Bad value leaves a gap
    assert (first.first, first.first_ts, first.last, first.last_ts) == (20.0, T0 + 20 * S, 30.0, T0 + 70 * S)
    assert first.status == agg.UNCERTAIN_DATA_SUBNORMAL
    assert second.twa == pytest.approx((30 * 50 + 50 * 50) / 100) and second.status == agg.GOOD
    assert third.count == 0 and third.twa is None and third.status == agg.BAD_NO_DATA  # after hold_until
    at_0, at_100 = 10 + 10 * 10 / 30, 30 + 20 * 30 / 80
    area = (at_0 + 20) / 2 * 20 + (20 + 30) / 2 * 50 + (30 + at_100) / 2 * 30
    assert sloped[0].twa == pytest.approx(area / 100)
    assert sloped[1].twa == pytest.approx(((at_100 + 50) / 2 * 50 + 50 * 50) / 100)


# --- downsampling ---------------------------------------------------------------------------------------------------


def m4(points: Sequence[Point], lo: int, hi: int, pixels: int) -> list[tuple[int, float]]:
    """Brute-force M4 over usable points (not Bad): first, min, max (earliest), last per bucket, in time order."""
    count = max(1, pixels // 2)
    width = -((lo - hi) // count)
    buckets: dict[int, list[Point]] = {}
    for p in points:
        if lo <= p.ts < hi and p.value is not None and not p.quality & 0x80000000:
            buckets.setdefault((p.ts - lo) // width, []).append(p)
    out: list[tuple[int, float]] = []
    for index in sorted(buckets):
        members = buckets[index]
        low = min(members, key=lambda p: (p.value, p.ts))
        high = max(members, key=lambda p: (p.value, -p.ts))
        chosen = {p.ts: p.value for p in (members[0], low, high, members[-1])}
        out.extend(sorted(chosen.items()))
    return out


def test_downsample_raw_is_m4(engine: Engine) -> None:
    points = random_series(11, 5000, T0, step_max_s=20)
    with engine.begin() as conn:
        add_tag(conn, 1, "A/B/D")
        add_points(conn, 1, points)
    lo, hi = points[10].ts, points[4900].ts
    with engine.connect() as conn:
        result = trend.downsample(conn, 1, lo, hi, 200)
    assert [(p.ts, p.value) for p in result] == m4(points, lo, hi, 200)
    assert len(result) <= 2 * 200


@pytest.mark.parametrize("watermark", [True, False])
def test_downsample_uses_rollups_and_raw_beyond_them(engine: Engine, watermark: bool) -> None:
    points = random_series(5, 12_000, T0, step_max_s=120, bad_ratio=0.02)  # about 8 days
    horizon = T0 + 5 * 86_400 * S  # rollups for the first 5 days only
    with engine.begin() as conn:
        add_tag(conn, 1, "A/B/R")
        add_points(conn, 1, points)
    assert retention.rollup(engine, "15m", T0, horizon) > 400  # the historian's own rollup job
    sentinel = T0 + 2 * 86_400 * S
    with engine.begin() as conn:
        # a value only the rollups know: it proves they were read
        conn.execute(update(q.rollups).where(q.rollups.c.start_ts == sentinel).values(min=-999.0))
        if watermark:
            conn.execute(insert(q.meta), [{"key": "rollup_15m_until", "value": str(horizon)}])
    lo, hi = T0 + 7 * 60 * S, points[-1].ts + 1
    pixels = 60  # 30 buckets of ~6.4 h: more than 4 rollups each
    with engine.connect() as conn:
        result = trend.downsample(conn, 1, lo, hi, pixels)
        raw_only = trend.downsample(conn, 1, lo, hi, pixels, use_rollups=False)
    usable = [p for p in points if lo <= p.ts < hi and not p.quality & 0x80000000]
    values = [p.value for p in result]
    times = [p.ts for p in result]
    assert times == sorted(set(times))
    assert len(result) <= 2 * pixels + 8
    assert -999.0 in values and -999.0 not in [p.value for p in raw_only]
    assert max(values) == max(p.value for p in usable) == max(p.value for p in raw_only)
    assert result[0].ts == usable[0].ts and result[0].value == usable[0].value  # head from raw (not a whole rollup)
    assert result[-1].ts == usable[-1].ts and result[-1].value == usable[-1].value  # raw beyond the horizon
    after_horizon = [p for p in usable if p.ts >= horizon]
    assert min(p.value for p in after_horizon) in [p.value for p in result if p.ts >= horizon]
    # nothing invented: every drawn value is a stored one (the sentinel aside), about as many points as raw M4
    assert set(values) - {-999.0} <= {p.value for p in usable}
    assert len(result) == pytest.approx(len(raw_only), rel=0.15)


def test_downsample_empty_and_degenerate(engine: Engine) -> None:
    with engine.begin() as conn:
        add_tag(conn, 1, "A/B/E")
    with engine.connect() as conn:
        assert trend.downsample(conn, 1, T0, T0 + 3600 * S, 100) == []
        assert trend.downsample(conn, 1, T0, T0, 100) == []


# --- events and commands --------------------------------------------------------------------------------------------


def test_events_filters_and_paging(engine: Engine) -> None:
    sources = ["Lighting/CAB-0001", "Lighting/CAB-0001/L-000001", "Lighting/CAB-00010", "Traffic/TLC_001"]
    rows = []
    for i in range(40):
        rows.append(
            {
                "ts": T0 + (i // 2) * S,  # pairs share a timestamp: paging must use the id too
                "source": sources[i % 4],
                "event_type": ["LampFailureAlarmType", "CommunicationLost", "AuditEvent"][i % 3],
                "severity": 100 + 25 * i,
                "message": f"Message {i} {'100% dimmed' if i % 5 == 0 else 'ok'}",
                "user": "alice" if i % 2 else None,
                "data": json.dumps({"n": i}),
            }
        )
    with engine.begin() as conn:
        conn.execute(insert(q.events), rows)
    with engine.connect() as conn:

        def ids(query: eq.EventQuery, **kwargs) -> list[int]:
            return [r.id for r in eq.query_events(conn, query, limit=0, **kwargs).items]

        everything = eq.query_events(conn, eq.EventQuery(), limit=0, descending=False).items
        assert len(everything) == 40 and everything[3].data == {"n": 3}
        by_msg = {r.message: r.id for r in everything}
        assert len(ids(eq.EventQuery(source_prefix="Lighting/CAB-0001"))) == 30
        assert len(ids(eq.EventQuery(source_prefix="Traffic/TLC_"))) == 10  # '_' is literal
        assert len(ids(eq.EventQuery(source_prefix="traffic/"))) == 0  # case-sensitive
        assert len(ids(eq.EventQuery(event_types=["AuditEvent"]))) == 13
        assert len(ids(eq.EventQuery(min_severity=100 + 25 * 30))) == 10
        assert len(ids(eq.EventQuery(user="alice"))) == 20
        assert ids(eq.EventQuery(text="100%")) == sorted(
            (by_msg[m] for m in by_msg if "100%" in m), reverse=True
        )  # '%' literal, newest first
        assert len(ids(eq.EventQuery(text="MESSAGE 1"))) == 11  # case-insensitive: 1, 10..19
        assert len(ids(eq.EventQuery(start=T0 + 5 * S, end=T0 + 10 * S))) == 10
        combined = eq.EventQuery(source_prefix="Lighting/", user="alice", min_severity=500)
        assert all(r.user == "alice" and r.severity >= 500 for r in eq.query_events(conn, combined).items)
        for descending in (True, False):
            seen: list[int] = []
            cursor = None
            while True:
                page = eq.query_events(conn, eq.EventQuery(), limit=7, cursor=cursor, descending=descending)
                seen.extend(r.id for r in page.items)
                if page.next is None:
                    break
                cursor = page.next
            expected = [r.id for r in everything]
            assert seen == (expected[::-1] if descending else expected)


def test_commands_filters_and_paging(engine: Engine) -> None:
    rows = [
        {
            "ts": T0 + i * S,
            "user": ["alice", "bob", None][i % 3],
            "origin": "opcua-method" if i % 2 else "console",
            "device_id": f"CAB-{i % 4:04d}",
            "action": "set_level" if i % 2 else "set_mode",
            "args": json.dumps({"level": i}),
            "status": 0 if i % 5 else 0x80050000,
            "message": "accepted" if i % 5 else "Device unreachable",
            "duration_ms": 12.5,
        }
        for i in range(25)
    ]
    with engine.begin() as conn:
        conn.execute(insert(q.commands), rows)
    with engine.connect() as conn:
        failed = eq.query_commands(conn, eq.CommandQuery(failed=True), limit=0).items
        assert [c.ts for c in failed] == [T0 + i * S for i in (20, 15, 10, 5, 0)]
        assert failed[0].args == {"level": 20} and failed[0].status == 0x80050000
        assert len(eq.query_commands(conn, eq.CommandQuery(failed=False), limit=0).items) == 20
        assert len(eq.query_commands(conn, eq.CommandQuery(device_prefix="CAB-0001"), limit=0).items) == 6
        assert len(eq.query_commands(conn, eq.CommandQuery(user="bob", action="set_level"), limit=0).items) == 4
        assert len(eq.query_commands(conn, eq.CommandQuery(text="unreachable"), limit=0).items) == 5
        assert len(eq.query_commands(conn, eq.CommandQuery(origin="console", start=T0 + 10 * S), limit=0).items) == 8
        page = eq.query_commands(conn, eq.CommandQuery(), limit=10)
        rest = eq.query_commands(conn, eq.CommandQuery(), limit=100, cursor=page.next)
        assert [c.id for c in page.items + rest.items] == sorted((c.id for c in page.items + rest.items), reverse=True)
        assert len(page.items + rest.items) == 25 and rest.next is None
