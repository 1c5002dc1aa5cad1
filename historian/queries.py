"""Read side of the historian (SQLAlchemy 2 Core, identical on SQLite and PostgreSQL): tags, raw ranges, bounds,
values at given times, and per-bucket statistics and aggregates (trend downsampling: historian.trend; events and
the command audit trail: historian.event_queries).

Times are integer microseconds since the Unix epoch (UTC) or timezone-aware datetimes; ranges are half-open
[start, end). Every function takes an open Connection: the caller owns the transaction and the thread.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Double,
    and_,
    case,
    func,
    literal,
    select,
)

from historian import aggregates as agg
from historian.aggregates import BucketStats, Interpolation, Point
from historian.schema import (
    US_PER_S,
    Command,
    Event,
    Meta,
    Rollup,
    Sample,
    Tag,
    from_us,
    to_us,
)
from scada.model import CityScadaError, utcnow

samples = Sample.__table__
tags = Sample.metadata.tables["tags"]
events = Event.__table__
commands = Command.__table__
rollups = Rollup.__table__
meta = Meta.__table__
assert Tag.__table__ is tags

GOOD_BELOW = 0x40000000  # quality < this (unsigned) is Good
BAD_FROM = 0x80000000  # quality >= this (unsigned) is Bad

TimeLike = datetime | int


class HistorianQueryError(CityScadaError):
    """A historian query cannot be answered as asked."""


class UnknownTagError(HistorianQueryError):
    """No tag of that name is stored in the historian."""


def as_us(moment: TimeLike) -> int:
    """Microseconds since the epoch from an int (returned as is) or a timezone-aware datetime."""
    if isinstance(moment, datetime):
        return to_us(moment)
    return int(moment)


def _opt_us(moment: TimeLike | None) -> int | None:
    """as_us, passing None through."""
    return None if moment is None else as_us(moment)


def now_us() -> int:
    """The current time in µs since the epoch."""
    return to_us(utcnow())


# --- tags ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TagInfo:
    """A stored tag: id, NodeId path, OPC UA data type name, retention class, unit."""

    id: int
    name: str
    dtype: str
    tag_class: str
    unit: str | None = None


def glob_to_regex(pattern: str) -> re.Pattern[str]:
    """A tag glob as a regex: `*` stays inside one path segment, `**` crosses segments, `?` one char, `[..]` sets."""
    out: list[str] = []
    i = 0
    while i < len(pattern):
        char = pattern[i]
        if pattern.startswith("**", i):
            out.append(".*")
            i += 2
            continue
        if char == "*":
            out.append("[^/]*")
        elif char == "?":
            out.append("[^/]")
        elif char == "[":
            close = pattern.find("]", i + 2)
            if close < 0:
                out.append(re.escape(char))
            else:
                body = pattern[i + 1 : close]
                if body.startswith("!"):
                    body = "^" + body[1:]
                out.append("[" + body.replace("\\", "\\\\") + "]")
                i = close
        else:
            out.append(re.escape(char))
        i += 1
    return re.compile("".join(out))


def glob_to_like(pattern: str, escape: str = "\\") -> str:
    """A SQL LIKE pattern matching a superset of the glob (wildcards become `%`/`_`, literals escaped)."""
    out: list[str] = []
    i = 0
    while i < len(pattern):
        char = pattern[i]
        if char == "*":
            if not out or out[-1] != "%":
                out.append("%")
        elif char == "?":
            out.append("_")
        elif char == "[" and pattern.find("]", i + 2) >= 0:
            out.append("_")
            i = pattern.find("]", i + 2)
        elif char in ("%", "_", escape):
            out.append(escape + char)
        else:
            out.append(char)
        i += 1
    return "".join(out)


def _tag_info(row: Any) -> TagInfo:
    """TagInfo from a row of the tags table."""
    return TagInfo(row.id, row.name, row.dtype, row.tag_class, row.unit)


def resolve_tags(conn: Connection, patterns: str | Iterable[str]) -> list[TagInfo]:
    """Every stored tag matching any of the globs (or exact names), sorted by name."""
    if isinstance(patterns, str):
        patterns = [patterns]
    found: dict[int, TagInfo] = {}
    columns = (tags.c.id, tags.c.name, tags.c.dtype, tags.c.tag_class, tags.c.unit)
    for pattern in patterns:
        if not any(ch in pattern for ch in "*?["):
            row = conn.execute(select(*columns).where(tags.c.name == pattern)).first()
            if row is not None:
                found[row.id] = _tag_info(row)
            continue
        regex = glob_to_regex(pattern)
        query = select(*columns).where(tags.c.name.like(glob_to_like(pattern), escape="\\"))
        for row in conn.execute(query):
            if regex.fullmatch(row.name):  # LIKE is only a prefilter (and case-insensitive on SQLite)
                found[row.id] = _tag_info(row)
    return sorted(found.values(), key=lambda info: info.name)


def tag_info(conn: Connection, name: str) -> TagInfo:
    """The stored tag of that exact name; raises UnknownTagError."""
    row = conn.execute(
        select(tags.c.id, tags.c.name, tags.c.dtype, tags.c.tag_class, tags.c.unit).where(tags.c.name == name)
    ).first()
    if row is None:
        raise UnknownTagError(f"no historized tag named {name!r}")
    return _tag_info(row)


def tag_ids(conn: Connection, names: Iterable[str]) -> dict[str, int]:
    """Ids of the stored tags among `names` (names not stored are left out)."""
    wanted = list(dict.fromkeys(names))
    result: dict[str, int] = {}
    for chunk_start in range(0, len(wanted), 500):
        chunk = wanted[chunk_start : chunk_start + 500]
        for row in conn.execute(select(tags.c.id, tags.c.name).where(tags.c.name.in_(chunk))):
            result[row.name] = row.id
    return result


# --- raw values and bounds ------------------------------------------------------------------------------------

_POINT_COLUMNS = (samples.c.ts, samples.c.value, samples.c.text, samples.c.quality)


def _point(row: Any) -> Point:
    """A Point from (ts, value, text, quality): strings live in `text`, numbers and booleans in `value`."""
    return Point(row.ts, row.text if row.text is not None else row.value, int(row.quality))


def _good_numeric(table: Any = samples) -> ColumnElement[bool]:
    """SQL condition for a Good point carrying a number."""
    return and_(table.c.quality < GOOD_BELOW, table.c.value.is_not(None))


def usable(table: Any = samples) -> ColumnElement[bool]:
    """SQL condition for a point worth drawing: a number whose quality is not Bad (what the rollups keep too)."""
    return and_(table.c.quality < BAD_FROM, table.c.value.is_not(None))


@dataclass(frozen=True, slots=True)
class RawPage:
    """One page of raw points, the position to resume after, and the bounding points when asked for."""

    points: list[Point]
    more: bool  # the limit cut the range: call again with after=resume
    resume: int | None  # ts of the last point returned when more is True
    start_bound: Point | None = None  # the point in effect at start (ts <= start), if bounds were asked
    end_bound: Point | None = None  # the first point at or after end, if bounds were asked


def read_raw(
    conn: Connection,
    tag_id: int,
    start: TimeLike | None = None,
    end: TimeLike | None = None,
    *,
    limit: int = 0,
    descending: bool = False,
    after: int | None = None,
    bounds: bool = False,
) -> RawPage:
    """Raw points of one tag in [start, end) in time order (or reversed), at most `limit` (0: all).

    `after` resumes a previous page: the points strictly after it in the reading direction. With bounds=True the
    page also carries the point in effect at start and the first point at or after end.
    """
    lo, hi = _opt_us(start), _opt_us(end)
    query = select(*_POINT_COLUMNS).where(samples.c.tag_id == tag_id)
    if lo is not None:
        query = query.where(samples.c.ts >= lo)
    if hi is not None:
        query = query.where(samples.c.ts < hi)
    if after is not None:
        query = query.where(samples.c.ts < after if descending else samples.c.ts > after)
    query = query.order_by(samples.c.ts.desc() if descending else samples.c.ts)
    if limit > 0:
        query = query.limit(limit + 1)
    points = [_point(row) for row in conn.execute(query)]
    more = limit > 0 and len(points) > limit
    if more:
        del points[limit:]
    start_bound = end_bound = None
    if bounds:
        start_bound = bound_before(conn, tag_id, lo) if lo is not None else None
        end_bound = bound_after(conn, tag_id, hi) if hi is not None else None
    return RawPage(points, more, points[-1].ts if more else None, start_bound, end_bound)


def bound_before(
    conn: Connection, tag_id: int, moment: TimeLike, *, inclusive: bool = True, good_only: bool = False
) -> Point | None:
    """The last point at (inclusive) or before `moment`: the value in effect then; None before the data."""
    ts = as_us(moment)
    query = select(*_POINT_COLUMNS).where(
        samples.c.tag_id == tag_id, samples.c.ts <= ts if inclusive else samples.c.ts < ts
    )
    if good_only:
        query = query.where(_good_numeric())
    row = conn.execute(query.order_by(samples.c.ts.desc()).limit(1)).first()
    return None if row is None else _point(row)


def bound_after(
    conn: Connection, tag_id: int, moment: TimeLike, *, inclusive: bool = True, good_only: bool = False
) -> Point | None:
    """The first point at (inclusive) or after `moment`; None after the data."""
    ts = as_us(moment)
    query = select(*_POINT_COLUMNS).where(
        samples.c.tag_id == tag_id, samples.c.ts >= ts if inclusive else samples.c.ts > ts
    )
    if good_only:
        query = query.where(_good_numeric())
    row = conn.execute(query.order_by(samples.c.ts).limit(1)).first()
    return None if row is None else _point(row)


def data_extent(conn: Connection, tag_id: int) -> tuple[int, int] | None:
    """(first ts, last ts) of the tag's stored points, None when it has none."""
    first = conn.execute(select(func.min(samples.c.ts)).where(samples.c.tag_id == tag_id)).scalar()
    if first is None:
        return None
    last = conn.execute(select(func.max(samples.c.ts)).where(samples.c.tag_id == tag_id)).scalar()
    return int(first), int(last if last is not None else first)


