"""Per-user UserExecutable and UserAccessLevel: what a client's user may do, answered before it tries.

OPC UA Part 3 gives methods a `UserExecutable` and variables a `UserAccessLevel` attribute that a server answers for
the session's user. asyncua stores one value per node; this module corrects the answer of a Read for the user of
the session that reads, from the same policy that checks the calls (scada.security.policy.Policy):

- device methods (shared by every device of a kind): the `call` permission of `<kind>.<action>`;
- ReportIncident / CloseIncident: `incident.report` / `incident.close`; an incident's ConfirmAction, CancelAction
  and ChangeAction: `incident.close` (steering the response, as the method check does);
- the standard condition methods: Acknowledge, Confirm, AddComment need `acknowledge_alarms`; shelving, Enable and
  Disable need `shelve_alarms`; ConditionRefresh is everybody's;
- a cabinet's Override and CancelOverride (scada.lighting.opcua): `cabinet.override`;
- writable variables (LevelSetpoint...): without the `call` permission of their action, the CurrentWrite bit of
  UserAccessLevel is cleared.

It is a PostRead listener of asyncua's callback service (the session has read the stored values; only the
answers named above are replaced). The calls themselves stay checked by the policy: this only tells clients such
as the console what to disable.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from asyncua import ua
from asyncua.common.callback import CallbackType
from asyncua.server.internal_server import InternalServer

from scada.opcua.conditions_methods import ACKNOWLEDGE_PERMISSION, METHODS, SHELVE_PERMISSION
from scada.opcua.nodes import VariableNode, ns0, string_nodeid

log = logging.getLogger(__name__)

INCIDENT_TARGET = "incident"
INCIDENT_ACTION_METHODS = ("ConfirmAction", "CancelAction", "ChangeAction")
CABINET_OVERRIDE_METHODS = ("Override", "CancelOverride")  # scada.lighting.opcua: `cabinet.override`
_PERMISSION_OF_CONDITION_METHOD = {
    "acknowledge": ACKNOWLEDGE_PERMISSION,
    "confirm": ACKNOWLEDGE_PERMISSION,
    "add_comment": ACKNOWLEDGE_PERMISSION,
    "enable": SHELVE_PERMISSION,
    "disable": SHELVE_PERMISSION,
    "timed_shelve": SHELVE_PERMISSION,
    "timed_shelve2": SHELVE_PERMISSION,
    "one_shot_shelve": SHELVE_PERMISSION,
    "one_shot_shelve2": SHELVE_PERMISSION,
    "unshelve": SHELVE_PERMISSION,
    "unshelve2": SHELVE_PERMISSION,
}
PRIORITY = 50  # asyncua keeps one listener per (event, priority)
_EXECUTABLE = ua.AttributeIds.UserExecutable
_ACCESS = ua.AttributeIds.UserAccessLevel
_CURRENT_WRITE = 1 << ua.AccessLevel.CurrentWrite.value

MayCall = Callable[[str | None, str, str], bool]
Allows = Callable[[str | None, str], bool]
Check = Callable[[str | None], bool]


class UserRights:
    """Answers UserExecutable / UserAccessLevel reads for the reading session's user."""

    def __init__(self, ns: int, aspace: Any, may_call: MayCall, allows: Allows) -> None:
        self._ns = ns
        self._aspace = aspace
        self._may_call = may_call
        self._allows = allows
        self._methods: dict[ua.NodeId, Check] = {}
        self._iserver: InternalServer | None = None
        self.answered = 0

    def add_device_methods(self, types: dict[str, Any]) -> None:
        """The device methods of every type (scada.opcua.types.TypeInfo with its MethodInfos)."""
        for info in types.values():
            if info.kind is None:
                continue
            for method in info.methods.values():
                if method.action is not None:
                    self._methods[method.node.nodeid] = self._call_check(info.kind.value, method.action.name)

    def add_standard_methods(self) -> None:
        """ReportIncident, CloseIncident and the condition methods."""
        for name, action in (("ReportIncident", "report"), ("CloseIncident", "close")):
            self._methods[string_nodeid(f"Incidents/{name}", self._ns)] = self._call_check(INCIDENT_TARGET, action)
        for key, ids in METHODS.items():
            permission = _PERMISSION_OF_CONDITION_METHOD.get(key)
            if permission is None:
                continue
            for identifier in ids:
                self._methods[ns0(identifier)] = self._permission_check(permission)

    def _call_check(self, target: str, action: str) -> Check:
        return lambda account: self._may_call(account, target, action)

    def _permission_check(self, permission: str) -> Check:
        return lambda account: self._allows(account, permission)

    def install(self, iserver: InternalServer) -> None:
        """Listen to every Read (idempotent)."""
        if self._iserver is None:
            iserver.callback_service.addListener(CallbackType.PostRead, self.post_read, priority=PRIORITY)  # type: ignore[arg-type]  # asyncua dispatches CallbackType members
            self._iserver = iserver

    def uninstall(self) -> None:
        """Stop answering (idempotent)."""
        if self._iserver is not None:
            self._iserver.callback_service.removeListener(CallbackType.PostRead, self.post_read)  # type: ignore[arg-type]
            self._iserver = None

    def post_read(self, event: Any, dispatcher: Any = None) -> None:
        """Replace the UserExecutable / UserAccessLevel answers of a Read for its session's user."""
        params = event.request_params
        results = event.response_params
        if params is None or results is None:
            return
        account: str | None = None
        resolved = False
        for index, item in enumerate(params.NodesToRead):
            attribute = item.AttributeId
            if attribute != _EXECUTABLE and attribute != _ACCESS:
                continue
            if not resolved:
                account = getattr(event.user, "account", None)
                resolved = True
            if attribute == _EXECUTABLE:
                allowed = self._executable(item.NodeId, account)
                if allowed is not None and _good(results[index]):
                    results[index] = ua.DataValue(ua.Variant(allowed, ua.VariantType.Boolean))
                    self.answered += 1
            else:
                self._access(item.NodeId, account, results, index)

    def _executable(self, nodeid: ua.NodeId, account: str | None) -> bool | None:
        check = self._methods.get(nodeid)
        if check is not None:
            return check(account)
        if nodeid.NamespaceIndex == self._ns and isinstance(nodeid.Identifier, str):
            name = nodeid.Identifier.rsplit("/", 1)[-1]
            if name in INCIDENT_ACTION_METHODS:
                return self._may_call(account, INCIDENT_TARGET, "close")
            if name in CABINET_OVERRIDE_METHODS:
                return self._may_call(account, "cabinet", "override")
        return None

    def _access(self, nodeid: ua.NodeId, account: str | None, results: list[ua.DataValue], index: int) -> None:
        if nodeid.NamespaceIndex != self._ns or not isinstance(nodeid.Identifier, str):
            return
        node = self._aspace.get(nodeid)
        if not isinstance(node, VariableNode):
            return
        spec = node.shape.meta.get("spec")
        kind = node.shape.meta.get("kind")
        if spec is None or spec.action is None or kind is None:
            return
        dv = results[index]
        if not _good(dv) or dv.Value is None or not isinstance(dv.Value.Value, int):
            return
        if not self._may_call(account, kind.value, spec.action):
            results[index] = ua.DataValue(ua.Variant(dv.Value.Value & ~_CURRENT_WRITE & 0xFF, ua.VariantType.Byte))
            self.answered += 1


def _good(dv: ua.DataValue) -> bool:
    return dv.StatusCode is None or dv.StatusCode.is_good()
