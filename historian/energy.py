"""Energy accounting: meter readings -> 15-minute interval energy and legacy baseline per lamp, cabinet, district, city.

Computed in batch from the samples table (``compute_energy``), for a time range, idempotently (the intervals of the
range are replaced in one transaction). The scheduled job re-runs it over a trailing window every 15 minutes, so
late data (a journal replayed after a database outage) is taken into account on the next run; a live incremental
computation would see neither the replayed data nor corrections, and would duplicate this logic.

What is done exactly, per meter (the lamp's ``EnergyKWh`` counter, the cabinet's ``EnergyKWh`` counter):
- only Good readings count (a Bad or Uncertain reading repeats a stale value); values are whole Wh (uint32 Wh / 1000);
- each pair of consecutive readings (t1, c1), (t2, c2) carries the energy d = c2 - c1; if d < 0 it is a
  wrap-around when d + 2^32 Wh is plausible (at most the meter's maximum power x (t2 - t1)), else a meter reset:
  the new meter counted c2 since it was fitted, d = c2 (the old meter's last, unread part is unknown and not
  invented), and the intervals the pair overlaps are flagged ``reset``;
- if t2 - t1 <= max_gap_s (default 960 s: one interval plus 60 s of polling jitter; the historian stores every
  counter at least every 900 s) d is spread linearly over (t1, t2) — linear interpolation of the counter at the
  interval boundaries;
- if t2 - t1 > max_gap_s it is a gap: nothing is spread, every interval the pair overlaps is flagged ``gap``, and d
  (measured, but not attributable to an interval) is booked in ``gap_wh`` of the interval holding t2;
- an interval not fully covered by readings (before the first, after the last) is flagged ``gap``.
Burning time per lamp comes from its ``On`` samples (or, for a lamp without any, ``PowerW > standby_w``): a Good
sample's state holds until the next sample but at most max_gap_s; a Bad sample makes the state unknown. A lamp
interval whose burning state is not known throughout is flagged ``gap``. ``baseline_wh = legacy_w x burning_s /
3600``: what the legacy lamp would have used over the same burning time.
Scopes: lamp = its own meter and burning; cabinet = the cabinet's meter (if the cabinet has no reading at all in
the range: the sum of its lamps), baseline and burning summed over its lamps, gap when its meter has a gap or any
lamp's burning is unknown; district and city = sums over their cabinets (``members`` cabinets, ``gaps`` of them
with a gap). Lamp rows that are all zero (not burning, no energy, no flag) are not written.
Savings: ``sum(baseline_wh - energy_wh) / sum(baseline_wh)`` over the intervals without a gap (``savings()``).
"""

from __future__ import annotations

import logging
import math
import time
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from itertools import pairwise
from typing import Any

from sqlalchemy import Connection, Engine, and_, bindparam, case, delete, func, or_, select
from sqlalchemy.orm import Session

from historian.schema import INTERVAL_15M_US, US_PER_S, EnergyInterval, Sample, Tag, from_us, to_us
from historian.writer import bulk_insert
from scada.model import is_good
from scada.site.model import Site

log = logging.getLogger(__name__)

WRAP_WH = 2**32
ENERGY_TAG = "EnergyKWh"
ON_TAG = "On"
POWER_TAG = "PowerW"

Reading = tuple[int, float | None, int]  # (ts µs, value, quality)
ROW_COLUMNS = (
    "scope", "scope_id", "start_ts", "energy_wh", "baseline_wh", "burning_s", "gap", "reset", "members", "gaps", "gap_wh",
)  # fmt: skip
Row = tuple[object, ...]  # one energy_intervals row, values in ROW_COLUMNS order (a tuple: a third of a dict's size)
INSERT_CHUNK = 10_000


@dataclass(frozen=True, slots=True)
class EnergyConfig:
    """Parameters of the energy computation."""

    interval_s: int = 900
    max_gap_s: float = 960.0
    standby_w: float = 5.0  # a lamp without On samples burns when PowerW is above this
    lamp_max_power_w: float = 1000.0  # plausibility bound of a lamp meter (wrap vs reset)
    cabinet_power_factor: float = 2.0  # a cabinet meter's bound: this x the sum of its lamps' rated power
    chunk_cabinets: int = 20  # cabinets whose readings are fetched and computed together (bounds the memory)

    @property
    def interval_us(self) -> int:
        """The interval length in µs."""
        return self.interval_s * US_PER_S


