"""CityServer start/stop: idempotent, restartable, cleans up after a failed start, leaves no task behind."""

from __future__ import annotations

import asyncio
import contextlib
import socket

import pytest
from asyncua import Client, ua
from uakit import DataChanges, command_service
from uasites import make_site

from scada.model import Quality, ValueRecord, utcnow
from scada.opcua import CityServer
from scada.site.model import Lamp


def other_tasks() -> set[asyncio.Task[object]]:
    return {task for task in asyncio.all_tasks() if task is not asyncio.current_task()}


async def settle(before: set[asyncio.Task[object]]) -> set[asyncio.Task[object]]:
    """The tasks that are not in `before`, after giving finishing tasks a few loop turns to end."""
    for _ in range(50):
        left = {task for task in other_tasks() - before if not task.done()}
        if not left:
            return left
        await asyncio.sleep(0.02)
    return left


async def test_start_stop_twice_leaves_no_task(free_port: int) -> None:
    site = make_site()
    service, _driver = command_service(site)
    server = CityServer(site, service, "127.0.0.1", free_port)
    before = other_tasks()
    for _ in range(2):
        await server.start()
        await server.start()  # idempotent
        assert server.running
        async with Client(server.endpoint_url) as client:
            ns = await client.get_namespace_index("urn:cityscada:city")
            assert await client.get_node(ua.NodeId("Lighting/CAB-0001/DeviceId", ns)).read_value() == "CAB-0001"
        await server.stop()
        await server.stop()  # idempotent
        assert not server.running
        assert await settle(before) == set()
    with pytest.raises(RuntimeError):
        _ = server.writer


async def test_stop_under_a_connected_subscriber_leaves_no_task(free_port: int) -> None:
    site = make_site()
    service, _driver = command_service(site)
    server = CityServer(site, service, "127.0.0.1", free_port)
    before = other_tasks()
    await server.start()
    client = Client(server.endpoint_url, watchdog_intervall=30.0)
    await client.connect()
    handler = DataChanges()
    subscription = await client.create_subscription(20, handler)
    ns = server.namespace_index
    await subscription.subscribe_data_change(client.get_node(ua.NodeId("Traffic/TLC-001/Stage", ns)))
    await handler.next()
    server.writer.apply([ValueRecord("Traffic/TLC-001/Stage", 4, Quality.GOOD, utcnow())])
    assert (await handler.next())[1].Value.Value == 4
    await server.stop()  # the client is still connected, its subscription alive
    with contextlib.suppress(Exception):
        await client.disconnect()
    assert await settle(before) == set()


async def test_failed_start_on_a_busy_port_cleans_up(free_port: int) -> None:
    site = make_site()
    service, _driver = command_service(site)
    before = other_tasks()
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as busy:
        busy.bind(("127.0.0.1", free_port))
        busy.listen()
        server = CityServer(site, service, "127.0.0.1", free_port)
        with pytest.raises(OSError):
            await server.start()
        assert not server.running
        assert await settle(before) == set()
    await server.start()  # the port is free again: the same object starts
    try:
        async with Client(server.endpoint_url) as client:
            assert await client.get_namespace_index("urn:cityscada:city") == server.namespace_index
    finally:
        await server.stop()
    assert await settle(before) == set()


async def test_failed_build_cleans_up() -> None:
    site = make_site()
    cabinet = site.cabinets["CAB-0001"]
    duplicate = cabinet.lamps[0]
    cabinet.lamps.append(
        Lamp(
            id=duplicate.id,
            cabinet_id=cabinet.id,
            index=99,
            lat=duplicate.lat,
            lon=duplicate.lon,
            rated_w=1,
            legacy_w=1,
        )
    )
    service, _driver = command_service(site)
    server = CityServer(site, service, "127.0.0.1", 0)
    before = other_tasks()
    with pytest.raises(ValueError, match="already exists"):
        await server.start()
    assert not server.running
    assert await settle(before) == set()
