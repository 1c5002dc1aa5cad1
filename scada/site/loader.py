"""Load a site folder (site.yaml and the files it names) into a validated Site, reporting every error at once."""

from __future__ import annotations

import gc
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from scada.catalog import Kind
from scada.model import ConfigError, ConfigIssue
from scada.site.fields import MSG_MISSING_FIELD, MSG_MISSING_VALUE, Col, parse_column
from scada.site.model import (
    Cabinet,
    District,
    Endpoint,
    Lamp,
    ParkingSensor,
    ParkingSite,
    Sign,
    Site,
    Street,
    TrafficController,
)
from scada.site.schema import (
    BUILTIN_POLL_MS,
    CABINETS,
    CONTROLLERS,
    DEFAULT_MODBUS_COLS,
    DEFAULT_MODBUS_PORT,
    DEFAULT_MODBUS_UNIT,
    DEFAULT_POLL_COLS,
    DEFAULTS_KEYS,
    DISTRICTS,
    KNOWN_SECTIONS,
    LAMPS,
    LIST_SECTIONS,
    PARKING,
    PARKING_SENSORS,
    SIGNS,
    SITE_COLS,
    STREETS,
    Section,
)
from scada.site.sources import (
    FILE_FIELD,
    INVALID,
    MISSING,
    SourceError,
    Table,
    YamlDoc,
    describe,
    parse_yaml,
    read_csv_table,
    read_geojson_table,
    read_text,
    table_from_mapping,
    table_from_yaml,
)
from scada.site.validate import (
    Parsed,
    check_addresses,
    check_lamps,
    check_references,
    check_sensors,
    check_unique_ids,
)

SITE_FILE = "site.yaml"
MSG_NO_HOST = "missing host (and no defaults.modbus.host)"


def load_site(folder: str | Path) -> Site:
    """Read and validate the site folder; raises ConfigError carrying every issue found."""
    # Loading allocates a few hundred thousand objects and no cycles: the cyclic collector would only slow it.
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        return _Loader(Path(folder)).load()
    finally:
        if was_enabled:
            gc.enable()


@dataclass(slots=True)
class _Defaults:
    """The `defaults` section, resolved (None where not given; INVALID where given wrong)."""

    host: Any = None
    port: Any = None
    unit: Any = None
    poll_ms: dict[str, Any] = field(default_factory=dict)


