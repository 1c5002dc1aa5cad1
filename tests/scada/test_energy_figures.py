"""EnergyFigures: the live account (baseline from burning lamps, energy from cabinet meters), windows, savings, and
the merge with the historian's stored intervals (a real SQLite database)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import create_engine, insert

from historian.schema import Base, EnergyInterval, to_us
from scada.energy_figures import CITY, EnergyFigures, HistorianEnergy
from scada.model import Quality, ValueRecord
from scada.site.loader import load_site
from scada.site.model import Site

PARIS = ZoneInfo("Europe/Paris")


class Clock:
    """Site time the test moves by hand."""

    def __init__(self, start: datetime) -> None:
        self.t = start

    def __call__(self) -> datetime:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += timedelta(seconds=seconds)


@pytest.fixture
def site(small_site_dir: Path) -> Site:
    return load_site(small_site_dir)


def on(site: Site, cabinet_id: str, value: bool | None, quality: int = Quality.GOOD) -> list[ValueRecord]:
    """The On records of every lamp of a cabinet."""
    now = datetime.now(UTC)
    return [ValueRecord(f"{lamp.path}/On", value, quality, now) for lamp in site.cabinets[cabinet_id].lamps]


def meter(site: Site, cabinet_id: str, kwh: float, quality: int = Quality.GOOD) -> list[ValueRecord]:
    return [ValueRecord(f"{site.cabinets[cabinet_id].path}/EnergyKWh", kwh, quality, datetime.now(UTC))]


def make(site: Site, start: datetime, **kwargs: object) -> tuple[EnergyFigures, Clock, list[ValueRecord]]:
    clock = Clock(start)
    published: list[ValueRecord] = []
    figures = EnergyFigures(site, published.extend, clock=clock, **kwargs)  # type: ignore[arg-type]
    return figures, clock, published


def test_baseline_integrates_the_legacy_power_of_burning_lamps_across_buckets(site: Site) -> None:
    figures, clock, _ = make(site, datetime(2026, 1, 15, 18, 10, tzinfo=PARIS))
    figures(on(site, "CAB-0003", True))  # 4 lamps x 150 W legacy, montchapet
    clock.advance(1800)  # 18:10 -> 18:40 crosses two bucket boundaries
    assert dict(figures.buckets("montchapet")) == {}  # integrated when figures are asked or records arrive
    f = figures.figures("montchapet")
    assert f.baseline_today_kwh == pytest.approx(600 * 0.5 / 1000)
    by_bucket = {datetime.fromtimestamp(t, PARIS).strftime("%H:%M"): b.baseline_wh for t, b in figures.buckets(CITY)}
    assert by_bucket == pytest.approx({"18:00": 50.0, "18:15": 150.0, "18:30": 100.0})
    assert figures.figures("centre-ville").baseline_today_kwh == 0
    # a lamp whose state turns unknown stops counting; a Bad On is not "burning"
    figures(on(site, "CAB-0003", None, Quality.BAD_COMM)[:2])
    clock.advance(3600)
    assert figures.figures("montchapet").baseline_today_kwh == pytest.approx(0.3 + 0.3)


def test_cabinet_meters_give_the_energy_with_wrap_and_reset(site: Site) -> None:
    figures, clock, _ = make(site, datetime(2026, 1, 15, 20, 0, tzinfo=PARIS))
    figures(meter(site, "CAB-0001", 1000.0))  # the first reading is the reference
    assert figures.figures("centre-ville").energy_today_kwh == 0
    clock.advance(600)
    figures(meter(site, "CAB-0001", 1000.5))
    figures(meter(site, "CAB-0001", 1000.5, Quality.BAD_COMM))  # ignored
    assert figures.figures("centre-ville").energy_today_kwh == pytest.approx(0.5)
    # a 32-bit Wh counter wraps: 4,294,967.0 kWh -> 0.2 kWh is +0.496 kWh (plausible within an hour)
    figures(meter(site, "CAB-0002", 4_294_967.0))
    clock.advance(3600)
    figures(meter(site, "CAB-0002", 0.2))
    assert figures.figures("centre-ville").energy_today_kwh == pytest.approx(0.5 + 0.496, abs=1e-6)
    # a meter replaced: its reading restarts low; it counted that since it was fitted
    clock.advance(600)
    figures(meter(site, "CAB-0001", 0.05))
    assert figures.figures("centre-ville").energy_today_kwh == pytest.approx(0.5 + 0.496 + 0.05, abs=1e-6)
    assert figures.ignored_resets == 1
    assert figures.figures(CITY).energy_today_kwh == pytest.approx(1.046, abs=1e-6)


def test_today_starts_at_midnight_the_night_at_noon_and_savings_need_a_baseline(site: Site) -> None:
    figures, clock, published = make(site, datetime(2026, 1, 15, 11, 0, tzinfo=PARIS))
    published.extend(figures.records())
    waiting = {r.tag: r for r in published if "Savings" in r.tag}
    assert waiting and all(
        r.value is None and r.quality == Quality.BAD_WAITING_FOR_INITIAL_DATA for r in waiting.values()
    )
    clock.t = datetime(2026, 1, 15, 17, 30, tzinfo=PARIS)
    figures(on(site, "CAB-0003", True))
    figures(meter(site, "CAB-0003", 10.0))
    clock.t = datetime(2026, 1, 15, 23, 30, tzinfo=PARIS)  # 6 h: 600 W legacy -> 3.6 kWh baseline
    figures(meter(site, "CAB-0003", 11.44))  # 1.44 kWh measured: 60 % saved
    before = figures.figures("montchapet")
    assert (before.baseline_today_kwh, before.energy_today_kwh) == pytest.approx((3.6, 1.44))
    assert before.savings_night_percent == pytest.approx(60.0)
    assert before.savings_percent == pytest.approx(60.0)
    clock.t = datetime(2026, 1, 16, 0, 30, tzinfo=PARIS)  # after midnight: today restarts, the night goes on
    figures(meter(site, "CAB-0003", 11.68))  # 0.24 kWh for 0.6 kWh of baseline: 60 %
    after = figures.figures("montchapet")
    assert after.baseline_today_kwh == pytest.approx(0.3) and after.energy_today_kwh == pytest.approx(0.24)
    assert after.savings_night_percent == pytest.approx(60.0)
    clock.t = datetime(2026, 1, 16, 12, 5, tzinfo=PARIS)  # a new night begins at noon (lamps are still "on")
    figures(on(site, "CAB-0003", False))
    assert figures.figures("montchapet").savings_night_percent == pytest.approx(100.0, abs=0.5)


def test_records_carry_every_scope_and_only_changes(site: Site) -> None:
    figures, _, _ = make(site, datetime(2026, 1, 15, 21, 0, tzinfo=PARIS))
    now = datetime.now(UTC)
    figures([ValueRecord(f"{lamp.path}/PowerW", 20.0, Quality.GOOD, now) for lamp in site.lamps()])
    first = {r.tag: r.value for r in figures.records()}
    assert first["Energy/LightingPowerKW"] == pytest.approx(18 * 0.02)
    assert first["Energy/Districts/montchapet/LightingPowerKW"] == pytest.approx(4 * 0.02)
    assert first["Energy/Districts/centre-ville/LightingPowerKW"] == pytest.approx(14 * 0.02)
    assert len(first) == 5 * 3
    assert figures.records() == []  # nothing changed
    lamp = site.cabinets["CAB-0003"].lamps[0]
    figures([ValueRecord(f"{lamp.path}/PowerW", 0.0, Quality.BAD_COMM, now)])  # an unknown power counts 0
    changed = {r.tag: r.value for r in figures.records(power_only=True)}
    assert changed == {
        "Energy/LightingPowerKW": pytest.approx(0.34),
        "Energy/Districts/montchapet/LightingPowerKW": 0.06,
    }


async def test_stored_intervals_replace_the_live_buckets_they_cover(site: Site, tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'h.sqlite'}")
    Base.metadata.create_all(engine)
    start = datetime(2026, 1, 15, 22, 0, tzinfo=PARIS)
    rows = []
    for k in range(4):  # 22:00-23:00 computed by the historian: 100 Wh for 400 Wh of baseline per interval
        ts = to_us(start + timedelta(minutes=15 * k))
        district = dict(scope="district", scope_id="montchapet", start_ts=ts, energy_wh=100.0, baseline_wh=400.0)
        city = dict(scope="city", scope_id=site.name, start_ts=ts, energy_wh=300.0, baseline_wh=900.0)
        rows += [{**district, "gap": False}, {**city, "gap": k == 3}]  # a gap: in the totals, not in the savings
    with engine.begin() as conn:
        conn.execute(insert(EnergyInterval), rows)
    figures, clock, _ = make(site, start + timedelta(minutes=30), history=HistorianEnergy(engine, site))
    figures(on(site, "CAB-0003", True))  # live from 22:30: overlaps what the historian has
    figures(meter(site, "CAB-0003", 5.0))
    clock.t = start + timedelta(minutes=75)  # 23:15
    figures(meter(site, "CAB-0003", 5.3))
    await figures.refresh_history()
    m = figures.figures("montchapet")
    # stored 22:00-23:00 (400 Wh, 1600 Wh) + live 23:00-23:15 (baseline 150 Wh; the 300 Wh arrived at 23:15)
    assert m.energy_today_kwh == pytest.approx(0.4 + 0.3)
    assert m.baseline_today_kwh == pytest.approx(1.6 + 0.15)
    city = figures.figures(CITY)
    assert city.energy_today_kwh == pytest.approx(1.2 + 0.3)
    saved = (2700 + 150) - (900 + 300)  # the gap interval left out of the savings
    assert city.savings_night_percent == pytest.approx(100 * saved / 2850)
    report = await figures.report("montchapet", start, start + timedelta(hours=2), 3600)
    assert [v for _, e, b in report for v in (e, b)] == pytest.approx([0.4, 1.6, 0.3, 0.15])
    assert [t for t, _, _ in report] == [start.astimezone(UTC), (start + timedelta(hours=1)).astimezone(UTC)]
    engine.dispose()
