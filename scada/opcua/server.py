"""CityServer: the OPC UA server of the control post (asyncua), its lifecycle and its endpoint.

start() initialises asyncua's standard address space, registers the city namespace, builds the city's address
space from the site, binds methods and writes to the command service and starts listening; stop() undoes it all
in reverse and leaves no task behind. Both are idempotent.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from typing import Any, Protocol

from asyncua import Server, ua
from asyncua.server.user_managers import UserManager

from scada.catalog import ENDPOINT_PATH, NAMESPACE_URI
from scada.opcua.builder import BuildStats, SpaceBuilder, build_address_space
from scada.opcua.fastsub import install_fast_subscriptions
from scada.opcua.gcpolicy import relax_full_collections
from scada.opcua.incidents import IncidentHandler, IncidentRegistry, IncidentsSpace
from scada.opcua.methods import CommandExecutor, MethodDispatcher, install_session_factory
from scada.opcua.values import AddressSpaceWriter
from scada.opcua.writes import WriteInterceptor
from scada.site.model import Site

log = logging.getLogger(__name__)

APPLICATION_URI = "urn:cityscada:server"
PRODUCT_URI = "urn:cityscada"
SERVER_NAME = "cityscada"


def software_version() -> str:
    """The installed cityscada version (from the package metadata)."""
    try:
        return version("cityscada")
    except PackageNotFoundError:
        return "0+unknown"


class SecurityHooks(Protocol):
    """What the security layer does to the server (scada.opcua.security.ServerSecurity)."""

    def make_server(self, user_manager: UserManager | None) -> Server:
        """The asyncua Server to use (with the secure transport)."""
        ...

    async def configure(self, server: Server) -> None:
        """Certificate, endpoints, identity tokens and rules, after the server's own configuration."""
        ...

    async def install(self, city: CityServer, server: Server) -> None:
        """Additions to the built address space, before the server listens."""
        ...

    async def uninstall(self) -> None:
        """Undo install() when the server stops."""
        ...


class ServerExtension(Protocol):
    """A layer installed into the built address space before the server listens (e.g. historical access)."""

    async def install(self, city: CityServer, server: Server) -> None:
        """Add to the server; called after the city's address space and sessions are in place."""
        ...

    async def uninstall(self) -> None:
        """Undo install() when the server stops."""
        ...


