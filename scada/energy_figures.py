"""The city's and each district's lighting energy figures, published as Energy variables.

Per scope (the city, each district): LightingPowerKW (now), LightingEnergyKWhToday and LightingBaselineKWhToday
(since local midnight), LightingSavingsPercentNight (since the current night began: local noon to noon) and
LightingSavingsPercent (over the reporting period, 30 days by default).

Where the numbers come from:
- the historian's 15-minute energy intervals (historian.energy, computed every 15 minutes from the stored meter
  readings) are authoritative for every interval they cover, up to `computed until`;
- after that, a live account in 15-minute buckets of site time: energy = the increase of each cabinet's meter
  (EnergyKWh: lamps, controller and line losses, as the historian's cabinet scope; a wrap of the 32-bit Wh counter
  is recognised, a meter reset counts its new reading), booked in the bucket where the reading arrives; baseline =
  the legacy power of the lamps reported burning (`On`, Good quality) integrated over site time. A lamp whose state
  is unknown counts as not burning. When the historian catches up, its rows replace the live buckets.
Savings = (baseline - energy) / baseline over the scope's buckets, leaving out stored intervals flagged `gap`; with
no baseline yet (a day before dusk) a savings variable is Bad (waiting for data) rather than a made-up number.

Site time comes from the injected clock (an AcceleratedClock runs a night in a minute in tests): buckets, midnight
and the night follow it; the timers run on real time.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from scada.model import Quality, ValueRecord, utcnow
from scada.site.model import Site

log = logging.getLogger(__name__)

BUCKET_S = 900
WRAP_WH = 2**32
CITY = "City"
FIGURES = (
    "LightingPowerKW",
    "LightingEnergyKWhToday",
    "LightingBaselineKWhToday",
    "LightingSavingsPercent",
    "LightingSavingsPercentNight",
)
_ON, _POWER, _METER = 0, 1, 2


@dataclass(slots=True)
class Tally:
    """Energy and legacy baseline of one scope over one 15-minute bucket."""

    energy_wh: float = 0.0
    baseline_wh: float = 0.0
    gap: bool = False  # a stored interval flagged gap: in the totals, not in the savings


@dataclass(frozen=True, slots=True)
class Figures:
    """One scope's figures (None: not defined yet)."""

    power_kw: float
    energy_today_kwh: float
    baseline_today_kwh: float
    savings_percent: float | None
    savings_night_percent: float | None


Stored = tuple[int | None, dict[str, dict[int, Tally]]]  # (computed until, POSIX s; buckets per scope key)


class HistorianEnergy:
    """The historian's energy intervals for the figures (blocking: call from a thread)."""

    def __init__(self, engine: Any, site: Site) -> None:
        self._engine = engine
        self._city = site.name
        self._scopes = [("city", site.name), *(("district", d) for d in site.districts)]

    def intervals(self, since: datetime, until: datetime) -> Stored:
        """The stored city and district intervals of [since, until) and how far the computation has gone."""
        from historian.energy_report import stored_intervals

        stored = stored_intervals(self._engine, self._city, self._scopes, since, until)
        out: dict[str, dict[int, Tally]] = {}
        for (scope, scope_id), rows in stored.rows.items():
            key = CITY if scope == "city" else scope_id
            out[key] = {row.start_s: Tally(row.energy_wh, row.baseline_wh, row.gap) for row in rows}
        return stored.until_s, out


