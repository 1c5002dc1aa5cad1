"""The site model: every device of the city as plain dataclasses, built once by the loader and then read-only."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from scada.catalog import Kind


@dataclass(frozen=True, slots=True)
class Endpoint:
    """How the server reaches a field device."""

    protocol: str  # "modbus" or "opcua"
    host: str = "127.0.0.1"
    port: int = 502
    unit: int = 1  # Modbus unit id
    poll_ms: int = 1000  # poll period (Modbus) or sampling interval (OPC UA)
    url: str = ""  # OPC UA endpoint URL (protocol "opcua")
    mapping: str = ""  # OPC UA: name of the remote mapping in the site configuration


@dataclass(slots=True, kw_only=True)
class Lamp:
    """One LED luminaire, driven by its cabinet (segment controller) as lamp `index`."""

    kind: ClassVar[Kind] = Kind.LAMP
    id: str
    cabinet_id: str
    index: int  # 0-based luminaire index i of the register map (IR 100+8i, HR 100+i)
    lat: float
    lon: float
    rated_w: float  # LED power at 100 %
    legacy_w: float  # power of the legacy lamp it replaced: the energy baseline
    street_id: str = ""
    seq: int = 0  # order along its street (for follow-me lighting)

    @property
    def path(self) -> str:
        """The NodeId path of the lamp object."""
        return f"Lighting/{self.cabinet_id}/{self.id}"


@dataclass(slots=True, kw_only=True)
class Cabinet:
    """A lighting cabinet (segment controller) and its lamps."""

    kind: ClassVar[Kind] = Kind.CABINET
    id: str
    name: str
    district: str
    lat: float
    lon: float
    endpoint: Endpoint
    lamps: list[Lamp] = field(default_factory=list)

    @property
    def path(self) -> str:
        """The NodeId path of the cabinet object."""
        return f"Lighting/{self.id}"


@dataclass(slots=True, kw_only=True)
class TrafficController:
    """A traffic-light controller of one signalised intersection."""

    kind: ClassVar[Kind] = Kind.CONTROLLER
    id: str
    name: str
    district: str
    lat: float
    lon: float
    endpoint: Endpoint
    detectors: int = 8

    @property
    def path(self) -> str:
        """The NodeId path of the controller object."""
        return f"Traffic/{self.id}"


@dataclass(slots=True, kw_only=True)
class Sign:
    """A variable message sign (3 x 18 characters and a pictogram)."""

    kind: ClassVar[Kind] = Kind.SIGN
    id: str
    name: str
    district: str
    lat: float
    lon: float
    endpoint: Endpoint
    road: str = ""
    bearing_deg: float = 0.0  # direction of travel of the traffic that reads the sign (0 = north, 90 = east)

    @property
    def path(self) -> str:
        """The NodeId path of the sign object."""
        return f"Signs/{self.id}"


@dataclass(slots=True, kw_only=True)
class ParkingSensor:
    """One bay sensor of a parking site, reported by the site's gateway as bay `index`."""

    kind: ClassVar[Kind] = Kind.PARKING_SENSOR
    id: str
    site_id: str
    index: int  # 0-based bay index (DI i, DI 4096+i)
    lat: float
    lon: float

    @property
    def path(self) -> str:
        """The NodeId path of the sensor object."""
        return f"Parking/{self.site_id}/{self.id}"


@dataclass(slots=True, kw_only=True)
class ParkingSite:
    """A car park or on-street zone, read through its parking gateway."""

    kind: ClassVar[Kind] = Kind.PARKING_SITE
    id: str
    name: str
    district: str
    site_type: str  # "carpark" or "onstreet"
    lat: float
    lon: float
    capacity: int
    endpoint: Endpoint
    sensors: list[ParkingSensor] = field(default_factory=list)

    @property
    def path(self) -> str:
        """The NodeId path of the parking site object."""
        return f"Parking/{self.id}"


@dataclass(slots=True, kw_only=True)
class Street:
    """A street line of the site geometry (WGS84 points, lon/lat order as in GeoJSON)."""

    id: str
    name: str
    district: str
    points: list[tuple[float, float]]


@dataclass(slots=True, kw_only=True)
class District:
    """A district of the city: lighting profiles and energy reports are per district."""

    id: str
    name: str


FieldDevice = Cabinet | TrafficController | Sign | ParkingSite
"""The devices that have their own field connection (a driver endpoint)."""

Device = Lamp | Cabinet | TrafficController | Sign | ParkingSite | ParkingSensor


@dataclass(slots=True, kw_only=True)
class Site:
    """A whole city: the validated content of one site folder."""

    name: str
    title: str
    lat: float
    lon: float
    timezone: str
    folder: Path
    districts: dict[str, District] = field(default_factory=dict)
    streets: dict[str, Street] = field(default_factory=dict)
    cabinets: dict[str, Cabinet] = field(default_factory=dict)
    controllers: dict[str, TrafficController] = field(default_factory=dict)
    signs: dict[str, Sign] = field(default_factory=dict)
    parking: dict[str, ParkingSite] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)  # further sections (historian, alarms, lighting, ...)
    _index: dict[str, Device] = field(default_factory=dict, repr=False)

    def lamps(self) -> Iterator[Lamp]:
        """Every lamp of the site, cabinet by cabinet."""
        for cabinet in self.cabinets.values():
            yield from cabinet.lamps

    def sensors(self) -> Iterator[ParkingSensor]:
        """Every parking sensor of the site, site by site."""
        for site in self.parking.values():
            yield from site.sensors

    def field_devices(self) -> Iterator[FieldDevice]:
        """Every device with its own field connection."""
        yield from self.cabinets.values()
        yield from self.controllers.values()
        yield from self.signs.values()
        yield from self.parking.values()

    def devices(self) -> Iterator[Device]:
        """Every device of the site, of every kind."""
        for cabinet in self.cabinets.values():
            yield cabinet
            yield from cabinet.lamps
        yield from self.controllers.values()
        yield from self.signs.values()
        for site in self.parking.values():
            yield site
            yield from site.sensors

    def device(self, device_id: str) -> Device | None:
        """The device with that id, of any kind, or None."""
        if not self._index:
            self._index = {device.id: device for device in self.devices()}
        return self._index.get(device_id)

    def counts(self) -> dict[Kind, int]:
        """How many devices of each kind the site holds."""
        return {
            Kind.LAMP: sum(len(c.lamps) for c in self.cabinets.values()),
            Kind.CABINET: len(self.cabinets),
            Kind.CONTROLLER: len(self.controllers),
            Kind.SIGN: len(self.signs),
            Kind.PARKING_SITE: len(self.parking),
            Kind.PARKING_SENSOR: sum(len(p.sensors) for p in self.parking.values()),
        }