@dataclass(slots=True)
class Series:
    """Per-interval accumulators of one scope over the computed range."""

    energy_wh: list[float]
    gap_wh: list[float]
    covered_us: list[int]
    reset: list[bool]
    gap: list[bool]
    burning_s: list[float]
    baseline_wh: list[float]
    known_us: list[int]

    @classmethod
    def zeros(cls, n: int) -> Series:
        """An empty series of n intervals."""
        return cls([0.0] * n, [0.0] * n, [0] * n, [False] * n, [False] * n, [0.0] * n, [0.0] * n, [0] * n)


@dataclass(slots=True)
class EnergyReport:
    """What compute_energy did."""

    start: datetime
    end: datetime
    intervals: int
    rows: dict[str, int] = field(default_factory=dict)  # rows written per scope
    gaps: int = 0  # lamp and cabinet intervals flagged gap
    resets: int = 0  # lamp and cabinet intervals flagged reset
    seconds: float = 0.0


@dataclass(frozen=True, slots=True)
class Savings:
    """Energy against the legacy baseline over a period, for one scope."""

    energy_wh: float
    baseline_wh: float
    gap_wh: float  # measured across gaps, not attributable to intervals (not in energy_wh)
    intervals: int  # intervals counted
    gap_intervals: int  # intervals left out (or, with include_gaps, counted) because of a gap

    @property
    def saved_wh(self) -> float:
        """baseline - energy."""
        return self.baseline_wh - self.energy_wh

    @property
    def ratio(self) -> float | None:
        """Saved / baseline (0.6 = 60 % saved); None without baseline."""
        return self.saved_wh / self.baseline_wh if self.baseline_wh > 0 else None


def align(ts_us: int, interval_us: int = INTERVAL_15M_US) -> int:
    """The start of the interval holding ts (floor)."""
    return ts_us - ts_us % interval_us


