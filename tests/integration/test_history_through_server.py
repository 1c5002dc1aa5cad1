"""The whole stack with the historian: simulator values are stored and read back through OPC UA HistoryRead."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from asyncua import Client, ua

from drivers.sim.runner import CitySimulator
from scada.app import ControlServer

from .conftest import Post


@pytest.fixture
async def stack(historian_post: Post) -> AsyncIterator[tuple[ControlServer, CitySimulator, Client, int]]:
    yield historian_post.server, historian_post.sim, historian_post.client, historian_post.ns


async def test_occupancy_history_is_read_back_raw_and_processed(stack) -> None:
    server, sim, client, ns = stack
    node = client.get_node(f"ns={ns};s=Parking/PK-01/Occupied")
    assert await node.read_attribute(ua.AttributeIds.Historizing) is not None
    start = datetime.now(UTC) - timedelta(seconds=1)
    for occupied in (3, 9, 14):
        sim.set_occupancy("PK-01", occupied)
        deadline = time.monotonic() + 10
        while (await node.read_data_value(raise_on_bad_status=False)).Value.Value != occupied:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.1)
    assert server.historian is not None
    await server.historian.flush(10)
    end = datetime.now(UTC) + timedelta(seconds=1)

    values = await node.read_raw_history(start, end)
    stored = [dv.Value.Value for dv in values if dv.StatusCode.is_good()]
    for occupied in (3, 9, 14):
        assert occupied in stored, f"{occupied} missing from history {stored}"
    assert [dv.SourceTimestamp for dv in values] == sorted(dv.SourceTimestamp for dv in values)

    details = ua.ReadProcessedDetails(
        StartTime=start, EndTime=end, ProcessingInterval=(end - start).total_seconds() * 1000,
        AggregateType=[ua.NodeId(ua.ObjectIds.AggregateFunction_Maximum)],
    )  # fmt: skip
    result = await node.history_read(details)
    assert result.StatusCode.is_good()
    maxima = [dv.Value.Value for dv in result.HistoryData.DataValues if dv.Value is not None]
    assert maxima and max(maxima) == max(stored)


async def test_commands_are_in_the_audit_trail(stack) -> None:
    server, _sim, client, ns = stack
    lamp = next(server.site.lamps())
    comm = client.get_node(f"ns={ns};s=Lighting/{lamp.cabinet_id}/CommunicationOk")
    deadline = time.monotonic() + 10
    while (await comm.read_data_value(raise_on_bad_status=False)).Value.Value is not True:
        assert time.monotonic() < deadline
        await asyncio.sleep(0.1)
    await client.get_node(f"ns={ns};s={lamp.path}").call_method(
        f"{ns}:SetLevel", ua.Variant(33.0, ua.VariantType.Double)
    )
    assert server.historian is not None
    await server.historian.flush(10)
    from historian.event_queries import CommandQuery, query_commands

    with server.historian.engine.connect() as conn:
        page = query_commands(conn, CommandQuery(device_prefix=lamp.id), limit=10)
    rows = list(page.items)
    assert any(row.action == "set_level" and row.status == 0 for row in rows), rows