class _Loader:
    """One load of one site folder: collects issues while reading, then checks across files, then builds."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.issues: list[ConfigIssue] = []
        self.site_label = self.label(SITE_FILE)
        self.file_order: list[str] = [self.site_label]

    def label(self, name: str) -> str:
        """How issues name a file of the site: relative to the site folder's parent, or as given when absolute."""
        if Path(name).is_absolute():
            return name
        folder_name = self.folder.resolve().name
        return f"{folder_name}/{name}" if folder_name else name

    def fail(self) -> ConfigError:
        """The ConfigError for the issues so far, sorted by file (site.yaml first) and line."""
        rank = {label: position for position, label in enumerate(self.file_order)}
        ordered = sorted(self.issues, key=lambda i: (rank.get(i.file, len(rank)), i.line or 0))
        return ConfigError(ordered)

    # -- reading ----------------------------------------------------------------------------------------------

    def load(self) -> Site:
        """Read, check and build the site."""
        try:
            doc = parse_yaml(read_text(self.folder / SITE_FILE, self.site_label), self.site_label, self.issues)
        except SourceError as exc:
            self.issues.append(exc.issue)
            raise self.fail() from None
        top = doc.data
        if not isinstance(top, dict):
            message = f"expected a mapping of sections (site, defaults, districts, ...), got {describe(top)}"
            self.issues.append(ConfigIssue(self.site_label, 1, FILE_FIELD, message))
            raise self.fail()
        site_values = self._site_section(top, doc)
        defaults = self._defaults(top, doc)
        parsed: dict[str, Parsed | None] = {section.name: self._list(section, top, doc) for section in LIST_SECTIONS}
        for section in LIST_SECTIONS:
            entry = parsed[section.name]
            if entry is not None and section.field_device and section.kind is not None:
                entry.endpoints = self._endpoints(entry, section.kind, defaults)
        self._check(parsed)
        if self.issues or site_values is None:
            raise self.fail()
        return _build(self.folder, site_values, parsed, {k: v for k, v in top.items() if k not in KNOWN_SECTIONS})

    def _mapping(self, top: dict[str, Any], doc: YamlDoc, path: str, cols: tuple[Col, ...]) -> dict[str, Any] | None:
        """Parse the YAML mapping at `path` against `cols` (None when it is not a mapping)."""
        keys = path.split(".")
        node: Any = top
        for key in keys:
            node = node.get(key, MISSING) if isinstance(node, dict) else MISSING
        if node is MISSING or node is None:
            return {col.name: col.default for col in cols}
        table = table_from_mapping(keys[0], path, node, doc, self.site_label, [c.name for c in cols], self.issues)
        if not isinstance(node, dict):
            return None
        return {col.name: parse_column(table, col, self.issues)[0] for col in cols}

    def _site_section(self, top: dict[str, Any], doc: YamlDoc) -> dict[str, Any] | None:
        """The `site` section (required)."""
        if "site" not in top or top["site"] is None:
            self.issues.append(ConfigIssue(self.site_label, doc.lines.get("site", 1), "site", MSG_MISSING_FIELD))
            return None
        values = self._mapping(top, doc, "site", SITE_COLS)
        if values is None:
            return None
        timezone = values["timezone"]
        if isinstance(timezone, str):
            try:
                ZoneInfo(timezone)
            except (ZoneInfoNotFoundError, ValueError):
                line = doc.lines.get("site.timezone")
                self.issues.append(
                    ConfigIssue(self.site_label, line, "site.timezone", f"unknown time zone {timezone!r}")
                )
                values["timezone"] = INVALID
        return values

    def _defaults(self, top: dict[str, Any], doc: YamlDoc) -> _Defaults:
        """The `defaults` section (optional): Modbus host/port/unit and poll periods per kind."""
        defaults = _Defaults()
        section = top.get("defaults")
        if section is None:
            return defaults
        if not isinstance(section, dict):
            line = doc.lines.get("defaults")
            message = f"expected a mapping with {' and '.join(DEFAULTS_KEYS)}, got {describe(section)}"
            self.issues.append(ConfigIssue(self.site_label, line, "defaults", message))
            return defaults
        for key in section:
            if key not in DEFAULTS_KEYS:
                path = f"defaults.{key}"
                self.issues.append(ConfigIssue(self.site_label, doc.lines.get(path), path, "unknown field"))
        modbus = self._mapping(top, doc, "defaults.modbus", DEFAULT_MODBUS_COLS) or {}
        defaults.host, defaults.port, defaults.unit = modbus.get("host"), modbus.get("port"), modbus.get("unit")
        defaults.poll_ms = self._mapping(top, doc, "defaults.poll_ms", DEFAULT_POLL_COLS) or {}
        return defaults

    def _list(self, section: Section, top: dict[str, Any], doc: YamlDoc) -> Parsed | None:
        """One list section, inline or from its file; None when it cannot be read (its references are not checked)."""
        value = top.get(section.name)
        line = doc.lines.get(section.name)
        names = section.names
        table: Table
        if value is None:
            table = table_from_yaml(section.name, section.name, [], doc, self.site_label, names, self.issues)
        elif isinstance(value, list):
            table = table_from_yaml(section.name, section.name, value, doc, self.site_label, names, self.issues)
        elif isinstance(value, str) and value:
            loaded = self._file(section, value, line)
            if loaded is None:
                return None
            table = loaded
        else:
            message = f"expected a list of {section.name} or a file name (.csv or .geojson), got {describe(value)}"
            self.issues.append(ConfigIssue(self.site_label, line, section.name, message))
            return None
        values = {col.name: parse_column(table, col, self.issues) for col in section.cols}
        return Parsed(section, table, values)

    def _file(self, section: Section, name: str, line: int | None) -> Table | None:
        """Read the CSV or GeoJSON file a section names."""
        path = Path(name) if Path(name).is_absolute() else self.folder / name
        label = self.label(name)
        suffix = path.suffix.lower()
        problem = None
        if suffix not in (".csv", ".geojson", ".json"):
            problem = f"unsupported file type {suffix or name!r}: use .csv or .geojson"
        elif suffix == ".csv" and section.geometry == "LineString":
            problem = "streets need their line geometry: use a .geojson file or an inline list with points"
        elif not path.is_file():
            problem = f"file {name!r} not found"
        if problem is not None:
            self.issues.append(ConfigIssue(self.site_label, line, section.name, problem))
            return None
        self.file_order.append(label)
        try:
            if suffix == ".csv":
                return read_csv_table(path, label, section.name, section.names, self.issues)
            return read_geojson_table(path, label, section.name, section.names, section.geometry, self.issues)
        except SourceError as exc:
            self.issues.append(exc.issue)
            return None

    def _endpoints(self, parsed: Parsed, kind: Kind, defaults: _Defaults) -> list[Any]:
        """Resolve each row's endpoint from its own fields and the site defaults."""
        v = parsed.values
        default_poll = defaults.poll_ms.get(str(kind))
        if default_poll is None:
            default_poll = BUILTIN_POLL_MS[kind]
        endpoints: list[Any] = []
        for row in range(parsed.size):
            protocol, poll_ms = v["protocol"][row], v["poll_ms"][row]
            if poll_ms is None:
                poll_ms = default_poll
            if protocol is INVALID:
                endpoints.append(INVALID)
                continue
            if protocol == "modbus":
                endpoints.append(self._modbus(parsed, row, defaults, poll_ms))
            else:
                endpoints.append(self._opcua(parsed, row, poll_ms))
        return endpoints

    def _modbus(self, parsed: Parsed, row: int, defaults: _Defaults, poll_ms: Any) -> Any:
        """A Modbus endpoint: host, port and unit of the row, else of the defaults, else 502 and unit 1."""
        v = parsed.values
        host, port, unit = v["host"][row], v["port"][row], v["unit"][row]
        ok = True
        for name in ("url", "mapping"):
            if v[name][row] not in (None, INVALID):
                self.issues.append(parsed.issue(row, name, "not used with protocol modbus"))
                ok = False
        if host is None:
            host = defaults.host
            if host is None:
                self.issues.append(parsed.issue(row, "host", MSG_NO_HOST))
        if port is None:
            port = defaults.port if defaults.port is not None else DEFAULT_MODBUS_PORT
        if unit is None:
            unit = defaults.unit if defaults.unit is not None else DEFAULT_MODBUS_UNIT
        if not ok or any(x is INVALID or x is None for x in (host, port, unit, poll_ms)):
            return INVALID
        return Endpoint("modbus", host=host, port=port, unit=unit, poll_ms=poll_ms)

    def _opcua(self, parsed: Parsed, row: int, poll_ms: Any) -> Any:
        """An OPC UA endpoint: url and mapping are required, host/port/unit are not used."""
        v = parsed.values
        url, mapping = v["url"][row], v["mapping"][row]
        ok = True
        for name in ("host", "port", "unit"):
            if v[name][row] not in (None, INVALID):
                self.issues.append(parsed.issue(row, name, "not used with protocol opcua"))
                ok = False
        if url is None:
            self.issues.append(parsed.issue(row, "url", MSG_MISSING_VALUE))
        elif url is not INVALID and not url.startswith("opc.tcp://"):
            self.issues.append(parsed.issue(row, "url", f"expected an opc.tcp:// URL, got {url!r}"))
            url = INVALID
        if mapping is None:
            self.issues.append(parsed.issue(row, "mapping", MSG_MISSING_VALUE))
        if not ok or any(x is INVALID or x is None for x in (url, mapping, poll_ms)):
            return INVALID
        return Endpoint("opcua", url=url, mapping=mapping, poll_ms=poll_ms)

    # -- cross checks -----------------------------------------------------------------------------------------

    def _check(self, parsed: dict[str, Parsed | None]) -> None:
        """Checks across rows and files."""
        issues = self.issues
        districts, streets = parsed[DISTRICTS.name], parsed[STREETS.name]
        cabinets, lamps = parsed[CABINETS.name], parsed[LAMPS.name]
        sites, sensors = parsed[PARKING.name], parsed[PARKING_SENSORS.name]
        for group in ([districts], [streets]):
            check_unique_ids([p for p in group if p is not None], issues)
        devices = [parsed[s.name] for s in LIST_SECTIONS if s.kind is not None]
        check_unique_ids([p for p in devices if p is not None], issues)
        for section in (STREETS, CABINETS, CONTROLLERS, SIGNS, PARKING):
            entry = parsed[section.name]
            if entry is not None:
                check_references(entry, "district", districts, "district", issues, optional=section is STREETS)
        if lamps is not None:
            check_references(lamps, "cabinet", cabinets, "cabinet", issues)
            check_references(lamps, "street", streets, "street", issues, optional=True)
            check_lamps(lamps, cabinets, issues)
        if sensors is not None:
            check_references(sensors, "site", sites, "parking site", issues)
            check_sensors(sensors, sites, issues)
        check_addresses([p for p in devices if p is not None and p.section.field_device], issues)


