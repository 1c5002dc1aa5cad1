"""A night on the small site in accelerated time: the simulators, the server's automation and its energy figures
share one clock (the simulators' clock, up to 1,500 times real time).

Dusk switches the lamps on; a pedestrian's presence raises the lamps ahead along the street and they fall back;
at dawn the savings figures the server publishes equal those recomputed from the simulators' own meters and the
legacy baseline (the legacy wattage of each lamp times the burning time the simulator counted)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from asyncua import Client

from drivers.sim.city import CityOptions
from drivers.sim.lighting import CabinetSim
from drivers.sim.runner import CitySimulator
from scada.app import ControlServer, ServerOptions
from scada.catalog import NAMESPACE_URI
from scada.lighting.astro import AstroClock
from scada.lighting.config import load_lighting_config
from scada.site.loader import rebind_endpoints
from scada.site.model import Site

from .conftest import fast_site

pytestmark = pytest.mark.slow

PARIS = ZoneInfo("Europe/Paris")
FAST, EDGE, SLOW, FROZEN = 1500.0, 60.0, 10.0, 0.001
EDGE_LEAD = timedelta(minutes=2)  # the clock slows down this long before dusk and dawn


class SimSiteClock:
    """The simulators' clock as the server's site clock: one time base for lamps, automation and energy."""

    def __init__(self, sim: CitySimulator) -> None:
        self._clock = sim.clock

    @property
    def speed(self) -> float:
        return float(self._clock.speed)

    def __call__(self) -> datetime:
        return datetime.fromtimestamp(self._clock.now(), UTC)


@dataclass
class Night:
    site: Site
    sim: CitySimulator
    server: ControlServer
    client: Client
    ns: int
    clock: SimSiteClock

    def cabinets(self) -> list[CabinetSim]:
        return [self.sim.device(c) for c in self.site.cabinets]  # type: ignore[misc]

    def setpoint(self, lamp_id: str) -> int:
        cabinet, index = self.sim.lamp(lamp_id)
        return int(cabinet.hr[100 + index])

    def set_speed(self, speed: float) -> None:
        """Change the speed of the one clock; the automation re-plans its timers for the new speed."""
        self.sim.clock.set_speed(speed)
        assert self.server.lighting is not None
        self.server.lighting.resync()

    async def read(self, path: str) -> object:
        return await self.client.get_node(f"ns={self.ns};s={path}").read_value()

    def meters(self) -> dict[str, tuple[float, dict[str, float]]]:
        """Per cabinet: its meter (Wh) and each lamp's burning hours, straight from the simulator."""
        out = {}
        for cabinet_id in self.site.cabinets:
            sim = self.sim.device(cabinet_id)
            assert isinstance(sim, CabinetSim)
            now = sim.env.sync()
            hours = {sim.lamp_state(i)["id"]: sim.lamp_state(i)["burning_hours"] for i in range(sim.count)}
            out[cabinet_id] = (sim.cabinet_energy_wh(now), hours)
        return out


async def until(check: Callable[[], bool], within: float, what: str) -> None:
    started = time.monotonic()
    while not check():
        if time.monotonic() - started > within:
            raise AssertionError(f"{what} not reached within {within} s")
        await asyncio.sleep(0.05)


@pytest.fixture
async def night(free_port: int) -> AsyncIterator[Night]:
    site = fast_site(poll_ms=100)
    start = datetime(2026, 1, 15, 16, 45, tzinfo=PARIS)
    sim = CitySimulator(
        site,
        seed=11,
        bind="free",
        start_time=start,
        speed=FROZEN,
        options=CityOptions(movers=0, cars=False, random_faults=False),
    )
    await sim.start()
    rebind_endpoints(site, sim.endpoints)
    clock = SimSiteClock(sim)
    server = ControlServer(
        site,
        ServerOptions(host="127.0.0.1", port=free_port, historian_url="", insecure=True, clock=clock),
    )
    client = Client(f"opc.tcp://127.0.0.1:{free_port}/cityscada", timeout=10)
    try:
        await server.start()
        await client.connect()
        ns = await client.get_namespace_index(NAMESPACE_URI)
        yield Night(site, sim, server, client, ns, clock)
    finally:
        await client.disconnect()
        await server.stop()
        await sim.stop()


