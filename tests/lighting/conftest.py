"""Fixtures of the lighting tests: the small site behind simulators over real Modbus, and lighting services on it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import pytest
from lighting_helpers import POLL_MS, QUIET, City, local

from drivers.modbus.driver import ModbusDriver
from drivers.sim.runner import CitySimulator
from scada.commands import CommandService
from scada.router import TagRouter
from scada.site.loader import load_site, rebind_endpoints


@pytest.fixture
async def city(small_site_dir: Path) -> AsyncIterator[City]:
    """The small site (freshly loaded) with every field device simulated on a free port and polled every 100 ms."""
    site = load_site(small_site_dir)
    sim = CitySimulator(
        site, seed=5, bind="free", start_time=local(2026, 1, 15, 12, 0), manual_clock=True, options=QUIET
    )
    await sim.start()
    driver: ModbusDriver | None = None
    world: City | None = None
    try:
        rebind_endpoints(site, {key: replace(ep, poll_ms=POLL_MS) for key, ep in sim.endpoints.items()})
        router = TagRouter()
        driver = ModbusDriver(
            list(site.field_devices()), router.publish, timeout=1.0, reconnect_min_s=0.05, reconnect_max_s=0.2, seed=1
        )
        commands = CommandService(site)
        commands.register_driver(driver)
        world = City(site, sim, driver, commands, router)
        commands.add_audit_sink(world.audit.append)
        await driver.start()
        yield world
    finally:
        if world is not None:
            for service in world.services:
                await service.stop()
        if driver is not None:
            await driver.stop()
        await sim.stop()
