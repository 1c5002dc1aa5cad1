"""The role check of the command service: CommandService.set_authorizer(Authorizer(policy)).

A method call needs the `call` permission of its target ("lamp.set_level" or "lamp.*"); a client write of a
writable variable needs `write_setpoints` and that `call` permission too. Requests of the server itself
(origins "automation" and "system" without a user) are allowed; everything else without a user is anonymous and
refused. Refusals raise AccessDeniedError (BadUserAccessDenied), which the command service audits.
"""

from __future__ import annotations

from collections.abc import Iterable

from scada.catalog import ActionSpec
from scada.model import AccessDeniedError, WriteRequest
from scada.security.policy import Policy
from scada.security.roles import Permission, call_key
from scada.site.model import Device

INTERNAL_ORIGINS = frozenset({"automation", "system"})
"""Origins of the server's own commands (schedules, automation): allowed when they carry no user."""

WRITE_ORIGINS = frozenset({"opcua-write"})
"""Origins of client writes of variables (they need write_setpoints on top of the call permission)."""


class Authorizer:
    """Callable (request, device, spec) -> None raising AccessDeniedError: the command service's role check."""

    def __init__(self, policy: Policy, internal_origins: Iterable[str] = INTERNAL_ORIGINS) -> None:
        self.policy = policy
        self.internal_origins = frozenset(internal_origins)

    def __call__(self, request: WriteRequest, device: Device, spec: ActionSpec) -> None:
        """Allow the request or raise AccessDeniedError saying who may not do what."""
        user = request.user
        if user is None and request.origin in self.internal_origins:
            return
        who = "an anonymous user" if user is None else f"user {user!r}"
        target = device.kind.value
        if request.origin in WRITE_ORIGINS and not self.policy.allows(user, Permission.WRITE_SETPOINTS):
            raise AccessDeniedError(f"{who} may not write setpoints ({spec.name} on {device.id})")
        if not self.policy.may_call(user, target, spec.name):
            raise AccessDeniedError(f"{who} may not call {call_key(target, spec.name)} on {device.id}")