class EnergyFigures:
    """A router sink keeping the live account, and the publisher of the Energy variables."""

    def __init__(
        self,
        site: Site,
        publish: Callable[[Sequence[ValueRecord]], None],
        *,
        clock: Callable[[], datetime] | None = None,
        history: HistorianEnergy | None = None,
        reporting_days: float = 30.0,
        power_period_s: float = 1.0,
        figures_period_s: float = 5.0,
        history_period_s: float = 300.0,
    ) -> None:
        if reporting_days <= 0:
            raise ValueError(f"reporting_days {reporting_days} must be positive")
        self._publish = publish
        self._clock = clock or utcnow
        self._tz = ZoneInfo(site.timezone)
        self._history = history
        self.reporting_days = reporting_days
        self._periods = (power_period_s, figures_period_s, history_period_s)
        self.districts = list(site.districts)
        self._index: dict[str, tuple[int, str, float]] = {}  # tag -> (what, district, legacy W | meter bound W)
        for cabinet in site.cabinets.values():
            district = cabinet.district
            bound = max(2.0 * sum(lamp.rated_w for lamp in cabinet.lamps), 1000.0)
            self._index[f"{cabinet.path}/EnergyKWh"] = (_METER, district, bound)
            for lamp in cabinet.lamps:
                self._index[f"{lamp.path}/On"] = (_ON, district, float(lamp.legacy_w))
                self._index[f"{lamp.path}/PowerW"] = (_POWER, district, 0.0)
        self._burning: set[str] = set()
        self._on_w: dict[str, float] = defaultdict(float)  # legacy W of the lamps burning now, per district
        self._power: dict[str, float] = {}
        self._meter: dict[str, tuple[float, float]] = {}  # last Good reading (Wh) and its site time
        self._live: dict[str, dict[int, Tally]] = defaultdict(dict)  # district -> bucket start -> tally
        self._stored: dict[str, dict[int, Tally]] = {}
        self._stored_until: int | None = None
        self._t: float | None = None  # site time up to which the baseline is integrated
        self._last: dict[str, float | None] = {}
        self._task: asyncio.Task[None] | None = None
        self._refresh: asyncio.Task[None] | None = None
        self.ignored_resets = 0

    # -- the live account ------------------------------------------------------------------------------------

    def _now(self) -> float:
        return self._clock().timestamp()

    def __call__(self, records: Sequence[ValueRecord]) -> None:
        """The router sink: burning states, power and cabinet meters."""
        index = self._index
        now: float | None = None
        for record in records:
            entry = index.get(record.tag)
            if entry is None:
                continue
            if now is None:
                now = self._now()
                self._advance(now)
            what, district, weight = entry
            good = record.quality == Quality.GOOD and record.value is not None
            if what == _ON:
                burning = good and bool(record.value)
                if burning != (record.tag in self._burning):
                    if burning:
                        self._burning.add(record.tag)
                        self._on_w[district] += weight
                    else:
                        self._burning.discard(record.tag)
                        self._on_w[district] -= weight
            elif what == _POWER:
                if good:
                    self._power[record.tag] = float(record.value)  # type: ignore[arg-type]
                else:
                    self._power.pop(record.tag, None)
            elif good:
                self._meter_reading(record.tag, district, weight, float(record.value) * 1000.0, now)  # type: ignore[arg-type]

    def _meter_reading(self, tag: str, district: str, bound_w: float, wh: float, now: float) -> None:
        last = self._meter.get(tag)
        self._meter[tag] = (wh, now)
        if last is None:
            return  # the first reading is the reference
        delta = wh - last[0]
        if delta < 0:
            wrapped = delta + WRAP_WH
            if 0 <= wrapped <= bound_w * max(now - last[1], 1.0) / 3600.0:
                delta = wrapped
            else:  # a new meter: it counted its reading since it was fitted
                self.ignored_resets += 1
                delta = wh
        if delta:
            self._bucket(district, now).energy_wh += delta

    def _bucket(self, district: str, t: float) -> Tally:
        start = int(t // BUCKET_S) * BUCKET_S
        buckets = self._live[district]
        tally = buckets.get(start)
        if tally is None:
            tally = buckets[start] = Tally()
        return tally

    def _advance(self, now: float) -> None:
        """Integrate the legacy power of the burning lamps from the last time up to `now`, bucket by bucket."""
        t = self._t
        self._t = now if t is None else max(t, now)
        if t is None or now <= t:
            return
        for district, watts in self._on_w.items():
            if watts <= 1e-9:
                continue
            start = t
            while start < now:
                end = min((start // BUCKET_S + 1) * BUCKET_S, now)
                self._bucket(district, start).baseline_wh += watts * (end - start) / 3600.0
                start = end

    # -- figures ---------------------------------------------------------------------------------------------

    def buckets(self, key: str, source: Stored | None = None) -> Iterator[tuple[int, Tally]]:
        """The buckets of a scope (CITY or a district), oldest first: stored ones (from `source`, else the loaded
        ones), then live ones after them."""
        until, stored_all = source if source is not None else (self._stored_until, self._stored)
        stored = stored_all.get(key, {})
        if until is not None:
            for start in sorted(stored):
                if start < until:
                    yield start, stored[start]
        if key == CITY:
            live: dict[int, Tally] = defaultdict(Tally)
            for district_buckets in self._live.values():
                for start, tally in district_buckets.items():
                    total = live[start]
                    total.energy_wh += tally.energy_wh
                    total.baseline_wh += tally.baseline_wh
        else:
            live = self._live.get(key, {})  # type: ignore[assignment]
        for start in sorted(live):
            if until is None or start >= until:
                yield start, live[start]

    def windows(self, now: float | None = None) -> tuple[float, float, float]:
        """Site-time starts (POSIX s) of today (local midnight), the current night (local noon) and the period."""
        now = self._now() if now is None else now
        local = datetime.fromtimestamp(now, self._tz)
        midnight = datetime.combine(local.date(), time(0), self._tz)
        night = datetime.combine((local - timedelta(hours=12)).date(), time(12), self._tz)
        return midnight.timestamp(), night.timestamp(), now - self.reporting_days * 86400.0

    def figures(self, key: str, now: float | None = None, power_w: float | None = None) -> Figures:
        """The figures of a scope now (`power_w`: its power if already summed)."""
        now = self._now() if now is None else now
        self._advance(now)
        midnight, night, period = (_floor(t) for t in self.windows(now))
        today = [0.0, 0.0]
        night_sum = [0.0, 0.0]
        period_sum = [0.0, 0.0]
        for start, tally in self.buckets(key):
            if start >= midnight:
                today[0] += tally.energy_wh
                today[1] += tally.baseline_wh
            if tally.gap:
                continue
            if start >= night:
                night_sum[0] += tally.energy_wh
                night_sum[1] += tally.baseline_wh
            if start >= period:
                period_sum[0] += tally.energy_wh
                period_sum[1] += tally.baseline_wh
        if power_w is None:
            power_w = self.power_w().get(key, 0.0)
        return Figures(
            power_w / 1000.0, today[0] / 1000.0, today[1] / 1000.0, _savings(*period_sum), _savings(*night_sum)
        )

    def power_w(self) -> dict[str, float]:
        """The power now (W) of the city and of each district, from the lamps' Good PowerW."""
        totals = dict.fromkeys((CITY, *self.districts), 0.0)
        index = self._index
        for tag, watts in self._power.items():
            totals[index[tag][1]] += watts
        totals[CITY] = sum(v for k, v in totals.items() if k != CITY)
        return totals

    def records(self, *, power_only: bool = False) -> list[ValueRecord]:
        """The changed figures of every scope as value records."""
        now = self._now()
        stamp = datetime.fromtimestamp(now, UTC)
        out: list[ValueRecord] = []
        power = self.power_w()
        for key in (CITY, *self.districts):
            prefix = "Energy" if key == CITY else f"Energy/Districts/{key}"
            if power_only:
                values: dict[str, float | None] = {"LightingPowerKW": round(power[key] / 1000.0, 3)}
            else:
                f = self.figures(key, now, power[key])
                values = {
                    "LightingPowerKW": round(f.power_kw, 3),
                    "LightingEnergyKWhToday": round(f.energy_today_kwh, 3),
                    "LightingBaselineKWhToday": round(f.baseline_today_kwh, 3),
                    "LightingSavingsPercent": _round(f.savings_percent),
                    "LightingSavingsPercentNight": _round(f.savings_night_percent),
                }
            for name, value in values.items():
                tag = f"{prefix}/{name}"
                if tag in self._last and self._last[tag] == value:
                    continue
                self._last[tag] = value
                if value is None:
                    out.append(ValueRecord(tag, None, Quality.BAD_WAITING_FOR_INITIAL_DATA, stamp))
                else:
                    out.append(ValueRecord(tag, value, Quality.GOOD, stamp))
        return out

    # -- the historian -----------------------------------------------------------------------------------------

    async def refresh_history(self) -> None:
        """Load the stored intervals of the windows (in a thread); live buckets they cover are dropped."""
        if self._history is None:
            return
        now = self._now()
        since = _floor(min(self.windows(now)))
        until, stored = await asyncio.to_thread(
            self._history.intervals, datetime.fromtimestamp(since, UTC), datetime.fromtimestamp(now + BUCKET_S, UTC)
        )
        self._stored, self._stored_until = stored, until
        self._prune(since, until)

    def _prune(self, since: float, until: int | None) -> None:
        for buckets in self._live.values():
            for start in [s for s in buckets if s < since or (until is not None and s + BUCKET_S <= until)]:
                del buckets[start]

    async def report(
        self, key: str, start: datetime, end: datetime, bucket_s: int
    ) -> list[tuple[datetime, float, float]]:
        """(bucket start, energy kWh, baseline kWh) per bucket of [start, end) for a scope: stored + live."""
        lo, hi = start.timestamp(), end.timestamp()
        n = math.ceil((hi - lo) / bucket_s)
        energy, baseline = [0.0] * n, [0.0] * n
        source = None
        if self._history is not None:
            source = await asyncio.to_thread(self._history.intervals, start, end)
        self._advance(self._now())
        for bucket_start, tally in self.buckets(key, source):
            if lo <= bucket_start < hi:
                k = int((bucket_start - lo) // bucket_s)
                energy[k] += tally.energy_wh / 1000.0
                baseline[k] += tally.baseline_wh / 1000.0
        return [(datetime.fromtimestamp(lo + k * bucket_s, UTC), energy[k], baseline[k]) for k in range(n)]

    # -- lifecycle ---------------------------------------------------------------------------------------------

    async def start(self) -> None:
        """Load the stored intervals, then publish the power every second and the figures every few seconds."""
        if self._task is None:
            try:
                await self.refresh_history()
            except Exception:
                log.exception("energy figures: the historian's intervals could not be read; live figures only")
            self._task = asyncio.create_task(self._run(), name="energy-figures")

    async def stop(self) -> None:
        """Stop publishing."""
        for task in (self._task, self._refresh):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._task = self._refresh = None

    async def _run(self) -> None:
        power_s, figures_s, history_s = self._periods
        loop = asyncio.get_running_loop()
        next_figures = next_history = loop.time()
        while True:
            now = loop.time()
            try:
                if (
                    now >= next_history
                    and self._history is not None
                    and (self._refresh is None or self._refresh.done())
                ):
                    next_history = now + history_s
                    self._refresh = asyncio.create_task(self._refresh_logged(), name="energy-figures-history")
                full = now >= next_figures
                if full:
                    next_figures = now + figures_s
                records = self.records(power_only=not full)
                if records:
                    self._publish(records)
            except Exception:
                log.exception("energy figures: publication failed")
            await asyncio.sleep(power_s)

    async def _refresh_logged(self) -> None:
        try:
            await self.refresh_history()
        except Exception:
            log.warning(
                "energy figures: the historian's intervals could not be read (live figures kept)", exc_info=True
            )
            return
        records = self.records()
        if records:
            self._publish(records)


def _floor(t: float) -> int:
    return int(t // BUCKET_S) * BUCKET_S


def _savings(energy_wh: float, baseline_wh: float) -> float | None:
    return 100.0 * (baseline_wh - energy_wh) / baseline_wh if baseline_wh > 0 else None


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 2)
