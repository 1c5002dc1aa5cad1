"""The incident objects' response in the address space: their variables and the operator's methods.

IncidentsSpace (scada.opcua.incidents) shows an IncidentType object per open incident with Kind, Latitude,
Longitude, Description, Status and CreatedAt. IncidentObjects adds, on the type and on every object:

- variables `Actions` (String: JSON list of the actions, each with its state and timing), `Timeline` (String: JSON
  list of every step), `ResponseSeconds` (Double: report -> every device confirmed; BadWaitingForInitialData
  until then, BadDeviceFailure while a device action has failed), `PendingActions` and `FailedActions` (UInt32);
- methods `ConfirmAction(ActionId: String) -> State: String`, `CancelAction(ActionId: String) -> State: String`
  and `ChangeAction(ActionId: String, Text: String, Pictogram: UInt16, Plan: UInt16) -> State: String`. A sign
  action takes Text and Pictogram (Plan must be 0); a traffic action takes Plan (Text "" and Pictogram 0).
  Like device methods, they answer Good only once the device accepted the command, else the device's status.

Use: `IncidentObjects(server, service)` after CityServer.start() (start()/stop() make it a Service).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

from asyncua import ua
from asyncua.server.address_space import AttributeValue

from scada.catalog import ArgSpec, VarSpec
from scada.incidents.planner import ActionKind
from scada.incidents.records import ActionRecord, ActionState, IncidentRecord
from scada.incidents.service import IncidentService
from scada.model import CommandError, InvalidArgumentError, Quality, is_good, utcnow
from scada.opcua.datatypes import VARIANT_TYPES, converter, data_type_id
from scada.opcua.incidents import Incident
from scada.opcua.methods import CURRENT_USER, check_arguments, status_result, user_name
from scada.opcua.nodes import (
    BASE_DATA_VARIABLE_TYPE,
    HAS_COMPONENT,
    HAS_TYPE_DEFINITION,
    INITIAL_VALUE,
    NULL_VARIANT,
    A,
    Shape,
    ValueAttribute,
    VariableNode,
    constant,
    data_value,
    names_of,
    status_code,
    string_nodeid,
)
from scada.opcua.server import CityServer
from scada.opcua.types import INCIDENT_TYPE, TYPES_PREFIX, TypeBuilder, access_level

log = logging.getLogger(__name__)

RESPONSE_VARS: tuple[VarSpec, ...] = (
    VarSpec("Actions", "String", description="JSON list of the response's actions with their state and timing"),
    VarSpec("Timeline", "String", description="JSON list of every step of the incident, with its time"),
    VarSpec("ResponseSeconds", "Double", "s", description="from the report to every device confirming"),
    VarSpec("PendingActions", "UInt32", description="actions proposed or being sent"),
    VarSpec("FailedActions", "UInt32", description="device actions that failed"),
)
ACTION_ID = ArgSpec("ActionId", "String", description="the id of an action (A1, A2, ...), see Actions")
STATE_OUT = (ArgSpec("State", "String", description="the action's state afterwards"),)
CONFIRM_INPUTS = (ACTION_ID,)
CANCEL_INPUTS = (ACTION_ID,)
CHANGE_INPUTS = (
    ACTION_ID,
    ArgSpec("Text", "String", description="sign actions: the new text (3 lines of 18, joined by \\n)"),
    ArgSpec("Pictogram", "UInt16", 0, 7, "sign actions: the new pictogram"),
    ArgSpec("Plan", "UInt16", 0, 10, "traffic actions: the new plan (0 for sign actions)"),
)
Authorize = Callable[[str | None, str], None]
"""Raises AccessDeniedError when `user` may not call the method named (ConfirmAction, CancelAction, ChangeAction)."""


class IncidentObjects:
    """Adds the response variables and methods to incident objects and keeps their values current."""

    def __init__(self, server: CityServer, service: IncidentService, *, authorize: Authorize | None = None) -> None:
        self._server = server
        self._service = service
        self._authorize = authorize
        self._shapes: dict[str, Shape] = {}
        self._method_refs: list[ua.ReferenceDescription] = []
        self._nodes: dict[str, dict[str, VariableNode]] = {}  # incident id -> variable name -> node
        self._installed = False

    async def start(self) -> None:
        """Extend IncidentType and follow the service (idempotent; the server must be started)."""
        if self._installed:
            return
        self._install()
        self._installed = True
        self._server.incidents.observers.append(self)
        self._service.add_listener(self.update)
        for incident in self._server.incidents.incidents:
            self.shown(incident, string_nodeid(f"Incidents/{incident.id}", self._ns))

    async def stop(self) -> None:
        """Stop following (the server removes the nodes when it stops)."""
        if not self._installed:
            return
        self._installed = False
        if self._server.running:
            observers = self._server.incidents.observers
            if self in observers:
                observers.remove(self)
        self._nodes.clear()

    @property
    def _ns(self) -> int:
        return self._server.namespace_index

    @property
    def _aspace(self) -> Any:
        return self._server.asyncua_server.iserver.aspace

    def _install(self) -> None:
        aspace, ns = self._aspace, self._ns
        type_id = string_nodeid(f"{TYPES_PREFIX}/{INCIDENT_TYPE}", ns)
        type_node = aspace[type_id]
        types = TypeBuilder(aspace, ns)
        for spec in RESPONSE_VARS:
            if string_nodeid(f"{TYPES_PREFIX}/{INCIDENT_TYPE}/{spec.name}", ns) not in aspace:
                types.variable(type_node, INCIDENT_TYPE, spec)
            self._shapes[spec.name] = _shape(spec, ns)
        for name, inputs, call, description in (
            ("ConfirmAction", CONFIRM_INPUTS, self._confirm, "execute a proposed action now"),
            ("CancelAction", CANCEL_INPUTS, self._cancel, "withdraw an action; its device is restored"),
            ("ChangeAction", CHANGE_INPUTS, self._change, "change a sign's text/pictogram or a controller's plan"),
        ):
            method_id = string_nodeid(f"{TYPES_PREFIX}/{INCIDENT_TYPE}/{name}", ns)
            ref: ua.ReferenceDescription | None
            if method_id in aspace:
                node = aspace[method_id]
                browse, display, _ = names_of(node)
                ref = ua.ReferenceDescription(HAS_COMPONENT, True, method_id, browse, display, ua.NodeClass.Method)
            else:
                info = types.method(
                    type_node,
                    (TYPES_PREFIX, INCIDENT_TYPE, name),
                    name,
                    inputs,
                    STATE_OUT,
                    description,
                    mandatory=False,
                )
                node, ref = info.node, info.instance_ref
            node.call = call
            assert ref is not None
            self._method_refs.append(ref)

    # -- IncidentsObserver ---------------------------------------------------------------------------------

    def shown(self, incident: Incident, nodeid: ua.NodeId) -> None:
        """Add the response variables and method references to a new incident object."""
        if not self._installed or incident.id in self._nodes:
            return
        aspace, ns = self._aspace, self._ns
        obj = aspace.get(nodeid)
        if obj is None:
            return
        browse, display, nodeclass = names_of(obj)
        inverse = ua.ReferenceDescription(HAS_COMPONENT, False, nodeid, browse, display, nodeclass)
        typedef_ref = ua.ReferenceDescription(
            HAS_TYPE_DEFINITION, True, BASE_DATA_VARIABLE_TYPE, *names_of(aspace[BASE_DATA_VARIABLE_TYPE])
        )
        nodes: dict[str, VariableNode] = {}
        for spec in RESPONSE_VARS:
            vid = string_nodeid(f"Incidents/{incident.id}/{spec.name}", ns)
            node = VariableNode(vid, [inverse, typedef_ref], self._shapes[spec.name], ValueAttribute(INITIAL_VALUE))
            aspace[vid] = node
            obj.references.append(
                ua.ReferenceDescription(
                    HAS_COMPONENT,
                    True,
                    vid,
                    ua.QualifiedName(spec.name, ns),
                    ua.LocalizedText(spec.name),
                    ua.NodeClass.Variable,
                    BASE_DATA_VARIABLE_TYPE,
                )
            )
            nodes[spec.name] = node
        obj.references.extend(self._method_refs)
        self._nodes[incident.id] = nodes
        try:
            record = self._service.get(incident.id)
        except CommandError:
            return  # not one of ours (another handler): the variables wait for data
        self.update(record)

    def withdrawing(self, incident_id: str) -> None:
        """Tell the subscribers of the response variables that they are going (the server removes the nodes)."""
        nodes = self._nodes.pop(incident_id, None)
        if nodes is None:
            return
        writer = self._server.writer
        for node in nodes.values():
            writer.forget(node, self._aspace)

    # -- values --------------------------------------------------------------------------------------------

    def update(self, record: IncidentRecord) -> None:
        """Write the incident's response variables (a service listener)."""
        nodes = self._nodes.get(record.id)
        if nodes is None or not self._server.running:
            return
        now = utcnow()
        writer = self._server.writer
        actions = record.actions_view()
        pending = sum(1 for a in record.actions.values() if a.state in (ActionState.PROPOSED, ActionState.SENDING))
        failed = len(record.failed)
        response = record.response_seconds
        values: dict[str, ua.DataValue] = {
            "Actions": _dv(ua.Variant(json.dumps(actions, separators=(",", ":")), ua.VariantType.String), now),
            "Timeline": _dv(ua.Variant(json.dumps(record.timeline, separators=(",", ":")), ua.VariantType.String), now),
            "PendingActions": _dv(ua.Variant(pending, ua.VariantType.UInt32), now),
            "FailedActions": _dv(ua.Variant(failed, ua.VariantType.UInt32), now),
        }
        if response is not None:
            values["ResponseSeconds"] = _dv(ua.Variant(float(response), ua.VariantType.Double), now)
        else:
            code = Quality.BAD_DEVICE_FAILURE if failed else Quality.BAD_WAITING_FOR_INITIAL_DATA
            values["ResponseSeconds"] = ua.DataValue(NULL_VARIANT, status_code(code), None, now)  # type: ignore[arg-type]
        for name, dv in values.items():
            writer.set_value(nodes[name], dv)

    # -- methods -------------------------------------------------------------------------------------------

    def _incident_of(self, object_id: ua.NodeId) -> str | None:
        ident = object_id.Identifier
        if object_id.NamespaceIndex != self._ns or not isinstance(ident, str) or not ident.startswith("Incidents/"):
            return None
        incident_id = ident[len("Incidents/") :]
        return incident_id if incident_id and "/" not in incident_id else None

    async def _call(
        self, name: str, inputs: tuple[ArgSpec, ...], object_id: ua.NodeId, args: tuple[ua.Variant, ...], run: Any
    ) -> ua.CallMethodResult:
        incident_id = self._incident_of(object_id)
        if incident_id is None:
            return status_result(ua.StatusCodes.BadMethodInvalid)
        refused = check_arguments(inputs, args)
        if refused is not None:
            return refused
        user = user_name(CURRENT_USER.get())
        try:
            if self._authorize is not None:
                self._authorize(user, name)
            action: ActionRecord = await run(incident_id, user, *(arg.Value for arg in args))
        except CommandError as exc:
            log.info("%s on %s refused: %s", name, incident_id, exc)
            return status_result(int(exc.status))
        except Exception:
            log.exception("%s on %s failed", name, incident_id)
            return status_result(Quality.BAD_INTERNAL)
        state = ua.Variant(action.state.value, ua.VariantType.String)
        status = _answer(action, name)
        return status_result(status, outputs=[state])

    async def _confirm(self, object_id: ua.NodeId, *args: ua.Variant) -> ua.CallMethodResult:
        async def run(incident_id: str, user: str | None, action_id: str) -> ActionRecord:
            return await self._service.confirm_action(incident_id, action_id, user)

        return await self._call("ConfirmAction", CONFIRM_INPUTS, object_id, args, run)

    async def _cancel(self, object_id: ua.NodeId, *args: ua.Variant) -> ua.CallMethodResult:
        async def run(incident_id: str, user: str | None, action_id: str) -> ActionRecord:
            return await self._service.cancel_action(incident_id, action_id, user)

        return await self._call("CancelAction", CANCEL_INPUTS, object_id, args, run)

    async def _change(self, object_id: ua.NodeId, *args: ua.Variant) -> ua.CallMethodResult:
        async def run(
            incident_id: str, user: str | None, action_id: str, text: str, pictogram: int, plan: int
        ) -> ActionRecord:
            action = self._service.get(incident_id).actions.get(action_id)
            if action is not None and action.kind is ActionKind.TRAFFIC:
                if text or pictogram:
                    raise InvalidArgumentError("a traffic action takes only Plan (Text must be empty, Pictogram 0)")
                return await self._service.change_action(incident_id, action_id, user, plan=int(plan))
            if plan:
                raise InvalidArgumentError("a sign action takes Text and Pictogram (Plan must be 0)")
            return await self._service.change_action(incident_id, action_id, user, text=text, pictogram=int(pictogram))

        return await self._call("ChangeAction", CHANGE_INPUTS, object_id, args, run)


