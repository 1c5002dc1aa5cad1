"""Pure OPC UA Part 13-style aggregates: per-interval statistics, time weighting, and the aggregate values with status.

No I/O here. Times are integer microseconds since the Unix epoch (UTC); intervals are half-open [start, end).
The pipeline is the same whether the statistics come from SQL (historian.queries.bucket_stats) or from Python
(stats_from_points, the reference implementation the SQL path is tested against):

1. BucketStats per interval: counts, min/max/sum of Good values, first/last raw points, and the integral of the
   segments that lie entirely inside the interval;
2. time_weighted() adds the segments that cross interval edges (the value in effect at an interval's start comes
   from the point before it), giving each interval's area and covered time;
3. average(), time_average(), minimum(), maximum(), count(), start(), end() turn one interval into an
   AggregateValue (timestamp, value, OPC UA status code with the Part 13 historian bits).

Interpolation: STEPPED holds each value until the next raw point (a non-Good point opens a gap that lasts until the
next Good one); SLOPED draws straight lines between consecutive Good values, skipping non-Good ones, which is
Part 13 TimeAverage. After the last point the value is held (stepped extrapolation) until `hold_until`, normally
"now": the historian records on change, so the last stored value is the current one.
"""

from __future__ import annotations

import enum
import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

# --- status codes and Part 13 historian bits (Part 4 7.39, Part 13 5.3) ---------------------------------------

GOOD = 0x00000000
UNCERTAIN_DATA_SUBNORMAL = 0x40A40000
BAD_NO_DATA = 0x809B0000
BAD_BOUND_NOT_FOUND = 0x80D70000

INFO_TYPE_DATA_VALUE = 0x400  # the info bits below qualify a data value
RAW = 0x0
CALCULATED = 0x1
INTERPOLATED = 0x2
PARTIAL = 0x4
EXTRA_DATA = 0x8
MULTI_VALUE = 0x10

_SEVERITY_MASK = 0xC0000000


def status_is_good(status: int) -> bool:
    """True for a Good status code (unsigned 32-bit)."""
    return (status & _SEVERITY_MASK) == 0


def status_is_bad(status: int) -> bool:
    """True for a Bad status code (unsigned 32-bit)."""
    return (status & 0x80000000) != 0


def with_bits(status: int, bits: int) -> int:
    """The status code with historian info bits set (and the DataValue InfoType when any bit is set)."""
    bits &= 0x1F
    if not bits:
        return status
    return (status & ~0x41F) | INFO_TYPE_DATA_VALUE | bits


def status_code(status: int) -> int:
    """The status code without its info bits (the part to compare against named codes)."""
    return status & 0xFFFF0000


class Interpolation(enum.StrEnum):
    """How a value evolves between two raw points (Part 13 3.1.5/3.1.6)."""

    STEPPED = "stepped"
    SLOPED = "sloped"


class Point(NamedTuple):
    """One raw value: time (µs since the epoch), value (float, str or None) and OPC UA status code."""

    ts: int
    value: Any
    quality: int

    @property
    def good(self) -> bool:
        """True when the point has Good quality."""
        return (self.quality & _SEVERITY_MASK) == 0

    @property
    def numeric(self) -> bool:
        """True when the point is Good and carries a number (it then takes part in numeric aggregates)."""
        return self.good and isinstance(self.value, int | float) and not isinstance(self.value, bool | str)


@dataclass(slots=True)
class BucketStats:
    """What SQL (or stats_from_points) knows about one interval [start, end) before time weighting."""

    start: int
    end: int
    count: int = 0  # raw points of any quality
    good: int = 0  # Good points with a numeric value
    vmin: float | None = None  # over the Good numeric points
    vmax: float | None = None
    vsum: float = 0.0
    first: Point | None = None  # earliest raw point (any quality)
    last: Point | None = None  # latest raw point (any quality)
    first_good: Point | None = None  # earliest Good numeric point
    last_good: Point | None = None
    area: float = 0.0  # integral (value × µs) of the segments lying entirely inside the interval
    covered: int = 0  # µs covered by those segments

    @property
    def bad(self) -> int:
        """Raw points excluded from numeric aggregates (non-Good or without a numeric value)."""
        return self.count - self.good


