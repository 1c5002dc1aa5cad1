"""What a console needs to draw the whole city quickly: SiteMap (the geometry in one read) and per-cabinet LampStates.

Additions to the information model (nothing renamed or removed):

- `Objects/City/SiteMap` (NodeId s=SiteMap), an object with four String variables read once by a client:
  `Site` (JSON: name, title, centre, time zone, districts), `Devices` (JSON, column-oriented per device kind: id,
  position and the links a map needs — a lamp's cabinet, register index, street and order along it), `Streets`
  (JSON: id, name, district and [lon, lat] points of every street line) and `Digest` (SHA-256 of the other three,
  so a client may cache them).
- `Lighting/<CabinetId>/LampStates` (ByteString, read-only): one state byte per lamp of the cabinet, indexed by
  the lamp's register index (codes in scada.lampstates), fed through the value path by the LampStates sink. The
  LightingCabinetType declares it as an Optional component.
"""

from __future__ import annotations

import hashlib
import json
from typing import TYPE_CHECKING, Any

from asyncua import ua

from scada.catalog import OBJECT_TYPES, Kind
from scada.lampstates import VARIABLE as LAMP_STATES
from scada.opcua.nodes import (
    BASE_DATA_VARIABLE_TYPE,
    BASE_OBJECT_TYPE,
    HAS_COMPONENT,
    HAS_MODELLING_RULE,
    HAS_TYPE_DEFINITION,
    INITIAL_VALUE,
    ORGANIZES,
    A,
    Shape,
    ValueAttribute,
    VariableNode,
    constant,
    link,
    names_of,
    ns0,
    plain_node,
    reference,
    set_type,
    string_nodeid,
)
from scada.site.model import Site

if TYPE_CHECKING:
    from scada.opcua.builder import SpaceBuilder

SITE_MAP = "SiteMap"
SITE_MAP_VARIABLES = ("Site", "Devices", "Streets", "Digest")
FORMAT_VERSION = 1
OPTIONAL = ns0(ua.ObjectIds.ModellingRule_Optional)
BYTE_STRING = ns0(ua.ObjectIds.ByteString)
STRING = ns0(ua.ObjectIds.String)
_READ = ua.AccessLevel.CurrentRead.mask
LAMP_STATES_DESCRIPTION = (
    "one byte per lamp, indexed by register index: low nibble 0 unknown, 1 off, 2 dimmed, 3 on, 4 lamp failure, "
    "5 node fault, 6 no communication; 0x10 presence, 0x20 uncertain; 0xFF no lamp"
)


def _round(value: float) -> float:
    return round(float(value), 6)


def site_json(site: Site) -> str:
    """The Site variable: the site's name, title, centre, time zone and districts."""
    return json.dumps(
        {
            "version": FORMAT_VERSION,
            "name": site.name,
            "title": site.title,
            "latitude": site.lat,
            "longitude": site.lon,
            "timezone": site.timezone,
            "districts": [{"id": d.id, "name": d.name} for d in site.districts.values()],
        },
        ensure_ascii=False,
        separators=(",", ":"),
    )


def _columns(items: list[Any], columns: dict[str, Any]) -> dict[str, list[Any]]:
    """One list per column: `columns` maps a column name to the function of an item that gives its value."""
    return {name: [get(item) for item in items] for name, get in columns.items()}


def _lat(device: Any) -> float:
    return _round(device.lat)


def _lon(device: Any) -> float:
    return _round(device.lon)


def devices_json(site: Site) -> str:
    """The Devices variable: per device kind, one list per column (every list in the same device order)."""
    lamps = list(site.lamps())
    cabinets = list(site.cabinets.values())
    controllers = list(site.controllers.values())
    signs = list(site.signs.values())
    parking = list(site.parking.values())
    sensors = list(site.sensors())
    place = {"id": lambda d: d.id, "name": lambda d: d.name, "district": lambda d: d.district, "lat": _lat, "lon": _lon}
    document = {
        "version": FORMAT_VERSION,
        Kind.LAMP.value: _columns(
            lamps,
            {
                "id": lambda d: d.id,
                "cabinet": lambda d: d.cabinet_id,
                "index": lambda d: d.index,
                "lat": _lat,
                "lon": _lon,
                "street": lambda d: d.street_id,
                "seq": lambda d: d.seq,
            },
        ),
        Kind.CABINET.value: _columns(cabinets, {**place, "lamps": lambda d: len(d.lamps)}),
        Kind.CONTROLLER.value: _columns(controllers, place),
        Kind.SIGN.value: _columns(signs, {**place, "road": lambda d: d.road, "bearing": lambda d: d.bearing_deg}),
        Kind.PARKING_SITE.value: _columns(
            parking, {**place, "type": lambda d: d.site_type, "capacity": lambda d: d.capacity}
        ),
        Kind.PARKING_SENSOR.value: _columns(
            sensors,
            {"id": lambda d: d.id, "site": lambda d: d.site_id, "index": lambda d: d.index, "lat": _lat, "lon": _lon},
        ),
    }
    return json.dumps(document, ensure_ascii=False, separators=(",", ":"))


