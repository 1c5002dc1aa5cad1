"""Pure Part 13 aggregates: hand-computed intervals, status bits, and time weighting against a brute-force integral."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from historian import aggregates as agg
from historian.aggregates import Interpolation, Point

S = 1_000_000  # µs per second
BAD = 0x80050000  # BadCommunicationError
UNCERTAIN = 0x40900000  # UncertainLastUsableValue

# Two 100 s intervals. The value in effect at 0 s is 10 (set at -10 s); a Bad value at 50 s.
POINTS = [
    Point(-10 * S, 10.0, 0),
    Point(20 * S, 20.0, 0),
    Point(50 * S, 40.0, BAD),
    Point(70 * S, 30.0, 0),
    Point(150 * S, 50.0, 0),
]


def _weights(interpolation: Interpolation, hold_until: int = 200 * S) -> tuple[list[agg.BucketStats], list]:
    buckets = agg.stats_from_points(POINTS, 0, 200 * S, 100 * S, interpolation)
    before = POINTS[0]  # the last value before the range (Good: the same for both interpolations)
    weights = agg.time_weighted(buckets, before, None, interpolation=interpolation, hold_until=hold_until)
    return buckets, weights


def test_bucket_edges_and_count() -> None:
    assert agg.bucket_edges(0, 250, 100) == [(0, 100), (100, 200), (200, 250)]
    assert agg.bucket_count(0, 250, 100) == 3
    assert agg.bucket_count(0, 200, 100) == 2
    assert agg.bucket_edges(5, 5, 100) == []
    with pytest.raises(ValueError):
        agg.bucket_edges(0, 10, 0)


def test_stepped_time_average_by_hand() -> None:
    buckets, weights = _weights(Interpolation.STEPPED)
    # [0,20) 10 held from before, [20,50) 20, [50,70) gap (Bad value), [70,100) 30
    assert weights[0].area == pytest.approx(10 * 20 * S + 20 * 30 * S + 30 * 30 * S)
    assert weights[0].covered == 80 * S
    first = agg.time_average(buckets[0], weights[0])
    assert first.value == pytest.approx(1700 / 80)
    assert agg.status_code(first.status) == agg.UNCERTAIN_DATA_SUBNORMAL  # a Bad value and a gap
    assert first.status & agg.CALCULATED and first.status & agg.INFO_TYPE_DATA_VALUE
    # [100,150) 30 held across the edge, [150,200) 50 held until hold_until
    second = agg.time_average(buckets[1], weights[1])
    assert second.value == pytest.approx((30 * 50 + 50 * 50) / 100)
    assert agg.status_code(second.status) == agg.GOOD
    assert second.ts == 100 * S


def test_sloped_time_average_by_hand() -> None:
    buckets, weights = _weights(Interpolation.SLOPED)
    at_0 = 10 + (20 - 10) * 10 / 30  # on the line from (-10 s, 10) to (20 s, 20)
    at_100 = 30 + (50 - 30) * 30 / 80  # on the line from (70 s, 30) to (150 s, 50)
    area0 = (at_0 + 20) / 2 * 20 + (20 + 30) / 2 * 50 + (30 + at_100) / 2 * 30  # the Bad value is skipped
    assert weights[0].covered == 100 * S
    assert agg.time_average(buckets[0], weights[0]).value == pytest.approx(area0 / 100)
    area1 = (at_100 + 50) / 2 * 50 + 50 * 50  # then held (stepped extrapolation) until hold_until
    assert agg.time_average(buckets[1], weights[1]).value == pytest.approx(area1 / 100)


def test_average_min_max_count_start_end_by_hand() -> None:
    buckets = agg.stats_from_points(POINTS, 0, 200 * S, 100 * S)
    first = buckets[0]
    assert (first.count, first.good, first.bad) == (3, 2, 1)
    average = agg.average(first)
    assert average.value == pytest.approx(25.0)  # (20 + 30) / 2, the Bad 40 skipped
    assert agg.status_code(average.status) == agg.UNCERTAIN_DATA_SUBNORMAL
    assert agg.minimum(first).value == 20.0 and agg.maximum(first).value == 30.0
    assert agg.minimum(first).ts == 0  # stamped with the interval start
    count = agg.count(first, data_start=-10 * S, data_end=150 * S)
    assert count.value == 2 and agg.status_code(count.status) == agg.UNCERTAIN_DATA_SUBNORMAL
    start, end = agg.start(first), agg.end(first)
    assert (start.ts, start.value, start.status) == (20 * S, 20.0, 0)  # Raw bits are zero
    assert (end.ts, end.value, end.status) == (70 * S, 30.0, 0)
    second = buckets[1]
    assert agg.average(second).value == 50.0
    assert agg.average(second).status == agg.with_bits(agg.GOOD, agg.CALCULATED)


def test_no_data_statuses() -> None:
    empty = agg.BucketStats(1000 * S, 1100 * S)
    for value in (agg.average(empty), agg.minimum(empty), agg.maximum(empty), agg.start(empty), agg.end(empty)):
        assert value.status == agg.BAD_NO_DATA and value.value is None
    assert agg.time_average(empty, agg.TimeWeight(0.0, 0)).status == agg.BAD_NO_DATA
    # Count: Bad_NoData outside the data's extent, 0 (Good) inside it
    assert agg.count(empty, data_start=0, data_end=500 * S).status == agg.BAD_NO_DATA
    inside = agg.count(agg.BucketStats(100 * S, 200 * S), data_start=0, data_end=500 * S)
    assert inside.value == 0 and agg.status_code(inside.status) == agg.GOOD
    assert agg.count(empty, data_start=None, data_end=None).status == agg.BAD_NO_DATA


def test_minimum_at_interval_start_is_raw_and_partial_bit() -> None:
    points = [Point(0, 5.0, 0), Point(10, 7.0, 0)]
    bucket = agg.stats_from_points(points, 0, 50, 100)[0]
    minimum = agg.minimum(bucket, partial=True)
    assert minimum.value == 5.0
    assert minimum.status & 0x3 == agg.RAW and minimum.status & agg.PARTIAL
    maximum = agg.maximum(bucket)
    assert maximum.status & 0x3 == agg.CALCULATED


def test_value_at_stepped() -> None:
    exact = Point(10, 3.0, 0)
    assert agg.value_at(10, exact, exact) == agg.AggregateValue(10, 3.0, 0)
    held = agg.value_at(15, None, exact)
    assert held.value == 3.0 and held.ts == 15 and held.status == agg.with_bits(agg.GOOD, agg.INTERPOLATED)
    assert agg.value_at(5, None, None).status == agg.BAD_NO_DATA
    assert agg.value_at(15, None, Point(10, None, BAD)).status == BAD
    skipped = agg.value_at(15, None, exact, skipped_bad=True)
    assert agg.status_code(skipped.status) == agg.UNCERTAIN_DATA_SUBNORMAL
    assert agg.status_code(agg.value_at(15, None, Point(10, 1.0, UNCERTAIN)).status) == agg.UNCERTAIN_DATA_SUBNORMAL


def test_with_bits_and_severity() -> None:
    assert agg.with_bits(agg.GOOD, agg.RAW) == agg.GOOD
    assert agg.with_bits(agg.GOOD, agg.CALCULATED | agg.PARTIAL) == 0x405
    assert agg.status_is_good(0x405) and not agg.status_is_bad(0x405)
    assert agg.status_is_bad(agg.BAD_NO_DATA)
    assert agg.status_code(agg.with_bits(agg.UNCERTAIN_DATA_SUBNORMAL, agg.CALCULATED)) == agg.UNCERTAIN_DATA_SUBNORMAL


# --- time weighting against a brute-force integral on an integer time grid --------------------------------------


def _brute_force(
    points: list[Point], start: int, end: int, interpolation: Interpolation, hold_until: int
) -> tuple[float, int]:
    """(area, covered) by evaluating the interpolated value at every unit step (exact: breakpoints are integers)."""
    area, covered = 0.0, 0
    goods = [p for p in points if p.numeric]
    for t in range(start, min(end, hold_until)):
        if interpolation is Interpolation.STEPPED:
            prior = [p for p in points if p.ts <= t]
            if not prior or not prior[-1].numeric:
                continue
            value = prior[-1].value
        else:
            prior = [p for p in goods if p.ts <= t]
            later = [p for p in goods if p.ts > t]
            if not prior:
                continue
            a = prior[-1]
            if later:
                b = later[0]
                value = a.value + (b.value - a.value) * (t + 0.5 - a.ts) / (b.ts - a.ts)  # midpoint: exact
            else:
                value = a.value
        area += value
        covered += 1
    return area, covered


@st.composite
def _series(draw: st.DrawFn) -> list[Point]:
    times = sorted(draw(st.sets(st.integers(-40, 240), min_size=0, max_size=25)))
    qualities = st.sampled_from([0, 0, 0, BAD, UNCERTAIN])
    return [Point(t, float(draw(st.integers(-50, 50))), draw(qualities)) for t in times]


@settings(max_examples=300, deadline=None)
@given(
    points=_series(),
    width=st.integers(1, 90),
    interpolation=st.sampled_from(list(Interpolation)),
    hold_until=st.integers(100, 260),
)
def test_time_weighting_matches_brute_force(
    points: list[Point], width: int, interpolation: Interpolation, hold_until: int
) -> None:
    start, end = 0, 200
    if points:
        hold_until = max(hold_until, points[-1].ts)  # "now": no value is stored after it
    buckets = agg.stats_from_points(points, start, end, width, interpolation)
    if interpolation is Interpolation.STEPPED:
        earlier = [p for p in points if p.ts < start]
        before, after = (earlier[-1] if earlier else None), None
    else:
        earlier = [p for p in points if p.ts < start and p.numeric]
        later = [p for p in points if p.ts >= end and p.numeric]
        before, after = (earlier[-1] if earlier else None), (later[0] if later else None)
    weights = agg.time_weighted(buckets, before, after, interpolation=interpolation, hold_until=hold_until)
    for bucket, weight in zip(buckets, weights, strict=True):
        area, covered = _brute_force(points, bucket.start, bucket.end, interpolation, hold_until)
        assert weight.covered == covered
        assert math.isclose(weight.area, area, rel_tol=1e-9, abs_tol=1e-6)