@dataclass(frozen=True, slots=True)
class TimeWeight:
    """The time integral of one interval once the segments crossing its edges are added."""

    area: float  # value × µs
    covered: int  # µs of the interval where a Good value is in effect

    @property
    def average(self) -> float | None:
        """Area over covered time (None when nothing is covered)."""
        return self.area / self.covered if self.covered > 0 else None


@dataclass(frozen=True, slots=True)
class AggregateValue:
    """One processed value: timestamp (µs), value (None when Bad) and status code with historian bits."""

    ts: int
    value: Any
    status: int


# --- intervals -------------------------------------------------------------------------------------------------


def bucket_edges(start: int, end: int, width: int) -> list[tuple[int, int]]:
    """Half-open intervals of `width` µs from start to end (the last one shorter when the range is not a multiple)."""
    if width <= 0:
        raise ValueError(f"bucket width must be positive, got {width}")
    if end <= start:
        return []
    edges = []
    lo = start
    while lo < end:
        hi = min(lo + width, end)
        edges.append((lo, hi))
        lo = hi
    return edges


def bucket_count(start: int, end: int, width: int) -> int:
    """How many intervals bucket_edges(start, end, width) yields."""
    if width <= 0:
        raise ValueError(f"bucket width must be positive, got {width}")
    return max(0, -((start - end) // width))


# --- the reference statistics (pure Python) --------------------------------------------------------------------


def stats_from_points(
    points: Sequence[Point],
    start: int,
    end: int,
    width: int,
    interpolation: Interpolation = Interpolation.STEPPED,
) -> list[BucketStats]:
    """BucketStats for every interval of [start, end) from time-ordered raw points (those outside are ignored)."""
    buckets = [BucketStats(lo, hi) for lo, hi in bucket_edges(start, end, width)]
    inside = [p for p in points if start <= p.ts < end]
    for point in inside:
        bucket = buckets[(point.ts - start) // width]
        bucket.count += 1
        if bucket.first is None:
            bucket.first = point
        bucket.last = point
        if point.numeric:
            value = float(point.value)
            bucket.good += 1
            bucket.vsum += value
            bucket.vmin = value if bucket.vmin is None else min(bucket.vmin, value)
            bucket.vmax = value if bucket.vmax is None else max(bucket.vmax, value)
            if bucket.first_good is None:
                bucket.first_good = point
            bucket.last_good = point
    chain = inside if interpolation is Interpolation.STEPPED else [p for p in inside if p.numeric]
    for here, after in itertools.pairwise(chain):
        index = (here.ts - start) // width
        if (after.ts - start) // width != index or not here.numeric:
            continue  # crossing an edge (time_weighted's job) or a gap opened by a non-Good point
        bucket = buckets[index]
        bucket.area += _segment_area(here, after, interpolation)
        bucket.covered += after.ts - here.ts
    return buckets


def _segment_area(here: Point, after: Point, interpolation: Interpolation) -> float:
    """Integral from here.ts to after.ts of the line between the two points (stepped: here's value held)."""
    duration = after.ts - here.ts
    if interpolation is Interpolation.STEPPED:
        return float(here.value) * duration
    return (float(here.value) + float(after.value)) * 0.5 * duration


def _area_between(here: Point, after: Point | None, lo: int, hi: int, interpolation: Interpolation) -> float:
    """Integral over [lo, hi) ⊆ [here.ts, after.ts] of the segment starting at `here` (held when after is None)."""
    if hi <= lo:
        return 0.0
    v0 = float(here.value)
    if interpolation is Interpolation.STEPPED or after is None or after.ts == here.ts:
        return v0 * (hi - lo)
    slope = (float(after.value) - v0) / (after.ts - here.ts)
    at_lo = v0 + slope * (lo - here.ts)
    at_hi = v0 + slope * (hi - here.ts)
    return (at_lo + at_hi) * 0.5 * (hi - lo)


def time_weighted(
    buckets: Sequence[BucketStats],
    before: Point | None,
    after: Point | None = None,
    *,
    interpolation: Interpolation = Interpolation.STEPPED,
    hold_until: int | None = None,
) -> list[TimeWeight]:
    """Each interval's area and covered time, adding the segments that cross interval edges to the inner ones.

    `before` is the point in effect at the first interval's start (stepped: the last raw point before it, any
    quality; sloped: the last Good numeric point before it); `after` (sloped only) is the first Good numeric point
    at or after the last interval's end. The last point is held until `hold_until` (None: forever).
    """
    result: list[TimeWeight] = []
    if not buckets:
        return result
    stepped = interpolation is Interpolation.STEPPED
    areas = [b.area for b in buckets]
    covered = [b.covered for b in buckets]
    # the chain of points that start a segment crossing an edge: (segment start point, index of its bucket)
    carry: Point | None = before if (before is None or stepped or before.numeric) else None
    carry_index = -1
    for index, bucket in enumerate(buckets):
        head = bucket.first if stepped else bucket.first_good
        if head is None:
            continue
        if carry is not None:
            _spread(carry, head, carry_index, index, buckets, areas, covered, interpolation, hold_until)
        carry = bucket.last if stepped else bucket.last_good
        carry_index = index
    if carry is not None:
        tail = None if stepped else after
        if tail is not None and tail.ts < buckets[-1].end:
            tail = None
        _spread(carry, tail, carry_index, len(buckets), buckets, areas, covered, interpolation, hold_until)
    return [TimeWeight(a, c) for a, c in zip(areas, covered, strict=True)]


def _spread(
    here: Point,
    after: Point | None,
    first_index: int,
    stop_index: int,
    buckets: Sequence[BucketStats],
    areas: list[float],
    covered: list[int],
    interpolation: Interpolation,
    hold_until: int | None,
) -> None:
    """Add the segment from `here` (in bucket first_index, -1 if before) to `after` (in stop_index) to each bucket."""
    if not here.numeric:
        return  # a non-Good point opens a gap until the next point
    segment_end = after.ts if after is not None else (hold_until if hold_until is not None else math.inf)
    hold = None if interpolation is Interpolation.STEPPED else after
    last_index = min(stop_index, len(buckets) - 1)
    for index in range(max(first_index, 0), last_index + 1):
        bucket = buckets[index]
        lo = max(bucket.start, here.ts)
        hi = min(bucket.end, segment_end)
        if hi <= lo:
            continue
        hi_int = int(hi)
        areas[index] += _area_between(here, hold, lo, hi_int, interpolation)
        covered[index] += hi_int - lo


# --- aggregate values (Part 13 5.4.3) --------------------------------------------------------------------------


def _finish(bucket: BucketStats, status: int, bits: int, partial: bool) -> int:
    """Status with historian bits, Partial added when the interval is incomplete."""
    return with_bits(status, bits | (PARTIAL if partial else 0))


def average(bucket: BucketStats, *, partial: bool = False) -> AggregateValue:
    """Average: mean of the Good raw values in the interval (Uncertain when others were skipped)."""
    if bucket.good == 0:
        return AggregateValue(bucket.start, None, BAD_NO_DATA)
    status = GOOD if bucket.bad == 0 else UNCERTAIN_DATA_SUBNORMAL
    return AggregateValue(bucket.start, bucket.vsum / bucket.good, _finish(bucket, status, CALCULATED, partial))


def time_average(bucket: BucketStats, weight: TimeWeight, *, partial: bool = False) -> AggregateValue:
    """TimeAverage: area over covered time; Uncertain when non-Good values were skipped or part had no value."""
    value = weight.average
    if value is None:
        return AggregateValue(bucket.start, None, BAD_NO_DATA)
    complete = weight.covered >= bucket.end - bucket.start
    status = GOOD if bucket.bad == 0 and complete else UNCERTAIN_DATA_SUBNORMAL
    return AggregateValue(bucket.start, value, _finish(bucket, status, CALCULATED, partial))


def _extreme(bucket: BucketStats, value: float | None, partial: bool) -> AggregateValue:
    """Minimum/Maximum: Raw when the extreme is the value at the interval start, Calculated otherwise."""
    if bucket.good == 0 or value is None:
        return AggregateValue(bucket.start, None, BAD_NO_DATA)
    at_start = bucket.first_good is not None and bucket.first_good.ts == bucket.start
    raw = at_start and bucket.first_good is not None and float(bucket.first_good.value) == value
    status = GOOD if bucket.bad == 0 else UNCERTAIN_DATA_SUBNORMAL
    bits = RAW if raw and status == GOOD else CALCULATED
    return AggregateValue(bucket.start, value, _finish(bucket, status, bits, partial))


def minimum(bucket: BucketStats, *, partial: bool = False) -> AggregateValue:
    """Minimum: the smallest Good raw value, stamped with the interval start."""
    return _extreme(bucket, bucket.vmin, partial)


def maximum(bucket: BucketStats, *, partial: bool = False) -> AggregateValue:
    """Maximum: the largest Good raw value, stamped with the interval start."""
    return _extreme(bucket, bucket.vmax, partial)


def count(
    bucket: BucketStats, *, data_start: int | None, data_end: int | None, partial: bool = False
) -> AggregateValue:
    """Count: the number of Good raw values (0 inside the data's extent, Bad_NoData before or after it)."""
    if data_start is None or data_end is None or bucket.end <= data_start or bucket.start > data_end:
        return AggregateValue(bucket.start, None, BAD_NO_DATA)
    status = GOOD if bucket.bad == 0 else UNCERTAIN_DATA_SUBNORMAL
    return AggregateValue(bucket.start, bucket.good, _finish(bucket, status, CALCULATED, partial))


def start(bucket: BucketStats, *, partial: bool = False) -> AggregateValue:
    """Start: the earliest raw value in the interval with its own status and timestamp."""
    if bucket.first is None:
        return AggregateValue(bucket.start, None, BAD_NO_DATA)
    point = bucket.first
    return AggregateValue(point.ts, point.value, _finish(bucket, point.quality, RAW, partial))


def end(bucket: BucketStats, *, partial: bool = False) -> AggregateValue:
    """End: the latest raw value in the interval with its own status and timestamp."""
    if bucket.last is None:
        return AggregateValue(bucket.start, None, BAD_NO_DATA)
    point = bucket.last
    return AggregateValue(point.ts, point.value, _finish(bucket, point.quality, RAW, partial))


# --- values at given times (Part 11 ReadAtTime, stepped) ------------------------------------------------------


def value_at(at: int, exact: Point | None, prior: Point | None, *, skipped_bad: bool = False) -> AggregateValue:
    """The stepped value at time `at`: the raw point there (its own status) or the prior one held (Interpolated).

    `prior` is the point in effect (simple bounds: the last point of any quality; interpolated bounds: the last
    Good one, `skipped_bad` telling that non-Good points were passed over). Bad_NoData before the first point.
    """
    if exact is not None:
        return AggregateValue(at, exact.value, exact.quality)
    if prior is None:
        return AggregateValue(at, None, BAD_NO_DATA)
    if status_is_bad(prior.quality):
        return AggregateValue(at, None, status_code(prior.quality))
    status = GOOD if prior.good and not skipped_bad else UNCERTAIN_DATA_SUBNORMAL
    return AggregateValue(at, prior.value, with_bits(status, INTERPOLATED))