def meter_series(
    readings: Sequence[Reading], grid_start: int, n: int, config: EnergyConfig, max_power_w: float, series: Series
) -> None:
    """Fill energy, gap_wh, coverage, reset and gap flags of `series` from one counter's readings (kWh values)."""
    step = config.interval_us
    max_gap = int(config.max_gap_s * US_PER_S)
    good = [(ts, round(v * 1000)) for ts, v, q in readings if is_good(q) and v is not None and math.isfinite(v)]
    grid_end = grid_start + n * step
    for (t1, c1), (t2, c2) in pairwise(good):
        if t2 <= t1 or t2 <= grid_start or t1 >= grid_end:
            continue
        span = t2 - t1
        delta = c2 - c1
        reset = False
        if delta < 0:
            if delta + WRAP_WH <= max_power_w * span / 3.6e9:  # W x µs -> Wh
                delta += WRAP_WH
            else:
                delta, reset = c2, True
        first = max(0, (t1 - grid_start) // step)
        last = min(n - 1, (t2 - 1 - grid_start) // step)
        if span > max_gap:
            for k in range(first, last + 1):
                series.gap[k] = True
                series.reset[k] |= reset
            k_end = (t2 - 1 - grid_start) // step  # the interval where the gap ends
            if 0 <= k_end < n:
                series.gap_wh[k_end] += delta
            continue
        for k in range(first, last + 1):
            lo = max(t1, grid_start + k * step)
            hi = min(t2, grid_start + (k + 1) * step)
            if hi > lo:
                series.energy_wh[k] += delta * (hi - lo) / span
                series.covered_us[k] += hi - lo
                series.reset[k] |= reset
    for k in range(n):
        if series.covered_us[k] < step:
            series.gap[k] = True


def burning_series(
    samples: Sequence[Reading], grid_start: int, n: int, config: EnergyConfig, series: Series, threshold: float = 0.5
) -> None:
    """Fill burning seconds and known time of `series` from On (or PowerW) samples: on when value > threshold."""
    step = config.interval_us
    max_hold = int(config.max_gap_s * US_PER_S)
    grid_end = grid_start + n * step
    for i, (ts, value, quality) in enumerate(samples):
        if not is_good(quality) or value is None or not math.isfinite(value):
            continue
        until = min(samples[i + 1][0] if i + 1 < len(samples) else ts + max_hold, ts + max_hold, grid_end)
        since = max(ts, grid_start)
        if until <= since:
            continue
        on = value > threshold
        k = (since - grid_start) // step
        while since < until:
            hi = min(until, grid_start + (k + 1) * step)
            series.known_us[k] += hi - since
            if on:
                series.burning_s[k] += (hi - since) / US_PER_S
            since = hi
            k += 1


def _fetch(conn: Connection, names: Iterable[str], lo: int, hi: int) -> dict[str, list[Reading]]:
    """Samples of the named tags in [lo, hi), per tag name, in time order."""
    wanted = set(names)
    if not wanted:
        return {}
    suffixes = {name.rsplit("/", 1)[1] for name in wanted}
    ids = {
        tag_id: name
        for tag_id, name in conn.execute(
            select(Tag.id, Tag.name).where(or_(*(Tag.name.like(f"%/{s}") for s in suffixes)))
        )
        if name in wanted
    }
    out: dict[str, list[Reading]] = defaultdict(list)
    id_list = sorted(ids)
    query = (
        select(Sample.tag_id, Sample.ts, Sample.value, Sample.quality)
        .where(and_(Sample.tag_id.in_(bindparam("ids", expanding=True)), Sample.ts >= lo, Sample.ts < hi))
        .order_by(Sample.tag_id, Sample.ts)
    )
    for start in range(0, len(id_list), 500):
        for tag_id, ts, value, quality in conn.execute(query, {"ids": id_list[start : start + 500]}).all():
            out[ids[tag_id]].append((ts, value, quality))
    return out


def compute_energy(
    engine: Engine, site: Site, start: datetime, end: datetime, config: EnergyConfig | None = None
) -> EnergyReport:
    """Compute and store (replacing) the energy intervals of [start, end) for every scope of the site."""
    config = config or EnergyConfig()
    began = time.monotonic()
    step = config.interval_us
    grid_start = align(to_us(start), step)
    grid_end = -(-to_us(end) // step) * step
    n = max(0, (grid_end - grid_start) // step)
    report = EnergyReport(from_us(grid_start), from_us(grid_end), n)
    if n == 0:
        return report
    margin = int(config.max_gap_s * US_PER_S) + step
    lo, hi = grid_start - margin, grid_end + margin
    cabinets = list(site.cabinets.values())
    rows: list[Row] = []
    districts: dict[str, list[Series]] = defaultdict(list)
    report.rows["lamp"] = report.rows["cabinet"] = 0
    for first in range(0, len(cabinets), config.chunk_cabinets):  # bounded memory: the readings of a few cabinets
        group = cabinets[first : first + config.chunk_cabinets]
        lamps = [lamp for cabinet in group for lamp in cabinet.lamps]
        with engine.connect() as conn:
            data = _fetch(
                conn,
                [f"{lamp.path}/{tag}" for lamp in lamps for tag in (ENERGY_TAG, ON_TAG)]
                + [f"{cabinet.path}/{ENERGY_TAG}" for cabinet in group],
                lo,
                hi,
            )
            without_on = [lamp for lamp in lamps if not data.get(f"{lamp.path}/{ON_TAG}")]
            data.update(_fetch(conn, [f"{lamp.path}/{POWER_TAG}" for lamp in without_on], lo, hi))
        before = len(rows)
        lamp_series = _lamp_series(lamps, data, grid_start, n, config, rows, report)
        report.rows["lamp"] += len(rows) - before
        before = len(rows)
        for cabinet in group:
            members = [lamp_series[lamp.id] for lamp in cabinet.lamps]
            series = Series.zeros(n)
            readings = data.get(f"{cabinet.path}/{ENERGY_TAG}", [])
            lamp_gaps = [sum(1 for m in members if m.known_us[k] < step) for k in range(n)]
            if readings:
                bound = max(config.cabinet_power_factor * sum(lamp.rated_w for lamp in cabinet.lamps), 1000.0)
                meter_series(readings, grid_start, n, config, bound, series)
            for k in range(n):
                if not readings:  # no cabinet meter: the sum of its lamps' meters
                    series.energy_wh[k] = sum(m.energy_wh[k] for m in members)
                    series.gap_wh[k] = sum(m.gap_wh[k] for m in members)
                    series.reset[k] = any(m.reset[k] for m in members)
                    series.gap[k] = not members or any(m.gap[k] for m in members)
                series.burning_s[k] = sum(m.burning_s[k] for m in members)
                series.baseline_wh[k] = sum(m.baseline_wh[k] for m in members)
                series.gap[k] = series.gap[k] or lamp_gaps[k] > 0
                rows.append(_row("cabinet", cabinet.id, grid_start + k * step, series, k, len(members), lamp_gaps[k]))
                report.gaps += series.gap[k]
                report.resets += series.reset[k]
            districts[cabinet.district].append(series)
        report.rows["cabinet"] += len(rows) - before
        del data, lamp_series

    before = len(rows)
    groups = [("district", district_id, parts) for district_id, parts in sorted(districts.items())]
    if districts:
        groups.append(("city", site.name, [series for parts in districts.values() for series in parts]))
    for scope, scope_id, parts in groups:
        total, gaps = _sum(parts, n)
        for k in range(n):
            rows.append(_row(scope, scope_id, grid_start + k * step, total, k, len(parts), gaps[k]))
    report.rows["district"] = len(districts) * n
    report.rows["city"] = n if districts else 0

    with engine.begin() as conn:
        conn.execute(
            delete(EnergyInterval).where(EnergyInterval.start_ts >= grid_start, EnergyInterval.start_ts < grid_end)
        )
        for first in range(0, len(rows), INSERT_CHUNK):
            chunk = [dict(zip(ROW_COLUMNS, row, strict=True)) for row in rows[first : first + INSERT_CHUNK]]
            bulk_insert(conn, EnergyInterval.__table__, chunk)  # type: ignore[arg-type]
    report.seconds = time.monotonic() - began
    log.info(
        "energy %s..%s: %d intervals, rows %s, %d gap and %d reset flags, %.2f s",
        report.start.isoformat(), report.end.isoformat(), n, report.rows, report.gaps, report.resets, report.seconds,
    )  # fmt: skip
    return report


def _lamp_series(
    lamps: Sequence[Any],
    data: dict[str, list[Reading]],
    grid_start: int,
    n: int,
    config: EnergyConfig,
    rows: list[Row],
    report: EnergyReport,
) -> dict[str, Series]:
    """Each lamp's series (meter, burning time, baseline, gaps); its non-empty rows are appended to `rows`."""
    step = config.interval_us
    lamp_series: dict[str, Series] = {}
    for lamp in lamps:
        series = Series.zeros(n)
        meter_series(data.get(f"{lamp.path}/{ENERGY_TAG}", []), grid_start, n, config, config.lamp_max_power_w, series)
        on = data.get(f"{lamp.path}/{ON_TAG}")
        if on:
            burning_series(on, grid_start, n, config, series)
        else:
            burning_series(data.get(f"{lamp.path}/{POWER_TAG}", []), grid_start, n, config, series, config.standby_w)
        for k in range(n):
            series.baseline_wh[k] = lamp.legacy_w * series.burning_s[k] / 3600.0
            if series.known_us[k] < step:
                series.gap[k] = True
        lamp_series[lamp.id] = series
        for k in range(n):
            if series.energy_wh[k] or series.gap_wh[k] or series.burning_s[k] or series.gap[k] or series.reset[k]:
                rows.append(_row("lamp", lamp.id, grid_start + k * step, series, k, 1, int(series.gap[k])))
                report.gaps += series.gap[k]
                report.resets += series.reset[k]
    return lamp_series


def _sum(parts: Sequence[Series], n: int) -> tuple[Series, list[int]]:
    """The sum of cabinet series, and per interval how many of them have a gap."""
    total = Series.zeros(n)
    gaps = [0] * n
    for series in parts:
        for k in range(n):
            total.energy_wh[k] += series.energy_wh[k]
            total.gap_wh[k] += series.gap_wh[k]
            total.burning_s[k] += series.burning_s[k]
            total.baseline_wh[k] += series.baseline_wh[k]
            total.reset[k] |= series.reset[k]
            total.gap[k] |= series.gap[k]
            gaps[k] += series.gap[k]
    return total, gaps


def _row(scope: str, scope_id: str, start_ts: int, s: Series, k: int, members: int, gaps: int) -> Row:
    """One energy_intervals row."""
    return (
        scope,
        scope_id,
        start_ts,
        s.energy_wh[k],
        s.baseline_wh[k],
        s.burning_s[k],
        s.gap[k],
        s.reset[k],
        members,
        gaps,
        s.gap_wh[k],
    )


def savings(
    session: Session | Connection,
    scope: str,
    scope_id: str,
    start: datetime,
    end: datetime,
    *,
    include_gaps: bool = False,
) -> Savings:
    """Energy, baseline and savings of one scope over [start, end) (intervals starting in it; gaps left out)."""
    e = EnergyInterval
    where = [e.scope == scope, e.scope_id == scope_id, e.start_ts >= to_us(start), e.start_ts < to_us(end)]
    gap_count = func.coalesce(func.sum(case((e.gap.is_(True), 1), else_=0)), 0)
    all_row = session.execute(
        select(func.count(), gap_count, func.coalesce(func.sum(e.gap_wh), 0.0)).where(*where)
    ).one()
    if not include_gaps:
        where.append(e.gap.is_(False))
    energy, baseline, counted = session.execute(
        select(func.coalesce(func.sum(e.energy_wh), 0.0), func.coalesce(func.sum(e.baseline_wh), 0.0), func.count())
        .where(*where)
    ).one()  # fmt: skip
    return Savings(float(energy), float(baseline), float(all_row[2]), int(counted), int(all_row[1]))
