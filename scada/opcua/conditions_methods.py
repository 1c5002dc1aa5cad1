"""The standard methods of Part 9 conditions: one dispatcher per method node, the condition found by ObjectId.

Every condition shares the standard method nodes (Acknowledge i=9111, Confirm i=9113, AddComment i=9029,
Enable i=9027, Disable i=9028, the ShelvedStateMachineType's TimedShelve/OneShotShelve/Unshelve and their
"2" variants with a comment, ConditionRefresh i=3875 and ConditionRefresh2 i=12912); asyncua calls the
method node's callback with the call's ObjectId. The dispatcher finds the condition (the ObjectId is the condition,
or its ShelvingState for the shelving methods), checks the arguments' types, asks `authorize(user, permission)`
(the user of the calling session, see scada.opcua.methods.CURRENT_USER) and runs the engine's method, answering
the Part 9 status code of an AlarmError (BadEventIdUnknown, BadConditionBranchAlreadyAcked, ...).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from asyncua import ua

from scada.alarms.engine import AlarmEngine
from scada.alarms.state import AlarmError
from scada.model import CommandError, Quality
from scada.opcua.methods import CURRENT_USER, status_result, user_name
from scada.opcua.nodes import ns0

log = logging.getLogger(__name__)

Authorize = Callable[[str | None, str], None]
"""(user, permission) -> None, raising a CommandError (AccessDeniedError) when the user may not (Policy.require)."""

ACKNOWLEDGE_PERMISSION = "acknowledge_alarms"  # Acknowledge, Confirm, AddComment
SHELVE_PERMISSION = "shelve_alarms"  # shelving, Enable, Disable

_O = ua.ObjectIds
METHODS: dict[str, tuple[int, ...]] = {
    "acknowledge": (_O.AcknowledgeableConditionType_Acknowledge,),
    "confirm": (_O.AcknowledgeableConditionType_Confirm,),
    "add_comment": (_O.ConditionType_AddComment,),
    "enable": (_O.ConditionType_Enable,),
    "disable": (_O.ConditionType_Disable,),
    "timed_shelve": (_O.ShelvedStateMachineType_TimedShelve, _O.AlarmConditionType_ShelvingState_TimedShelve),
    "timed_shelve2": (_O.ShelvedStateMachineType_TimedShelve2, _O.AlarmConditionType_ShelvingState_TimedShelve2),
    "one_shot_shelve": (_O.ShelvedStateMachineType_OneShotShelve, _O.AlarmConditionType_ShelvingState_OneShotShelve),
    "one_shot_shelve2": (
        _O.ShelvedStateMachineType_OneShotShelve2,
        _O.AlarmConditionType_ShelvingState_OneShotShelve2,
    ),
    "unshelve": (_O.ShelvedStateMachineType_Unshelve, _O.AlarmConditionType_ShelvingState_Unshelve),
    "unshelve2": (_O.ShelvedStateMachineType_Unshelve2, _O.AlarmConditionType_ShelvingState_Unshelve2),
    "refresh": (_O.ConditionType_ConditionRefresh,),
    "refresh2": (_O.ConditionType_ConditionRefresh2,),
}
_SC = ua.StatusCodes
Refresh = Callable[[int, int | None], Awaitable[ua.CallMethodResult]]


@dataclass(frozen=True, slots=True)
class _StateMethod:
    """A standard method that changes a condition's state: its arguments, the permission, what the engine does."""

    args: tuple[str, ...]
    permission: str
    run: Callable[..., None]  # (engine, path, *argument values, user)
    shelving: bool = False  # called on the condition's ShelvingState object