def streets_json(site: Site) -> str:
    """The Streets variable: every street line with its [lon, lat] points."""
    streets = [
        {
            "id": street.id,
            "name": street.name,
            "district": street.district,
            "points": [[_round(lon), _round(lat)] for lon, lat in street.points],
        }
        for street in site.streets.values()
    ]
    return json.dumps({"version": FORMAT_VERSION, "streets": streets}, ensure_ascii=False, separators=(",", ":"))


def site_map_values(site: Site) -> dict[str, str]:
    """The four SiteMap variables' values."""
    values = {"Site": site_json(site), "Devices": devices_json(site), "Streets": streets_json(site)}
    digest = hashlib.sha256()
    for name in ("Site", "Devices", "Streets"):
        digest.update(values[name].encode("utf-8"))
        digest.update(b"\0")
    values["Digest"] = digest.hexdigest()
    return values


def _bytes(value: Any) -> bytes:
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value)
    raise TypeError(f"{type(value).__name__} is not a ByteString")


def _constant_variable(builder: SpaceBuilder, parent: Any, path: str, name: str, value: str, description: str) -> None:
    node = plain_node(
        string_nodeid(path, builder.ns),
        ua.NodeClass.Variable,
        ua.QualifiedName(name, builder.ns),
        description=description,
        Value=(ua.DataValue(ua.Variant(value, ua.VariantType.String)), ua.VariantType.Null),
        DataType=(STRING, ua.VariantType.NodeId),
        ValueRank=(-1, ua.VariantType.Int32),
        AccessLevel=(_READ, ua.VariantType.Byte),
        UserAccessLevel=(_READ, ua.VariantType.Byte),
        Historizing=(False, ua.VariantType.Boolean),
    )
    builder.aspace[node.nodeid] = node
    set_type(node, BASE_DATA_VARIABLE_TYPE, builder.aspace[BASE_DATA_VARIABLE_TYPE])
    link(parent, node, HAS_COMPONENT)


_DESCRIPTIONS = {
    "Site": "JSON: the site's name, title, centre (latitude, longitude), time zone and districts",
    "Devices": "JSON: per device kind, column lists (id, lat, lon, and the cabinet/index/street/seq of lamps, ...)",
    "Streets": "JSON: every street line (id, name, district, [lon, lat] points)",
    "Digest": "SHA-256 of Site, Devices and Streets: unchanged while the site configuration is unchanged",
}


def build_site_map(builder: SpaceBuilder, site: Site) -> None:
    """Add Objects/City/SiteMap with its values."""
    if string_nodeid(SITE_MAP, builder.ns) in builder.aspace:
        raise ValueError(f"node {SITE_MAP} already exists")
    obj = plain_node(
        string_nodeid(SITE_MAP, builder.ns),
        ua.NodeClass.Object,
        ua.QualifiedName(SITE_MAP, builder.ns),
        description="the site's geometry for maps: read once instead of browsing every device",
        EventNotifier=(0, ua.VariantType.Byte),
    )
    builder.aspace[obj.nodeid] = obj
    set_type(obj, BASE_OBJECT_TYPE, builder.aspace[BASE_OBJECT_TYPE])
    link(builder.folders["City"], obj, ORGANIZES)
    for name, value in site_map_values(site).items():
        _constant_variable(builder, obj, f"{SITE_MAP}/{name}", name, value, _DESCRIPTIONS[name])


