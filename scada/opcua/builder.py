"""Builds the city's address space from the site configuration, in one place and fast.

Objects/City/{Lighting,Traffic,Signs,Parking,Incidents,Energy}; one object per device with string NodeIds that
are the device paths of the site model (ns=<i>;s=Lighting/CAB-0042/L-004113/Level). Device nodes are written
straight into asyncua's node table as compact records (scada.opcua.nodes) sharing their constant attributes;
instance methods and EURange/EngineeringUnits properties are the type's nodes, referenced, not copied.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from asyncua import ua
from asyncua.server.address_space import AddressSpace, AttributeValue, NodeData

from scada.catalog import DEVICE_PROPERTIES, OBJECT_TYPES, VarSpec
from scada.opcua.datatypes import VARIANT_TYPES, converter, data_type_id, eu_information
from scada.opcua.nodes import (
    FOLDER_TYPE,
    HAS_COMPONENT,
    HAS_PROPERTY,
    HAS_TYPE_DEFINITION,
    INITIAL_VALUE,
    OBJECTS_FOLDER,
    ORGANIZES,
    A,
    ObjectNode,
    Shape,
    ValueAttribute,
    VariableNode,
    constant,
    link,
    names_of,
    ns0,
    plain_node,
    scalar_variant,
    set_type,
    string_nodeid,
    typedef_of,
)
from scada.opcua.sitemap import build_console_support
from scada.opcua.types import INCIDENT_TYPE, TypeBuilder, TypeInfo, access_level, build_types, variable_typedef
from scada.site.model import Device, Site

CITY = "City"
FOLDERS = ("Lighting", "Traffic", "Signs", "Parking", "Incidents", "Energy")
_VT = ua.VariantType
_OBJECT = ua.NodeClass.Object
_VARIABLE = ua.NodeClass.Variable


@dataclass(slots=True)
class _VarTemplate:
    spec: VarSpec
    browse: ua.QualifiedName
    display: ua.LocalizedText
    typedef: ua.NodeId
    typedef_ref: ua.ReferenceDescription
    property_refs: list[ua.ReferenceDescription]
    shapes: dict[float | None, Shape] = field(default_factory=dict)


@dataclass(slots=True)
class _KindTemplate:
    type_info: TypeInfo
    object_shape: Shape
    variables: list[_VarTemplate]
    properties: list[_VarTemplate]
    method_refs: list[ua.ReferenceDescription]
    plans: dict[float | None, list[tuple[Any, ...]]] = field(default_factory=dict)


@dataclass(slots=True)
class BuildStats:
    """What a build produced and how long it took."""

    nodes: int = 0
    seconds: float = 0.0  # wall clock
    cpu_seconds: float = 0.0  # CPU time of the process (the build runs on one core, without awaiting)
    counts: dict[str, int] = field(default_factory=dict)


class SpaceBuilder:
    """Creates and removes the city's nodes in an asyncua address space (namespace `ns`)."""

    def __init__(self, aspace: AddressSpace, ns: int) -> None:
        self.aspace = aspace
        self.ns = ns
        self.types: dict[str, TypeInfo] = {}
        self.tags: dict[str, VariableNode] = {}
        """Every variable fed by the value path: tag (= NodeId string) -> node."""
        self.folders: dict[str, NodeData] = {}
        self._templates: dict[str, _KindTemplate] = {}
        # asyncua's AddressSpace wraps a plain dict; writing into it directly halves the cost of a million inserts
        nodes = getattr(aspace, "_nodes", None)
        self._nodes: Any = nodes if type(nodes) is dict else aspace
        self._typedef_refs: dict[ua.NodeId, ua.ReferenceDescription] = {}
        self.stats = BuildStats()

    # -- types and folders ---------------------------------------------------------------------------------

    def build_types(self) -> None:
        """Add every ObjectType of the model and prepare what instances share with them."""
        self.types = build_types(self.aspace, self.ns)
        for name, info in self.types.items():
            self._templates[name] = self._template(info)

    def _typedef_ref(self, typedef: ua.NodeId) -> ua.ReferenceDescription:
        ref = self._typedef_refs.get(typedef)
        if ref is None:
            browse, display, nodeclass = names_of(self.aspace[typedef])
            ref = ua.ReferenceDescription(HAS_TYPE_DEFINITION, True, typedef, browse, display, nodeclass)
            self._typedef_refs[typedef] = ref
        return ref

    def _template(self, info: TypeInfo) -> _KindTemplate:
        object_shape = Shape(
            {
                A.NodeClass: constant(int(_OBJECT), _VT.Int32),
                A.WriteMask: constant(0, _VT.UInt32),
                A.UserWriteMask: constant(0, _VT.UInt32),
                A.EventNotifier: constant(0, _VT.Byte),
            },
            meta={"type": info.name, "kind": info.kind},
        )
        variables = [
            _VarTemplate(
                spec=spec,
                browse=ua.QualifiedName(spec.name, self.ns),
                display=ua.LocalizedText(spec.name),
                typedef=variable_typedef(spec),
                typedef_ref=self._typedef_ref(variable_typedef(spec)),
                property_refs=info.property_refs[spec.name],
            )
            for spec in info.variables
        ]
        properties = []
        if info.kind is not None:
            for name, dtype in DEVICE_PROPERTIES.items():
                spec = VarSpec(name, dtype)
                properties.append(
                    _VarTemplate(
                        spec=spec,
                        browse=ua.QualifiedName(name, self.ns),
                        display=ua.LocalizedText(name),
                        typedef=self._typedef_ref(_PROPERTY_TYPE).NodeId,
                        typedef_ref=self._typedef_ref(_PROPERTY_TYPE),
                        property_refs=[],
                    )
                )
        method_refs = [m.instance_ref for m in info.methods.values() if m.instance_ref is not None]
        return _KindTemplate(info, object_shape, variables, properties, method_refs)

    def _variable_shape(self, template: _VarTemplate, sampling_ms: float | None, meta: dict[str, Any]) -> Shape:
        shape = template.shapes.get(sampling_ms)
        if shape is None:
            spec = template.spec
            level = access_level(spec)
            attrs: dict[int, AttributeValue] = {
                A.NodeClass: constant(int(_VARIABLE), _VT.Int32),
                A.BrowseName: constant(template.browse, _VT.QualifiedName),
                A.DisplayName: constant(template.display, _VT.LocalizedText),
                A.WriteMask: constant(0, _VT.UInt32),
                A.UserWriteMask: constant(0, _VT.UInt32),
                A.DataType: constant(data_type_id(spec.dtype), _VT.NodeId),
                A.ValueRank: constant(-1, _VT.Int32),
                A.AccessLevel: constant(level, _VT.Byte),
                A.UserAccessLevel: constant(level, _VT.Byte),
                A.Historizing: constant(spec.historized, _VT.Boolean),
            }
            if spec.description:
                attrs[A.Description] = constant(ua.LocalizedText(spec.description), _VT.LocalizedText)
            if sampling_ms is not None:
                attrs[A.MinimumSamplingInterval] = constant(float(sampling_ms), _VT.Double)
            shape = Shape(attrs, VARIANT_TYPES[spec.dtype], converter(spec.dtype), meta={"spec": spec, **meta})
            template.shapes[sampling_ms] = shape
        return shape

    def add_folder(
        self, parent: Any, path: str, name: str, reftype: ua.NodeId = ORGANIZES, description: str = ""
    ) -> NodeData:
        """A FolderType object (plain NodeData) under `parent`, NodeId s=<path>."""
        node = plain_node(
            string_nodeid(path, self.ns),
            _OBJECT,
            ua.QualifiedName(name, self.ns),
            description=description,
            EventNotifier=(0, _VT.Byte),
        )
        self._insert(node)
        set_type(node, FOLDER_TYPE, self.aspace[FOLDER_TYPE])
        link(parent, node, reftype)
        return node

    def build_folders(self) -> None:
        """Objects/City and its six folders."""
        city = self.add_folder(self.aspace[OBJECTS_FOLDER], CITY, CITY, description="the city's field equipment")
        self.folders[CITY] = city
        for name in FOLDERS:
            self.folders[name] = self.add_folder(city, name, name)

    def _insert(self, node: Any) -> None:
        if node.nodeid in self.aspace:
            raise ValueError(f"node {node.nodeid} already exists")
        self.aspace[node.nodeid] = node

    # -- objects -------------------------------------------------------------------------------------------

    def add_object(
        self,
        parent: Any,
        parent_reftype: ua.NodeId,
        parent_inverse: ua.ReferenceDescription,
        type_name: str,
        path: str,
        name: str,
        sampling_ms: float | None,
        properties: Sequence[Any] = (),
        description: str = "",
        values: dict[str, ua.DataValue] | None = None,
        *,
        tagged: bool = True,
    ) -> ObjectNode:
        """An instance of a type: the object, its variables (initially waiting for data) and its properties.

        `parent_inverse` is the inverse reference to the parent, shared by every child of that parent;
        `properties` are the values of the type's device properties (Latitude, Longitude, DeviceId) in order;
        `values` gives initial values by variable name; `tagged` variables join the value path's tag index.
        """
        template = self._templates[type_name]
        info = template.type_info
        ns = self.ns
        nodes = self._nodes
        tags = self.tags
        oid = string_nodeid(path, ns)
        if oid in nodes:
            raise ValueError(f"node {oid} already exists")
        browse = ua.QualifiedName(name, ns)
        display = ua.LocalizedText(name)
        refs = [parent_inverse, info.type_ref, *template.method_refs]
        nodes[oid] = ObjectNode(oid, refs, template.object_shape, browse, display, description)
        type_id = info.node.nodeid
        parent.references.append(ua.ReferenceDescription(parent_reftype, True, oid, browse, display, _OBJECT, type_id))
        inverse = ua.ReferenceDescription(HAS_COMPONENT, False, oid, browse, display, _OBJECT, type_id)
        append = refs.append
        reference = ua.ReferenceDescription
        for suffix, shape, tail, var_browse, var_display, typedef in self._plan(template, sampling_ms):
            ident = path + suffix  # one string: the NodeId's identifier and the tag
            vid = string_nodeid(ident, ns)
            node = VariableNode(vid, [inverse, *tail], shape, ValueAttribute(INITIAL_VALUE))
            nodes[vid] = node
            if tagged:
                tags[ident] = node
            append(reference(HAS_COMPONENT, True, vid, var_browse, var_display, _VARIABLE, typedef))
        if values:
            for var_name, dv in values.items():
                nodes[string_nodeid(f"{path}/{var_name}", ns)].value.value = dv
        if template.properties:
            inverse = ua.ReferenceDescription(HAS_PROPERTY, False, oid, browse, display, _OBJECT, type_id)
            prop_vtypes = _PROPERTY_VTYPES
            for prop, value in zip(template.properties, properties, strict=True):
                pid = string_nodeid(f"{path}/{prop.spec.name}", ns)
                shape = self._variable_shape(prop, None, template.object_shape.meta)
                nodes[pid] = VariableNode(
                    pid,
                    [inverse, prop.typedef_ref],
                    shape,
                    ValueAttribute(ua.DataValue(scalar_variant(shape.convert(value), prop_vtypes[prop.spec.name]))),
                )
                append(reference(HAS_PROPERTY, True, pid, prop.browse, prop.display, _VARIABLE, prop.typedef))
        return nodes[oid]

    def _plan(self, template: _KindTemplate, sampling_ms: float | None) -> list[tuple[Any, ...]]:
        """Per variable of a type at one sampling interval: NodeId suffix, shape, references, names, typedef."""
        plan = template.plans.get(sampling_ms)
        if plan is None:
            meta = template.object_shape.meta
            plan = [
                (
                    "/" + var.spec.name,
                    self._variable_shape(var, sampling_ms, meta),
                    (var.typedef_ref, *var.property_refs),
                    var.browse,
                    var.display,
                    var.typedef,
                )
                for var in template.variables
            ]
            template.plans[sampling_ms] = plan
        return plan

    def inverse_to(self, parent: Any, reftype: ua.NodeId) -> ua.ReferenceDescription:
        """The inverse reference a child keeps to `parent` (one object shared by all its children)."""
        browse, display, nodeclass = names_of(parent)
        return ua.ReferenceDescription(reftype, False, parent.nodeid, browse, display, nodeclass, typedef_of(parent))

    def add_devices(
        self, parent: Any, reftype: ua.NodeId, devices: Iterable[Device], sampling_ms: float | None = None
    ) -> list[ObjectNode]:
        """Device objects under `parent`; each device's variables sample at its endpoint's poll period."""
        inverse = self.inverse_to(parent, reftype)
        added = []
        for device in devices:
            type_name = OBJECT_TYPES[device.kind]
            endpoint = getattr(device, "endpoint", None)
            poll = float(endpoint.poll_ms) if endpoint is not None else sampling_ms
            added.append(
                self.add_object(
                    parent,
                    reftype,
                    inverse,
                    type_name,
                    device.path,
                    device.id,
                    poll,
                    (float(device.lat), float(device.lon), device.id),
                    getattr(device, "name", ""),
                )
            )
            self.stats.counts[type_name] = self.stats.counts.get(type_name, 0) + 1
        return added

    def build_site(self, site: Site) -> None:
        """Every device of the site, under its folder."""
        folders = self.folders
        for cabinet, node in zip(
            site.cabinets.values(),
            self.add_devices(folders["Lighting"], ORGANIZES, site.cabinets.values()),
            strict=True,
        ):
            self.add_devices(node, HAS_COMPONENT, cabinet.lamps, float(cabinet.endpoint.poll_ms))
        self.add_devices(folders["Traffic"], ORGANIZES, site.controllers.values())
        self.add_devices(folders["Signs"], ORGANIZES, site.signs.values())
        for parking, node in zip(
            site.parking.values(),
            self.add_devices(folders["Parking"], ORGANIZES, site.parking.values()),
            strict=True,
        ):
            self.add_devices(node, HAS_COMPONENT, parking.sensors, float(parking.endpoint.poll_ms))

    def build_energy(self, site: Site | None = None) -> None:
        """The Energy variables of the city and of each district of `site` (scada.opcua.energy)."""
        from scada.opcua.energy import build_energy

        build_energy(self, site)

    def add_energy_variables(self, parent: Any, prefix: str, specs: Sequence[VarSpec], sampling_ms: float) -> None:
        """Variables `prefix/<name>` under `parent` (HasComponent), fed through the value path, with EURange/units."""
        inverse = self.inverse_to(parent, HAS_COMPONENT)
        typebuilder = TypeBuilder(self.aspace, self.ns)
        for spec in specs:
            template = _VarTemplate(
                spec=spec,
                browse=ua.QualifiedName(spec.name, self.ns),
                display=ua.LocalizedText(spec.name),
                typedef=variable_typedef(spec),
                typedef_ref=self._typedef_ref(variable_typedef(spec)),
                property_refs=[],
            )
            path = f"{prefix}/{spec.name}"
            node = VariableNode(
                string_nodeid(path, self.ns),
                [inverse, template.typedef_ref],
                self._variable_shape(template, sampling_ms, {"type": None, "kind": None}),
                ValueAttribute(INITIAL_VALUE),
            )
            self._insert(node)
            parent.references.append(
                ua.ReferenceDescription(
                    HAS_COMPONENT, True, node.nodeid, template.browse, template.display, _VARIABLE, template.typedef
                )
            )
            self.tags[path] = node
            if spec.eu_range is None:
                continue
            typebuilder.add_property(
                node,  # type: ignore[arg-type]
                string_nodeid(f"{path}/EURange", self.ns),
                ua.QualifiedName("EURange", 0),
                ua.Variant(ua.Range(*spec.eu_range), _VT.ExtensionObject),
                ns0(ua.ObjectIds.Range),
                mandatory=False,
            )
            typebuilder.add_property(
                node,  # type: ignore[arg-type]
                string_nodeid(f"{path}/EngineeringUnits", self.ns),
                ua.QualifiedName("EngineeringUnits", 0),
                ua.Variant(eu_information(spec.unit), _VT.ExtensionObject),
                ns0(ua.ObjectIds.EUInformation),
                mandatory=False,
            )

    # -- removal -------------------------------------------------------------------------------------------

    def remove_object(self, parent: Any, nodeid: ua.NodeId) -> list[Any]:
        """Remove an object built by add_object and its variables/properties; returns the removed node records.

        The caller notifies subscriptions (see AddressSpaceWriter.forget) before or after; the parent loses its
        forward reference. Shared type nodes (methods, EURange) are untouched.
        """
        obj = self.aspace.get(nodeid)
        if obj is None:
            return []
        removed = [obj]
        for ref in obj.references:
            if ref.IsForward and ref.ReferenceTypeId in (HAS_COMPONENT, HAS_PROPERTY):
                child = self.aspace.get(ref.NodeId)
                if child is not None and isinstance(child, VariableNode):
                    removed.append(child)
        for node in removed:
            del self.aspace[node.nodeid]
            self.tags.pop(str(node.nodeid.Identifier), None)
        parent.references[:] = [ref for ref in parent.references if ref.NodeId != nodeid]
        return removed


