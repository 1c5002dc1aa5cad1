"""The living city: movers along streets, random faults, determinism, speed, the real site folders."""

from __future__ import annotations

import asyncio
import itertools
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest

from drivers.sim.city import CityOptions
from drivers.sim.runner import CitySimulator
from drivers.sim.synthetic import small_site, synthetic_site

EVENING = datetime(2026, 1, 15, 17, 0, tzinfo=UTC)  # 18:00 local in Dijon


async def _run(seed: int, steps: list[float], options: CityOptions | None = None) -> list[tuple[float, str, str]]:
    sim = CitySimulator(
        small_site(), seed=seed, bind="free", start_time=EVENING, manual_clock=True, trace=True, options=options
    )
    await sim.start()
    try:
        for cabinet in sim.city.cabinets.values():  # lamps burn (only burning lamps fail)
            cabinet.write_holding(100, [60] * cabinet.count)
        for step in steps:
            sim.advance(step)
        assert sim.env.trace is not None
        return list(sim.env.trace)
    finally:
        await sim.stop()


async def test_same_seed_same_events_whatever_the_step_pattern() -> None:
    options = CityOptions(lamp_failure_per_hour=0.01)
    coarse = await _run(11, [3 * 3600.0], options)
    fine = await _run(11, [7.3] * 1479 + [3 * 3600.0 - 7.3 * 1479], options)
    assert len(coarse) > 1000
    assert coarse == fine
    kinds = Counter(event.split()[0] for _, _, event in coarse)
    assert kinds["presence"] > 500 and kinds["bay"] > 10 and kinds["lamp_failure"] > 0


async def test_other_seed_other_events() -> None:
    assert await _run(11, [1800.0]) != await _run(12, [1800.0])


async def test_movers_walk_along_streets_across_cabinets(sim: CitySimulator) -> None:
    sim.env.trace = []
    city = sim.city
    crossing = next(
        (k, street) for k, street in enumerate(city.streets) if len({cabinet.id for cabinet, _ in street.stops}) > 1
    )
    _, street = crossing
    boundary = next(p for p in range(len(street.stops) - 1) if street.stops[p][0] is not street.stops[p + 1][0])
    start = max(0, boundary - 2)
    now = sim.sync()
    city._step(now, [street, start, 1, 5, 1.5])
    sim.advance(600)
    fired = [(t, lamp) for t, lamp, what in sim.env.trace if what == "presence"]
    expected = [
        street.stops[p][0].lamp_ids[street.stops[p][1]] for p in range(start, min(start + 5, len(street.stops)))
    ]
    assert [lamp for _, lamp in fired] == expected
    times = [t for t, _ in fired]
    gaps = [round((b - a) * 1.5, 3) for a, b in itertools.pairwise(times)]
    assert gaps == [round(street.gaps[p], 3) for p in range(start, start + len(gaps))]
    cabinets = {street.stops[p][0].id for p in range(start, start + len(expected))}
    assert len(cabinets) == 2


async def test_evening_is_busy_and_the_small_hours_are_quiet() -> None:
    trace = await _run(4, [3600.0, 8 * 3600.0, 3600.0])
    evening_end = EVENING.timestamp() + 3600
    night_start = EVENING.timestamp() + 9 * 3600  # 03:00 local
    evening = sum(1 for t, _, what in trace if what == "presence" and t < evening_end)
    night = sum(1 for t, _, what in trace if what == "presence" and t >= night_start)
    assert evening > 10 * max(night, 1)


