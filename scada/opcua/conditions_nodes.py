"""The nodes of a condition: one object per reported condition, its Part 9 variables made on first browse.

A condition object (NodeId s=<device path>/Alarms/<ConditionName>, type OffNormalAlarmType or
SystemOffNormalAlarmType) is added when the condition is first reported, so that clients can call Acknowledge,
Confirm, AddComment, Enable/Disable and the shelving methods on it. Its ~45 variables (EnabledState/Id,
AckedState/Id, ShelvingState/CurrentState, ...) would cost ~20 kB per condition and a few hundred
microseconds to build: they are made the first time anything reads the object's references (Browse,
TranslateBrowsePathsToNodeIds) or calls a method on it, so a burst of 10,000 new alarms costs one node each.
Their values are read live from the condition's last reported event (UnshelveTime counts down at every read);
monitored items on them are notified at every event of the condition.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from asyncua import ua
from asyncua.server.address_space import AttributeValue

from scada.alarms.state import ConditionState
from scada.opcua.conditions_events import ConditionEvent
from scada.opcua.nodes import (
    HAS_COMPONENT,
    HAS_PROPERTY,
    HAS_TYPE_DEFINITION,
    A,
    ObjectNode,
    Shape,
    VariableNode,
    constant,
    ns0,
    reference,
    status_code,
    string_nodeid,
    timestamp,
)

_VT = ua.VariantType
_OBJECT = ua.NodeClass.Object
_VARIABLE = ua.NodeClass.Variable
HAS_CONDITION = ns0(ua.ObjectIds.HasCondition)
PROPERTY_TYPE = ns0(ua.ObjectIds.PropertyType)
TWO_STATE_TYPE = ns0(ua.ObjectIds.TwoStateVariableType)
CONDITION_VARIABLE_TYPE = ns0(ua.ObjectIds.ConditionVariableType)
SHELVED_STATE_MACHINE_TYPE = ns0(ua.ObjectIds.ShelvedStateMachineType)
FINITE_STATE_TYPE = ns0(ua.ObjectIds.FiniteStateVariableType)
FINITE_TRANSITION_TYPE = ns0(ua.ObjectIds.FiniteTransitionVariableType)

CONDITION_METHODS = (
    ua.ObjectIds.ConditionType_Enable,
    ua.ObjectIds.ConditionType_Disable,
    ua.ObjectIds.ConditionType_AddComment,
    ua.ObjectIds.AcknowledgeableConditionType_Acknowledge,
    ua.ObjectIds.AcknowledgeableConditionType_Confirm,
)
SHELVING_METHODS = (
    ua.ObjectIds.ShelvedStateMachineType_Unshelve,
    ua.ObjectIds.ShelvedStateMachineType_OneShotShelve,
    ua.ObjectIds.ShelvedStateMachineType_TimedShelve,
)

_P, _C = "property", "component"
_DT = {
    "ByteString": ns0(ua.ObjectIds.ByteString),
    "NodeId": ns0(ua.ObjectIds.NodeId),
    "String": ns0(ua.ObjectIds.String),
    "UtcTime": ns0(ua.ObjectIds.UtcTime),
    "LocalizedText": ns0(ua.ObjectIds.LocalizedText),
    "UInt16": ns0(ua.ObjectIds.UInt16),
    "Boolean": ns0(ua.ObjectIds.Boolean),
    "StatusCode": ns0(ua.ObjectIds.StatusCode),
    "Duration": ns0(ua.ObjectIds.Duration),
}

# The variables (and the ShelvingState object) of a condition: path, how the parent holds it, type, data type.
CHILDREN: tuple[tuple[str, str, ua.NodeId, str | None], ...] = (
    ("EventId", _P, PROPERTY_TYPE, "ByteString"),
    ("EventType", _P, PROPERTY_TYPE, "NodeId"),
    ("SourceNode", _P, PROPERTY_TYPE, "NodeId"),
    ("SourceName", _P, PROPERTY_TYPE, "String"),
    ("Time", _P, PROPERTY_TYPE, "UtcTime"),
    ("ReceiveTime", _P, PROPERTY_TYPE, "UtcTime"),
    ("Message", _P, PROPERTY_TYPE, "LocalizedText"),
    ("Severity", _P, PROPERTY_TYPE, "UInt16"),
    ("ConditionClassId", _P, PROPERTY_TYPE, "NodeId"),
    ("ConditionClassName", _P, PROPERTY_TYPE, "LocalizedText"),
    ("ConditionName", _P, PROPERTY_TYPE, "String"),
    ("BranchId", _P, PROPERTY_TYPE, "NodeId"),
    ("Retain", _P, PROPERTY_TYPE, "Boolean"),
    ("ClientUserId", _P, PROPERTY_TYPE, "String"),
    ("InputNode", _P, PROPERTY_TYPE, "NodeId"),
    ("SuppressedOrShelved", _P, PROPERTY_TYPE, "Boolean"),
    ("MaxTimeShelved", _P, PROPERTY_TYPE, "Duration"),
    ("EnabledState", _C, TWO_STATE_TYPE, "LocalizedText"),
    ("EnabledState/Id", _P, PROPERTY_TYPE, "Boolean"),
    ("EnabledState/TransitionTime", _P, PROPERTY_TYPE, "UtcTime"),
    ("Quality", _C, CONDITION_VARIABLE_TYPE, "StatusCode"),
    ("Quality/SourceTimestamp", _P, PROPERTY_TYPE, "UtcTime"),
    ("LastSeverity", _C, CONDITION_VARIABLE_TYPE, "UInt16"),
    ("LastSeverity/SourceTimestamp", _P, PROPERTY_TYPE, "UtcTime"),
    ("Comment", _C, CONDITION_VARIABLE_TYPE, "LocalizedText"),
    ("Comment/SourceTimestamp", _P, PROPERTY_TYPE, "UtcTime"),
    ("AckedState", _C, TWO_STATE_TYPE, "LocalizedText"),
    ("AckedState/Id", _P, PROPERTY_TYPE, "Boolean"),
    ("AckedState/TransitionTime", _P, PROPERTY_TYPE, "UtcTime"),
    ("ConfirmedState", _C, TWO_STATE_TYPE, "LocalizedText"),
    ("ConfirmedState/Id", _P, PROPERTY_TYPE, "Boolean"),
    ("ConfirmedState/TransitionTime", _P, PROPERTY_TYPE, "UtcTime"),
    ("ActiveState", _C, TWO_STATE_TYPE, "LocalizedText"),
    ("ActiveState/Id", _P, PROPERTY_TYPE, "Boolean"),
    ("ActiveState/TransitionTime", _P, PROPERTY_TYPE, "UtcTime"),
    ("SuppressedState", _C, TWO_STATE_TYPE, "LocalizedText"),
    ("SuppressedState/Id", _P, PROPERTY_TYPE, "Boolean"),
    ("SuppressedState/TransitionTime", _P, PROPERTY_TYPE, "UtcTime"),
    ("ShelvingState", _C, SHELVED_STATE_MACHINE_TYPE, None),
    ("ShelvingState/CurrentState", _C, FINITE_STATE_TYPE, "LocalizedText"),
    ("ShelvingState/CurrentState/Id", _P, PROPERTY_TYPE, "NodeId"),
    ("ShelvingState/LastTransition", _C, FINITE_TRANSITION_TYPE, "LocalizedText"),
    ("ShelvingState/LastTransition/Id", _P, PROPERTY_TYPE, "NodeId"),
    ("ShelvingState/LastTransition/TransitionTime", _P, PROPERTY_TYPE, "UtcTime"),
    ("ShelvingState/UnshelveTime", _P, PROPERTY_TYPE, "Duration"),
)

_READ = ua.AccessLevel.CurrentRead.mask
_SHAPES: dict[str, Shape] = {}
_TYPEDEF_REFS: dict[ua.NodeId, ua.ReferenceDescription] = {}


def _shape(path: str, datatype: str | None) -> Shape:
    """The attributes every condition's child at `path` shares (names are standard, namespace 0)."""
    shape = _SHAPES.get(path)
    if shape is None:
        name = path.rsplit("/", 1)[-1]
        attrs: dict[int, AttributeValue] = {
            A.BrowseName: constant(ua.QualifiedName(name, 0), _VT.QualifiedName),
            A.DisplayName: constant(ua.LocalizedText(name), _VT.LocalizedText),
            A.WriteMask: constant(0, _VT.UInt32),
            A.UserWriteMask: constant(0, _VT.UInt32),
        }
        if datatype is None:
            attrs[A.NodeClass] = constant(int(_OBJECT), _VT.Int32)
            attrs[A.EventNotifier] = constant(0, _VT.Byte)
        else:
            attrs[A.NodeClass] = constant(int(_VARIABLE), _VT.Int32)
            attrs[A.DataType] = constant(_DT[datatype], _VT.NodeId)
            attrs[A.ValueRank] = constant(-1, _VT.Int32)
            attrs[A.AccessLevel] = constant(_READ, _VT.Byte)
            attrs[A.UserAccessLevel] = constant(_READ, _VT.Byte)
            attrs[A.Historizing] = constant(False, _VT.Boolean)
        shape = _SHAPES[path] = Shape(attrs, meta={"condition_child": path})
    return shape


