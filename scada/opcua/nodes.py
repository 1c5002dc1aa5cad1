"""Compact node records for asyncua's address space: shared constant attributes, per-node NodeId and Value only.

asyncua keeps a `NodeData` per node with a dict of `AttributeValue` objects: about 2 kB per variable. The classes
here duck-type `NodeData` and `AttributeValue` (asyncua reads `node.attributes[attr]`, `attr in node.attributes`,
`node.attributes.get(attr)`, `node.references`, `node.call`, `attval.value`, `attval.value_callback`,
`attval.value_setter` and `attval.datachange_callbacks`) so that a city's 500,000 nodes share their constant
attributes (names, data type, access level, ...) and keep only what differs: the NodeId, the Value, the references.

Shared attributes are safe because every attribute but Value is read-only for clients (WriteMask 0, enforced by
scada.opcua.writes) and the server itself never writes them.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

from asyncua import ua
from asyncua.server.address_space import AttributeValue, NodeData


def ns0(identifier: int) -> ua.NodeId:
    """A numeric NodeId of namespace 0 (standard nodes), typed for asyncua's Int32 identifiers."""
    return ua.NodeId(cast(ua.Int32, identifier))


def status_code(code: int) -> ua.StatusCode:
    """A StatusCode from its integer value."""
    return ua.StatusCode(cast(ua.UInt32, code))


def timestamp(moment: datetime | None) -> ua.DateTime | None:
    """A datetime typed as asyncua's DateTime (the same object)."""
    return cast(ua.DateTime | None, moment)


def data_value(
    variant: ua.Variant,
    status: ua.StatusCode | None = None,
    source: datetime | None = None,
    server: datetime | None = None,
) -> ua.DataValue:
    """A DataValue with a status and its source/server timestamps."""
    return ua.DataValue(variant, status or ua.StatusCode(), timestamp(source), timestamp(server))


A = ua.AttributeIds
_NODEID = int(A.NodeId)
_VALUE = int(A.Value)
_BROWSE_NAME = int(A.BrowseName)
_DISPLAY_NAME = int(A.DisplayName)
_DESCRIPTION = int(A.Description)
_NAMES = frozenset((_BROWSE_NAME, _DISPLAY_NAME, _DESCRIPTION))
_new = object.__new__
_NodeId = ua.NodeId
_Variant = ua.Variant
_STRING = ua.NodeIdType.String

# Reference types and well-known nodes (namespace 0).
ORGANIZES = ns0(ua.ObjectIds.Organizes)
HAS_COMPONENT = ns0(ua.ObjectIds.HasComponent)
HAS_PROPERTY = ns0(ua.ObjectIds.HasProperty)
HAS_TYPE_DEFINITION = ns0(ua.ObjectIds.HasTypeDefinition)
HAS_SUBTYPE = ns0(ua.ObjectIds.HasSubtype)
HAS_MODELLING_RULE = ns0(ua.ObjectIds.HasModellingRule)
MANDATORY = ns0(ua.ObjectIds.ModellingRule_Mandatory)
BASE_OBJECT_TYPE = ns0(ua.ObjectIds.BaseObjectType)
FOLDER_TYPE = ns0(ua.ObjectIds.FolderType)
BASE_DATA_VARIABLE_TYPE = ns0(ua.ObjectIds.BaseDataVariableType)
ANALOG_ITEM_TYPE = ns0(ua.ObjectIds.AnalogItemType)
PROPERTY_TYPE = ns0(ua.ObjectIds.PropertyType)
OBJECTS_FOLDER = ns0(ua.ObjectIds.ObjectsFolder)
NULL_NODEID = ua.NodeId()

NULL_VARIANT = ua.Variant()
WAITING_STATUS = status_code(ua.StatusCodes.BadWaitingForInitialData)
INITIAL_VALUE = ua.DataValue(NULL_VARIANT, WAITING_STATUS)
"""The value of every device variable until its first record arrives: null, BadWaitingForInitialData."""


def constant(value: Any, vtype: ua.VariantType) -> AttributeValue:
    """An AttributeValue holding a constant (never written) attribute value."""
    return AttributeValue(ua.DataValue(ua.Variant(value, vtype)))


class ValueAttribute:
    """The Value attribute of one node: a slotted stand-in for asyncua's AttributeValue (64 bytes instead of 220)."""

    __slots__ = ("_callbacks", "value", "value_callback", "value_setter")

    def __init__(self, value: ua.DataValue) -> None:
        self.value: ua.DataValue | None = value
        self.value_callback: Any = None
        self.value_setter: Any = None
        self._callbacks: dict[int, Any] | None = None

    @property
    def datachange_callbacks(self) -> dict[int, Any]:
        """The subscription callbacks by handle (created on first use: most nodes are never monitored)."""
        if self._callbacks is None:
            self._callbacks = {}
        return self._callbacks

    def __repr__(self) -> str:
        return f"ValueAttribute({self.value})"


