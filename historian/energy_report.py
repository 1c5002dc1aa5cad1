"""Reading the energy intervals back: per-scope interval rows for live figures, and buckets for reports.

compute_energy (historian.energy) writes 15-minute rows per lamp, cabinet, district and city; these functions read
the district and city rows. `computed_until` says how far the computation has gone (the end of the latest city
interval): live figures take the historian's rows before it and their own live accounting after it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, func, select, tuple_

from historian.schema import INTERVAL_15M_US, US_PER_S, EnergyInterval, from_us, to_us


@dataclass(frozen=True, slots=True)
class IntervalRow:
    """One stored 15-minute interval of a scope."""

    start_s: int  # POSIX seconds, aligned on 15 minutes
    energy_wh: float
    baseline_wh: float
    gap: bool


@dataclass(frozen=True, slots=True)
class StoredIntervals:
    """The stored intervals of some scopes over a range, and how far the computation has gone."""

    rows: dict[tuple[str, str], list[IntervalRow]]
    until_s: int | None  # end of the latest computed city interval (POSIX s); None: nothing computed


def computed_until(engine: Engine, city_id: str) -> int | None:
    """End (POSIX s) of the latest city interval computed, or None."""
    e = EnergyInterval
    with engine.connect() as conn:
        last = conn.execute(select(func.max(e.start_ts)).where(e.scope == "city", e.scope_id == city_id)).scalar()
    return None if last is None else (int(last) + INTERVAL_15M_US) // US_PER_S


def stored_intervals(
    engine: Engine, city_id: str, scopes: Sequence[tuple[str, str]], start: datetime, end: datetime
) -> StoredIntervals:
    """The rows of `scopes` ((scope, scope_id) pairs) with a start in [start, end), oldest first."""
    e = EnergyInterval
    rows: dict[tuple[str, str], list[IntervalRow]] = defaultdict(list)
    with engine.connect() as conn:
        result = conn.execute(
            select(e.scope, e.scope_id, e.start_ts, e.energy_wh, e.baseline_wh, e.gap)
            .where(tuple_(e.scope, e.scope_id).in_(list(scopes)), e.start_ts >= to_us(start), e.start_ts < to_us(end))
            .order_by(e.start_ts)
        )
        for scope, scope_id, start_ts, energy, baseline, gap in result:
            rows[(scope, scope_id)].append(
                IntervalRow(int(start_ts) // US_PER_S, float(energy), float(baseline), bool(gap))
            )
    return StoredIntervals(dict(rows), computed_until(engine, city_id))


def bucket_totals(
    engine: Engine, scope: str, scope_id: str, start: datetime, end: datetime, bucket_s: int
) -> list[tuple[datetime, float, float]]:
    """(bucket start, energy Wh, baseline Wh) per bucket of [start, end) (intervals with a gap included: a
    report shows what was measured), one entry per bucket, zeros where nothing is stored."""
    e = EnergyInterval
    lo, hi, step = to_us(start), to_us(end), bucket_s * US_PER_S
    n = -(-(hi - lo) // step)
    energy, baseline = [0.0] * n, [0.0] * n
    with engine.connect() as conn:
        result = conn.execute(
            select(e.start_ts, e.energy_wh, e.baseline_wh).where(
                e.scope == scope, e.scope_id == scope_id, e.start_ts >= lo, e.start_ts < hi
            )
        )
        for start_ts, wh, base in result:
            k = (int(start_ts) - lo) // step
            energy[k] += float(wh)
            baseline[k] += float(base)
    return [(from_us(lo + k * step), energy[k], baseline[k]) for k in range(n)]
