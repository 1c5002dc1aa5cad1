"""Fixtures of the OPC UA tests: a started CityServer on a free loopback port with a connected asyncua client,
session-scoped (asyncua's own init takes seconds), over the real command service and a recording driver."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from asyncua import Client
from uakit import City, command_service
from uasites import make_site

from scada.opcua import CityServer


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def city(request: pytest.FixtureRequest) -> AsyncIterator[City]:
    """A CityServer on the small test site with a connected client (shared by every test of the package)."""
    site = make_site()
    service, driver = command_service(site)
    server = CityServer(site, service, "127.0.0.1", 0)
    await server.start()
    client = Client(server.endpoint_url, timeout=10, watchdog_intervall=30.0)
    await client.connect()
    ns = await client.get_namespace_index("urn:cityscada:city")
    state = City(site, server, service, driver, client, ns)
    service.add_audit_sink(state.audits.append)
    try:
        yield state
    finally:
        await client.disconnect()
        await server.stop()


@pytest.fixture
def fresh(city: City) -> City:
    """The shared city with the driver's and audit's records emptied and no failure configured."""
    city.driver.requests.clear()
    city.driver.fail = None
    city.audits.clear()
    return city