def values_at(
    conn: Connection, tag_id: int, times: Sequence[TimeLike], *, simple_bounds: bool = True
) -> list[agg.AggregateValue]:
    """The stepped value at each time (Part 11 ReadAtTime): the raw point there, else the prior one held.

    simple_bounds=True holds the last point of any quality; False holds the last Good one (Uncertain when
    non-Good points were skipped). Each answer is stamped with its requested time.
    """
    result = []
    for moment in times:
        ts = as_us(moment)
        prior = bound_before(conn, tag_id, ts)
        exact = prior if prior is not None and prior.ts == ts else None
        skipped_bad = False
        if exact is None and prior is not None and not simple_bounds and not prior.numeric:
            skipped_bad = True
            prior = bound_before(conn, tag_id, ts, good_only=True)
        result.append(agg.value_at(ts, exact, prior, skipped_bad=skipped_bad))
    return result


# --- per-bucket statistics and aggregates -------------------------------------------------------------------


def bucket_stats(
    conn: Connection,
    tag_id: int,
    start: TimeLike,
    end: TimeLike,
    width_us: int,
    *,
    interpolation: Interpolation | None = Interpolation.STEPPED,
) -> list[BucketStats]:
    """BucketStats of every interval of [start, end) computed in SQL (GROUP BY (ts - start) / width).

    One grouped scan gives counts, extremes, sums and first/last times (their values by primary-key lookups);
    unless interpolation is None, a second one (LEAD window) gives the integral of the segments lying inside each
    interval. Equal to aggregates.stats_from_points on the same points.
    """
    lo, hi = as_us(start), as_us(end)
    buckets = [BucketStats(a, b) for a, b in agg.bucket_edges(lo, hi, width_us)]
    if not buckets:
        return buckets
    s = samples
    index = ((s.c.ts - lo) // width_us).label("b")
    good = _good_numeric()
    grouped = (
        select(
            index,
            func.count().label("n"),
            func.sum(case((good, 1), else_=0)).label("ng"),
            func.min(case((good, s.c.value))).label("vmin"),
            func.max(case((good, s.c.value))).label("vmax"),
            func.sum(case((good, s.c.value))).label("vsum"),
            func.min(s.c.ts).label("t_first"),
            func.max(s.c.ts).label("t_last"),
            func.min(case((good, s.c.ts))).label("g_first"),
            func.max(case((good, s.c.ts))).label("g_last"),
        )
        .where(s.c.tag_id == tag_id, s.c.ts >= lo, s.c.ts < hi)
        .group_by(index)
        .subquery()
    )

    def at(column: str, ts: Any) -> Any:
        """Scalar subquery: a column of the sample at `ts` (a primary-key lookup, predictable on both backends)."""
        other = samples.alias()
        return select(other.c[column]).where(other.c.tag_id == tag_id, other.c.ts == ts).scalar_subquery()

    query = select(
        grouped,
        *(at(column, grouped.c.t_first).label(f"f_{column}") for column in ("value", "text", "quality")),
        *(at(column, grouped.c.t_last).label(f"l_{column}") for column in ("value", "text", "quality")),
        *(at(column, grouped.c.g_first).label(f"gf_{column}") for column in ("value", "quality")),
        *(at(column, grouped.c.g_last).label(f"gl_{column}") for column in ("value", "quality")),
    )
    for row in without_jit(conn).execute(query):
        bucket = buckets[row.b]
        bucket.count = int(row.n)
        bucket.good = int(row.ng or 0)
        bucket.vmin = row.vmin
        bucket.vmax = row.vmax
        bucket.vsum = float(row.vsum) if row.vsum is not None else 0.0
        bucket.first = Point(row.t_first, row.f_text if row.f_text is not None else row.f_value, int(row.f_quality))
        bucket.last = Point(row.t_last, row.l_text if row.l_text is not None else row.l_value, int(row.l_quality))
        if row.g_first is not None:
            bucket.first_good = Point(row.g_first, row.gf_value, int(row.gf_quality))
            bucket.last_good = Point(row.g_last, row.gl_value, int(row.gl_quality))
    if interpolation is not None:
        for row in conn.execute(_segment_query(tag_id, lo, hi, width_us, interpolation)):
            bucket = buckets[row.b]
            bucket.area = float(row.area)
            bucket.covered = int(row.covered)
    return buckets


def _segment_query(tag_id: int, lo: int, hi: int, width_us: int, interpolation: Interpolation) -> Any:
    """Per bucket: the integral and duration of the segments whose two ends fall in that bucket."""
    s = samples
    chain = select(
        s.c.ts,
        s.c.value,
        s.c.quality,
        func.lead(s.c.ts).over(order_by=s.c.ts).label("nts"),
        func.lead(s.c.value).over(order_by=s.c.ts).label("nv"),
    ).where(s.c.tag_id == tag_id, s.c.ts >= lo, s.c.ts < hi)
    if interpolation is Interpolation.SLOPED:
        chain = chain.where(_good_numeric())
    seg = chain.subquery()
    index = ((seg.c.ts - lo) // width_us).label("b")
    duration = seg.c.nts - seg.c.ts
    if interpolation is Interpolation.STEPPED:
        area = seg.c.value * duration
    else:
        area = (seg.c.value + seg.c.nv) * duration * literal(0.5, Double)
    return (
        select(index, func.sum(area).label("area"), func.sum(duration).label("covered"))
        .where(
            seg.c.nts.is_not(None),
            (seg.c.nts - lo) // width_us == (seg.c.ts - lo) // width_us,
            _good_numeric(seg),
        )
        .group_by(index)
    )


def time_weight_bounds(
    conn: Connection, tag_id: int, start: int, end: int, interpolation: Interpolation
) -> tuple[Point | None, Point | None]:
    """The points time_weighted() needs around [start, end): the one in effect before, and (sloped) the next Good."""
    if interpolation is Interpolation.STEPPED:
        return bound_before(conn, tag_id, start, inclusive=False), None
    before = bound_before(conn, tag_id, start, inclusive=False, good_only=True)
    after = bound_after(conn, tag_id, end, good_only=True)
    return before, after


@dataclass(frozen=True, slots=True)
class BucketAggregate:
    """The aggregates of one tag over one bucket [start, end) (µs); value fields are None when there is no data."""

    start: int
    end: int
    count: int  # Good numeric raw values
    bad: int  # other raw values (skipped)
    avg: float | None
    twa: float | None  # time-weighted average (interpolation as asked), value in effect at start included
    min: float | None
    max: float | None
    first: float | None  # first Good value in the bucket
    last: float | None
    first_ts: int | None
    last_ts: int | None
    status: int  # Good, Uncertain_DataSubNormal (values skipped or gaps) or Bad_NoData

    @property
    def start_time(self) -> datetime:
        """The bucket start as a UTC datetime."""
        return from_us(self.start)


def aggregate(
    conn: Connection,
    tag_id: int,
    start: TimeLike,
    end: TimeLike,
    width_s: float,
    *,
    interpolation: Interpolation = Interpolation.STEPPED,
    hold_until: TimeLike | None = None,
) -> list[BucketAggregate]:
    """Average, time-weighted average, min, max, count, first and last of one tag per bucket of width_s seconds.

    The time-weighted average takes the value in effect at each bucket start as its first point and holds the last
    value until `hold_until` (default now). See aggregates.py for the interpolation rules.
    """
    lo, hi = as_us(start), as_us(end)
    width_us = round(width_s * US_PER_S)
    buckets = bucket_stats(conn, tag_id, lo, hi, width_us, interpolation=interpolation)
    before, after = time_weight_bounds(conn, tag_id, lo, hi, interpolation)
    until = as_us(hold_until) if hold_until is not None else now_us()
    weights = agg.time_weighted(buckets, before, after, interpolation=interpolation, hold_until=until)
    result = []
    for bucket, weight in zip(buckets, weights, strict=True):
        twa = weight.average
        if bucket.good == 0 and twa is None:
            status = agg.BAD_NO_DATA
        elif bucket.bad or (twa is not None and weight.covered < min(bucket.end, until) - bucket.start):
            status = agg.UNCERTAIN_DATA_SUBNORMAL
        else:
            status = agg.GOOD
        result.append(
            BucketAggregate(
                start=bucket.start,
                end=bucket.end,
                count=bucket.good,
                bad=bucket.bad,
                avg=bucket.vsum / bucket.good if bucket.good else None,
                twa=twa,
                min=bucket.vmin,
                max=bucket.vmax,
                first=None if bucket.first_good is None else bucket.first_good.value,
                last=None if bucket.last_good is None else bucket.last_good.value,
                first_ts=None if bucket.first_good is None else bucket.first_good.ts,
                last_ts=None if bucket.last_good is None else bucket.last_good.ts,
                status=status,
            )
        )
    return result


def without_jit(conn: Connection) -> Connection:
    """PostgreSQL: no JIT for the rest of this transaction (it costs more than these indexed queries save)."""
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql("SET LOCAL jit = off")
    return conn
