"""The control server application: wires site, drivers, router, command service, OPC UA server and historian.

Services start in dependency order and stop in reverse; if one fails to start, those already started are
stopped again:

    historian -> personal data -> OPC UA server (+ history access) -> alarms -> incidents -> live figures
    -> drivers -> lighting automation -> parking guidance -> public feed -> scheduled jobs

Every part that a site's configuration does not mention is left out (no `lighting:` section, no lighting
automation), except the core: the server, the drivers and the command service.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from scada.commands import CommandService
from scada.lifecycle import ServiceGroup
from scada.model import Driver, ValueRecord, utcnow
from scada.router import TagRouter
from scada.site.model import FieldDevice, Site

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ServerOptions:
    """How the control server is exposed and where it keeps its data."""

    host: str = "0.0.0.0"
    port: int = 4840
    historian_url: str | None = None  # None: the site's historian section; "" disables the historian
    data_dir: Path = Path("var")  # the site's files go to <data_dir>/<site name>/
    insecure: bool = False  # development only: no security layer, anonymous may do everything
    public_api_port: int | None = None  # None: the site's public_api section (absent: no public feed)
    hostnames: Sequence[str] | None = None  # names in the server certificate (default: this machine's)
    automation: bool = True  # lighting automation and parking guidance (off for some tests and benchmarks)
    clock: Any = None  # site time of the automation and energy figures (None: real time; an accelerated clock
    #                    runs a night in a minute against simulators started at the same time and speed)
    extra: dict[str, Any] = field(default_factory=dict)


def build_drivers(site: Site, router: TagRouter) -> list[Driver]:
    """One driver per field protocol, each given the field devices that use it."""
    from drivers.modbus.driver import ModbusDriver

    modbus: list[FieldDevice] = [d for d in site.field_devices() if d.endpoint.protocol == "modbus"]
    drivers: list[Driver] = []
    if modbus:
        drivers.append(ModbusDriver(modbus, router.publish))
    opcua = [d for d in site.field_devices() if d.endpoint.protocol == "opcua"]
    if opcua:
        from drivers.opcua_client import OpcUaClientDriver

        drivers.append(OpcUaClientDriver(opcua, router.publish, settings=site.settings.get("opcua_sources", {})))
    return drivers


def site_historian_url(site: Site, data_dir: Path) -> str:
    """The site's historian URL, or an SQLite file in the data folder when the site names none."""
    section = site.settings.get("historian")
    if isinstance(section, dict) and section.get("url"):
        url = str(section["url"])
    else:
        url = f"sqlite:///{data_dir / 'history.sqlite'}"
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    return url


def energy_tags(site: Site) -> list[str]:
    """The Energy variables' tags: the city's and each district's."""
    from scada.opcua.energy import ENERGY_VARS, district_prefix

    prefixes = ["Energy", *(district_prefix(d) for d in site.districts)]
    return [f"{prefix}/{spec.name}" for prefix in prefixes for spec in ENERGY_VARS]


class EnergyReportAccess:
    """The server extension adding GetEnergyReport to the Energy folder (answered by the energy figures)."""

    def __init__(self, site: Site, figures: Any) -> None:
        self._site = site
        self._figures = figures

    async def install(self, city: Any, server: Any) -> None:
        """Add and bind the method."""
        from scada.energy_figures import CITY
        from scada.opcua.energy import EnergyBucket, EnergyReportMethod

        async def handler(scope: str, start: Any, end: Any, bucket_s: int) -> list[EnergyBucket]:
            rows = await self._figures.report(CITY if scope == "City" else scope, start, end, bucket_s)
            return [EnergyBucket(when, energy, baseline) for when, energy, baseline in rows]

        EnergyReportMethod(city.builder, self._site, handler).install()

    async def uninstall(self) -> None:
        """Nothing to undo: the method goes away with the address space."""


class HistoryAccess:
    """The server extension answering HistoryRead from the historian (installed before the server listens)."""

    def __init__(self, historian: Any, extra_tags: Sequence[str] = ()) -> None:
        self._historian = historian
        self._extra = frozenset(extra_tags)

    async def install(self, city: Any, server: Any) -> None:
        """Install the SQL history backend on the city's namespace."""
        from asyncua import ua

        from historian.ingest import catalog_spec
        from historian.opcua_history_install import install_history

        ns = city.namespace_index

        def tag_for_nodeid(nodeid: ua.NodeId) -> str | None:
            if nodeid.NamespaceIndex != ns or not isinstance(nodeid.Identifier, str):
                return None
            if nodeid.Identifier in self._extra:
                return nodeid.Identifier
            found = catalog_spec(nodeid.Identifier)
            return nodeid.Identifier if found is not None and found[1].historized else None

        def source_for_nodeid(nodeid: ua.NodeId) -> str | None:
            return nodeid.Identifier if nodeid.NamespaceIndex == ns and isinstance(nodeid.Identifier, str) else None

        def nodeid_for_source(source: str) -> ua.NodeId | None:
            return ua.NodeId(ua.String(source), ns)

        install_history(
            server,
            self._historian.engine,
            tag_for_nodeid=tag_for_nodeid,
            source_for_nodeid=source_for_nodeid,
            nodeid_for_source=nodeid_for_source,
        )

    async def uninstall(self) -> None:
        """Nothing to undo: the asyncua server goes away with the city server."""