_PROPERTY_TYPE = ns0(ua.ObjectIds.PropertyType)
_PROPERTY_VTYPES: dict[str, ua.VariantType] = {name: VARIANT_TYPES[dtype] for name, dtype in DEVICE_PROPERTIES.items()}


def build_address_space(aspace: AddressSpace, ns: int, site: Site) -> SpaceBuilder:
    """Build types, folders, every device of `site` and the Energy variables; the garbage collector is paused.

    Returns the builder (its `tags`, `types`, `folders` and `stats`) for the value path and later additions.
    """
    started = time.perf_counter()
    started_cpu = time.process_time()
    before = len(aspace.keys())
    builder = SpaceBuilder(aspace, ns)
    enabled = gc.isenabled()
    gc.disable()
    try:
        builder.build_types()
        builder.build_folders()
        builder.build_site(site)
        builder.build_energy(site)
        build_console_support(builder, site)  # SiteMap and per-cabinet LampStates (scada.opcua.sitemap)
    finally:
        if enabled:
            gc.freeze()
            gc.enable()
    builder.stats.seconds = time.perf_counter() - started
    builder.stats.cpu_seconds = time.process_time() - started_cpu
    builder.stats.nodes = len(aspace.keys()) - before
    return builder


def device_at(site: Site, ns: int, nodeid: ua.NodeId) -> Device | None:
    """The site device whose object has this NodeId (ns=<ns>;s=<device path>), or None."""
    ident = nodeid.Identifier
    if nodeid.NamespaceIndex != ns or not isinstance(ident, str):
        return None
    device = site.device(ident.rsplit("/", 1)[-1])
    if device is None or device.path != ident:
        return None
    return device


__all__ = [
    "CITY",
    "FOLDERS",
    "INCIDENT_TYPE",
    "BuildStats",
    "SpaceBuilder",
    "build_address_space",
    "device_at",
]