def _build(
    folder: Path, site_values: dict[str, Any], parsed: dict[str, Parsed | None], settings: dict[str, Any]
) -> Site:
    """Make the Site from checked values (every value is valid here)."""

    def rows(section: Section) -> tuple[dict[str, list[Any]], list[Any]]:
        entry = parsed[section.name]
        assert entry is not None
        return entry.values, entry.endpoints

    site = Site(
        name=site_values["name"],
        title=site_values["title"] or site_values["name"],
        lat=site_values["latitude"],
        lon=site_values["longitude"],
        timezone=site_values["timezone"],
        folder=folder.resolve(),
        settings=settings,
    )
    v, _ = rows(DISTRICTS)
    site.districts = {i: District(id=i, name=n) for i, n in zip(v["id"], v["name"], strict=True)}
    v, _ = rows(STREETS)
    site.streets = {
        i: Street(id=i, name=n, district=d, points=p)
        for i, n, d, p in zip(v["id"], v["name"], v["district"], v["points"], strict=True)
    }
    v, ep = rows(CABINETS)
    site.cabinets = {
        i: Cabinet(id=i, name=n, district=d, lat=la, lon=lo, endpoint=e)
        for i, n, d, la, lo, e in zip(v["id"], v["name"], v["district"], v["lat"], v["lon"], ep, strict=True)
    }
    v, _ = rows(LAMPS)
    cabinets = site.cabinets
    for i, c, x, la, lo, r, g, s, q in zip(
        v["id"], v["cabinet"], v["index"], v["lat"], v["lon"], v["rated_w"], v["legacy_w"], v["street"], v["seq"],
        strict=True,
    ):  # fmt: skip
        cabinets[c].lamps.append(
            Lamp(id=i, cabinet_id=c, index=x, lat=la, lon=lo, rated_w=r, legacy_w=g, street_id=s, seq=q)
        )
    for cabinet in cabinets.values():
        cabinet.lamps.sort(key=lambda lamp: lamp.index)
    v, ep = rows(CONTROLLERS)
    site.controllers = {
        i: TrafficController(id=i, name=n, district=d, lat=la, lon=lo, endpoint=e, detectors=k)
        for i, n, d, la, lo, e, k in zip(
            v["id"], v["name"], v["district"], v["lat"], v["lon"], ep, v["detectors"], strict=True
        )
    }
    v, ep = rows(SIGNS)
    site.signs = {
        i: Sign(id=i, name=n, district=d, lat=la, lon=lo, endpoint=e, road=r, bearing_deg=b)
        for i, n, d, la, lo, e, r, b in zip(
            v["id"], v["name"], v["district"], v["lat"], v["lon"], ep, v["road"], v["bearing_deg"], strict=True
        )
    }
    v, ep = rows(PARKING)
    site.parking = {
        i: ParkingSite(id=i, name=n, district=d, site_type=t, lat=la, lon=lo, capacity=c, endpoint=e)
        for i, n, d, t, la, lo, c, e in zip(
            v["id"], v["name"], v["district"], v["type"], v["lat"], v["lon"], v["capacity"], ep, strict=True
        )
    }
    v, _ = rows(PARKING_SENSORS)
    for i, s, x, la, lo in zip(v["id"], v["site"], v["index"], v["lat"], v["lon"], strict=True):
        site.parking[s].sensors.append(ParkingSensor(id=i, site_id=s, index=x, lat=la, lon=lo))
    for parking_site in site.parking.values():
        parking_site.sensors.sort(key=lambda sensor: sensor.index)
    return site


