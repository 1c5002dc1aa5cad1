"""Method calls on device objects -> the command service, and who the calling user is.

Every instance of a type shares the type's method node (HasComponent from the instance to
Types/<TypeName>/<Method>), so one callback per method serves every device: it receives the ObjectId, finds the
device, checks the arguments' OPC UA types, and hands a WriteRequest to the command service, which checks ranges
and roles, calls the driver and answers with the device's result.

The user: asyncua passes the session's `User` to `AttributeService.write` but not to method callbacks. The
server's sessions are `CitySession`s whose `call` sets `CURRENT_USER` (a ContextVar) for the duration of the
Call service; the callback runs in the same task, so it reads the caller's user there.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from contextvars import ContextVar
from typing import Any, Protocol

from asyncua import ua
from asyncua.crypto.permission_rules import User, UserRole
from asyncua.server.internal_server import InternalServer
from asyncua.server.internal_session import InternalSession

from scada.catalog import ArgSpec, Kind
from scada.model import CommandError, Quality, WriteRequest, WriteResult
from scada.opcua.builder import device_at
from scada.opcua.datatypes import accepts
from scada.opcua.nodes import status_code
from scada.opcua.types import MethodInfo, TypeInfo
from scada.site.model import Site

log = logging.getLogger(__name__)

CURRENT_USER: ContextVar[User | None] = ContextVar("cityscada_opcua_user", default=None)
"""The asyncua User of the session whose Call service is running (None outside a client call)."""

_ANONYMOUS = User(role=UserRole.Anonymous)
MethodCallback = Callable[..., Awaitable[ua.CallMethodResult]]


class CommandExecutor(Protocol):
    """What the OPC UA layer needs of the command service (scada.commands.CommandService)."""

    async def execute(self, request: WriteRequest) -> WriteResult:
        """Carry out a command; raises a CommandError subclass (its .status is the OPC UA answer)."""
        ...


class CitySession(InternalSession):
    """An asyncua session that makes its user visible to method callbacks (CURRENT_USER)."""

    async def history_read(self, params: ua.HistoryReadParameters) -> list[ua.HistoryReadResult]:
        """HistoryRead; a history manager that keeps state per session (continuation points) gets this session."""
        manager = self.iserver.history_manager
        read = getattr(manager, "read_history_for_session", None)
        if read is not None:
            return list(await read(params, self))
        return list(await super().history_read(params))

    async def close_session(self, delete_subs: bool = True) -> None:
        """Close, letting a per-session history manager free what it holds for this session."""
        release = getattr(self.iserver.history_manager, "release_session", None)
        if release is not None:
            release(self)
        await super().close_session(delete_subs)

    async def call(self, params: list[ua.CallMethodRequest]) -> list[ua.CallMethodResult]:
        """The Call service, run with CURRENT_USER set to this session's user."""
        token = CURRENT_USER.set(self.user)
        try:
            return await super().call(params)
        finally:
            CURRENT_USER.reset(token)


def install_session_factory(iserver: InternalServer) -> Callable[[], None]:
    """Make the server create CitySessions; returns the function that restores asyncua's factory."""

    def create_session(name: str, user: User = _ANONYMOUS, external: bool = False) -> CitySession:
        return CitySession(iserver, iserver.aspace, iserver.subscription_service, name, user=user, external=external)

    iserver.create_session = create_session  # type: ignore[method-assign]

    def restore() -> None:
        iserver.__dict__.pop("create_session", None)

    return restore


def user_name(user: User | None) -> str | None:
    """The user name of an asyncua User (None for anonymous sessions and the server itself)."""
    if user is None:
        return None
    return user.name or None


def status_result(status: int, inputs: Sequence[int] = (), outputs: Sequence[ua.Variant] = ()) -> ua.CallMethodResult:
    """A CallMethodResult with a status, per-argument results and output arguments."""
    return ua.CallMethodResult(
        StatusCode=status_code(status),
        InputArgumentResults=[status_code(code) for code in inputs],
        OutputArguments=list(outputs),
    )


def check_arguments(specs: Sequence[ArgSpec], args: Sequence[ua.Variant]) -> ua.CallMethodResult | None:
    """None when the arguments match the method's count and types; otherwise the CallMethodResult to answer."""
    if len(args) < len(specs):
        return status_result(ua.StatusCodes.BadArgumentsMissing)
    if len(args) > len(specs):
        return status_result(ua.StatusCodes.BadTooManyArguments)
    results = [
        ua.StatusCodes.Good
        if isinstance(arg, ua.Variant) and accepts(spec.dtype, arg)
        else ua.StatusCodes.BadTypeMismatch
        for spec, arg in zip(specs, args, strict=True)
    ]
    if any(results):
        return status_result(ua.StatusCodes.BadInvalidArgument, results)
    return None


def range_diagnostics(specs: Sequence[ArgSpec], values: Sequence[Any]) -> list[int]:
    """Per-argument results for a refused call: BadOutOfRange where a number lies outside its catalog range."""
    results: list[int] = []
    for spec, value in zip(specs, values, strict=True):
        bad = (
            spec.dtype not in ("String", "Boolean")
            and isinstance(value, int | float)
            and ((spec.low is not None and value < spec.low) or (spec.high is not None and value > spec.high))
        )
        results.append(Quality.BAD_OUT_OF_RANGE if bad else Quality.GOOD)
    return results


class MethodDispatcher:
    """Binds the device types' shared method nodes to the command service."""

    def __init__(self, site: Site, ns: int, commands: CommandExecutor) -> None:
        self._site = site
        self._ns = ns
        self._commands = commands

    def bind(self, types: dict[str, TypeInfo]) -> None:
        """Give every device method node its callback."""
        for info in types.values():
            if info.kind is None:
                continue
            for method in info.methods.values():
                method.node.call = self._callback(info.kind, method)

    def _callback(self, kind: Kind, method: MethodInfo) -> MethodCallback:
        async def call(object_id: ua.NodeId, *args: ua.Variant) -> ua.CallMethodResult:
            return await self.call(kind, method, object_id, args)

        return call

    async def call(
        self, kind: Kind, method: MethodInfo, object_id: ua.NodeId, args: Sequence[ua.Variant]
    ) -> ua.CallMethodResult:
        """Run one method call: find the device, check the arguments, execute the command, answer its status."""
        device = device_at(self._site, self._ns, object_id)
        if device is None or device.kind is not kind or method.action is None:
            return status_result(ua.StatusCodes.BadMethodInvalid)
        refused = check_arguments(method.inputs, args)
        if refused is not None:
            return refused
        values = [arg.Value for arg in args]
        request = WriteRequest(
            device_id=device.id,
            action=method.action.name,
            args={spec.name: value for spec, value in zip(method.inputs, values, strict=True)},
            user=user_name(CURRENT_USER.get()),
            origin="opcua-method",
        )
        try:
            result = await self._commands.execute(request)
        except CommandError as exc:
            log.info("%s on %s refused: %s (0x%08X)", method.name, device.id, exc, exc.status)
            inputs = range_diagnostics(method.inputs, values) if exc.status == Quality.BAD_OUT_OF_RANGE else ()
            return status_result(int(exc.status), inputs)
        except Exception:
            log.exception("%s on %s failed", method.name, device.id)
            return status_result(Quality.BAD_INTERNAL)
        return status_result(int(result.status))