async def test_a_night_dusk_presence_and_savings_against_the_meters(night: Night) -> None:
    site, sim = night.site, night.sim
    config = load_lighting_config(site)
    dusk = AstroClock(site.lat, site.lon, site.timezone).night(date(2026, 1, 15), config.on, config.off)
    assert dusk.on is not None and dusk.off is not None
    lamp = site.cabinets["CAB-0001"].lamps[0]

    # the server has read every meter once (its references) while the clock stands still: the simulators' too
    async def read_all() -> bool:
        return all([await night.read(f"{c.path}/EnergyKWh") is not None for c in site.cabinets.values()])

    deadline = time.monotonic() + 10
    while not await read_all():
        assert time.monotonic() < deadline, "first readings"
        await asyncio.sleep(0.1)
    await asyncio.sleep(0.5)
    assert await night.read(f"{lamp.path}/On") is False
    before = night.meters()

    # dusk switches the lamps on (the clock slows down around it, so that the server sees the burning state
    # change within seconds of site time, as it does in real time)
    night.set_speed(FAST)
    await until(lambda: night.clock() >= dusk.on - EDGE_LEAD, 20, "before dusk")
    night.set_speed(EDGE)
    assert not any(night.setpoint(lp.id) for lp in site.lamps())
    await until(lambda: night.clock() >= dusk.on, 10, "dusk")
    await until(lambda: all(night.setpoint(lp.id) == 100 for lp in site.lamps()), 10, "lamps on at dusk")
    deadline = time.monotonic() + 5
    while await night.read(f"{lamp.path}/On") is not True:
        assert time.monotonic() < deadline, "On published"
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.5)
    night.set_speed(FAST)

    # at 00:55 a pedestrian appears under L-000006 on a dimmed main road: the lamps ahead rise, then fall back
    await until(lambda: night.clock() >= datetime(2026, 1, 16, 0, 55, tzinfo=PARIS), 30, "00:55")
    night.set_speed(SLOW)
    ahead = ["L-000007", "L-000008", "L-000009"]
    await until(lambda: all(night.setpoint(lp) == 50 for lp in ["L-000006", *ahead]), 5, "main roads at 50 %")
    sim.fire_presence("L-000006")
    await until(lambda: all(night.setpoint(lp) == 100 for lp in ahead), 5, "lamps ahead raised")
    await until(lambda: all(night.setpoint(lp) == 50 for lp in ahead), 15, "lamps ahead back to 50 %")

    # on to dawn, then the clock stands still and the figures are compared with the meters
    night.set_speed(FAST)
    await until(lambda: night.clock() >= dusk.off - EDGE_LEAD, 30, "before dawn")
    night.set_speed(EDGE)
    await until(lambda: night.clock() >= dusk.off, 10, "dawn")
    await until(lambda: all(night.setpoint(lp.id) == 0 for lp in site.lamps()), 10, "lamps off at dawn")
    await asyncio.sleep(0.5)  # the last polls
    night.set_speed(FROZEN)
    await asyncio.sleep(0.5)
    after = night.meters()

    def savings(cabinets: list[str]) -> float:
        energy = sum(after[c][0] - before[c][0] for c in cabinets)
        baseline = 0.0
        for c in cabinets:
            for lp in site.cabinets[c].lamps:
                baseline += lp.legacy_w * (after[c][1][lp.id] - before[c][1][lp.id])
        return 100.0 * (baseline - energy) / baseline

    expected = {
        "Energy": savings(list(site.cabinets)),
        **{
            f"Energy/Districts/{d}": savings([c.id for c in site.cabinets.values() if c.district == d])
            for d in site.districts
        },
    }
    published: dict[str, float] = {}
    deadline = time.monotonic() + 12  # figures are published every 5 s
    while True:
        published = {p: await night.read(f"{p}/LightingSavingsPercentNight") for p in expected}  # type: ignore[misc]
        if all(abs(published[p] - expected[p]) <= 0.5 for p in expected) or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.5)
    for prefix, value in expected.items():
        assert 20.0 < value < 90.0, f"{prefix}: a night of dimming saves something, not everything ({value:.1f} %)"
        assert published[prefix] == pytest.approx(value, abs=0.5), prefix
    assert await night.read("Energy/LightingSavingsPercent") == pytest.approx(expected["Energy"], abs=0.5)
