"""The central traffic plan request: HR 1 then HR 0, refreshed while wanted, HR 0 = 0 at the end or on release."""

from __future__ import annotations

import asyncio
import itertools
import random
from collections.abc import Callable

from modbus_conformance import ConformanceDevice, ConformanceServer, Request
from modbus_helpers import Sink, conformance_for, make_controller, point, wait_until

from drivers.modbus.client import Backoff, DeviceConnection
from drivers.modbus.commands import PlanHold, hold_plan
from drivers.modbus.driver import ModbusDriver
from drivers.modbus.poller import make_poller
from scada.model import WriteRequest

Servers = Callable[[dict[int, ConformanceDevice]], ConformanceServer]
Drivers = Callable[..., ModbusDriver]


def plan_writes(server: ConformanceServer) -> list[Request]:
    return [r for r in server.writes() if r.address == 0]


async def test_select_plan_is_refreshed_until_release(servers: Servers, drivers: Drivers, sink: Sink) -> None:
    controller = make_controller(0)
    device = conformance_for(controller)
    server = servers({1: device})
    point(controller, server.port, poll_ms=60_000)
    driver = drivers([controller], sink, watchdog_s=10, refresh_s=0.1)
    await driver.start()
    result = await driver.execute(WriteRequest(controller.id, "select_plan", {"Plan": 4, "DurationSeconds": 600}))
    first = server.writes()
    assert [(r.function, r.address, r.values) for r in first] == [(6, 1, (10,)), (6, 0, (4,))]  # watchdog first
    assert result.values == {f"{controller.path}/RequestedPlan": 4, f"{controller.path}/WatchdogSeconds": 10}
    assert driver.held_plans() == {controller.id: True}

    await wait_until(lambda: len(plan_writes(server)) >= 5, within=2, what="four refreshes")
    refreshes = plan_writes(server)[1:5]
    assert all(r.values == (4,) and r.function == 6 for r in refreshes)
    gaps = [b.at - a.at for a, b in itertools.pairwise(refreshes)]
    assert all(0.05 < gap < 0.3 for gap in gaps), gaps

    released = await driver.execute(WriteRequest(controller.id, "release_plan"))
    assert released.values[f"{controller.path}/RequestedPlan"] == 0
    assert device.hr[0] == 0
    count = len(plan_writes(server))
    await asyncio.sleep(0.35)  # three refresh periods: nothing may be written any more
    assert len(plan_writes(server)) == count
    assert driver.held_plans() == {}


async def test_a_new_plan_replaces_the_refreshed_one(servers: Servers, drivers: Drivers, sink: Sink) -> None:
    controller = make_controller(0)
    server = servers({1: conformance_for(controller)})
    point(controller, server.port, poll_ms=60_000)
    driver = drivers([controller], sink, watchdog_s=10, refresh_s=0.05)
    await driver.start()
    await driver.execute(WriteRequest(controller.id, "select_plan", {"Plan": 2, "DurationSeconds": 600}))
    await wait_until(lambda: len(plan_writes(server)) >= 3, what="refreshes of plan 2")
    await driver.execute(WriteRequest(controller.id, "select_plan", {"Plan": 9, "DurationSeconds": 600}))
    mark = len(plan_writes(server))
    await wait_until(lambda: len(plan_writes(server)) >= mark + 3, what="refreshes of plan 9")
    assert {r.values for r in plan_writes(server)[mark:]} == {(9,)}


async def test_stop_ends_refreshing(servers: Servers, drivers: Drivers, sink: Sink) -> None:
    controller = make_controller(0)
    server = servers({1: conformance_for(controller)})
    point(controller, server.port, poll_ms=60_000)
    driver = drivers([controller], sink, watchdog_s=10, refresh_s=0.05)
    await driver.start()
    await driver.execute(WriteRequest(controller.id, "select_plan", {"Plan": 5, "DurationSeconds": 600}))
    await wait_until(lambda: len(plan_writes(server)) >= 3, what="refreshes")
    await driver.stop()
    count = len(server.writes())
    await asyncio.sleep(0.2)
    assert len(server.writes()) == count


async def test_the_plan_ends_after_its_duration(servers: Servers, sink: Sink) -> None:
    controller = make_controller(0)
    device = conformance_for(controller)
    server = servers({1: device})
    connection = DeviceConnection("127.0.0.1", server.port, 1, timeout=0.5, backoff=Backoff(0.05, 0.1), label="t")
    poller = make_poller(controller, connection, sink)
    device.set_hr(0, [6, 10])
    loop = asyncio.get_running_loop()
    started = loop.time()
    try:
        await hold_plan(poller, PlanHold(6, 0.35), watchdog_s=10, refresh_s=0.1)
    finally:
        connection.close()
    assert 0.3 < loop.time() - started < 1.0
    values = [r.values for r in plan_writes(server)]
    assert values[-1] == (0,) and set(values[:-1]) == {(6,)} and len(values) >= 3
    assert device.hr[0] == 0


async def test_after_an_outage_the_watchdog_is_written_again(servers: Servers, sink: Sink) -> None:
    controller = make_controller(0)
    device = conformance_for(controller)
    server = servers({1: device})
    point(controller, server.port)
    backoff = Backoff(0.02, 0.05, random.Random(1))
    connection = DeviceConnection("127.0.0.1", server.port, 1, timeout=0.3, backoff=backoff, label="t")
    poller = make_poller(controller, connection, sink)
    task = asyncio.create_task(hold_plan(poller, PlanHold(3, 60), watchdog_s=20, refresh_s=0.05))
    try:
        await wait_until(lambda: len(plan_writes(server)) >= 2, what="refreshes")
        await asyncio.to_thread(server.kill)
        await asyncio.sleep(0.15)  # refreshes fail meanwhile
        server.clear()
        await asyncio.to_thread(server.start)
        await wait_until(lambda: len(server.writes()) >= 3, what="refreshes after the outage")
        after = [(r.address, r.values) for r in server.writes()]
        assert after[:2] == [(1, (20,)), (0, (3,))]  # the watchdog again, then the plan
        assert after[2] == (0, (3,))  # then the plan alone
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        connection.close()