async def test_random_faults_happen_and_are_repaired() -> None:
    site = synthetic_site(
        "faulty",
        cabinets=30,
        lamps_per_cabinet=50,
        controllers=20,
        signs=10,
        parking_sites=2,
        bays_per_site=200,
        port_base=0,
    )
    sim = CitySimulator(
        site,
        seed=9,
        bind="free",
        start_time=EVENING,
        manual_clock=True,
        trace=True,
        options=CityOptions(movers=0, cars=False),
    )
    await sim.start()
    try:
        for cabinet in sim.city.cabinets.values():
            cabinet.write_holding(0, [1])  # all on: every lamp burns
        for _ in range(60):
            sim.advance(86400.0)
        assert sim.env.trace is not None
        events = Counter(what for _, _, what in sim.env.trace)
        for name in (
            "lamp_failure on",
            "lamp_failure off",
            "mains on",
            "mains off",
            "door on",
            "conflict on",
            "signal_lamp on",
            "pixels on",
        ):
            assert events[name] > 0, name
        assert events["sensor fault on"] > 0
        assert abs(events["mains on"] - events["mains off"]) <= 30  # every outage ends
    finally:
        await sim.stop()


async def test_real_clock_with_a_speed_factor() -> None:
    sim = CitySimulator(
        small_site(), bind="free", speed=3600.0, start_time=EVENING, options=CityOptions(random_faults=False)
    )
    await sim.start()
    try:
        start = sim.sync()
        await asyncio.sleep(0.5)
        elapsed = sim.sync() - start
        assert 0.4 * 3600 < elapsed < 0.9 * 3600
        assert sim.status()["events_processed"] > 100  # the ticker runs events without any read
        sim.set_speed(1.0)
        before = sim.sync()
        await asyncio.sleep(0.2)
        assert sim.sync() - before < 5
    finally:
        await sim.stop()


async def test_presence_reaches_the_registers_over_a_busy_hour() -> None:
    sim = CitySimulator(
        small_site(),
        seed=2,
        bind="free",
        start_time=EVENING,
        manual_clock=True,
        options=CityOptions(random_faults=False),
    )
    await sim.start()
    try:
        before = {lamp: cab._count[i] for lamp, (cab, i) in sim.city.lamps.items()}
        sim.advance(3600)
        after = {lamp: cab._count[i] for lamp, (cab, i) in sim.city.lamps.items()}
        moved = sum(1 for lamp in before if after[lamp] != before[lamp])
        assert moved > 0.5 * len(before)
    finally:
        await sim.stop()


SMALL = Path(__file__).resolve().parents[2] / "config" / "small"
SMALL_PRESENT = (SMALL / "site.yaml").is_file()


@pytest.mark.skipif(not SMALL_PRESENT, reason="config/small is not there yet")
async def test_real_site_folder() -> None:
    folder = SMALL
    loader = pytest.importorskip("scada.site.loader")
    site = loader.load_site(folder)
    sim = CitySimulator(site, bind="free", manual_clock=True)
    await sim.start()
    try:
        assert set(sim.endpoints) == {d.id for d in site.field_devices() if d.endpoint.protocol == "modbus"}
        for device_id, endpoint in sim.endpoints.items():
            reader, writer = await asyncio.open_connection(endpoint.host, endpoint.port)
            writer.write(bytes([0, 1, 0, 0, 0, 6, endpoint.unit, 4, 0, 0, 0, 10]))
            answer = await asyncio.wait_for(reader.readexactly(9 + 20), 5)
            assert answer[7] == 4 and answer[10] in (1, 2, 3, 4), device_id
            writer.close()
    finally:
        await sim.stop()


async def test_only_burning_lamps_fail() -> None:
    options = CityOptions(movers=0, cars=False, lamp_failure_per_hour=0.05)
    sim = CitySimulator(
        small_site(), seed=6, bind="free", start_time=EVENING, manual_clock=True, trace=True, options=options
    )
    await sim.start()
    try:
        sim.advance(10 * 3600)  # every lamp off (setpoints 0)
        assert sim.env.trace is not None
        assert not [e for e in sim.env.trace if e[2] == "lamp_failure on"]
        sim.device("CAB-0001").write_holding(100, [50] * 20)  # only CAB-0001's lamps burn
        sim.advance(10 * 3600)
        failed = {lamp for _, lamp, what in sim.env.trace if what == "lamp_failure on"}
        assert failed and all(sim.lamp(lamp)[0].id == "CAB-0001" for lamp in failed)
    finally:
        await sim.stop()
