"""Fixtures of the OPC UA client driver tests: one remote server per module, reset before every test."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest_asyncio
from opcua_remote import RemoteUtc, find_free_port


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def shared_remote() -> AsyncIterator[RemoteUtc]:
    """A running remote UTC server on a free loopback port (its start costs seconds: shared by the module)."""
    server = RemoteUtc(find_free_port())
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


@pytest_asyncio.fixture(loop_scope="module")
async def remote(shared_remote: RemoteUtc) -> RemoteUtc:
    """The shared remote server with every value back to its initial state."""
    await shared_remote.reset()
    return shared_remote