def typedef_ref(typedef: ua.NodeId, aspace: Any) -> ua.ReferenceDescription:
    """The HasTypeDefinition reference to a standard type (one object per type)."""
    found = _TYPEDEF_REFS.get(typedef)
    if found is None:
        attrs = aspace[typedef].attributes
        found = _TYPEDEF_REFS[typedef] = reference(
            HAS_TYPE_DEFINITION,
            True,
            typedef,
            attrs[A.BrowseName].value.Value.Value,
            attrs[A.DisplayName].value.Value.Value,
            ua.NodeClass(attrs[A.NodeClass].value.Value.Value),
        )
    return found


def _method_ref(method: int, aspace: Any) -> ua.ReferenceDescription:
    nodeid = ns0(method)
    attrs = aspace[nodeid].attributes
    return reference(
        HAS_COMPONENT,
        True,
        nodeid,
        attrs[A.BrowseName].value.Value.Value,
        attrs[A.DisplayName].value.Value.Value,
        ua.NodeClass.Method,
    )


class LiveValue:
    """The Value attribute of a condition child: read from the condition's last event, never stored."""

    __slots__ = ("_callbacks", "key", "owner")
    value_callback = None
    value_setter = None

    def __init__(self, owner: ConditionNode, key: str) -> None:
        self.owner = owner
        self.key = key
        self._callbacks: dict[int, Any] | None = None

    @property
    def value(self) -> ua.DataValue:
        """The current DataValue (UnshelveTime is computed at the time of the read)."""
        return self.owner.data_value(self.key)

    @property
    def datachange_callbacks(self) -> dict[int, Any]:
        """Subscription callbacks by handle."""
        if self._callbacks is None:
            self._callbacks = {}
        return self._callbacks


