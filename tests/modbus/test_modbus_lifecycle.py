"""Driver lifecycle: idempotent start/stop, no orphan task, connections closed, configuration checks."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable

import pytest
from modbus_conformance import ConformanceDevice, ConformanceServer
from modbus_helpers import (
    Sink,
    conformance_for,
    make_cabinet,
    make_controller,
    make_parking,
    make_sign,
    point,
    wait_until,
)

from drivers.modbus.driver import ModbusDriver
from scada.model import ConfigError, Driver, WriteRequest
from scada.site.model import FieldDevice, Lamp

Servers = Callable[[dict[int, ConformanceDevice]], ConformanceServer]
Drivers = Callable[..., ModbusDriver]


def other_tasks() -> set[asyncio.Task[object]]:
    return {task for task in asyncio.all_tasks() if task is not asyncio.current_task()}


async def test_start_stop_are_idempotent_and_leave_no_task(servers: Servers, sink: Sink) -> None:
    devices: list[FieldDevice] = [
        make_cabinet(0, 8, unit=1),
        make_controller(0, unit=2),
        make_sign(0, unit=3),
        make_parking(0, 4, unit=4),
    ]
    server = servers({unit: conformance_for(d) for unit, d in zip((1, 2, 3, 4), devices, strict=True)})
    for device in devices:
        point(device, server.port, poll_ms=20)
    before = other_tasks()
    driver = ModbusDriver(devices, sink, timeout=0.5, refresh_s=0.05, watchdog_s=10)
    assert isinstance(driver, Driver)
    await driver.start()
    await driver.start()
    assert len(other_tasks() - before) == 4  # one poll task per device, not eight
    await wait_until(lambda: driver.cycle_stats().ok == 4, what="every device polled")
    await driver.execute(WriteRequest("TLC-001", "select_plan", {"Plan": 1, "DurationSeconds": 60}))
    assert len(other_tasks() - before) == 5  # and the plan refresh
    await wait_until(lambda: server.connections == 4, what="one connection per device")
    published = len(sink.batches)
    await driver.stop()
    await driver.stop()
    assert other_tasks() == before
    assert len(sink.batches) == published  # stopping is not a communication loss: nothing is published
    await wait_until(lambda: server.connections == 0, what="connections closed")

    sink.clear()
    await driver.start()  # a stopped driver starts again and publishes everything again
    await wait_until(lambda: len(sink.latest) == 12 + 8 * 10 + 12 + 12 + 8 + 4 * 2, what="full publication")
    await driver.stop()
    assert other_tasks() == before


async def test_stop_while_polling_flat_out(servers: Servers, sink: Sink) -> None:
    """A single cancel() can be lost inside pymodbus (asyncio.wait_for on 3.11): stop() must still end every task."""
    units = range(1, 31)
    server = servers({unit: conformance_for(make_controller(0)) for unit in units})
    controllers = [make_controller(server.port, unit=unit, poll_ms=1, ident=f"TLC-{unit:03d}") for unit in units]
    before = other_tasks()
    driver = ModbusDriver(controllers, sink, timeout=0.5)
    for _ in range(20):
        await driver.start()
        await wait_until(lambda: driver.cycle_stats().cycles > 60, what="cycles")
        await asyncio.wait_for(driver.stop(), 2)
        assert other_tasks() == before


def test_device_ids_name_field_devices_lamps_and_sensors(sink: Sink) -> None:
    cabinet = make_cabinet(1502, 2)
    parking = make_parking(1503, 2)
    driver = ModbusDriver([cabinet, make_sign(1504), parking], sink)
    assert driver.device_ids() == [
        cabinet.id,
        "VMS-01",
        parking.id,
        *(lamp.id for lamp in cabinet.lamps),
        *(sensor.id for sensor in parking.sensors),
    ]


def test_configuration_errors_are_reported_together(sink: Sink) -> None:
    cabinet = make_cabinet(1502, 3)
    cabinet.lamps[2].index = 1  # duplicate index
    cabinet.lamps.append(
        Lamp(id="STRAY", cabinet_id="CAB-9", index=200, lat=0, lon=0, rated_w=1, legacy_w=1)
    )  # wrong cabinet, index out of range
    sign = make_sign(1504)
    sign.endpoint = dataclasses.replace(sign.endpoint, protocol="opcua", unit=300)
    twin = make_controller(1505, ident="VMS-01")  # same id as the sign
    with pytest.raises(ConfigError) as error:
        ModbusDriver([cabinet, sign, twin], sink)
    fields = [issue.field for issue in error.value.issues]
    assert fields == [
        "CAB-0001.lamps.CAB-0001-L002.index",
        "CAB-0001.lamps.STRAY.index",
        "CAB-0001.lamps.STRAY.cabinet_id",
        "VMS-01.endpoint.protocol",
        "VMS-01.endpoint.unit",
        "VMS-01",
    ]


def test_option_checks(sink: Sink) -> None:
    with pytest.raises(ValueError, match="watchdog_s"):
        ModbusDriver([], sink, watchdog_s=5)
    with pytest.raises(ValueError, match="refresh_s"):
        ModbusDriver([], sink, watchdog_s=30, refresh_s=30)
