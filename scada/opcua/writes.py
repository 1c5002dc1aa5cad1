"""Client writes to the city's nodes: writable device variables become commands, everything else is refused.

asyncua lands every client write in `AttributeService.write(params, user)`; the interceptor replaces it on the
server's AttributeService instance. Writes to nodes of other namespaces go to asyncua unchanged. In the city's
namespace:

- the Value of a writable device variable (VarSpec.action) becomes a WriteRequest for that action, with the
  value as its single argument; the write waits for the command service and answers its status;
- the Value of any other variable answers BadNotWritable (stock asyncua answers BadUserAccessDenied);
- any other attribute answers BadNotWritable (WriteMask is 0: the attributes are shared between nodes and
  must never change);
- a NodeId that does not exist answers BadNodeIdUnknown.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from asyncua import ua
from asyncua.crypto.permission_rules import User, UserRole
from asyncua.server.address_space import AddressSpace, AttributeService

from scada.catalog import VarSpec, action_spec
from scada.model import CommandError, Quality, WriteRequest
from scada.opcua.builder import device_at
from scada.opcua.datatypes import accepts
from scada.opcua.methods import CommandExecutor, user_name
from scada.opcua.nodes import VariableNode, status_code, string_nodeid
from scada.site.model import Site

log = logging.getLogger(__name__)

WriteService = Callable[..., Awaitable[list[ua.StatusCode]]]
_ADMIN = User(role=UserRole.Admin)


def _status(code: int) -> ua.StatusCode:
    return status_code(code)


class WriteInterceptor:
    """Routes client writes of the city's namespace to the command service."""

    def __init__(self, aspace: AddressSpace, ns: int, site: Site, commands: CommandExecutor) -> None:
        self._aspace = aspace
        self._ns = ns
        self._site = site
        self._commands = commands
        self._original: WriteService | None = None
        self._service: AttributeService | None = None

    def install(self, service: AttributeService) -> None:
        """Take over `service.write` (idempotent)."""
        if self._service is not None:
            return
        self._original = service.write
        self._service = service
        service.write = self.write  # type: ignore[method-assign]

    def uninstall(self) -> None:
        """Give `write` back to asyncua (idempotent)."""
        if self._service is not None:
            self._service.__dict__.pop("write", None)
        self._service = None
        self._original = None

    async def write(self, params: ua.WriteParameters, user: User = _ADMIN) -> list[ua.StatusCode]:
        """The Write service: our nodes here (commands run concurrently), the others through asyncua."""
        results: list[Any] = [None] * len(params.NodesToWrite)
        delegated: list[tuple[int, ua.WriteValue]] = []
        commands: list[tuple[int, Awaitable[ua.StatusCode]]] = []
        for index, item in enumerate(params.NodesToWrite):
            if item.NodeId.NamespaceIndex != self._ns:
                delegated.append((index, item))
                continue
            outcome = self._decide(item, user)
            if isinstance(outcome, ua.StatusCode):
                results[index] = outcome
            else:
                commands.append((index, outcome))
        if delegated:
            assert self._original is not None, "the interceptor is not installed"
            answers = await self._original(ua.WriteParameters(NodesToWrite=[item for _, item in delegated]), user=user)
            for (index, _item), answer in zip(delegated, answers, strict=True):
                results[index] = answer
        if commands:
            answers = await asyncio.gather(*(command for _, command in commands))
            for (index, _command), answer in zip(commands, answers, strict=True):
                results[index] = answer
        return results

    def _decide(self, item: ua.WriteValue, user: User) -> ua.StatusCode | Awaitable[ua.StatusCode]:
        """An immediate answer, or the command that will give it."""
        node = self._aspace.get(item.NodeId)
        if node is None:
            return _status(ua.StatusCodes.BadNodeIdUnknown)
        if item.AttributeId != ua.AttributeIds.Value:
            return _status(ua.StatusCodes.BadNotWritable)
        spec: VarSpec | None = node.shape.meta.get("spec") if isinstance(node, VariableNode) else None
        if spec is None or spec.action is None:
            return _status(ua.StatusCodes.BadNotWritable)
        device = device_at(self._site, self._ns, string_nodeid(item.NodeId.Identifier.rsplit("/", 1)[0], self._ns))
        action = action_spec(device.kind, spec.action) if device is not None else None
        if device is None or action is None or len(action.args) != 1:
            return _status(ua.StatusCodes.BadNotWritable)
        if item.IndexRange:
            return _status(ua.StatusCodes.BadWriteNotSupported)
        dv = item.Value
        if dv is None or dv.Value is None:
            return _status(ua.StatusCodes.BadTypeMismatch)
        if dv.StatusCode is not None and not dv.StatusCode.is_good():
            return _status(ua.StatusCodes.BadWriteNotSupported)  # Part 4: writing a status code is not supported
        if not accepts(spec.dtype, dv.Value):
            return _status(ua.StatusCodes.BadTypeMismatch)
        request = WriteRequest(
            device_id=device.id,
            action=action.name,
            args={action.args[0].name: dv.Value.Value},
            user=user_name(user),
            origin="opcua-write",
        )
        return self._execute(request)

    async def _execute(self, request: WriteRequest) -> ua.StatusCode:
        try:
            result = await self._commands.execute(request)
        except CommandError as exc:
            log.info("write %s on %s refused: %s (0x%08X)", request.action, request.device_id, exc, exc.status)
            return _status(int(exc.status))
        except Exception:
            log.exception("write %s on %s failed", request.action, request.device_id)
            return _status(Quality.BAD_INTERNAL)
        return _status(int(result.status))
