"""Helpers of the console tests: the control post (simulators and the real, secure control server)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PyQt6.QtWidgets import QApplication

from drivers.sim.runner import CitySimulator
from hmi.client import ClientOptions, ConsoleClient, Credentials
from hmi.console import Console
from hmi.security import ConsoleCertificate, ensure_certificate
from scada.app import ControlServer, ServerOptions
from scada.site.loader import load_site, rebind_endpoints
from scada.site.model import Site

ROOT = Path(__file__).resolve().parents[2]
SMALL = ROOT / "config" / "small"
DEMO_PASSWORDS = {name: f"{name}-demo-pass" for name in ("observer", "operator", "engineer", "supervisor")}
"""The demonstration accounts of config/small/users.yaml (their passwords are published there on purpose)."""

FAST = ClientOptions(
    request_timeout_s=3.0,
    watchdog_s=2.0,
    publishing_ms=100.0,
    keepalive_s=1.0,
    session_timeout_s=30.0,
    backoff_initial_s=0.2,
    backoff_max_s=1.0,
)


def qt_loop_factory() -> Any:
    """A qasync event loop on the (single) QApplication."""
    import qasync

    app = QApplication.instance() or QApplication(["hmi-tests"])
    app.setQuitOnLastWindowClosed(False)  # closing a console's window must not stop the loop under the test
    return qasync.QEventLoop(app)


def fast_site(poll_ms: int = 300) -> Site:
    """The small site with short poll periods."""
    site = load_site(SMALL)
    for device in site.field_devices():
        endpoint = device.endpoint
        fields = {name: getattr(endpoint, name) for name in endpoint.__dataclass_fields__}
        device.endpoint = type(endpoint)(**{**fields, "poll_ms": poll_ms})
    return site


class Stack:
    """Simulators, and the real control server (security on) that can be stopped and started again on its port.

    The server is scada.app's ControlServer as `cityscada serve` builds it: secure endpoints only, the site's users
    (config/small/users.yaml, demo passwords) and roles, LampStates. The console's own certificate is made in the
    test's folder and trusted in the server's PKI folder, as an administrator does with `cityscada pki trust`.
    """

    def __init__(
        self, port: int, folder: Path, site: Site | None = None, *, historian_url: str = "", automation: bool = False
    ) -> None:
        self.port = port
        self.automation = automation  # lighting automation (and the cabinets' Override methods) and parking guidance
        self.historian_url = historian_url  # "" (default): no historian; e.g. sqlite:///<tmp>/history.sqlite
        self.folder = folder
        self.site = site or fast_site()
        self.sim = CitySimulator(self.site, seed=7, bind="free")
        self.server: ControlServer | None = None
        self.certificate: ConsoleCertificate | None = None

    @property
    def url(self) -> str:
        """The server's endpoint."""
        return f"opc.tcp://127.0.0.1:{self.port}/cityscada"

    @property
    def security(self) -> str:
        """The console's security string: Basic256Sha256, SignAndEncrypt, its own trusted certificate."""
        assert self.certificate is not None
        return f"Basic256Sha256,SignAndEncrypt,{self.certificate.cert},{self.certificate.key}"

    async def start(self, *, trust_console: bool = True) -> None:
        """Start the simulators and the server."""
        await self.sim.start()
        rebind_endpoints(self.site, self.sim.endpoints)
        self.certificate = await ensure_certificate(self.folder / "console-pki")
        await self.start_server(trust_console=trust_console)

    async def start_server(self, *, trust_console: bool = True) -> None:
        """A new control server on the same port and data folder (its PKI and trust list persist)."""
        control = ControlServer(
            self.site,
            ServerOptions(
                host="127.0.0.1",
                port=self.port,
                historian_url=self.historian_url,
                data_dir=self.folder / "server",
                automation=self.automation,
                hostnames=["localhost"],
            ),
        )
        assert control.security is not None and self.certificate is not None
        if trust_console:
            control.security.pki.trust(self.certificate.cert)
        await control.start()
        self.server = control

    async def stop_server(self) -> None:
        """Stop the server (the console sees its sessions closed and the port refusing)."""
        server, self.server = self.server, None
        if server is not None:
            await server.stop()

    async def stop(self) -> None:
        """Stop everything."""
        await self.stop_server()
        await self.sim.stop()


async def wait_for(predicate: Callable[[], object], timeout: float = 10.0, what: str = "condition") -> None:
    """Let the event loop run until `predicate()` is true (polled every 20 ms)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not reached within {timeout} s")
        await asyncio.sleep(0.02)


@dataclass
class Post:
    """A running control post and a console logged in to it."""

    stack: Stack
    console: Console
    folder: Path


async def open_console(stack: Stack, folder: Path, user: str = "operator") -> Console:
    """A console logged in as `user` (demo password), started offscreen, its layout kept in `folder`."""
    client = ConsoleClient(Credentials(stack.url, user, DEMO_PASSWORDS[user], stack.security), FAST)
    console = Console(client, folder / "console.ini")
    try:
        await console.start()
    except BaseException:
        await close_console(console)
        raise
    return console


async def close_console(console: Console) -> None:
    """Stop a console and close its window."""
    await console.stop()
    console.window.dispose()
    console.window.deleteLater()


@contextlib.asynccontextmanager
async def running_post(
    folder: Path, port: int, user: str = "operator", *, automation: bool = False
) -> AsyncIterator[Post]:
    """Simulators, a control server on `port` and a console, all stopped before the test returns.

    Not fixtures: pytest-qt processes Qt events between a test and its fixtures' teardown, when no asyncio loop
    runs; everything is therefore started and stopped inside the test's own coroutine.
    """
    stack = Stack(port, folder, automation=automation)
    await stack.start()
    try:
        console = await open_console(stack, folder, user)
        try:
            yield Post(stack, console, folder)
        finally:
            await close_console(console)
    finally:
        await stack.stop()
        await asyncio.sleep(0.1)  # let the closing transports' callbacks run while the loop runs
