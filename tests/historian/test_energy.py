"""Energy intervals from meter readings: wrap-around, meter reset, gaps, baseline and savings, by hand."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, insert, select

from historian.energy import EnergyConfig, Savings, compute_energy, savings
from historian.engine import make_engine
from historian.migrations import upgrade_to_head
from historian.schema import EnergyInterval, Sample, Tag, to_us
from scada.model import Quality
from scada.site.model import Cabinet, Endpoint, Lamp, Site

T = datetime(2026, 1, 1, tzinfo=UTC)
WRAP = 2**32
BAD = int(Quality.BAD_COMM)


def at(minutes: float) -> int:
    """T + minutes, in µs."""
    return to_us(T + timedelta(minutes=minutes))


def make_site() -> Site:
    """District D1: CAB-0001 (metered) with L1 (legacy 150 W) and L2 (legacy 100 W); D2: CAB-0002 (no meter), L3."""
    endpoint = Endpoint("modbus")
    cab1 = Cabinet(id="CAB-0001", name="one", district="D1", lat=47.3, lon=5.0, endpoint=endpoint)
    cab1.lamps = [
        Lamp(id="L1", cabinet_id="CAB-0001", index=0, lat=47.3, lon=5.0, rated_w=60, legacy_w=150),
        Lamp(id="L2", cabinet_id="CAB-0001", index=1, lat=47.3, lon=5.0, rated_w=48, legacy_w=100),
    ]
    cab2 = Cabinet(id="CAB-0002", name="two", district="D2", lat=47.3, lon=5.0, endpoint=endpoint)
    cab2.lamps = [Lamp(id="L3", cabinet_id="CAB-0002", index=0, lat=47.3, lon=5.0, rated_w=50, legacy_w=120)]
    return Site(
        name="testcity", title="Test", lat=47.3, lon=5.0, timezone="UTC", folder=Path("."),
        cabinets={"CAB-0001": cab1, "CAB-0002": cab2},
    )  # fmt: skip


# tag -> [(minute, value, quality)]; meters in kWh (whole Wh / 1000) as the drivers publish them
L1_WH = [(-5, WRAP - 20), (0, WRAP - 15), (5, WRAP - 10), (10, WRAP - 5), (15, 0), (20, 5)]  # 60 W, wraps at 15'
L1_WH += [(50, 35), (55, 40), (60, 45), (65, 50)]  # unreachable 20'..50': 30 Wh across the gap
L2_WH = [(m, 1000 + 4 * (m + 5) // 5) for m in range(-5, 25, 5)]  # 48 W: 1000, 1004 (0'), ..., 1020 (20')
L2_WH += [(m, 2 + 4 * (m - 25) // 5) for m in range(25, 70, 5)]  # meter replaced: 2 Wh at 25', 6 at 30', ...
CAB1_WH = [(m, 50_000 + 2 * (m + 5)) for m in range(-5, 70, 5)]  # 10 Wh per 5 min: 30 Wh per interval
L3_WH = [(m, 500) for m in range(-15, 75, 15)]  # off all the hour: constant counter every 15 min

SAMPLES: dict[str, list[tuple[Any, Any, int]]] = {
    "Lighting/CAB-0001/L1/EnergyKWh": [(m, wh / 1000, 0) for m, wh in L1_WH] + [(22, 0.005, BAD)],
    "Lighting/CAB-0001/L1/On": [(-10, 1, 0), (5, 1, 0), (20, 1, 0), (22, 1, BAD), (50, 1, 0), (57, 0, 0)],
    "Lighting/CAB-0001/L2/EnergyKWh": [(m, wh / 1000, 0) for m, wh in L2_WH],
    "Lighting/CAB-0001/L2/On": [(m, 1, 0) for m in (-10, 5, 20, 35, 50)],
    "Lighting/CAB-0001/EnergyKWh": [(m, wh / 1000, 0) for m, wh in CAB1_WH],
    "Lighting/CAB-0002/L3/EnergyKWh": [(m, wh / 1000, 0) for m, wh in L3_WH],
    "Lighting/CAB-0002/L3/On": [(m, 0, 0) for m in range(-15, 60, 15)],
}


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    """A migrated database holding the readings above."""
    upgrade_to_head(db_url)
    engine = make_engine(db_url)
    with engine.begin() as conn:
        for tag_id, (name, points) in enumerate(sorted(SAMPLES.items()), start=1):
            conn.execute(insert(Tag), [{"id": tag_id, "name": name, "dtype": "Double", "tag_class": "lamp"}])
            rows = [{"tag_id": tag_id, "ts": at(m), "value": v, "text": None, "quality": q} for m, v, q in points]
            conn.execute(insert(Sample), rows)
    yield engine
    engine.dispose()


def rows_of(engine: Engine, scope: str, scope_id: str) -> list[tuple[float, float, float, bool, bool, float, int]]:
    """(energy, baseline, burning s, gap, reset, gap_wh, gaps) per interval, in time order."""
    e = EnergyInterval
    with engine.connect() as conn:
        result = conn.execute(
            select(e.energy_wh, e.baseline_wh, e.burning_s, e.gap, e.reset, e.gap_wh, e.gaps)
            .where(e.scope == scope, e.scope_id == scope_id)
            .order_by(e.start_ts)
        ).all()
    return [(round(a, 9), round(b, 9), round(c, 6), bool(d), bool(r), round(g, 9), n) for a, b, c, d, r, g, n in result]


def test_energy_wrap_reset_gap_and_baseline_by_hand(engine: Engine) -> None:
    report = compute_energy(engine, make_site(), T, T + timedelta(hours=1))
    assert report.intervals == 4
    # L1 (legacy 150 W): 15 Wh in 0'-15' across the wrap; 20'..50' is a gap (30 Wh booked in gap_wh at 45'-60');
    # burning 0'-15' = 900 s; 15'-22' = 420 s then unknown (Bad at 22'); 50'-57' = 420 s, off 57'-60'.
    assert rows_of(engine, "lamp", "L1") == [
        (15.0, 37.5, 900.0, False, False, 0.0, 0),
        (5.0, 17.5, 420.0, True, False, 0.0, 1),
        (0.0, 0.0, 0.0, True, False, 0.0, 1),
        (10.0, 17.5, 420.0, True, False, 30.0, 1),
    ]
    # L2 (legacy 100 W, burning all hour: 25 Wh baseline per interval): 12 Wh per interval; the meter was
    # replaced between 20' and 25': 4 + 2 (the new meter's count) + 4 = 10 Wh in 15'-30', flagged reset.
    assert rows_of(engine, "lamp", "L2") == [
        (12.0, 25.0, 900.0, False, False, 0.0, 0),
        (10.0, 25.0, 900.0, False, True, 0.0, 0),
        (12.0, 25.0, 900.0, False, False, 0.0, 0),
        (12.0, 25.0, 900.0, False, False, 0.0, 0),
    ]
    assert rows_of(engine, "lamp", "L3") == []  # off and unchanged all hour: all-zero lamp rows are not written
    # CAB-0001: its own meter (30 Wh per interval); baseline and burning summed over L1 and L2; gap when L1's
    # burning is unknown
    assert rows_of(engine, "cabinet", "CAB-0001") == [
        (30.0, 62.5, 1800.0, False, False, 0.0, 0),
        (30.0, 42.5, 1320.0, True, False, 0.0, 1),
        (30.0, 25.0, 900.0, True, False, 0.0, 1),
        (30.0, 42.5, 1320.0, True, False, 0.0, 1),
    ]
    # CAB-0002 has no meter: the sum of its lamps (nothing burnt)
    assert rows_of(engine, "cabinet", "CAB-0002") == [(0.0, 0.0, 0.0, False, False, 0.0, 0)] * 4
    assert rows_of(engine, "district", "D1") == rows_of(engine, "cabinet", "CAB-0001")
    assert rows_of(engine, "city", "testcity") == [
        (30.0, 62.5, 1800.0, False, False, 0.0, 0),
        (30.0, 42.5, 1320.0, True, False, 0.0, 1),
        (30.0, 25.0, 900.0, True, False, 0.0, 1),
        (30.0, 42.5, 1320.0, True, False, 0.0, 1),
    ]
    assert report.rows == {"lamp": 8, "cabinet": 8, "district": 8, "city": 4}


def test_savings_and_idempotent_recompute(engine: Engine) -> None:
    site = make_site()
    compute_energy(engine, site, T, T + timedelta(hours=1))
    first = rows_of(engine, "city", "testcity")
    compute_energy(engine, site, T + timedelta(minutes=20), T + timedelta(minutes=40))  # recompute a part
    compute_energy(engine, site, T, T + timedelta(hours=1))
    assert rows_of(engine, "city", "testcity") == first
    with engine.connect() as conn:
        count = conn.execute(select(EnergyInterval.scope)).all()
        assert len(count) == 28
        end = T + timedelta(hours=1)
        assert savings(conn, "lamp", "L2", T, end) == Savings(46.0, 100.0, 0.0, 4, 0)
        assert savings(conn, "lamp", "L2", T, end).ratio == pytest.approx(0.54)
        l1 = savings(conn, "lamp", "L1", T, end)
        assert l1 == Savings(15.0, 37.5, 30.0, 1, 3) and l1.ratio == pytest.approx(0.6)  # gaps left out
        cab = savings(conn, "cabinet", "CAB-0001", T, end, include_gaps=True)
        assert (cab.energy_wh, cab.baseline_wh, cab.intervals) == (120.0, 172.5, 4)
        assert savings(conn, "city", "testcity", T, end).saved_wh == pytest.approx(32.5)


def test_a_longer_max_gap_interpolates_across_the_outage(engine: Engine) -> None:
    compute_energy(engine, make_site(), T, T + timedelta(hours=1), EnergyConfig(max_gap_s=3600))
    # 30 Wh over 20'..50' spread linearly: 10 Wh in 20'-30'... but burning is still unknown there (Bad On)
    energies = [row[0] for row in rows_of(engine, "lamp", "L1")]
    assert energies == [15.0, 5.0 + 10.0, 15.0, 5.0 + 10.0]


@pytest.mark.slow
def test_city_scale_energy_is_consistent(db_url: str) -> None:
    """34,000 lamps in 340 cabinets and 10 districts, one hour: every lamp 5 Wh per 6', cabinets 500 Wh per 6'."""
    from historian.ingest import TagInfo
    from historian.writer import writer_for

    cabinets = {}
    for c in range(340):
        cabinet = Cabinet(id=f"CAB-{c:04d}", name="c", district=f"D{c % 10}", lat=0, lon=0, endpoint=Endpoint("modbus"))
        cabinet.lamps = [
            Lamp(id=f"L-{c * 100 + i:06d}", cabinet_id=cabinet.id, index=i, lat=0, lon=0, rated_w=50, legacy_w=150)
            for i in range(100)
        ]
        cabinets[cabinet.id] = cabinet
    site = Site(name="city", title="", lat=0, lon=0, timezone="UTC", folder=Path("."), cabinets=cabinets)
    upgrade_to_head(db_url)
    engine = make_engine(db_url)
    proxy = engine.raw_connection()
    conn = proxy.driver_connection
    writer = writer_for(engine.dialect.name)
    names = [f"{lamp.path}/{var}" for lamp in site.lamps() for var in ("EnergyKWh", "On")]
    names += [f"{cabinet.path}/EnergyKWh" for cabinet in cabinets.values()]
    ids: dict[str, int] = {}
    writer.ensure_tags(conn, [TagInfo(name, True) for name in names], ids)
    conn.commit()
    rows = []
    for name in names:
        jitter = ids[name] % 50 * 1_000_000  # readings are not aligned across lamps
        for k in range(-2, 12):
            ts = at(6 * k) + jitter
            if name.endswith("/On"):
                value = 1.0
            elif name.count("/") == 3:  # a lamp meter: 50 W
                value = (1000 + 5 * (k + 2)) / 1000
            else:  # a cabinet meter: 5 kW
                value = (100_000 + 500 * (k + 2)) / 1000
            rows.append((ids[name], ts, value, None, 0))
    writer.write_samples(conn, rows, may_conflict=False)
    conn.commit()
    proxy.close()
    report = compute_energy(engine, site, T, T + timedelta(hours=1))
    assert report.rows == {"lamp": 136_000, "cabinet": 1_360, "district": 40, "city": 4} and report.gaps == 0
    with engine.connect() as c:
        city = savings(c, "city", "city", T, T + timedelta(hours=1))
        lamp = savings(c, "lamp", "L-000042", T, T + timedelta(hours=1))
    assert lamp == Savings(pytest.approx(50.0), pytest.approx(150.0), 0.0, 4, 0)  # type: ignore[arg-type]
    assert city.energy_wh == pytest.approx(340 * 5000.0) and city.baseline_wh == pytest.approx(34_000 * 150.0)
    assert city.intervals == 4 and city.gap_intervals == 0
    engine.dispose()