@dataclass(slots=True, eq=False)
class Shape:
    """What nodes of one kind share: their constant attributes, and for variables the value's type and coercion."""

    attrs: dict[int, AttributeValue]
    vtype: ua.VariantType | None = None
    convert: Any = None  # callable(value) -> value of the Python type that matches vtype; raises on bad input
    meta: dict[str, Any] = field(default_factory=dict)  # what the builder wants to remember (kind, var spec)


class SharedNode(Mapping[int, Any]):
    """A node whose attributes are its shape's, except NodeId (made on first read); it is its own attribute map."""

    __slots__ = ("_nodeid_attr", "nodeid", "references", "shape")
    call = None  # only method nodes have a call; these never are

    def __init__(self, nodeid: ua.NodeId, references: list[ua.ReferenceDescription], shape: Shape) -> None:
        self.nodeid = nodeid
        self.references = references
        self.shape = shape
        self._nodeid_attr: AttributeValue | None = None

    @property
    def attributes(self) -> SharedNode:
        """The attribute map, as asyncua's NodeData.attributes (the node itself)."""
        return self

    def _nodeid_value(self) -> AttributeValue:
        attr = self._nodeid_attr
        if attr is None:
            attr = self._nodeid_attr = AttributeValue(ua.DataValue(ua.Variant(self.nodeid, ua.VariantType.NodeId)))
        return attr

    def __getitem__(self, attr: int) -> Any:
        if attr == _NODEID:
            return self._nodeid_value()
        return self.shape.attrs[attr]

    def __contains__(self, attr: object) -> bool:
        return attr == _NODEID or attr in self.shape.attrs

    def __iter__(self) -> Iterator[int]:
        yield A.NodeId
        yield from self.shape.attrs

    def __len__(self) -> int:
        return 1 + len(self.shape.attrs)

    def __setitem__(self, attr: int, value: Any) -> None:
        raise TypeError(f"the attributes of {self.nodeid} are shared and read-only")

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.nodeid})"

    __hash__ = object.__hash__
    __eq__ = object.__eq__


class VariableNode(SharedNode):
    """A variable or property: shared attributes plus its own Value."""

    __slots__ = ("value",)

    def __init__(
        self, nodeid: ua.NodeId, references: list[ua.ReferenceDescription], shape: Shape, value: ValueAttribute
    ) -> None:
        self.nodeid = nodeid
        self.references = references
        self.shape = shape
        self._nodeid_attr = None
        self.value = value

    def __getitem__(self, attr: int) -> Any:
        if attr == _VALUE:
            return self.value
        if attr == _NODEID:
            return self._nodeid_value()
        return self.shape.attrs[attr]

    def __contains__(self, attr: object) -> bool:
        return attr in (_VALUE, _NODEID) or attr in self.shape.attrs

    def __iter__(self) -> Iterator[int]:
        yield A.NodeId
        yield A.Value
        yield from self.shape.attrs

    def __len__(self) -> int:
        return 2 + len(self.shape.attrs)


class ObjectNode(SharedNode):
    """An object: shared attributes plus its own names; their AttributeValues are made on first read."""

    __slots__ = ("browse_name", "description", "display_name", "own")

    def __init__(
        self,
        nodeid: ua.NodeId,
        references: list[ua.ReferenceDescription],
        shape: Shape,
        browse_name: ua.QualifiedName,
        display_name: ua.LocalizedText,
        description: str = "",
    ) -> None:
        self.nodeid = nodeid
        self.references = references
        self.shape = shape
        self._nodeid_attr = None
        self.browse_name = browse_name
        self.display_name = display_name
        self.description = description
        self.own: dict[int, AttributeValue] | None = None

    def _own(self, attr: int) -> AttributeValue | None:
        own = self.own
        if own is None:
            own = self.own = {}
        found = own.get(attr)
        if found is None:
            if attr == _BROWSE_NAME:
                found = constant(self.browse_name, ua.VariantType.QualifiedName)
            elif attr == _DISPLAY_NAME:
                found = constant(self.display_name, ua.VariantType.LocalizedText)
            elif attr == _DESCRIPTION and self.description:
                found = constant(ua.LocalizedText(self.description), ua.VariantType.LocalizedText)
            else:
                return None
            own[attr] = found
        return found

    def __getitem__(self, attr: int) -> Any:
        if attr in _NAMES:
            found = self._own(attr)
            if found is not None:
                return found
        if attr == _NODEID:
            return self._nodeid_value()
        return self.shape.attrs[attr]

    def __contains__(self, attr: object) -> bool:
        return (
            attr in (_NODEID, _BROWSE_NAME, _DISPLAY_NAME)
            or (attr == _DESCRIPTION and bool(self.description))
            or attr in self.shape.attrs
        )

    def __iter__(self) -> Iterator[int]:
        yield A.NodeId
        yield A.BrowseName
        yield A.DisplayName
        if self.description:
            yield A.Description
        yield from (key for key in self.shape.attrs if key not in _NAMES)

    def __len__(self) -> int:
        return sum(1 for _ in self)


