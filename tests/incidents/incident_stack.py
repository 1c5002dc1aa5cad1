"""A control stack for incident and parking tests: simulators on free ports, the Modbus driver, the command
service, the tag router with the value cache, DeviceHolds and the IncidentService (no OPC UA unless asked)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from drivers.modbus.driver import ModbusDriver
from drivers.modbus.registers import SIGN_HR_FLASHING, SIGN_HR_PICTOGRAM, TRAF_HR_PLAN
from drivers.sim.city import CityOptions
from drivers.sim.runner import CitySimulator
from scada.commands import CommandService
from scada.incidents import IncidentService, TagCache, Vault, load_playbooks
from scada.incidents.holds import DeviceHolds
from scada.model import WriteRequest
from scada.opcua.incidents import IncidentReport
from scada.router import TagRouter
from scada.site.loader import load_site, rebind_endpoints
from scada.site.model import Site

ROOT = Path(__file__).resolve().parents[2]
START = datetime(2026, 3, 10, 9, 0, tzinfo=UTC)  # a Tuesday, 10:00 in Dijon: a day plan runs locally
CONTACT = "jane.doe@example.org +33 6 12 34 56 78"
# the small site: TLC-001 is 1.03 km from VMS-01, ahead of its readers (bearing 125.6 deg, sign 135 deg)
AT_TLC = (47.322200, 5.041300)


class RecordingJournal:
    """The journal protocol, kept in memory: every event and the last row of every incident."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.rows: dict[str, dict[str, Any]] = {}

    def record_event(self, **fields: Any) -> None:
        self.events.append(fields)

    def upsert_incident(self, incident_id: str, **fields: Any) -> None:
        self.rows[incident_id] = fields

    def steps(self, incident_id: str) -> list[str]:
        return [e["state"] for e in self.events if e["source"] == f"Incidents/{incident_id}"]


@dataclass
class Stack:
    """The running parts of one test."""

    site: Site
    sim: CitySimulator
    router: TagRouter
    cache: TagCache
    driver: ModbusDriver
    commands: CommandService
    holds: DeviceHolds
    service: IncidentService
    journal: RecordingJournal
    audits: list[Any] = field(default_factory=list)

    def report(
        self, kind: str = "accident", at: tuple[float, float] = AT_TLC, user: str | None = "operator"
    ) -> IncidentReport:
        return IncidentReport(kind, at[0], at[1], "two cars, lane blocked", CONTACT, user, datetime.now(UTC))

    def sign(self, sign_id: str = "VMS-01") -> tuple[str, int, int]:
        """(message, pictogram, flashing) the simulated sign displays."""
        device: Any = self.sim.device(sign_id)
        return device.message(), device.pictogram, device.flashing

    def sign_held(self, sign_id: str = "VMS-01") -> tuple[int, int]:
        device: Any = self.sim.device(sign_id)
        return device.hr[SIGN_HR_PICTOGRAM], device.hr[SIGN_HR_FLASHING]

    def plan(self, controller_id: str = "TLC-001") -> tuple[int, int, int]:
        """(HR0 requested, IR4 plan running, IR8 control mode) of a simulated controller."""
        device: Any = self.sim.device(controller_id)
        running, mode = device.plan_and_mode(self.sim.sync())
        return device.hr[TRAF_HR_PLAN], running, mode

    async def execute(self, device_id: str, action: str, **args: Any) -> None:
        await self.commands.execute(WriteRequest(device_id, action, args, user="setup", origin="test"))


def small_site(poll_ms: int = 300) -> Site:
    """The small site with short poll periods."""
    site = load_site(ROOT / "config" / "small")
    for device in site.field_devices():
        device.endpoint = replace(device.endpoint, poll_ms=poll_ms)
    return site


async def open_stack(
    *,
    site: Site | None = None,
    vault: Vault | None = None,
    cars: bool = False,
    configure: Callable[[Site], None] | None = None,
    journal: Any = None,
) -> Stack:
    """Start the simulators and the control stack on the small site (the caller closes it with close_stack)."""
    site = site or small_site()
    if configure is not None:
        configure(site)
    sim = CitySimulator(
        site, seed=7, bind="free", start_time=START, options=CityOptions(movers=0.0, cars=cars, random_faults=False)
    )
    await sim.start()
    rebind_endpoints(site, sim.endpoints)
    router = TagRouter()
    cache = TagCache.for_site(site)
    router.add_sink("incident-values", cache)
    driver = ModbusDriver(list(site.field_devices()), router.publish, timeout=1.0, reconnect_min_s=0.2, seed=3)
    commands = CommandService(site, timeout_s=5.0)
    commands.register_driver(driver)
    await driver.start()
    await driver.poll_all()
    recording = RecordingJournal()
    holds = DeviceHolds(site, commands, cache.value, retry_s=0.5)
    service = IncidentService(
        site,
        commands,
        playbooks=load_playbooks(site),
        values=cache.value,
        journal=journal if journal is not None else recording,
        vault=vault,
        holds=holds,
    )
    await service.start()
    stack = Stack(site, sim, router, cache, driver, commands, holds, service, recording)
    commands.add_audit_sink(stack.audits.append)
    return stack


async def close_stack(stack: Stack) -> None:
    """Stop everything open_stack started, in reverse."""
    await stack.service.stop()
    await stack.driver.stop()
    await stack.sim.stop()


async def eventually(predicate: Callable[[], bool], timeout: float = 10.0, what: str = "condition") -> None:
    """Poll a predicate until it holds (AssertionError after `timeout` seconds)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"{what} not reached within {timeout} s"
        await asyncio.sleep(0.05)