class ConditionVariable(VariableNode):
    """A variable of a condition (shared attributes, live value)."""

    __slots__ = ()


class ConditionNode(ObjectNode):
    """The object of a reported condition: its node, what its events share, where they go, its last event.

    The children (Part 9 variables) are made by `owner.materialize(node)` on the first read of `references`.
    """

    __slots__ = ("_refs", "chain", "children", "cond", "last", "own_fields", "owner", "retained", "shared")

    def __init__(
        self,
        nodeid: ua.NodeId,
        shape: Shape,
        browse_name: ua.QualifiedName,
        display_name: ua.LocalizedText,
        source_ref: ua.ReferenceDescription,
        owner: Any,
        cond: ConditionState,
        own_fields: dict[str, ua.Variant],
        shared: dict[str, ua.Variant],
        chain: tuple[ua.NodeId, ...],
    ) -> None:
        self.nodeid = nodeid
        self.shape = shape
        self._nodeid_attr = None
        self.browse_name = browse_name
        self.display_name = display_name
        self.description = ""
        self.own = None
        self._refs: list[ua.ReferenceDescription] | ua.ReferenceDescription = source_ref
        self.owner = owner  # has materialize(node) -> the other references, and now() -> datetime
        self.cond = cond
        self.own_fields = own_fields
        self.shared = shared
        self.chain = chain  # notifiers from the Server object down to the source
        self.retained = False  # Retain of the last event reported
        self.children: list[Any] = []  # made with the children
        self.last: ConditionEvent | None = None

    @property  # type: ignore[override]
    def references(self) -> list[ua.ReferenceDescription]:
        """The object's references; the first read makes its children."""
        refs = self._refs
        if not isinstance(refs, list):
            refs = self._refs = [refs]
            refs.extend(self.owner.materialize(self))
        return refs

    @references.setter
    def references(self, value: list[ua.ReferenceDescription]) -> None:
        self._refs = value

    @property
    def materialized(self) -> bool:
        """True once the children exist."""
        return isinstance(self._refs, list)

    def data_value(self, key: str) -> ua.DataValue:
        """The DataValue of one of the condition's fields, from its last event (UnshelveTime: as of now)."""
        event = self.last
        now = timestamp(datetime.now(UTC))
        if event is None:
            return ua.DataValue(ua.Variant(), status_code(ua.StatusCodes.BadWaitingForInitialData), None, now)
        if key == "ShelvingState/UnshelveTime":
            value = ua.Variant(self.cond.unshelve_in(self.owner.now()), _VT.Double)
        else:
            value = event.field(key)
        return ua.DataValue(value, ua.StatusCode(), timestamp(event.fields["Time"].Value), now)