def string_nodeid(identifier: str, ns: int) -> ua.NodeId:
    """ua.NodeId(identifier, ns) without the dataclass's type guessing (the same object, twice as fast)."""
    nodeid = _new(_NodeId)
    nodeid.Identifier = cast(ua.String, identifier)
    nodeid.NamespaceIndex = cast(ua.Int16, ns)
    nodeid.NodeIdType = _STRING
    return nodeid


def scalar_variant(value: Any, vtype: ua.VariantType) -> ua.Variant:
    """ua.Variant(value, vtype) for a scalar already of vtype's Python type, without __post_init__'s checks."""
    variant = _new(_Variant)
    variant.Value = value
    variant.VariantType = vtype
    variant.Dimensions = None
    variant.is_array = False
    return variant


def reference(
    reftype: ua.NodeId,
    forward: bool,
    target: ua.NodeId,
    browse_name: ua.QualifiedName,
    display_name: ua.LocalizedText,
    nodeclass: ua.NodeClass,
    typedef: ua.NodeId = NULL_NODEID,
) -> ua.ReferenceDescription:
    """One ReferenceDescription as asyncua stores it in the source node's reference list."""
    return ua.ReferenceDescription(reftype, forward, target, browse_name, display_name, nodeclass, typedef)


def plain_node(
    nodeid: ua.NodeId,
    nodeclass: ua.NodeClass,
    browse_name: ua.QualifiedName,
    display_name: ua.LocalizedText | None = None,
    description: str = "",
    **attributes: tuple[Any, ua.VariantType],
) -> NodeData:
    """An ordinary asyncua NodeData (own AttributeValues), for the few nodes that are not built in bulk."""
    node = NodeData(nodeid)
    attrs = node.attributes
    attrs[A.NodeId] = constant(nodeid, ua.VariantType.NodeId)
    attrs[A.NodeClass] = constant(int(nodeclass), ua.VariantType.Int32)
    attrs[A.BrowseName] = constant(browse_name, ua.VariantType.QualifiedName)
    attrs[A.DisplayName] = constant(display_name or ua.LocalizedText(browse_name.Name), ua.VariantType.LocalizedText)
    if description:
        attrs[A.Description] = constant(ua.LocalizedText(description), ua.VariantType.LocalizedText)
    attrs[A.WriteMask] = constant(0, ua.VariantType.UInt32)
    attrs[A.UserWriteMask] = constant(0, ua.VariantType.UInt32)
    for name, (value, vtype) in attributes.items():
        if name == "Value":
            attrs[A.Value] = AttributeValue(value if isinstance(value, ua.DataValue) else ua.DataValue(value))
        else:
            attrs[getattr(A, name)] = constant(value, vtype)
    return node


def names_of(node: Any) -> tuple[ua.QualifiedName, ua.LocalizedText, ua.NodeClass]:
    """BrowseName, DisplayName and NodeClass of a node record (plain or compact)."""
    attrs = node.attributes
    browse = attrs[A.BrowseName].value.Value.Value
    display = attrs[A.DisplayName].value.Value.Value
    nodeclass = ua.NodeClass(attrs[A.NodeClass].value.Value.Value)
    return browse, display, nodeclass


def typedef_of(node: Any) -> ua.NodeId:
    """The HasTypeDefinition target of a node record, or the null NodeId."""
    for ref in node.references:
        if ref.IsForward and ref.ReferenceTypeId == HAS_TYPE_DEFINITION:
            return ref.NodeId
    return NULL_NODEID


def link(source: Any, target: Any, reftype: ua.NodeId, *, inverse: bool = True) -> None:
    """Add a forward reference source -> target (and, by default, its inverse on the target)."""
    browse, display, nodeclass = names_of(target)
    source.references.append(reference(reftype, True, target.nodeid, browse, display, nodeclass, typedef_of(target)))
    if inverse:
        browse, display, nodeclass = names_of(source)
        target.references.append(
            reference(reftype, False, source.nodeid, browse, display, nodeclass, typedef_of(source))
        )


def set_type(node: Any, typedef: ua.NodeId, typedef_node: Any) -> None:
    """Give a node its HasTypeDefinition reference."""
    browse, display, nodeclass = names_of(typedef_node)
    node.references.append(reference(HAS_TYPE_DEFINITION, True, typedef, browse, display, nodeclass))
