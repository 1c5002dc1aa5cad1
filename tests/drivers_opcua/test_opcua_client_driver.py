"""The OPC UA client driver against a real remote asyncua server: subscription, commands, loss and restoration."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
import pytest_asyncio
from asyncua import ua
from opcua_remote import (
    CONTROLLERS,
    FAST,
    PARKING,
    SOURCES,
    UTC_MAPPING,
    Collector,
    FreezableProxy,
    RemoteUtc,
    controllers,
    find_free_port,
    parking_site,
)

from drivers.opcua_client import OpcUaClientDriver
from scada.model import (
    DeviceCommunicationError,
    InvalidArgumentError,
    OutOfRangeError,
    Quality,
    UnknownDeviceError,
    ValueRecord,
    WriteRequest,
    is_good,
)

pytestmark = pytest.mark.asyncio(loop_scope="module")

MAPPED = ("ActivePlan", "Stage", "ControlMode", "Fault", "VehicleCount")


def tags(cid: str) -> list[str]:
    """The mapped tags of one controller."""
    return [f"Traffic/{cid}/{var}" for var in MAPPED]


def all_good(collector: Collector) -> bool:
    """Every mapped controller value arrived Good and every controller reports CommunicationOk."""
    latest = collector.latest
    return all(
        (r := latest.get(tag)) is not None and is_good(r.quality) for cid in CONTROLLERS for tag in tags(cid)
    ) and all(comm_ok(collector, cid) for cid in CONTROLLERS)


def remote_side(task: asyncio.Task[object]) -> bool:
    """True for a task of the remote server (it serves the closing session a little longer)."""
    code = getattr(task.get_coro(), "cr_code", None)
    return code is not None and "/asyncua/server/" in code.co_filename


def comm_ok(collector: Collector, device_id: str, path: str = "Traffic") -> bool:
    """The device's CommunicationOk is True (and Good)."""
    record = collector.latest.get(f"{path}/{device_id}/CommunicationOk")
    return record is not None and record.value is True and record.quality == Quality.GOOD


@pytest_asyncio.fixture(loop_scope="module")
async def driver_for(remote: RemoteUtc) -> AsyncIterator[tuple[OpcUaClientDriver, Collector]]:
    """A started driver for the two controllers and the car park of the remote server."""
    collector = Collector()
    driver = OpcUaClientDriver(
        [*controllers(remote.url), parking_site(remote.url)], collector, settings={"opcua_sources": SOURCES}, **FAST
    )
    await driver.start()
    try:
        await collector.wait_for(lambda: all_good(collector))
        yield driver, collector
    finally:
        await driver.stop()


async def test_initial_values_arrive_typed_and_batched(driver_for: tuple[OpcUaClientDriver, Collector]) -> None:
    driver, collector = driver_for
    latest = collector.latest
    assert latest["Traffic/TLC-001/ActivePlan"].value == 2 and type(latest["Traffic/TLC-001/ActivePlan"].value) is int
    assert latest["Traffic/TLC-001/Fault"].value is False
    assert latest["Traffic/TLC-002/VehicleCount"].value == 1000
    assert latest["Parking/PK-01/Occupied"].value == 12
    # The sensors of the car park are carried by its mapping ({parent} and {index} in their templates).
    assert latest["Parking/PK-01/PS-01-0000/Occupied"].value is False
    assert latest["Parking/PK-01/PS-01-0001/Occupied"].value is True
    for record in collector.records:
        assert record.source_ts.tzinfo is not None and record.source_ts.utcoffset().total_seconds() == 0
    # One publish response = one call: 14 initial values (+3 CommunicationOk) arrive in a handful of batches.
    value_batches = [b for b in collector.batches if any(not r.tag.endswith("CommunicationOk") for r in b)]
    assert len(value_batches) < 5, [len(b) for b in value_batches]
    assert set(driver.device_ids()) == {"TLC-001", "TLC-002", "PK-01", "PS-01-0000", "PS-01-0001"}
    assert driver.connected() == {driver.links[0].plan.url: True}
    assert len(driver.links) == 1  # one connection for the three devices of one remote server


async def test_remote_change_arrives_through_the_subscription(
    remote: RemoteUtc, driver_for: tuple[OpcUaClientDriver, Collector]
) -> None:
    _, collector = driver_for
    stamp = datetime(2026, 11, 3, 7, 30, 15, 250000, tzinfo=UTC)
    await remote.set("TLC-002", "Stage", 4, source_ts=stamp)
    await collector.wait_for(lambda: collector.latest["Traffic/TLC-002/Stage"].value == 4)
    record = collector.latest["Traffic/TLC-002/Stage"]
    assert record == ValueRecord("Traffic/TLC-002/Stage", 4, Quality.GOOD, stamp)
    assert collector.latest["Traffic/TLC-001/Stage"].value == 1  # the other controller did not move


