"""A whole control post on the small site: simulators over real Modbus TCP, the server, an OPC UA client."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
from asyncua import Client

from drivers.sim.runner import CitySimulator
from scada.app import ControlServer, ServerOptions
from scada.catalog import ENDPOINT_PATH, NAMESPACE_URI
from scada.site.loader import load_site, rebind_endpoints
from scada.site.model import Site

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Post:
    """The running stack of one test."""

    site: Site
    sim: CitySimulator
    server: ControlServer
    client: Client
    ns: int

    def node(self, path: str):  # type: ignore[no-untyped-def]
        """The client node of a NodeId path."""
        return self.client.get_node(f"ns={self.ns};s={path}")


def fast_site(poll_ms: int = 300) -> Site:
    """The small site with short poll periods, so that tests observe changes quickly."""
    site = load_site(ROOT / "config" / "small")
    for device in site.field_devices():
        device.endpoint = type(device.endpoint)(**{**_fields(device.endpoint), "poll_ms": poll_ms})
    return site


def _fields(endpoint) -> dict:  # type: ignore[no-untyped-def]
    return {name: getattr(endpoint, name) for name in endpoint.__dataclass_fields__}


@contextlib.asynccontextmanager
async def running_post(
    port: int, historian_url: str = "", data_dir: Path | None = None, *, automation: bool = False
) -> AsyncIterator[Post]:
    """Simulators on free ports, the control server (insecure; automation off unless asked) on `port`, and a
    connected client."""
    site = fast_site()
    sim = CitySimulator(site, seed=7, bind="free")
    await sim.start()
    rebind_endpoints(site, sim.endpoints)
    options = ServerOptions(
        host="127.0.0.1", port=port, historian_url=historian_url, insecure=True, automation=automation
    )
    if data_dir is not None:
        options = replace(options, data_dir=data_dir)
    server = ControlServer(site, options)
    client = Client(f"opc.tcp://127.0.0.1:{port}{ENDPOINT_PATH}", timeout=10)
    try:
        await server.start()
        await client.connect()
        ns = await client.get_namespace_index(NAMESPACE_URI)
        yield Post(site, sim, server, client, ns)
    finally:
        await client.disconnect()
        await server.stop()
        await sim.stop()


@pytest.fixture
async def post(free_port: int) -> AsyncIterator[Post]:
    """The stack without historian."""
    async with running_post(free_port) as running:
        yield running


@pytest.fixture
async def historian_post(free_port: int, tmp_path: Path) -> AsyncIterator[Post]:
    """The stack with an SQLite historian in the test's folder."""
    async with running_post(free_port, f"sqlite:///{tmp_path / 'history.sqlite'}", tmp_path) as running:
        yield running
