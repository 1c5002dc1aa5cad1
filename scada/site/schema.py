"""What each section of a site folder may hold: the fields of every list, their types, ranges and defaults."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from scada.catalog import Kind
from scada.site.fields import Col
from scada.site.fields import FieldType as T

MAX_LAMPS_PER_CABINET = 128  # drivers.modbus.registers.MAX_LAMPS: a segment controller drives 1..128 luminaires
MAX_BAYS_PER_SITE = 2000  # drivers.modbus.registers.MAX_BAYS: a parking gateway reports 1..2000 bays
PROTOCOLS = ("modbus", "opcua")
DEFAULT_MODBUS_PORT = 502  # the Modbus TCP standard port
DEFAULT_MODBUS_UNIT = 1
BUILTIN_POLL_MS: dict[str, int] = {
    Kind.CABINET: 5000,
    Kind.CONTROLLER: 1000,
    Kind.SIGN: 5000,
    Kind.PARKING_SITE: 2000,
}

LAT = Col("lat", T.FLOAT, lo=-90, hi=90)
LON = Col("lon", T.FLOAT, lo=-180, hi=180)
POLL_MS = Col("poll_ms", T.INT, required=False, lo=100, hi=3_600_000)

ENDPOINT_COLS = (
    Col("protocol", T.CHOICE, required=False, choices=PROTOCOLS, default="modbus"),
    Col("host", T.TEXT, required=False),
    Col("port", T.INT, required=False, lo=1, hi=65535),
    Col("unit", T.INT, required=False, lo=0, hi=247),
    POLL_MS,
    Col("url", T.TEXT, required=False),
    Col("mapping", T.TEXT, required=False),
)
"""How a field device is reached; empty host/port/unit/poll_ms take the site defaults."""

HEAD = (Col("id", T.ID), Col("name", T.TEXT), Col("district", T.TEXT), LAT, LON)


@dataclass(frozen=True, slots=True)
class Section:
    """One list section of site.yaml."""

    name: str  # the site.yaml key
    cols: tuple[Col, ...]
    geometry: Literal["Point", "LineString"] = "Point"  # the GeoJSON geometry of a feature
    kind: Kind | None = None  # the device kind (None for districts and streets)

    @property
    def names(self) -> tuple[str, ...]:
        """The field names."""
        return tuple(col.name for col in self.cols)

    @property
    def field_device(self) -> bool:
        """True when rows have an endpoint of their own."""
        return any(col.name == "protocol" for col in self.cols)


DISTRICTS = Section("districts", (Col("id", T.ID), Col("name", T.TEXT)))
STREETS = Section(
    "streets",
    (
        Col("id", T.ID),
        Col("name", T.TEXT),
        Col("district", T.TEXT, required=False, default=""),
        Col("points", T.POINTS),
    ),
    geometry="LineString",
)
CABINETS = Section("cabinets", (*HEAD, *ENDPOINT_COLS), kind=Kind.CABINET)
LAMPS = Section(
    "lamps",
    (
        Col("id", T.ID),
        Col("cabinet", T.TEXT),
        Col("index", T.INT, lo=0, hi=MAX_LAMPS_PER_CABINET - 1),
        LAT,
        LON,
        Col("rated_w", T.FLOAT, lo=1, hi=1000),
        Col("legacy_w", T.FLOAT, lo=1, hi=2000),
        Col("street", T.TEXT, required=False, default=""),
        Col("seq", T.INT, required=False, lo=0, hi=10_000_000, default=0),
    ),
    kind=Kind.LAMP,
)
CONTROLLERS = Section(
    "controllers",
    (*HEAD, *ENDPOINT_COLS, Col("detectors", T.INT, required=False, lo=1, hi=8, default=8)),
    kind=Kind.CONTROLLER,
)
SIGNS = Section(
    "signs",
    (
        *HEAD,
        Col("road", T.TEXT, required=False, default=""),
        Col("bearing_deg", T.FLOAT, required=False, lo=0, hi=360, default=0.0),
        *ENDPOINT_COLS,
    ),
    kind=Kind.SIGN,
)
PARKING = Section(
    "parking",
    (
        *HEAD[:3],
        Col("type", T.CHOICE, choices=("carpark", "onstreet")),
        LAT,
        LON,
        Col("capacity", T.INT, lo=1, hi=MAX_BAYS_PER_SITE),
        *ENDPOINT_COLS,
    ),
    kind=Kind.PARKING_SITE,
)
PARKING_SENSORS = Section(
    "parking_sensors",
    (Col("id", T.ID), Col("site", T.TEXT), Col("index", T.INT, lo=0, hi=MAX_BAYS_PER_SITE - 1), LAT, LON),
    kind=Kind.PARKING_SENSOR,
)

LIST_SECTIONS = (DISTRICTS, STREETS, CABINETS, LAMPS, CONTROLLERS, SIGNS, PARKING, PARKING_SENSORS)
"""Every list section, in the order they are read and checked (ids are first claimed in this order)."""

SITE_COLS = (
    Col("name", T.ID),
    Col("title", T.TEXT, required=False),
    Col("latitude", T.FLOAT, lo=-90, hi=90),
    Col("longitude", T.FLOAT, lo=-180, hi=180),
    Col("timezone", T.TEXT),
)
DEFAULT_MODBUS_COLS = (
    Col("host", T.TEXT, required=False),
    Col("port", T.INT, required=False, lo=1, hi=65535),
    Col("unit", T.INT, required=False, lo=0, hi=247),
)
DEFAULT_POLL_COLS = tuple(Col(str(kind), T.INT, required=False, lo=100, hi=3_600_000) for kind in BUILTIN_POLL_MS)
DEFAULTS_KEYS = ("modbus", "poll_ms")

KNOWN_SECTIONS = frozenset({"site", "defaults", *(section.name for section in LIST_SECTIONS)})
"""Top-level keys the loader interprets; any other key goes to Site.settings untouched."""