class ControlServer:
    """The whole control server for one site; `async with ControlServer(...)` or start()/stop()."""

    def __init__(self, site: Site, options: ServerOptions | None = None) -> None:
        from scada.opcua.server import CityServer

        self.site = site
        self.options = options = options or ServerOptions()
        self.data_dir = options.data_dir / site.name
        self.router = TagRouter()
        self.commands = CommandService(site)
        self._group = ServiceGroup()
        extensions: list[Any] = []

        self.historian = self._build_historian()
        if self.historian is not None:
            self.router.add_sink("historian", self.historian.submit)
            self.commands.add_audit_sink(self.historian.record_command)
            extensions.append(HistoryAccess(self.historian, energy_tags(site)))
            self._group.add("historian", self.historian)

        self.security = None
        server_kwargs: dict[str, Any] = {}
        if not options.insecure:
            from scada.security.setup import build_security

            self.security = build_security(site, self.data_dir, hostnames=options.hostnames)
            self.commands.set_authorizer(self.security.authorizer)
            server_kwargs = self.security.server_kwargs()

        self.incidents, incident_extras = self._build_incidents()
        self.energy = self._build_energy(extensions)
        self.lighting = self._build_lighting(extensions)
        self.server = CityServer(
            site,
            self.commands,
            host=options.host,
            port=options.port,
            incident_handler=self.incidents,
            extensions=extensions,
            **server_kwargs,
        )
        if self.security is not None:
            self.security.attach(historian=self.historian, incidents=self.incidents)
            self._group.add("personal-data", self.security.personal)
        self._group.add("opcua-server", self.server)
        self._group.add("energy-figures", self.energy)
        self.router.add_sink("address-space", self._to_address_space)

        from scada.lampstates import LampStates

        self.lamp_states = LampStates(site, self.router.publish)
        self.router.add_sink("lamp-states", self.lamp_states)

        self.alarms = self._build_alarms()
        for name, service in incident_extras:
            self._group.add(name, service)

        self.drivers = build_drivers(site, self.router)
        for driver in self.drivers:
            self.commands.register_driver(driver)
            self._group.add(f"driver:{driver.name}", driver)

        if self.lighting is not None:
            self._group.add("lighting", self.lighting)
        self._build_parking_guidance()
        self._build_public_feed()

    # -- parts ----------------------------------------------------------------------------------------------

    def _build_historian(self) -> Any:
        url = self.options.historian_url
        if url == "":
            return None
        from historian.service import Historian

        url = url or site_historian_url(self.site, self.data_dir)
        return Historian(url, journal_dir=self.data_dir / "journal")

    def _build_incidents(self) -> tuple[Any, list[tuple[str, Any]]]:
        from scada.incidents.holds import DeviceHolds
        from scada.incidents.opcua import IncidentObjects
        from scada.incidents.playbook import load_playbooks
        from scada.incidents.service import IncidentService
        from scada.incidents.values import TagCache
        from scada.incidents.vault import Vault

        site = self.site
        cache = TagCache.for_site(site)
        self.router.add_sink("incident-values", cache)
        self.tag_cache = cache
        self.holds = DeviceHolds(site, self.commands, cache.value)
        vault = self.security.vault if self.security is not None else Vault(self.data_dir / "keys")
        service = IncidentService(
            site,
            self.commands,
            playbooks=load_playbooks(site),
            values=cache.value,
            journal=self.historian,
            vault=vault,
            holds=self.holds,
        )
        authorize = None
        if self.security is not None:
            policy = self.security.policy

            def authorize(user: Any, method: str) -> None:
                # ConfirmAction / ChangeAction / CancelAction steer an incident's response: the right to close the
                # incident (which cancels every action); each device command is then checked against the user's
                # own `call` rights. (The method name is not a Permission: policy.require raised ValueError.)
                policy.require_call(user, "incident", "close")

        extras: list[tuple[str, Any]] = [("device-holds", self.holds)]
        extras.append(
            ("incident-objects", _Deferred(lambda: IncidentObjects(self.server, service, authorize=authorize)))
        )
        extras.append(("incidents", service))
        return service, extras

    def _build_alarms(self) -> Any:
        if "alarms" not in self.site.settings:
            return None
        from scada.alarms.engine import AlarmEngine
        from scada.alarms.journal import historian_journal
        from scada.opcua.conditions import OpcUaConditions

        journal = historian_journal(self.historian) if self.historian is not None else None
        engine = AlarmEngine(self.site, journal=journal)
        self.router.add_sink("alarms", engine)
        self._group.add("alarm-engine", engine)
        authorize = None
        if self.security is not None:
            authorize = self.security.policy.require
        self._group.add(
            "alarm-conditions", _Deferred(lambda: OpcUaConditions(self.server, engine, authorize=authorize))
        )
        return engine

    def _build_lighting(self, extensions: list[Any]) -> Any:
        """The lighting automation (started after the drivers) and its Override/CancelOverride methods."""
        if not self.options.automation or "lighting" not in self.site.settings:
            return None
        from scada.lighting.opcua import OverrideMethods
        from scada.lighting.service import LightingService

        lighting = LightingService(self.site, self.commands, self.router, clock=self.options.clock, stop_flush_s=0.5)
        may_call = self.security.policy.may_call if self.security is not None else None
        extensions.append(OverrideMethods(self.site, lighting, may_call))
        return lighting

    def _build_energy(self, extensions: list[Any]) -> Any:
        """The energy figures (a router sink, published as Energy variables) and GetEnergyReport."""
        from scada.energy_figures import EnergyFigures, HistorianEnergy

        history = None
        if self.historian is not None:
            from historian.jobs import HistorianJobs
            from scada.opcua.energy import ENERGY_VARS

            specs = {spec.name: spec for spec in ENERGY_VARS}
            for tag in energy_tags(self.site):
                spec = specs[tag.rsplit("/", 1)[1]]
                self.historian.register_tag(tag, tag_class="energy", unit=spec.unit, eu_range=spec.eu_range)
            history = HistorianEnergy(self.historian.engine, self.site)
            self._group.add("historian-jobs", HistorianJobs(self.historian, self.site))
        figures = EnergyFigures(self.site, self.router.publish, clock=self.options.clock, history=history)
        self.router.add_sink("energy-figures", figures)  # started with the live figures, once the server runs
        extensions.append(EnergyReportAccess(self.site, figures))
        return figures

    def _build_parking_guidance(self) -> None:
        if not self.options.automation or "parking_guidance" not in self.site.settings:
            return
        from scada.parking.guidance import ParkingGuidance, load_guidance

        self.guidance = ParkingGuidance(self.site, self.holds, self.tag_cache, load_guidance(self.site))
        self._group.add("parking-guidance", self.guidance)

    def _build_public_feed(self) -> None:
        section = self.site.settings.get("public_api")
        port = self.options.public_api_port
        if port is None and isinstance(section, dict) and section.get("port"):
            port = int(section["port"])
        if port is None:
            return
        from scada.public.api import PublicApi, PublicApiOptions
        from scada.public.feed import ParkingFeed

        feed = ParkingFeed.from_site(self.site)
        self.router.add_sink("public-feed", feed)
        host = str(section.get("host", "0.0.0.0")) if isinstance(section, dict) else "0.0.0.0"
        self._group.add("public-api", PublicApi(feed, PublicApiOptions(host=host, port=port)))

    # -- lifecycle ------------------------------------------------------------------------------------------

    @property
    def endpoint_url(self) -> str:
        """The OPC UA endpoint clients connect to."""
        return str(self.server.endpoint_url)

    def _to_address_space(self, records: Sequence[ValueRecord]) -> None:
        if self.server.running:
            self.server.writer.apply(records)

    async def start(self) -> None:
        """Start every service in order (rolled back on failure)."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        await self._group.start()
        self.router.publish(self.lamp_states.initial_records(utcnow()))
        log.info("cityscada serving %s at %s", self.site.name, self.endpoint_url)

    async def stop(self) -> None:
        """Stop every service in reverse order."""
        await self._group.stop()

    async def __aenter__(self) -> ControlServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()


class _Deferred:
    """A service made only when it starts (it needs a running OPC UA server), and dropped when it stops."""

    def __init__(self, make: Any) -> None:
        self._make = make
        self.service: Any = None

    async def start(self) -> None:
        """Make the service and start it."""
        if self.service is None:
            self.service = self._make()
            await self.service.start()

    async def stop(self) -> None:
        """Stop the service and forget it."""
        if self.service is not None:
            service, self.service = self.service, None
            await service.stop()