def _answer(action: ActionRecord, method: str) -> int:
    """The call's status: the device's answer for what the call sent, Good when nothing needed sending."""
    if method == "CancelAction":
        restore = action.restore
        if restore is not None and restore.get("command") is not None and not is_good(int(restore["status"])):
            return int(restore["status"])
        return Quality.GOOD
    if action.state is ActionState.FAILED and action.status is not None:
        return int(action.status)
    return Quality.GOOD


def _dv(variant: ua.Variant, now: Any) -> ua.DataValue:
    return data_value(variant, None, now, now)


def _shape(spec: VarSpec, ns: int) -> Shape:
    """The shared attributes of one response variable on every incident object."""
    level = access_level(spec)
    attrs: dict[int, AttributeValue] = {
        A.NodeClass: constant(int(ua.NodeClass.Variable), ua.VariantType.Int32),
        A.BrowseName: constant(ua.QualifiedName(spec.name, ns), ua.VariantType.QualifiedName),
        A.DisplayName: constant(ua.LocalizedText(spec.name), ua.VariantType.LocalizedText),
        A.WriteMask: constant(0, ua.VariantType.UInt32),
        A.UserWriteMask: constant(0, ua.VariantType.UInt32),
        A.DataType: constant(data_type_id(spec.dtype), ua.VariantType.NodeId),
        A.ValueRank: constant(-1, ua.VariantType.Int32),
        A.AccessLevel: constant(level, ua.VariantType.Byte),
        A.UserAccessLevel: constant(level, ua.VariantType.Byte),
        A.Historizing: constant(False, ua.VariantType.Boolean),
        A.Description: constant(ua.LocalizedText(spec.description), ua.VariantType.LocalizedText),
    }
    return Shape(attrs, VARIANT_TYPES[spec.dtype], converter(spec.dtype), meta={"spec": spec, "type": INCIDENT_TYPE})