async def test_method_call_is_forwarded_with_remote_argument_types(
    remote: RemoteUtc, driver_for: tuple[OpcUaClientDriver, Collector]
) -> None:
    driver, collector = driver_for
    result = await driver.execute(WriteRequest("TLC-002", "select_plan", {"Plan": 3, "DurationSeconds": 600}))
    assert result.ok and result.status == Quality.GOOD
    cid, name, args = remote.calls[-1]
    assert (cid, name) == ("TLC-002", "SelectPlan")
    assert [(a.Value, a.VariantType) for a in args] == [(3, ua.VariantType.UInt16), (600, ua.VariantType.UInt32)]
    # The remote applied it; its change comes back through the subscription.
    await collector.wait_for(lambda: collector.latest["Traffic/TLC-002/ActivePlan"].value == 3)
    result = await driver.execute(WriteRequest("TLC-002", "release_plan", {}))
    assert result.ok
    assert remote.calls[-1][:2] == ("TLC-002", "ReleasePlan") and remote.calls[-1][2] == []


async def test_remote_refusal_comes_back_as_out_of_range(
    remote: RemoteUtc, driver_for: tuple[OpcUaClientDriver, Collector]
) -> None:
    driver, _ = driver_for
    with pytest.raises(OutOfRangeError) as caught:
        await driver.execute(WriteRequest("TLC-001", "select_plan", {"Plan": 11, "DurationSeconds": 60}))
    assert caught.value.status == ua.StatusCodes.BadOutOfRange
    assert remote.calls[-1][0] == "TLC-001"  # the remote itself refused it
    # A value that does not fit the remote argument type is refused before anything is sent.
    calls = len(remote.calls)
    with pytest.raises(OutOfRangeError):
        await driver.execute(WriteRequest("TLC-001", "select_plan", {"Plan": 70000, "DurationSeconds": 60}))
    with pytest.raises(InvalidArgumentError):
        await driver.execute(WriteRequest("TLC-001", "select_plan", {"Plan": 3}))
    assert len(remote.calls) == calls


async def test_write_action_is_forwarded(remote: RemoteUtc, driver_for: tuple[OpcUaClientDriver, Collector]) -> None:
    driver, collector = driver_for
    result = await driver.execute(WriteRequest(PARKING, "set_display_mode", {"Mode": 2}))
    assert result.ok
    assert await remote.read(f"{PARKING}.DisplayMode") == 2
    await collector.wait_for(lambda: collector.latest[f"Parking/{PARKING}/DisplayMode"].value == 2)


async def test_unknown_device_or_action(driver_for: tuple[OpcUaClientDriver, Collector]) -> None:
    driver, _ = driver_for
    with pytest.raises(UnknownDeviceError):
        await driver.execute(WriteRequest("TLC-999", "release_plan", {}))
    with pytest.raises(UnknownDeviceError):
        await driver.execute(WriteRequest("TLC-001", "set_display_mode", {"Mode": 1}))
    with pytest.raises(UnknownDeviceError):  # a sensor has no action, and none is mapped
        await driver.execute(WriteRequest("PS-01-0000", "set_level", {"Level": 1.0}))


async def test_unknown_remote_node_or_wrong_type_is_bad_alone(remote: RemoteUtc) -> None:
    variables = {**UTC_MAPPING["variables"], "DetectorFault": "s={id}.NoSuchNode", "ManualPanel": "s={id}.Vehicles"}
    mapping = {**UTC_MAPPING, "variables": variables}
    collector = Collector()
    driver = OpcUaClientDriver(controllers(remote.url), collector, settings={"utc-north": mapping}, **FAST)
    await driver.start()
    try:
        await collector.wait_for(
            lambda: (
                all_good(collector)
                and "Traffic/TLC-001/DetectorFault" in collector.latest
                and "Traffic/TLC-001/ManualPanel" in collector.latest
            )
        )
        assert collector.latest["Traffic/TLC-001/DetectorFault"].quality == ua.StatusCodes.BadNodeIdUnknown
        # A UInt32 of 1000 is no Boolean: refused rather than guessed.
        assert collector.latest["Traffic/TLC-001/ManualPanel"].quality == Quality.BAD_TYPE_MISMATCH
        assert comm_ok(collector, "TLC-001")  # the rest of the controller is served
    finally:
        await driver.stop()


async def test_not_connected_answers_communication_error() -> None:
    collector = Collector()
    url = f"opc.tcp://127.0.0.1:{find_free_port()}/utc"  # nobody listens there
    driver = OpcUaClientDriver(controllers(url), collector, settings=SOURCES, **FAST)
    await driver.start()
    try:
        await collector.wait_for(lambda: "Traffic/TLC-001/CommunicationOk" in collector.latest)
        assert collector.latest["Traffic/TLC-001/CommunicationOk"].value is False
        assert collector.latest["Traffic/TLC-001/Stage"].quality == Quality.BAD_COMM
        with pytest.raises(DeviceCommunicationError) as caught:
            await driver.execute(WriteRequest("TLC-001", "release_plan", {}))
        assert caught.value.status == Quality.BAD_COMM
    finally:
        await driver.stop()