_COMMENTED = ("ByteString", "LocalizedText")  # EventId, Comment
_STATE_METHODS: dict[str, _StateMethod] = {
    "acknowledge": _StateMethod(
        _COMMENTED, ACKNOWLEDGE_PERMISSION, lambda e, p, eid, c, u: e.acknowledge(p, eid, c, u)
    ),
    "confirm": _StateMethod(_COMMENTED, ACKNOWLEDGE_PERMISSION, lambda e, p, eid, c, u: e.confirm(p, eid, c, u)),
    "add_comment": _StateMethod(
        _COMMENTED, ACKNOWLEDGE_PERMISSION, lambda e, p, eid, c, u: e.add_comment(p, eid, c, u)
    ),
    "enable": _StateMethod((), SHELVE_PERMISSION, lambda e, p, u: e.enable(p, u)),
    "disable": _StateMethod((), SHELVE_PERMISSION, lambda e, p, u: e.disable(p, u)),
    "timed_shelve": _StateMethod(
        ("Duration",), SHELVE_PERMISSION, lambda e, p, ms, u: e.timed_shelve(p, ms / 1000.0, u), shelving=True
    ),
    "timed_shelve2": _StateMethod(
        ("Duration", "LocalizedText"),
        SHELVE_PERMISSION,
        lambda e, p, ms, c, u: e.timed_shelve(p, ms / 1000.0, u, c),
        shelving=True,
    ),
    "one_shot_shelve": _StateMethod((), SHELVE_PERMISSION, lambda e, p, u: e.one_shot_shelve(p, u), shelving=True),
    "one_shot_shelve2": _StateMethod(
        ("LocalizedText",), SHELVE_PERMISSION, lambda e, p, c, u: e.one_shot_shelve(p, u, c), shelving=True
    ),
    "unshelve": _StateMethod((), SHELVE_PERMISSION, lambda e, p, u: e.unshelve(p, u), shelving=True),
    "unshelve2": _StateMethod(
        ("LocalizedText",), SHELVE_PERMISSION, lambda e, p, c, u: e.unshelve(p, u, c), shelving=True
    ),
}
"""The state-changing standard methods (Part 9), by METHODS key; ConditionRefresh has its own dispatchers."""


class ConditionMethods:
    """The dispatchers of the standard condition methods, bound to the method nodes of one address space."""

    def __init__(
        self, aspace: Any, ns: int, engine: AlarmEngine, refresh: Refresh, authorize: Authorize | None = None
    ) -> None:
        self._aspace = aspace
        self._ns = ns
        self._engine = engine
        self._refresh_to = refresh
        self._authorize = authorize
        self._saved_calls: dict[ua.NodeId, Any] = {}

    def bind(self) -> None:
        """Give every standard method node of A&C its dispatcher (the previous callbacks are kept for unbind)."""
        handlers: dict[str, Callable[..., Any]] = {
            name: self._dispatcher(spec) for name, spec in _STATE_METHODS.items()
        }
        handlers.update(refresh=self._refresh, refresh2=self._refresh2)
        for name, ids in METHODS.items():
            for method_id in ids:
                nodeid = ns0(method_id)
                node = self._aspace.get(nodeid)
                if node is None:
                    log.debug("standard method %s (%s) not in this address space", name, nodeid)
                    continue
                self._saved_calls[nodeid] = node.call
                node.call = handlers[name]

    def _path(self, object_id: ua.NodeId, *, shelving: bool = False) -> str | None:
        if object_id.NamespaceIndex != self._ns or not isinstance(object_id.Identifier, str):
            return None
        path = str(object_id.Identifier)
        if shelving and path.endswith("/ShelvingState"):
            path = path[: -len("/ShelvingState")]
        return path if self._engine.find(path) is not None else None

    def _check(self, permission: str) -> tuple[str | None, ua.CallMethodResult | None]:
        user = user_name(CURRENT_USER.get())
        if self._authorize is not None:
            try:
                self._authorize(user, permission)
            except CommandError as exc:
                log.info("%s refused: %s", permission, exc)
                return user, status_result(int(exc.status))
        return user, None

    async def _run_method(
        self,
        object_id: ua.NodeId,
        args: Sequence[ua.Variant],
        specs: Sequence[str],
        permission: str,
        action: Callable[..., Any],
        *,
        shelving: bool = False,
    ) -> ua.CallMethodResult:
        """Check the condition, the arguments and the user's right, then run `action(path, *values, user)`."""
        path = self._path(object_id, shelving=shelving)
        if path is None:
            return status_result(_SC.BadNodeIdUnknown)
        values = _arguments(specs, args)
        if isinstance(values, ua.CallMethodResult):
            return values
        user, refused = self._check(permission)
        if refused is not None:
            return refused
        try:
            action(path, *values, user)
        except AlarmError as exc:
            log.info("%s on %s refused: %s", getattr(action, "__name__", "method"), path, exc)
            return status_result(int(exc.status))
        return status_result(Quality.GOOD)

    def _dispatcher(self, spec: _StateMethod) -> Callable[..., Any]:
        """The callback of one state method: check, then `spec.run(engine, path, *values, user)`."""
        engine = self._engine

        async def dispatch(object_id: ua.NodeId, *args: ua.Variant) -> ua.CallMethodResult:
            return await self._run_method(
                object_id,
                args,
                spec.args,
                spec.permission,
                lambda path, *rest: spec.run(engine, path, *rest),
                shelving=spec.shelving,
            )

        return dispatch

    def unbind(self) -> None:
        """Give the method nodes their previous callbacks back."""
        for nodeid, call in self._saved_calls.items():
            node = self._aspace.get(nodeid)
            if node is not None:
                node.call = call
        self._saved_calls.clear()

    # -- ConditionRefresh ------------------------------------------------------------------------------------

    async def _refresh(self, object_id: ua.NodeId, *args: ua.Variant) -> ua.CallMethodResult:
        values = _arguments(("UInt32",), args)
        if isinstance(values, ua.CallMethodResult):
            return values
        return await self._refresh_to(values[0], None)

    async def _refresh2(self, object_id: ua.NodeId, *args: ua.Variant) -> ua.CallMethodResult:
        values = _arguments(("UInt32", "UInt32"), args)
        if isinstance(values, ua.CallMethodResult):
            return values
        return await self._refresh_to(values[0], values[1])


