"""Helpers of the lighting tests: the small site over real Modbus (City), local times, polling until a condition holds."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from drivers.modbus.driver import ModbusDriver
from drivers.sim.city import CityOptions
from drivers.sim.lighting import CabinetSim
from drivers.sim.runner import CitySimulator
from scada.commands import CommandService
from scada.lighting import AcceleratedClock, LightingService
from scada.model import CommandAudit
from scada.router import TagRouter
from scada.site.model import Site

PARIS = ZoneInfo("Europe/Paris")
QUIET = CityOptions(movers=0, cars=False, random_faults=False)
POLL_MS = 100


def local(*args: int) -> datetime:
    """A Europe/Paris wall-clock time (aware)."""
    return datetime(*args, tzinfo=PARIS)  # type: ignore[arg-type,misc]


@dataclass
class City:
    """The small site over real Modbus: simulators, driver, command service, router and the audit trail."""

    site: Site
    sim: CitySimulator
    driver: ModbusDriver
    commands: CommandService
    router: TagRouter
    audit: list[CommandAudit] = field(default_factory=list)
    services: list[LightingService] = field(default_factory=list)

    def cabinet(self, cabinet_id: str) -> CabinetSim:
        """The simulated cabinet."""
        device = self.sim.device(cabinet_id)
        assert isinstance(device, CabinetSim)
        return device

    def setpoint(self, lamp_id: str) -> int:
        """A lamp's setpoint register in the simulator (HR 100+i)."""
        cabinet, index = self.sim.lamp(lamp_id)
        return int(cabinet.hr[100 + index])

    def level(self, lamp_id: str) -> int:
        """A lamp's actual level in the simulator (what it shows after mode and local boost)."""
        cabinet, index = self.sim.lamp(lamp_id)
        return int(cabinet.lamp_state(index)["level"])

    def setpoints(self, cabinet_id: str) -> list[int]:
        """Every lamp setpoint of a simulated cabinet."""
        cabinet = self.cabinet(cabinet_id)
        return [int(cabinet.hr[100 + i]) for i in range(cabinet.count)]

    def mode(self, cabinet_id: str) -> int:
        """HR 0 of a simulated cabinet."""
        return int(self.cabinet(cabinet_id).hr[0])

    def presence(self, cabinet_id: str) -> tuple[int, int]:
        """HR 1-2 of a simulated cabinet: boost level and hold seconds."""
        cabinet = self.cabinet(cabinet_id)
        return int(cabinet.hr[1]), int(cabinet.hr[2])

    def service(self, start: datetime, speed: float = 1.0, **changes: Any) -> tuple[LightingService, AcceleratedClock]:
        """A lighting service on an accelerated clock from `start`; `changes` update the lighting section."""
        if changes:
            section = self.site.settings["lighting"]
            for key, value in changes.items():
                section[key] = value
        clock = AcceleratedClock(start, speed)
        service = LightingService(self.site, self.commands, self.router, clock=clock, retry_min_s=0.1, retry_max_s=0.5)
        self.services.append(service)
        return service, clock


async def eventually(check: Callable[[], bool], within: float = 5.0, what: str = "condition") -> float:
    """Poll `check` until it holds (returns the real seconds it took); fails after `within` seconds."""
    started = time.monotonic()
    while not check():
        if time.monotonic() - started > within:
            raise AssertionError(f"{what} not reached within {within} s")
        await asyncio.sleep(0.02)
    return time.monotonic() - started


async def settle(service: LightingService, within: float = 5.0) -> None:
    """Wait until the service has commanded everything it wants."""
    await asyncio.wait_for(service.wait_idle(), within)