async def test_server_restart_turns_values_bad_then_restores_the_subscription(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="drivers.opcua")
    port = find_free_port()
    remote = RemoteUtc(port)
    # Same port, but the vendor namespace comes after another one: nothing may assume its index.
    restarted = RemoteUtc(port, extra_namespaces=["urn:other:vendor"])
    await remote.build()
    await restarted.build()  # built now (slow), listening only after the first one is gone
    await remote.listen()
    collector = Collector()
    remote_running = True
    driver = OpcUaClientDriver(controllers(remote.url), collector, settings=SOURCES, **FAST)
    await driver.start()
    try:
        await collector.wait_for(lambda: all_good(collector))
        first_index = remote.idx
        good = {tag: collector.latest[tag] for cid in CONTROLLERS for tag in tags(cid)}

        await remote.stop()
        remote_running = False
        took = await collector.wait_for(
            lambda: (
                all(collector.latest[tag].quality == Quality.BAD_COMM for tag in good)
                and not any(comm_ok(collector, cid) for cid in CONTROLLERS)
            ),
            within=5.0,
        )
        assert took < 3.0
        for tag, before in good.items():
            after = collector.latest[tag]
            assert after.value == before.value and after.source_ts == before.source_ts  # last good value and time
        with pytest.raises(DeviceCommunicationError):
            await driver.execute(WriteRequest("TLC-001", "release_plan", {}))
        await asyncio.sleep(1.0)  # several reconnect attempts fail meanwhile: still logged only once

        await restarted.listen()
        assert restarted.idx != first_index
        await collector.wait_for(lambda: all_good(collector), within=5.0)
        assert driver.links[0].sessions == 2  # a new session, subscription and monitored items
        await restarted.set("TLC-001", "Stage", 7)
        await collector.wait_for(lambda: collector.latest["Traffic/TLC-001/Stage"].value == 7)
        assert is_good(collector.latest["Traffic/TLC-001/Stage"].quality)
        result = await driver.execute(WriteRequest("TLC-001", "select_plan", {"Plan": 5, "DurationSeconds": 60}))
        assert result.ok and restarted.calls[-1][0] == "TLC-001"
    finally:
        await driver.stop()
        if remote_running:
            await remote.stop()
        await restarted.stop()
    messages = [r.getMessage() for r in caplog.records if r.name == "drivers.opcua"]
    assert sum("lost" in m for m in messages) == 1, messages
    assert sum("recovered" in m for m in messages) == 1, messages
    assert not [m for m in messages if "cannot reach" in m], messages


async def test_silent_server_is_detected_by_the_watchdog(remote: RemoteUtc) -> None:
    proxy = FreezableProxy(remote.port)
    await proxy.start()
    url = f"opc.tcp://127.0.0.1:{proxy.port}/utc"
    collector = Collector()
    driver = OpcUaClientDriver(controllers(url), collector, settings=SOURCES, **FAST)
    await driver.start()
    try:
        await collector.wait_for(lambda: all_good(collector))
        proxy.frozen = True  # the network goes quiet; no socket closes
        took = await collector.wait_for(lambda: not comm_ok(collector, "TLC-001"), within=6.0)
        assert took < 4.0
        assert collector.latest["Traffic/TLC-001/Stage"].quality == Quality.BAD_COMM
        proxy.frozen = False  # the driver opens a new connection through the proxy
        await collector.wait_for(lambda: all_good(collector), within=6.0)
    finally:
        await driver.stop()
        await proxy.stop()


async def test_start_stop_idempotent_quick_and_without_orphans(remote: RemoteUtc) -> None:
    before = asyncio.all_tasks()
    collector = Collector()
    driver = OpcUaClientDriver(controllers(remote.url), collector, settings=SOURCES, **FAST)
    await driver.start()
    await driver.start()
    await collector.wait_for(lambda: all_good(collector))
    started = time.perf_counter()
    await driver.stop()
    elapsed = time.perf_counter() - started
    await driver.stop()
    assert elapsed < 1.0
    leftovers = [t for t in asyncio.all_tasks() - before if not t.done() and not remote_side(t)]
    assert leftovers == [], leftovers
    # Stopping marks the values Bad rather than leaving them silently Good.
    assert collector.latest["Traffic/TLC-001/Stage"].quality == Quality.BAD_COMM
    assert not comm_ok(collector, "TLC-001")
    # And the driver can start again.
    await driver.start()
    try:
        await collector.wait_for(lambda: all_good(collector))
    finally:
        await driver.stop()