def rebind_endpoints(site: Site, endpoints: Mapping[str, Endpoint]) -> None:
    """Replace the endpoints of the named field devices in place (e.g. simulators listening on free ports)."""
    targets = {}
    for device_id, endpoint in endpoints.items():
        device = site.device(device_id)
        if not isinstance(device, (Cabinet, TrafficController, Sign, ParkingSite)):
            what = "no device" if device is None else f"a {device.kind} (not a field device)"
            raise KeyError(f"cannot rebind {device_id!r}: the site has {what} with that id")
        if not isinstance(endpoint, Endpoint):
            raise TypeError(f"endpoint of {device_id!r} must be an Endpoint, got {type(endpoint).__name__}")
        targets[device_id] = (device, endpoint)
    for device, endpoint in targets.values():
        device.endpoint = endpoint


def site_summary(site: Site) -> str:
    """One line counting what the site holds, per kind."""
    counts = site.counts()
    parts = [
        (len(site.districts), "district"),
        (len(site.streets), "street"),
        (counts[Kind.CABINET], "cabinet"),
        (counts[Kind.LAMP], "lamp"),
        (counts[Kind.CONTROLLER], "traffic controller"),
        (counts[Kind.SIGN], "message sign"),
        (counts[Kind.PARKING_SITE], "parking site"),
        (counts[Kind.PARKING_SENSOR], "parking sensor"),
    ]
    text = ", ".join(f"{n} {word}{'' if n == 1 else 's'}" for n, word in parts)
    return f"{site.name} ({site.title}): {text}"