def build_children(node: ConditionNode, aspace: Any, ns: int) -> list[ua.ReferenceDescription]:
    """Make the children of a condition object in the address space; returns the object's other references."""
    base = str(node.nodeid.Identifier)
    inverse_by_parent: dict[str, ua.ReferenceDescription] = {}
    refs_by_parent: dict[str, list[ua.ReferenceDescription]] = {"": []}

    def inverse(parent_path: str, parent_id: ua.NodeId, reftype: ua.NodeId, browse: ua.QualifiedName) -> Any:
        key = f"{parent_path}|{reftype.Identifier!r}"
        found = inverse_by_parent.get(key)
        if found is None:
            nodeclass = _OBJECT if parent_path in ("", "ShelvingState") else _VARIABLE
            found = reference(reftype, False, parent_id, browse, ua.LocalizedText(browse.Name), nodeclass)
            inverse_by_parent[key] = found
        return found

    for path, how, typedef, datatype in CHILDREN:
        parent_path = path.rsplit("/", 1)[0] if "/" in path else ""
        parent_id = node.nodeid if not parent_path else string_nodeid(f"{base}/{parent_path}", ns)
        parent_browse = node.browse_name if not parent_path else ua.QualifiedName(parent_path.rsplit("/", 1)[-1], 0)
        reftype = HAS_PROPERTY if how == _P else HAS_COMPONENT
        nodeid = string_nodeid(f"{base}/{path}", ns)
        shape = _shape(path, datatype)
        own_refs = [inverse(parent_path, parent_id, reftype, parent_browse), typedef_ref(typedef, aspace)]
        name = ua.QualifiedName(path.rsplit("/", 1)[-1], 0)
        if datatype is None:
            child: Any = ObjectNode(nodeid, own_refs, shape, name, ua.LocalizedText(name.Name))
            own_refs.extend(_method_ref(method, aspace) for method in SHELVING_METHODS)
            nodeclass = _OBJECT
        else:
            child = ConditionVariable(nodeid, own_refs, shape, LiveValue(node, path))  # type: ignore[arg-type]
            nodeclass = _VARIABLE
        refs_by_parent[path] = own_refs
        refs_by_parent[parent_path].append(
            reference(reftype, True, nodeid, name, ua.LocalizedText(name.Name), nodeclass, typedef)
        )
        aspace[nodeid] = child
        node.children.append(child)
    top = refs_by_parent[""]
    return [*top, *(_method_ref(method, aspace) for method in CONDITION_METHODS)]


def remove_children(node: ConditionNode, aspace: Any) -> None:
    """Delete the children of a condition object from the address space."""
    for child in node.children:
        attribute = getattr(child, "value", None)
        callbacks = getattr(attribute, "_callbacks", None)
        if callbacks:
            for handle in list(callbacks):
                aspace.delete_datachange_callback(handle)
        if child.nodeid in aspace:
            del aspace[child.nodeid]
    node.children.clear()
