"""Trend downsampling: a tag over a time range reduced to what a plot of a given width can show (M4), from the
rollups where they suffice and from the raw samples elsewhere (SQLAlchemy 2 Core, SQLite and PostgreSQL)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, and_, func, select

from historian import aggregates as agg
from historian.aggregates import Point
from historian.queries import BAD_FROM, TimeLike, as_us, meta, rollups, samples, usable, without_jit
from historian.schema import DAY_US, INTERVAL_15M_US

ROLLUP_BUCKETS: dict[str, int] = {"1d": DAY_US, "15m": INTERVAL_15M_US}  # coarsest first
ROLLUP_MIN_RATIO = 4  # a pixel bucket must span at least this many rollups for them to be used


def rollup_horizon(conn: Connection, tag_id: int, bucket: str, size: int) -> int | None:
    """Until when (µs) the `bucket` rollups are complete: the rollup job's watermark, else after the newest row."""
    mark = conn.execute(select(meta.c.value).where(meta.c.key == f"rollup_{bucket}_until")).scalar()
    if mark is not None:
        return int(mark)
    newest = conn.execute(
        select(func.max(rollups.c.start_ts)).where(rollups.c.tag_id == tag_id, rollups.c.bucket == bucket)
    ).scalar()
    return None if newest is None else int(newest) + size


@dataclass(slots=True)
class _Pixel:
    """first/min/max/last candidates of one pixel bucket: (ts, value) pairs."""

    first: tuple[int, float]
    last: tuple[int, float]
    low: tuple[int, float]
    high: tuple[int, float]

    def merge(self, other: _Pixel) -> None:
        """Fold another source's candidates for the same pixel into this one."""
        self.first = min(self.first, other.first)
        self.last = max(self.last, other.last)
        if (other.low[1], other.low[0]) < (self.low[1], self.low[0]):
            self.low = other.low
        if (other.high[1], -other.high[0]) > (self.high[1], -self.high[0]):
            self.high = other.high


