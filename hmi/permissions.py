"""What the logged-in user may do, as the server tells an ordinary OPC UA client, so the console disables the rest.

The server is asked, never guessed from the user name:

1. `UserExecutable` of every device method (the methods are shared by all devices of a kind: the console browses
   one device of each kind) and of the Incidents methods, and `UserAccessLevel` of the writable variables: the
   standard per-user answers of OPC UA Part 3. One browse per kind and one batched read at login.
2. A command the server answers `BadUserAccessDenied` is disabled for the rest of the session (the server's role
   check is the final word; a server that answers UserExecutable true for everyone is corrected at first use).

The user's role names are shown when the server publishes them; this server does not (yet): `roles` is None.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable

from asyncua import ua
from PyQt6.QtCore import QObject, pyqtSignal

from hmi.client import ConsoleClient, ConsoleError
from hmi.model import CityModel
from scada.catalog import VARIABLES, Kind
from scada.model import Quality

log = logging.getLogger(__name__)

INCIDENTS = "incident"
INCIDENTS_PATH = "Incidents"


class Permissions(QObject):
    """Per (target, method) and (target, variable): may the user do it."""

    changed = pyqtSignal()

    def __init__(self, user: str | None, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.user = user
        self.roles: tuple[str, ...] | None = None
        self.executable: dict[tuple[str, str], bool] = {}
        self.writable: dict[tuple[str, str], bool] = {}
        self.denied: set[tuple[str, str]] = set()
        self.discovered = False

    @staticmethod
    def _target(kind: Kind | str) -> str:
        return kind.value if isinstance(kind, Kind) else str(kind)

    def may_call(self, kind: Kind | str, method: str) -> bool:
        """True unless the server said the user may not call this method of that kind (or of the incidents)."""
        key = (self._target(kind), method)
        return key not in self.denied and self.executable.get(key, True)

    def may_write(self, kind: Kind | str, variable: str) -> bool:
        """True unless the server said the user may not write this variable."""
        key = (self._target(kind), variable)
        return key not in self.denied and self.writable.get(key, True)

    def learn(self, kind: Kind | str, method: str, status: int) -> bool:
        """Take a command's answer into account; True when it newly disabled the command (BadUserAccessDenied)."""
        if int(status) != Quality.BAD_USER_ACCESS_DENIED:
            return False
        key = (self._target(kind), method)
        if key in self.denied:
            return False
        self.denied.add(key)
        log.info("the server refused %s.%s to %s: disabled for this session", key[0], method, self.user)
        self.changed.emit()
        return True

    def allowed_count(self) -> tuple[int, int]:
        """(allowed, known) commands."""
        keys = set(self.executable) | self.denied
        allowed = sum(1 for key in keys if self.may_call(*key))
        return allowed, len(keys)

    def summary(self) -> str:
        """A short line for the status bar: who, roles if known, how many commands are allowed."""
        who = self.user or "anonymous"
        roles = ", ".join(self.roles) if self.roles else "roles not published by the server"
        allowed, known = self.allowed_count()
        commands = f"{allowed} of {known} commands allowed" if known else "commands not checked yet"
        return f"{who} ({roles}; {commands})"

    async def discover(self, client: ConsoleClient, model: CityModel) -> None:
        """Ask the server what this user may execute and write (one browse per kind, one batched read)."""
        method_nodes: list[tuple[tuple[str, str], ua.NodeId]] = []
        write_paths: list[tuple[tuple[str, str], str]] = []
        objects: list[tuple[str, str]] = [(INCIDENTS, INCIDENTS_PATH)]
        for kind in Kind:
            layer = model.layers.get(kind)
            if layer is None or not len(layer):
                continue
            objects.append((kind.value, layer.paths[0]))
            for spec in VARIABLES[kind]:
                if spec.writable:
                    write_paths.append(((kind.value, spec.name), f"{layer.paths[0]}/{spec.name}"))
        browsed = await asyncio.gather(
            *(client.browse_methods(path) for _target, path in objects), return_exceptions=True
        )
        for (target, path), methods in zip(objects, browsed, strict=True):
            if isinstance(methods, BaseException):
                if not isinstance(methods, ConsoleError | ua.UaError | OSError | TimeoutError):
                    raise methods
                log.info("methods of %s not browsed: %s", path, methods)
                continue
            method_nodes.extend(((target, name), nodeid) for name, nodeid in methods.items())
        if method_nodes:
            answers = await client.read([nodeid for _, nodeid in method_nodes], ua.AttributeIds.UserExecutable)
            for (key, _nodeid), dv in zip(method_nodes, answers, strict=True):
                self.executable[key] = _flag(dv, lambda value: bool(value))
        if write_paths:
            answers = await client.read([path for _, path in write_paths], ua.AttributeIds.UserAccessLevel)
            for (key, _path), dv in zip(write_paths, answers, strict=True):
                self.writable[key] = _flag(dv, lambda value: bool(int(value) & ua.AccessLevel.CurrentWrite.mask))
        self.discovered = True
        self.changed.emit()

    def methods_of(self, kind: Kind | str) -> Iterable[str]:
        """The methods known for a kind."""
        target = self._target(kind)
        return [method for (t, method) in self.executable if t == target]


def _flag(dv: ua.DataValue, convert: object) -> bool:
    """A Boolean answer; a Bad status or a missing value counts as allowed (the server's check still applies)."""
    if dv.StatusCode is not None and not dv.StatusCode.is_good():
        return True
    value = dv.Value.Value if dv.Value is not None else None
    if value is None:
        return True
    return bool(convert(value))  # type: ignore[operator]
