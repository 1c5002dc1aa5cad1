"""The control server application: wires site, drivers, router, command service, OPC UA server and historian.

Services start in dependency order (historian, OPC UA server, live figures, drivers) and stop in reverse;
if one fails to start, those already started are stopped again.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from scada.commands import CommandService
from scada.energy_live import LightingPower
from scada.lifecycle import ServiceGroup
from scada.model import Driver, ValueRecord
from scada.router import TagRouter
from scada.site.model import FieldDevice, Site

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ServerOptions:
    """How the control server is exposed and where it keeps its data."""

    host: str = "0.0.0.0"
    port: int = 4840
    historian_url: str | None = None  # None: the site's historian section, "" disables the historian
    data_dir: Path = Path("var")


def build_drivers(site: Site, publish: TagRouter) -> list[Driver]:
    """One driver per field protocol, each given the field devices that use it."""
    from drivers.modbus.driver import ModbusDriver

    modbus: list[FieldDevice] = [d for d in site.field_devices() if d.endpoint.protocol == "modbus"]
    drivers: list[Driver] = []
    if modbus:
        drivers.append(ModbusDriver(modbus, publish.publish))
    opcua = [d for d in site.field_devices() if d.endpoint.protocol == "opcua"]
    if opcua:
        from drivers.opcua_client import OpcUaClientDriver

        drivers.append(OpcUaClientDriver(opcua, publish.publish, settings=site.settings.get("opcua_sources", {})))
    return drivers


class ControlServer:
    """The whole control server for one site; `async with ControlServer(...)` or start()/stop()."""

    def __init__(self, site: Site, options: ServerOptions | None = None) -> None:
        from scada.opcua.server import CityServer

        self.site = site
        self.options = options or ServerOptions()
        self.router = TagRouter()
        self.commands = CommandService(site)
        self.server = CityServer(site, self.commands, host=self.options.host, port=self.options.port)
        self.power = LightingPower(site, self.router.publish)
        self.drivers = build_drivers(site, self.router)
        self._group = ServiceGroup()
        self._wired = False

    @property
    def endpoint_url(self) -> str:
        """The OPC UA endpoint clients connect to."""
        return str(self.server.endpoint_url)

    def _wire(self) -> None:
        if self._wired:
            return
        self._wired = True
        self.router.add_sink("address-space", self._to_address_space)
        self.router.add_sink("lighting-power", self.power)
        for driver in self.drivers:
            self.commands.register_driver(driver)
        self._group.add("opcua-server", self.server)
        self._group.add("lighting-power", self.power)
        for driver in self.drivers:
            self._group.add(f"driver:{driver.name}", driver)

    def _to_address_space(self, records: Sequence[ValueRecord]) -> None:
        if self.server.running:
            self.server.writer.apply(records)

    async def start(self) -> None:
        """Start every service in order (rolled back on failure)."""
        self._wire()
        await self._group.start()
        log.info("cityscada serving %s at %s", self.site.name, self.endpoint_url)

    async def stop(self) -> None:
        """Stop every service in reverse order."""
        await self._group.stop()

    async def __aenter__(self) -> ControlServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()