def _declare_lamp_states(builder: SpaceBuilder) -> None:
    """The Optional LampStates declaration of LightingCabinetType."""
    type_node = builder.types[OBJECT_TYPES[Kind.CABINET]].node
    type_path = str(type_node.nodeid.Identifier)
    node = plain_node(
        string_nodeid(f"{type_path}/{LAMP_STATES}", builder.ns),
        ua.NodeClass.Variable,
        ua.QualifiedName(LAMP_STATES, builder.ns),
        description=LAMP_STATES_DESCRIPTION,
        Value=(ua.DataValue(ua.Variant()), ua.VariantType.Null),
        DataType=(BYTE_STRING, ua.VariantType.NodeId),
        ValueRank=(-1, ua.VariantType.Int32),
        AccessLevel=(_READ, ua.VariantType.Byte),
        UserAccessLevel=(_READ, ua.VariantType.Byte),
        Historizing=(False, ua.VariantType.Boolean),
    )
    builder.aspace[node.nodeid] = node
    set_type(node, BASE_DATA_VARIABLE_TYPE, builder.aspace[BASE_DATA_VARIABLE_TYPE])
    browse, display, _nodeclass = names_of(builder.aspace[OPTIONAL])
    node.references.append(reference(HAS_MODELLING_RULE, True, OPTIONAL, browse, display, ua.NodeClass.Object))
    link(type_node, node, HAS_COMPONENT)


def build_lamp_states(builder: SpaceBuilder, site: Site) -> None:
    """Add Lighting/<CabinetId>/LampStates to every cabinet and to the value path's tags."""
    _declare_lamp_states(builder)
    ns = builder.ns
    browse = ua.QualifiedName(LAMP_STATES, ns)
    display = ua.LocalizedText(LAMP_STATES)
    typedef_browse, typedef_display, typedef_class = names_of(builder.aspace[BASE_DATA_VARIABLE_TYPE])
    typedef_ref = reference(
        HAS_TYPE_DEFINITION, True, BASE_DATA_VARIABLE_TYPE, typedef_browse, typedef_display, typedef_class
    )
    shapes: dict[float, Shape] = {}
    for cabinet in site.cabinets.values():
        sampling = float(cabinet.endpoint.poll_ms)
        shape = shapes.get(sampling)
        if shape is None:
            shape = shapes[sampling] = Shape(
                {
                    A.NodeClass: constant(int(ua.NodeClass.Variable), ua.VariantType.Int32),
                    A.BrowseName: constant(browse, ua.VariantType.QualifiedName),
                    A.DisplayName: constant(display, ua.VariantType.LocalizedText),
                    A.Description: constant(ua.LocalizedText(LAMP_STATES_DESCRIPTION), ua.VariantType.LocalizedText),
                    A.WriteMask: constant(0, ua.VariantType.UInt32),
                    A.UserWriteMask: constant(0, ua.VariantType.UInt32),
                    A.DataType: constant(BYTE_STRING, ua.VariantType.NodeId),
                    A.ValueRank: constant(-1, ua.VariantType.Int32),
                    A.AccessLevel: constant(_READ, ua.VariantType.Byte),
                    A.UserAccessLevel: constant(_READ, ua.VariantType.Byte),
                    A.Historizing: constant(False, ua.VariantType.Boolean),
                    A.MinimumSamplingInterval: constant(sampling, ua.VariantType.Double),
                },
                ua.VariantType.ByteString,
                _bytes,
                meta={"type": None, "kind": None},
            )
        parent = builder.aspace[string_nodeid(cabinet.path, ns)]
        tag = f"{cabinet.path}/{LAMP_STATES}"
        vid = string_nodeid(tag, ns)
        inverse = builder.inverse_to(parent, HAS_COMPONENT)
        node = VariableNode(vid, [inverse, typedef_ref], shape, ValueAttribute(INITIAL_VALUE))
        builder.aspace[vid] = node  # type: ignore[assignment]  # a compact record (scada.opcua.nodes)
        builder.tags[tag] = node
        parent.references.append(
            reference(HAS_COMPONENT, True, vid, browse, display, ua.NodeClass.Variable, BASE_DATA_VARIABLE_TYPE)
        )


def build_console_support(builder: SpaceBuilder, site: Site) -> None:
    """SiteMap and every cabinet's LampStates (called once by build_address_space)."""
    build_site_map(builder, site)
    build_lamp_states(builder, site)
