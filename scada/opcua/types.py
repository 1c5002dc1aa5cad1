"""The ObjectTypes of the information model (six device types and IncidentType) and their instance declarations.

Type nodes are few and built as ordinary asyncua NodeData; their EURange/EngineeringUnits properties and their
methods are shared with every instance (the instances reference them), see scada.opcua.builder.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from asyncua import ua
from asyncua.server.address_space import AddressSpace, NodeData

from scada.catalog import ACTIONS, DEVICE_PROPERTIES, OBJECT_TYPES, VARIABLES, ActionSpec, ArgSpec, Kind, VarSpec
from scada.opcua.datatypes import VARIANT_TYPES, data_type_id, eu_information
from scada.opcua.nodes import (
    ANALOG_ITEM_TYPE,
    BASE_DATA_VARIABLE_TYPE,
    BASE_OBJECT_TYPE,
    HAS_COMPONENT,
    HAS_MODELLING_RULE,
    HAS_PROPERTY,
    HAS_SUBTYPE,
    HAS_TYPE_DEFINITION,
    MANDATORY,
    NULL_VARIANT,
    PROPERTY_TYPE,
    link,
    names_of,
    ns0,
    plain_node,
    reference,
    set_type,
    string_nodeid,
)

TYPES_PREFIX = "Types"
RANGE_DATA_TYPE = ns0(ua.ObjectIds.Range)
EU_DATA_TYPE = ns0(ua.ObjectIds.EUInformation)
ARGUMENT_DATA_TYPE = ns0(ua.ObjectIds.Argument)
INCIDENT_TYPE = "IncidentType"

INCIDENT_VARS: tuple[VarSpec, ...] = (
    VarSpec("Kind", "String", description="accident, roadworks, congestion or hazard"),
    VarSpec("Latitude", "Double", description="WGS84"),
    VarSpec("Longitude", "Double", description="WGS84"),
    VarSpec("Description", "String"),
    VarSpec("Status", "String", description="open or closed"),
    VarSpec("CreatedAt", "DateTime", description="when the incident was reported (UTC)"),
)
"""Variables of an incident object (the reporter's contact is personal data and is never exposed)."""


def access_level(spec: VarSpec) -> int:
    """AccessLevel of a variable: CurrentRead, CurrentWrite when it is writable, HistoryRead when historized."""
    level = ua.AccessLevel.CurrentRead.mask
    if spec.writable:
        level |= ua.AccessLevel.CurrentWrite.mask
    if spec.historized:
        level |= ua.AccessLevel.HistoryRead.mask
    return level


def variable_typedef(spec: VarSpec) -> ua.NodeId:
    """AnalogItemType for variables with an engineering range, BaseDataVariableType otherwise."""
    return ANALOG_ITEM_TYPE if spec.analog else BASE_DATA_VARIABLE_TYPE


def argument(arg: ArgSpec) -> ua.Argument:
    """The OPC UA Argument structure of a catalog argument."""
    description = arg.description
    if arg.low is not None and arg.high is not None:
        bounds = f"range {arg.low:g}..{arg.high:g}" if arg.dtype != "String" else f"at most {arg.high:g} characters"
        description = f"{description} ({bounds})" if description else bounds
    array = arg.dtype.endswith("[]")  # "Double[]": a one-dimensional array of Double
    return ua.Argument(
        Name=arg.name,
        DataType=data_type_id(arg.dtype.removesuffix("[]")),
        ValueRank=1 if array else -1,
        ArrayDimensions=[0] if array else [],
        Description=ua.LocalizedText(description),
    )


@dataclass(slots=True)
class MethodInfo:
    """A method node shared by every instance of a type, and what it does."""

    node: NodeData
    name: str
    inputs: tuple[ArgSpec, ...]
    action: ActionSpec | None = None  # None for methods that are not device commands (Incidents)
    instance_ref: ua.ReferenceDescription | None = None  # forward HasComponent from an instance to this method


@dataclass(slots=True)
class TypeInfo:
    """One ObjectType and the pieces its instances share with it."""

    name: str
    node: NodeData
    kind: Kind | None
    variables: tuple[VarSpec, ...]
    type_ref: ua.ReferenceDescription  # forward HasTypeDefinition from an instance to this type
    property_refs: dict[str, list[ua.ReferenceDescription]] = field(default_factory=dict)  # var -> EURange/EU refs
    methods: dict[str, MethodInfo] = field(default_factory=dict)

    @property
    def nodeid(self) -> ua.NodeId:
        """The NodeId of the type node."""
        return self.node.nodeid


class TypeBuilder:
    """Adds ObjectTypes to an address space, with string NodeIds under Types/<TypeName>/..."""

    def __init__(self, aspace: AddressSpace, ns: int) -> None:
        self._aspace = aspace
        self._ns = ns

    def _id(self, *parts: str) -> ua.NodeId:
        return string_nodeid("/".join((TYPES_PREFIX, *parts)), self._ns)

    def _add(self, node: NodeData) -> NodeData:
        if node.nodeid in self._aspace:
            raise ValueError(f"node {node.nodeid} already exists")
        self._aspace[node.nodeid] = node
        return node

    def _mandatory(self, node: NodeData) -> None:
        browse, display, _nodeclass = names_of(self._aspace[MANDATORY])
        set_rule = reference(
            HAS_MODELLING_RULE,
            True,
            MANDATORY,
            browse,
            display,
            ua.NodeClass.Object,
        )
        node.references.append(set_rule)

    def add_property(
        self,
        parent: NodeData,
        nodeid: ua.NodeId,
        name: ua.QualifiedName,
        value: ua.Variant,
        dtype: ua.NodeId,
        value_rank: int = -1,
        dims: Sequence[int] | None = None,
        *,
        mandatory: bool = True,
    ) -> NodeData:
        """A property (PropertyType) of `parent`, with its constant value; an instance declaration if mandatory."""
        attrs: dict[str, tuple[object, ua.VariantType]] = {
            "Value": (ua.DataValue(value), ua.VariantType.Null),
            "DataType": (dtype, ua.VariantType.NodeId),
            "ValueRank": (value_rank, ua.VariantType.Int32),
            "AccessLevel": (ua.AccessLevel.CurrentRead.mask, ua.VariantType.Byte),
            "UserAccessLevel": (ua.AccessLevel.CurrentRead.mask, ua.VariantType.Byte),
            "Historizing": (False, ua.VariantType.Boolean),
        }
        if dims is not None:
            attrs["ArrayDimensions"] = (list(dims), ua.VariantType.UInt32)
        node = self._add(plain_node(nodeid, ua.NodeClass.Variable, name, **attrs))  # type: ignore[arg-type]
        set_type(node, PROPERTY_TYPE, self._aspace[PROPERTY_TYPE])
        if mandatory:
            self._mandatory(node)
        link(parent, node, HAS_PROPERTY)
        return node

    def object_type(self, name: str, description: str = "") -> NodeData:
        """A concrete ObjectType subtype of BaseObjectType."""
        node = self._add(
            plain_node(
                self._id(name),
                ua.NodeClass.ObjectType,
                ua.QualifiedName(name, self._ns),
                description=description,
                IsAbstract=(False, ua.VariantType.Boolean),
            )
        )
        link(self._aspace[BASE_OBJECT_TYPE], node, HAS_SUBTYPE)
        return node

    def variable(self, type_node: NodeData, type_name: str, spec: VarSpec) -> list[ua.ReferenceDescription]:
        """An instance declaration; returns the forward HasProperty references to its EURange/EngineeringUnits."""
        level = access_level(spec)
        node = self._add(
            plain_node(
                self._id(type_name, spec.name),
                ua.NodeClass.Variable,
                ua.QualifiedName(spec.name, self._ns),
                description=spec.description,
                Value=(ua.DataValue(NULL_VARIANT), ua.VariantType.Null),
                DataType=(data_type_id(spec.dtype), ua.VariantType.NodeId),
                ValueRank=(-1, ua.VariantType.Int32),
                AccessLevel=(level, ua.VariantType.Byte),
                UserAccessLevel=(level, ua.VariantType.Byte),
                Historizing=(spec.historized, ua.VariantType.Boolean),
            )
        )
        set_type(node, variable_typedef(spec), self._aspace[variable_typedef(spec)])
        self._mandatory(node)
        link(type_node, node, HAS_COMPONENT)
        refs: list[ua.ReferenceDescription] = []
        if spec.eu_range is not None:
            low, high = spec.eu_range
            self.add_property(
                node,
                self._id(type_name, spec.name, "EURange"),
                ua.QualifiedName("EURange", 0),
                ua.Variant(ua.Range(float(low), float(high)), ua.VariantType.ExtensionObject),
                RANGE_DATA_TYPE,
            )
            refs.append(node.references[-1])
            if spec.unit:
                self.add_property(
                    node,
                    self._id(type_name, spec.name, "EngineeringUnits"),
                    ua.QualifiedName("EngineeringUnits", 0),
                    ua.Variant(eu_information(spec.unit), ua.VariantType.ExtensionObject),
                    EU_DATA_TYPE,
                )
                refs.append(node.references[-1])
        return refs

    def device_property(self, type_node: NodeData, type_name: str, name: str, dtype: str) -> None:
        """A Latitude/Longitude/DeviceId property declaration."""
        self.add_property(
            type_node,
            self._id(type_name, name),
            ua.QualifiedName(name, self._ns),
            NULL_VARIANT,
            data_type_id(dtype),
        )

    def method(
        self,
        parent: NodeData,
        nodeid_parts: tuple[str, ...],
        name: str,
        inputs: Sequence[ArgSpec],
        outputs: Sequence[ArgSpec] = (),
        description: str = "",
        *,
        mandatory: bool = True,
    ) -> MethodInfo:
        """A method with its InputArguments/OutputArguments properties, a component of `parent`."""
        node = self._add(
            plain_node(
                string_nodeid("/".join(nodeid_parts), self._ns),
                ua.NodeClass.Method,
                ua.QualifiedName(name, self._ns),
                description=description,
                Executable=(True, ua.VariantType.Boolean),
                UserExecutable=(True, ua.VariantType.Boolean),
            )
        )
        if mandatory:
            self._mandatory(node)
        link(parent, node, HAS_COMPONENT)
        for prop, args in (("InputArguments", inputs), ("OutputArguments", outputs)):
            if args:
                self.add_property(
                    node,
                    string_nodeid("/".join((*nodeid_parts, prop)), self._ns),
                    ua.QualifiedName(prop, 0),
                    ua.Variant([argument(arg) for arg in args], ua.VariantType.ExtensionObject, is_array=True),
                    ARGUMENT_DATA_TYPE,
                    value_rank=1,
                    dims=[len(args)],
                )
        instance_ref = reference(
            HAS_COMPONENT,
            True,
            node.nodeid,
            ua.QualifiedName(name, self._ns),
            ua.LocalizedText(name),
            ua.NodeClass.Method,
        )
        return MethodInfo(node=node, name=name, inputs=tuple(inputs), instance_ref=instance_ref)

    def _type_ref(self, node: NodeData, name: str) -> ua.ReferenceDescription:
        return reference(
            HAS_TYPE_DEFINITION,
            True,
            node.nodeid,
            ua.QualifiedName(name, self._ns),
            ua.LocalizedText(name),
            ua.NodeClass.ObjectType,
        )

    def device_type(self, kind: Kind) -> TypeInfo:
        """The ObjectType of a device kind with every catalog variable, the device properties and methods."""
        name = OBJECT_TYPES[kind]
        node = self.object_type(name, f"a {kind.value.replace('_', ' ')} of the city")
        info = TypeInfo(name=name, node=node, kind=kind, variables=VARIABLES[kind], type_ref=self._type_ref(node, name))
        for spec in VARIABLES[kind]:
            info.property_refs[spec.name] = self.variable(node, name, spec)
        for prop, dtype in DEVICE_PROPERTIES.items():
            self.device_property(node, name, prop, dtype)
        for action in ACTIONS[kind]:
            if action.method is None:
                continue
            method = self.method(
                node, (TYPES_PREFIX, name, action.method), action.method, action.args, description=action.description
            )
            method.action = action
            info.methods[action.method] = method
        return info

    def incident_type(self) -> TypeInfo:
        """IncidentType: the object that stands for one open incident under Objects/City/Incidents."""
        node = self.object_type(INCIDENT_TYPE, "an incident reported to the control post")
        info = TypeInfo(
            name=INCIDENT_TYPE,
            node=node,
            kind=None,
            variables=INCIDENT_VARS,
            type_ref=self._type_ref(node, INCIDENT_TYPE),
        )
        for spec in INCIDENT_VARS:
            info.property_refs[spec.name] = self.variable(node, INCIDENT_TYPE, spec)
        return info


def build_types(aspace: AddressSpace, ns: int) -> dict[str, TypeInfo]:
    """Every ObjectType of the model, by type name (the six device types and IncidentType)."""
    builder = TypeBuilder(aspace, ns)
    types = {OBJECT_TYPES[kind]: builder.device_type(kind) for kind in Kind}
    types[INCIDENT_TYPE] = builder.incident_type()
    return types


__all__ = ["INCIDENT_VARS", "VARIANT_TYPES", "MethodInfo", "TypeBuilder", "TypeInfo", "access_level", "build_types"]
