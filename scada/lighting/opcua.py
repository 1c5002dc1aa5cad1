"""Maintenance overrides over OPC UA: `Override` and `CancelOverride` on every lighting cabinet.

    Override(Mode: Int32, Minutes: Double, Reason: String) -> Until: DateTime
    CancelOverride() -> Mode: Int32

Added to LightingCabinetType (shared by every cabinet, referenced from each instance) before the server listens.
They are the lighting service's overrides (scada.lighting.overrides): time-limited (the site's
`lighting.overrides.max_minutes`), audited as the maintainer's commands, and ended by the server when the time is
up, whichever client asked and whether or not it is still connected. A user needs the `call` permission of
`cabinet.override` (by default the roles of `cabinet.*`). Answers: BadOutOfRange (mode, minutes),
BadInvalidArgument (an empty reason), BadInvalidState (no override to cancel, automation off),
BadUserAccessDenied, or the cabinet's own refusal of the mode command.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from asyncua import ua

from scada.catalog import OBJECT_TYPES, ArgSpec, Kind
from scada.model import CommandError, Quality
from scada.opcua.builder import device_at
from scada.opcua.methods import CURRENT_USER, check_arguments, status_result, user_name
from scada.opcua.nodes import VariableNode, string_nodeid
from scada.opcua.types import TypeBuilder

log = logging.getLogger(__name__)

ACTION = "override"
OVERRIDE_INPUTS = (
    ArgSpec("Mode", "Int32", 1, 2, "1 forced on, 2 forced off"),
    ArgSpec("Minutes", "Double", 0, 1440, "how long; at most the site's lighting.overrides.max_minutes"),
    ArgSpec("Reason", "String", 1, 200, "why (kept in the audit trail)"),
)
OVERRIDE_OUTPUTS = (ArgSpec("Until", "DateTime", description="when the cabinet returns to automatic"),)
CANCEL_OUTPUTS = (ArgSpec("Mode", "Int32", description="the mode the cabinet was forced to"),)
METHOD_NAMES = ("Override", "CancelOverride")

MayCall = Callable[[str | None, str, str], bool]


class OverrideMethods:
    """A server extension (CityServer `extensions`): the two methods, bound to a LightingService."""

    def __init__(self, site: Any, lighting: Any, may_call: MayCall | None = None) -> None:
        self._site = site
        self._lighting = lighting
        self._may_call = may_call
        self._ns = 0

    async def install(self, city: Any, server: Any) -> None:
        """Add the methods to the cabinet type and reference them from every cabinet."""
        builder = city.builder
        self._ns = builder.ns
        type_name = OBJECT_TYPES[Kind.CABINET]
        info = builder.types[type_name]
        types = TypeBuilder(builder.aspace, builder.ns)
        added = []
        for name, inputs, outputs, description, call in (
            ("Override", OVERRIDE_INPUTS, OVERRIDE_OUTPUTS, "force the cabinet on or off for a time", self._override),
            ("CancelOverride", (), CANCEL_OUTPUTS, "end the override now: back to automatic", self._cancel),
        ):
            method = types.method(info.node, ("Types", type_name, name), name, inputs, outputs, description)
            method.node.call = call
            added.append(method.instance_ref)
        for cabinet in self._site.cabinets.values():
            node = builder.aspace.get(string_nodeid(cabinet.path, builder.ns))
            if node is not None and not isinstance(node, VariableNode):
                node.references.extend(added)

    async def uninstall(self) -> None:
        """Nothing to undo: the methods go away with the address space."""

    def _who(self) -> tuple[str | None, ua.CallMethodResult | None]:
        user = CURRENT_USER.get()
        name = user_name(user)
        if self._may_call is not None:
            account = getattr(user, "account", None)
            if not self._may_call(account, Kind.CABINET.value, ACTION):
                log.info("override refused to %s", name or "an anonymous user")
                return name, status_result(Quality.BAD_USER_ACCESS_DENIED)
        return name, None

    def _cabinet(self, object_id: ua.NodeId) -> str | None:
        device = device_at(self._site, self._ns, object_id)
        return device.id if device is not None and device.kind is Kind.CABINET else None

    async def _override(self, object_id: ua.NodeId, *args: ua.Variant) -> ua.CallMethodResult:
        cabinet_id = self._cabinet(object_id)
        if cabinet_id is None:
            return status_result(ua.StatusCodes.BadMethodInvalid)
        refused = check_arguments(OVERRIDE_INPUTS, args)
        if refused is not None:
            return refused
        user, denied = self._who()
        if denied is not None:
            return denied
        mode, minutes, reason = (arg.Value for arg in args)
        try:
            override = await self._lighting.override(
                cabinet_id, int(mode), float(minutes), user or "anonymous (insecure server)", reason
            )
        except CommandError as exc:
            log.info("override of %s refused: %s", cabinet_id, exc)
            return status_result(int(exc.status))
        except Exception:
            log.exception("override of %s failed", cabinet_id)
            return status_result(Quality.BAD_INTERNAL)
        return status_result(Quality.GOOD, outputs=[ua.Variant(override.expires, ua.VariantType.DateTime)])

    async def _cancel(self, object_id: ua.NodeId, *args: ua.Variant) -> ua.CallMethodResult:
        cabinet_id = self._cabinet(object_id)
        if cabinet_id is None:
            return status_result(ua.StatusCodes.BadMethodInvalid)
        if args:
            return status_result(ua.StatusCodes.BadTooManyArguments)
        user, denied = self._who()
        if denied is not None:
            return denied
        try:
            override = await self._lighting.cancel_override(cabinet_id, user or "anonymous (insecure server)")
        except CommandError as exc:
            log.info("cancelling the override of %s refused: %s", cabinet_id, exc)
            return status_result(int(exc.status))
        except Exception:
            log.exception("cancelling the override of %s failed", cabinet_id)
            return status_result(Quality.BAD_INTERNAL)
        return status_result(Quality.GOOD, outputs=[ua.Variant(int(override.mode), ua.VariantType.Int32)])