def _arguments(specs: Sequence[str], args: Sequence[ua.Variant]) -> list[Any] | ua.CallMethodResult:
    """The Python values of a standard method's arguments, or the CallMethodResult refusing them."""
    if len(args) < len(specs):
        return status_result(_SC.BadArgumentsMissing)
    if len(args) > len(specs):
        return status_result(_SC.BadTooManyArguments)
    values: list[Any] = []
    results: list[int] = []
    for spec, arg in zip(specs, args, strict=True):
        value = arg.Value if isinstance(arg, ua.Variant) else None
        vtype = arg.VariantType if isinstance(arg, ua.Variant) else None
        converted: Any = _MISMATCH
        if spec == "ByteString" and vtype == ua.VariantType.ByteString and isinstance(value, bytes):
            converted = value
        elif spec == "LocalizedText":
            if vtype == ua.VariantType.LocalizedText and isinstance(value, ua.LocalizedText):
                converted = value.Text or ""
            elif vtype in (ua.VariantType.String, ua.VariantType.Null) and (value is None or isinstance(value, str)):
                converted = value or ""
        elif spec == "Duration" and vtype in _NUMBERS and not isinstance(value, bool):
            converted = float(value)
        elif spec == "UInt32" and vtype in _INTEGERS and not isinstance(value, bool):
            converted = int(value)
        values.append(None if converted is _MISMATCH else converted)
        results.append(_SC.BadTypeMismatch if converted is _MISMATCH else _SC.Good)
    if any(results):
        return status_result(_SC.BadInvalidArgument, results)
    return values


_MISMATCH = object()
_INTEGERS = frozenset(
    {
        ua.VariantType.Byte,
        ua.VariantType.SByte,
        ua.VariantType.UInt16,
        ua.VariantType.Int16,
        ua.VariantType.UInt32,
        ua.VariantType.Int32,
        ua.VariantType.UInt64,
        ua.VariantType.Int64,
    }
)
_NUMBERS = _INTEGERS | {ua.VariantType.Double, ua.VariantType.Float}


__all__ = ["ACKNOWLEDGE_PERMISSION", "METHODS", "SHELVE_PERMISSION", "Authorize", "ConditionMethods"]