class CityServer:
    """The city's OPC UA server: information model, value path, writes and method calls."""

    def __init__(
        self,
        site: Site,
        command_service: CommandExecutor,
        host: str = "127.0.0.1",
        port: int = 4840,
        *,
        incident_handler: IncidentHandler | None = None,
        user_manager: UserManager | None = None,
        security_policies: list[ua.SecurityPolicyType] | None = None,
        security: SecurityHooks | None = None,
        extensions: Sequence[ServerExtension] = (),
        fast_subscriptions: bool = True,
    ) -> None:
        self._site = site
        self._commands = command_service
        self._host = host
        self._port = port
        self._incident_handler = incident_handler
        self._user_manager = user_manager
        self._security_policies = security_policies or [ua.SecurityPolicyType.NoSecurity]
        self._security = security
        self._extensions = list(extensions)
        self._fast_subscriptions = fast_subscriptions  # scada.opcua.fastsub (False: asyncua's own data-change path)
        self._uninstall_fastsub: Callable[[], None] | None = None
        self._restore_gc: Callable[[], None] | None = None
        self._installed: list[ServerExtension] = []
        self._server: Server | None = None
        self._builder: SpaceBuilder | None = None
        self._writer: AddressSpaceWriter | None = None
        self._incidents: IncidentsSpace | None = None
        self._interceptor: WriteInterceptor | None = None
        self._restore_sessions: Callable[[], None] | None = None
        self._lock = asyncio.Lock()
        self._bound_port: int | None = None

    # -- what other parts use ------------------------------------------------------------------------------

    @property
    def endpoint_url(self) -> str:
        """opc.tcp://<host>:<port>/cityscada (the bound port once started, if 0 was asked)."""
        port = self._bound_port if self._bound_port is not None else self._port
        return f"opc.tcp://{self._host}:{port}{ENDPOINT_PATH}"

    @property
    def writer(self) -> AddressSpaceWriter:
        """The value path into the address space (available once started)."""
        if self._writer is None:
            raise RuntimeError("the OPC UA server is not started")
        return self._writer

    @property
    def builder(self) -> SpaceBuilder:
        """The address-space builder (for extensions adding nodes before the server listens)."""
        if self._builder is None:
            raise RuntimeError("the OPC UA server is not started")
        return self._builder

    @property
    def namespace_index(self) -> int:
        """The index of urn:cityscada:city in this server's NamespaceArray (available once started)."""
        if self._builder is None:
            raise RuntimeError("the OPC UA server is not started")
        return self._builder.ns

    @property
    def incidents(self) -> IncidentsSpace:
        """The Incidents folder (show/withdraw incidents, the handler in use)."""
        if self._incidents is None:
            raise RuntimeError("the OPC UA server is not started")
        return self._incidents

    @property
    def build_stats(self) -> BuildStats:
        """Node count and build time of the city's address space."""
        if self._builder is None:
            raise RuntimeError("the OPC UA server is not started")
        return self._builder.stats

    @property
    def asyncua_server(self) -> Server:
        """The underlying asyncua Server (for later layers: security, history, alarms)."""
        if self._server is None:
            raise RuntimeError("the OPC UA server is not started")
        return self._server

    @property
    def running(self) -> bool:
        """True between a successful start() and stop()."""
        return self._server is not None

    # -- lifecycle -----------------------------------------------------------------------------------------

    async def start(self) -> None:
        """Build the address space and listen (idempotent); on failure, undo what was done and raise."""
        async with self._lock:
            if self._server is not None:
                return
            security = self._security
            server = security.make_server(self._user_manager) if security else Server(user_manager=self._user_manager)
            started = False
            try:
                await self._configure(server)
                if self._fast_subscriptions:
                    self._uninstall_fastsub = install_fast_subscriptions(server.iserver)
                    self._restore_gc = relax_full_collections()  # publishes on time (scada.opcua.gcpolicy)
                if security is not None:
                    await security.configure(server)
                ns = await server.register_namespace(NAMESPACE_URI)
                aspace = server.iserver.aspace
                builder = build_address_space(aspace, ns, self._site)
                log.info("address space: %d nodes in %.2f s", builder.stats.nodes, builder.stats.seconds)
                writer = AddressSpaceWriter(builder.tags)
                MethodDispatcher(self._site, ns, self._commands).bind(builder.types)
                incidents = IncidentsSpace(
                    builder, writer, self._incident_handler or IncidentRegistry(self._site.timezone)
                )
                incidents.install()
                interceptor = WriteInterceptor(aspace, ns, self._site, self._commands)
                interceptor.install(server.iserver.attribute_service)
                self._interceptor = interceptor
                self._restore_sessions = install_session_factory(server.iserver)
                if security is not None:
                    self._builder = builder  # namespace_index for the hooks
                    await security.install(self, server)
                self._builder = builder
                for extension in self._extensions:
                    await extension.install(self, server)
                    self._installed.append(extension)
                started = True
                await server.start()
                if server.bserver is not None:
                    self._bound_port = server.bserver.port
            except BaseException:
                await self._teardown(server, listening=started)
                self._builder = None
                raise
            self._server, self._builder, self._writer, self._incidents = server, builder, writer, incidents
            log.info("OPC UA server listening on %s", self.endpoint_url)

    async def stop(self) -> None:
        """Close every session, stop listening, stop asyncua's tasks (idempotent)."""
        async with self._lock:
            server, self._server = self._server, None
            if server is None:
                return
            try:
                await self._teardown(server, listening=True)
            finally:
                self._builder = self._writer = self._incidents = None
                self._bound_port = None
            log.info("OPC UA server stopped")

    async def _configure(self, server: Server) -> None:
        server.name = SERVER_NAME
        server.product_uri = PRODUCT_URI
        server.manufacturer_name = SERVER_NAME
        server.set_endpoint(f"opc.tcp://{self._host}:{self._port}{ENDPOINT_PATH}")
        server.set_server_name(SERVER_NAME)
        server.set_security_policy(self._security_policies)
        tokens: list[type] = [ua.AnonymousIdentityToken]
        if self._user_manager is not None:
            tokens.append(ua.UserNameIdentityToken)
        server.set_identity_tokens(tokens)
        server.allow_remote_admin(False)
        await server.init()
        await server.set_application_uri(APPLICATION_URI)
        await server.set_build_info(
            PRODUCT_URI, SERVER_NAME, SERVER_NAME, software_version(), software_version(), datetime.now(UTC)
        )

    async def _teardown(self, server: Server, *, listening: bool) -> None:
        """Undo start(): writer, sessions, listener, asyncua's internal tasks, interceptors."""
        errors: list[BaseException] = []
        if self._writer is not None:
            await _collect(errors, self._writer.close())
        iserver = server.iserver
        if listening:
            # asyncua's clock task sleeps 1 s between ticks and stop() waits for it: cancel it instead
            time_task = iserver.time_task
            if time_task is not None and not time_task.done():
                time_task.cancel()
                await asyncio.wait({time_task})
            iserver.time_task = None
            # sessions that keep subscriptions alive after their connection is gone are not closed by asyncua
            sessions = list(getattr(iserver, "_external_sessions", {}).values())
            for session in sessions:
                await _collect(errors, session.close_session(True))
            await _collect(errors, server.stop())
        else:
            await _collect(errors, iserver.stop())
        if self._interceptor is not None:
            self._interceptor.uninstall()
            self._interceptor = None
        if self._restore_sessions is not None:
            self._restore_sessions()
            self._restore_sessions = None
        if self._uninstall_fastsub is not None:
            self._uninstall_fastsub()
            self._uninstall_fastsub = None
        if self._restore_gc is not None:
            self._restore_gc()
            self._restore_gc = None
        if self._security is not None:
            await _collect(errors, self._security.uninstall())
        while self._installed:
            await _collect(errors, self._installed.pop().uninstall())
        if errors:
            log.error("errors while stopping the OPC UA server: %s", "; ".join(map(repr, errors)))


async def _collect(errors: list[BaseException], awaitable: Any) -> None:
    try:
        await awaitable
    except Exception as exc:  # collected and logged, not swallowed silently
        errors.append(exc)