def downsample(
    conn: Connection, tag_id: int, start: TimeLike, end: TimeLike, pixels: int, *, use_rollups: bool = True
) -> list[Point]:
    """A trend of one tag over [start, end) for a plot `pixels` wide: at most about 2 × pixels points.

    The range is cut into pixels // 2 buckets; each gives its first, min, max and last usable values (numbers,
    quality not Bad: the rollups' rule) in time order: the M4 reduction, whose drawn line is the same as with every
    point. The points' quality field is Good (read_raw has the stored qualities). Where the buckets span at least
    ROLLUP_MIN_RATIO rollups (15 min or 1 day) the rollups table answers instead of the raw samples; the head and
    tail not covered by whole rollups, and anything after the rollup job's watermark, come from the raw samples
    (use_rollups=False: raw samples only).
    """
    lo, hi = as_us(start), as_us(end)
    if hi <= lo or pixels <= 0:
        return []
    count = max(1, pixels // 2)
    width = -((lo - hi) // count)  # ceil
    kinds = ROLLUP_BUCKETS.items() if use_rollups else ()
    rollup = next(((name, size) for name, size in kinds if width >= ROLLUP_MIN_RATIO * size), None)
    pixel_map: dict[int, _Pixel] = {}

    def add(index: int, pixel: _Pixel) -> None:
        existing = pixel_map.get(index)
        if existing is None:
            pixel_map[index] = pixel
        else:
            existing.merge(pixel)

    if rollup is None:
        origin = lo
        for index, pixel in _raw_pixels(conn, tag_id, lo, hi, origin, width):
            add(index, pixel)
    else:
        name, size = rollup
        width = -(-width // size) * size  # whole rollups per pixel
        origin = lo - lo % size
        r_lo = -(-lo // size) * size  # first whole rollup inside the range
        r_hi = hi - hi % size
        horizon = rollup_horizon(conn, tag_id, name, size)
        r_hi = min(r_hi, horizon) if horizon is not None else r_lo
        if r_hi <= r_lo:
            r_lo = r_hi = lo
        for part_lo, part_hi in ((lo, r_lo), (r_hi, hi)):
            if part_hi > part_lo:
                for index, pixel in _raw_pixels(conn, tag_id, part_lo, part_hi, origin, width):
                    add(index, pixel)
        if r_hi > r_lo:
            for index, pixel in _rollup_pixels(conn, tag_id, name, size, r_lo, r_hi, origin, width):
                add(index, pixel)
    result: list[Point] = []
    for index in sorted(pixel_map):
        pixel = pixel_map[index]
        seen: set[int] = set()
        for ts, value in sorted((pixel.first, pixel.low, pixel.high, pixel.last)):
            if ts not in seen:
                seen.add(ts)
                result.append(Point(ts, value, agg.GOOD))
    return result


def _value_at(table: Any, tag_id: int, ts: Any) -> Any:
    """Scalar subquery: the value of the tag's sample at `ts` (a primary-key lookup)."""
    return select(table.c.value).where(table.c.tag_id == tag_id, table.c.ts == ts).scalar_subquery()


def _raw_pixels(
    conn: Connection, tag_id: int, lo: int, hi: int, origin: int, width: int
) -> Iterable[tuple[int, _Pixel]]:
    """Pixel candidates from the raw samples in [lo, hi): grouped in SQL, the rest by primary-key lookups."""
    s = samples
    index = ((s.c.ts - origin) // width).label("px")
    grouped = (
        select(
            index,
            func.min(s.c.value).label("mn"),
            func.max(s.c.value).label("mx"),
            func.min(s.c.ts).label("t0"),
            func.max(s.c.ts).label("t1"),
        )
        .where(s.c.tag_id == tag_id, s.c.ts >= lo, s.c.ts < hi, usable())
        .group_by(index)
        .subquery()
    )
    inner = samples.alias("x")

    def extreme_ts(column: Any) -> Any:
        """The earliest time in the pixel where the usable value equals `column` (an indexed range scan)."""
        return (
            select(inner.c.ts)
            .where(
                inner.c.tag_id == tag_id,
                inner.c.ts >= grouped.c.t0,
                inner.c.ts <= grouped.c.t1,
                inner.c.value == column,
                inner.c.quality < BAD_FROM,
            )
            .order_by(inner.c.ts)
            .limit(1)
            .scalar_subquery()
        )

    query = select(
        grouped.c.px,
        grouped.c.mn,
        grouped.c.mx,
        grouped.c.t0,
        grouped.c.t1,
        _value_at(samples.alias("f"), tag_id, grouped.c.t0).label("v0"),
        _value_at(samples.alias("l"), tag_id, grouped.c.t1).label("v1"),
        extreme_ts(grouped.c.mn).label("tmn"),
        extreme_ts(grouped.c.mx).label("tmx"),
    )
    for row in without_jit(conn).execute(query):
        yield (
            int(row.px),
            _Pixel((row.t0, row.v0), (row.t1, row.v1), (row.tmn, row.mn), (row.tmx, row.mx)),
        )


def _rollup_pixels(
    conn: Connection, tag_id: int, bucket: str, size: int, lo: int, hi: int, origin: int, width: int
) -> Iterable[tuple[int, _Pixel]]:
    """Pixel candidates from the rollups starting in [lo, hi), grouped in SQL.

    A rollup does not know when its extremes happened: each pixel's min and max are placed in the middle of the
    rollup that holds them (kept strictly between the pixel's first and last values), precise to one rollup.
    """
    r = rollups
    index = ((r.c.start_ts - origin) // width).label("px")
    mine = and_(r.c.tag_id == tag_id, r.c.bucket == bucket)
    grouped = (
        select(
            index,
            func.min(r.c.min).label("mn"),
            func.max(r.c.max).label("mx"),
            func.min(r.c.start_ts).label("s0"),
            func.max(r.c.start_ts).label("s1"),
        )
        .where(mine, r.c.start_ts >= lo, r.c.start_ts < hi, r.c.min.is_not(None))
        .group_by(index)
        .subquery()
    )

    def at(column: str, start: Any) -> Any:
        """Scalar subquery: a column of the rollup starting at `start` (a primary-key lookup)."""
        other = rollups.alias()
        return (
            select(other.c[column])
            .where(other.c.tag_id == tag_id, other.c.bucket == bucket, other.c.start_ts == start)
            .scalar_subquery()
        )

    def holder(column: str, value: Any) -> Any:
        """Scalar subquery: the first rollup of the pixel whose `column` equals `value`."""
        other = rollups.alias()
        return (
            select(other.c.start_ts)
            .where(
                other.c.tag_id == tag_id,
                other.c.bucket == bucket,
                other.c.start_ts >= grouped.c.s0,
                other.c.start_ts <= grouped.c.s1,
                other.c[column] == value,
            )
            .order_by(other.c.start_ts)
            .limit(1)
            .scalar_subquery()
        )

    query = select(
        grouped.c.px,
        grouped.c.mn,
        grouped.c.mx,
        grouped.c.s0,
        grouped.c.s1,
        at("first", grouped.c.s0).label("v0"),
        at("first_ts", grouped.c.s0).label("t0"),
        at("last", grouped.c.s1).label("v1"),
        at("last_ts", grouped.c.s1).label("t1"),
        holder("min", grouped.c.mn).label("smn"),
        holder("max", grouped.c.mx).label("smx"),
    )
    for row in without_jit(conn).execute(query):
        t0 = row.t0 if row.t0 is not None else row.s0
        t1 = row.t1 if row.t1 is not None else row.s1 + size - 1
        v0 = row.v0 if row.v0 is not None else row.mn
        v1 = row.v1 if row.v1 is not None else row.mn
        low_ts = _inside(row.smn + size // 2, t0, t1)
        high_ts = _inside(row.smx + size // 2, t0, t1)
        if low_ts == high_ts and t1 - t0 > 3:  # one rollup holds both: keep two points
            high_ts = high_ts + 1 if high_ts + 1 < t1 else high_ts - 1
        yield int(row.px), _Pixel((t0, v0), (t1, v1), (low_ts, row.mn), (high_ts, row.mx))


def _inside(ts: int, first: int, last: int) -> int:
    """ts moved strictly between first and last when there is room (else clamped to them)."""
    if last - first >= 2:
        return min(max(ts, first + 1), last - 1)
    return min(max(ts, first), last)
