"""The driver polling the independent pyModbusTCP device: records per kind, change-only publication, loss, recovery."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

import pytest
from modbus_conformance import ConformanceDevice, ConformanceServer
from modbus_helpers import (
    Sink,
    conformance_for,
    free_tcp_port,
    make_cabinet,
    make_controller,
    make_parking,
    make_sign,
    point,
    wait_until,
)

from drivers.modbus import registers as reg
from drivers.modbus.driver import ModbusDriver
from drivers.modbus.poller import LinkState
from scada.catalog import VARIABLES, Kind
from scada.model import Quality

Servers = Callable[[dict[int, ConformanceDevice]], ConformanceServer]
Drivers = Callable[..., ModbusDriver]


def tags_of(path: str, kind: Kind) -> set[str]:
    return {f"{path}/{spec.name}" for spec in VARIABLES[kind]}


def lamp_registers(level: int, status: int, power_dw: int, energy_wh: int, presence: int, hours: int) -> list[int]:
    return [level, status, power_dw, energy_wh >> 16, energy_wh & 0xFFFF, presence, hours, 0]


async def test_cabinet_and_lamps_are_published_with_the_right_values(
    servers: Servers, drivers: Drivers, sink: Sink
) -> None:
    cabinet = make_cabinet(0, 3)
    device = conformance_for(cabinet)
    device.set_ir(2, [812, 0b0010, 3, 0x0001, 0x0002, 2305])  # heartbeat, door open, N, 65538 Wh, 230.5 V
    device.set_ir(100, lamp_registers(0, 0b0010, 0, 1500, 4, 100))  # lamp 0 failed
    device.set_ir(108, lamp_registers(70, 0b1001, 351, 70000, 12, 2000))  # lamp 1 on, presence
    device.set_ir(116, lamp_registers(30, 0b0101, 120, 5, 0, 1))  # lamp 2 on, node fault
    device.set_hr(0, [1, 90, 300])
    device.set_hr(100, [50, 70, 30])
    server = servers({1: device})
    point(cabinet, server.port, poll_ms=100)
    driver = drivers([cabinet], sink)
    await driver.start()
    await wait_until(lambda: f"{cabinet.path}/CommunicationOk" in sink.latest, what="first publication")

    expected_tags = tags_of(cabinet.path, Kind.CABINET)
    for lamp in cabinet.lamps:
        expected_tags |= tags_of(lamp.path, Kind.LAMP)
    first = sink.batches[0]
    assert {record.tag for record in first} == expected_tags
    assert all(record.quality == Quality.GOOD for record in first)
    assert len({record.source_ts for record in first}) == 1
    values = {record.tag: record.value for record in first}
    cab = cabinet.path
    assert {name: values[f"{cab}/{name}"] for name in ("Heartbeat", "LampCount", "EnergyKWh", "MainsVoltage")} == {
        "Heartbeat": 812,
        "LampCount": 3,
        "EnergyKWh": 65.538,
        "MainsVoltage": 230.5,
    }
    assert values[f"{cab}/DoorOpen"] is True and values[f"{cab}/Fault"] is False
    assert values[f"{cab}/Mode"] == 1
    assert values[f"{cab}/PresenceBoostLevel"] == 90.0 and values[f"{cab}/PresenceHoldSeconds"] == 300
    assert values[f"{cab}/CommunicationOk"] is True
    l0, l1, l2 = (lamp.path for lamp in cabinet.lamps)
    assert values[f"{l0}/LampFailure"] is True and values[f"{l0}/On"] is False
    assert values[f"{l0}/LevelSetpoint"] == 50.0 and values[f"{l0}/Level"] == 0.0
    assert values[f"{l1}/Level"] == 70.0 and values[f"{l1}/PowerW"] == 35.1 and values[f"{l1}/EnergyKWh"] == 70.0
    assert values[f"{l1}/PresenceDetected"] is True and values[f"{l1}/PresenceCount"] == 12
    assert values[f"{l1}/BurningHours"] == 2000
    assert values[f"{l2}/NodeFault"] is True and values[f"{l2}/EnergyKWh"] == 0.005

    # one group: IR 0-9, IR 100-123, HR 0-2, HR 100-102, every cycle, nothing else
    reads = {(r.function, r.address, r.count) for r in server.reads()}
    assert reads == {(4, 0, 10), (4, 100, 24), (3, 0, 3), (3, 100, 3)}


async def test_only_changes_are_published(servers: Servers, drivers: Drivers, sink: Sink) -> None:
    cabinet = make_cabinet(0, 128)
    device = conformance_for(cabinet)
    server = servers({1: device})
    point(cabinet, server.port, poll_ms=50)
    driver = drivers([cabinet], sink)
    await driver.start()
    await wait_until(lambda: len(sink.batches) >= 1, what="first publication")
    assert len(sink.batches[0]) == 11 + 1 + 128 * 10
    cycles = driver.device_status()[cabinet.id].cycles
    await wait_until(lambda: driver.device_status()[cabinet.id].cycles >= cycles + 3, what="three more cycles")
    assert len(sink.batches) == 1  # nothing changed: nothing published

    device.set_ir(100 + 8 * 5, [42])  # lamp 5 level
    device.set_ir(100 + 8 * 127 + 1, [0b0011])  # lamp 127 on + failed
    device.set_hr(100 + 64, [77])  # lamp 64 setpoint
    await wait_until(lambda: len(sink.batches) >= 2, what="the change")
    changed = {(record.tag, record.value) for record in sink.batches[1]}
    lamps = cabinet.lamps
    assert changed == {
        (f"{lamps[5].path}/Level", 42.0),
        (f"{lamps[127].path}/On", True),
        (f"{lamps[127].path}/LampFailure", True),
        (f"{lamps[64].path}/LevelSetpoint", 77.0),
    }
    device.set_ir(2, [1])  # heartbeat
    await wait_until(lambda: len(sink.batches) >= 3, what="the heartbeat")
    assert [(r.tag, r.value) for r in sink.batches[2]] == [(f"{cabinet.path}/Heartbeat", 1)]


async def test_controller_values_and_vehicle_total(servers: Servers, drivers: Drivers, sink: Sink) -> None:
    controller = make_controller(0)
    device = conformance_for(controller)
    device.set_ir(4, [3, 2, 17, 0b1000, 1, 0, 100, 200, 0, 0, 0, 0, 0, 65530])
    device.set_hr(0, [3, 30])
    server = servers({1: device})
    point(controller, server.port, poll_ms=50)
    driver = drivers([controller], sink)
    await driver.start()
    path = controller.path
    await wait_until(lambda: f"{path}/VehicleCount" in sink.latest, what="first publication")
    assert {r.tag for r in sink.batches[0]} == tags_of(path, Kind.CONTROLLER)
    assert {name: sink.value(f"{path}/{name}") for name in ("ActivePlan", "Stage", "CycleSecond", "ControlMode")} == {
        "ActivePlan": 3,
        "Stage": 2,
        "CycleSecond": 17,
        "ControlMode": 1,
    }
    assert sink.value(f"{path}/ManualPanel") is True and sink.value(f"{path}/Fault") is False
    assert sink.value(f"{path}/RequestedPlan") == 3 and sink.value(f"{path}/WatchdogSeconds") == 30
    assert sink.value(f"{path}/VehicleCount") == 100 + 200 + 65530  # the sum at the first read
    device.set_ir(10, [105, 200, 0, 0, 0, 0, 0, 4])  # +5, and detector 7 wrapped: +10
    await wait_until(lambda: sink.value(f"{path}/VehicleCount") == 65830 + 15, what="the wrapped total")


async def test_sign_values(servers: Servers, drivers: Drivers, sink: Sink) -> None:
    sign = make_sign(0)
    device = conformance_for(sign)
    device.set_ir(4, [12, 0b0100, 45])
    device.set_ir(10, [ord("T") << 8 | ord("E"), ord("S") << 8 | ord("T")])
    device.set_hr(0, [12, 6, 1, 80])
    server = servers({1: device})
    point(sign, server.port, poll_ms=50)
    driver = drivers([sign], sink)
    await driver.start()
    path = sign.path
    await wait_until(lambda: f"{path}/Message" in sink.latest, what="first publication")
    assert {r.tag for r in sink.batches[0]} == tags_of(path, Kind.SIGN)
    got = {name: sink.value(f"{path}/{name}") for name in ("Message", "MessageId", "Pictogram", "Flashing")}
    assert got == {"Message": "TEST", "MessageId": 12, "Pictogram": 6, "Flashing": True}
    assert sink.value(f"{path}/DoorOpen") is True and sink.value(f"{path}/Fault") is True
    assert sink.value(f"{path}/Luminance") == 450.0 and sink.value(f"{path}/Brightness") == 80


async def test_parking_site_and_sensors(servers: Servers, drivers: Drivers, sink: Sink) -> None:
    site = make_parking(0, 6)
    device = conformance_for(site)
    device.set_ir(5, [3, 1])
    device.set_hr(0, [2])
    device.set_di(0, [True, True, False, True, False, False])
    device.set_di(4096, [False, False, False, False, False, True])
    server = servers({1: device})
    point(site, server.port, poll_ms=50)
    driver = drivers([site], sink)
    await driver.start()
    await wait_until(lambda: f"{site.path}/Free" in sink.latest, what="first publication")
    expected = tags_of(site.path, Kind.PARKING_SITE)
    for sensor in site.sensors:
        expected |= tags_of(sensor.path, Kind.PARKING_SENSOR)
    assert {r.tag for r in sink.batches[0]} == expected
    got = {name: sink.value(f"{site.path}/{name}") for name in ("Capacity", "Occupied", "FaultySensors", "Free")}
    assert got == {"Capacity": 6, "Occupied": 3, "FaultySensors": 1, "Free": 2}
    assert sink.value(f"{site.path}/Full") is False and sink.value(f"{site.path}/DisplayMode") == 2
    assert sink.value(f"{site.path}/OccupancyPercent") == 60.0
    occupied = [sink.value(f"{s.path}/Occupied") for s in site.sensors]
    faults = [sink.value(f"{s.path}/SensorFault") for s in site.sensors]
    assert occupied == [True, True, False, True, False, False]
    assert faults == [False] * 5 + [True]
    assert {(r.function, r.address, r.count) for r in server.reads()} == {
        (4, 0, 10),
        (3, 0, 1),
        (2, 0, 6),
        (2, 4096, 6),
    }
    device.set_di(2, [True])
    await wait_until(lambda: sink.value(f"{site.sensors[2].path}/Occupied") is True, what="bay 2 occupied")
    assert [r.tag for r in sink.batches[-1]] == [f"{site.sensors[2].path}/Occupied"]


async def test_lost_device_turns_bad_with_last_good_time_and_recovers(
    servers: Servers, drivers: Drivers, sink: Sink, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="drivers.modbus")
    period = 0.1
    cabinet = make_cabinet(0, 2)
    device = conformance_for(cabinet)
    device.set_ir(100, [64])
    server = servers({1: device})
    point(cabinet, server.port, poll_ms=100)
    driver = drivers([cabinet], sink, bad_after=2)
    await driver.start()
    comm = f"{cabinet.path}/CommunicationOk"
    await wait_until(lambda: comm in sink.latest, what="first publication")
    value_tags = {r.tag for r in sink.batches[0]} - {comm}
    assert len(value_tags) == 11 + 2 * 10

    killed = time.monotonic()
    await asyncio.to_thread(server.kill)
    await wait_until(
        lambda: all(sink.latest[tag].quality == Quality.BAD_COMM for tag in value_tags), within=3, what="Bad"
    )
    to_bad = time.monotonic() - killed  # measured 0.19-0.20 s: Uncertain at the next cycle, Bad at the one after
    assert to_bad <= 2 * period + 0.15, to_bad  # within two poll periods (plus scheduling slack)
    last_good = driver.device_status()[cabinet.id].last_good
    assert last_good is not None
    level = f"{cabinet.lamps[0].path}/Level"
    assert sink.latest[level].value == 64.0 and sink.latest[level].source_ts == last_good
    assert all(sink.latest[tag].source_ts == last_good for tag in value_tags)
    assert [r.quality for r in sink.of(level)] == [Quality.GOOD, Quality.UNCERTAIN_LAST_USABLE, Quality.BAD_COMM]
    assert sink.latest[comm].value is False and sink.latest[comm].quality == Quality.GOOD
    assert driver.device_status()[cabinet.id].state is LinkState.LOST

    batches = len(sink.batches)
    failed = driver.device_status()[cabinet.id].failed_cycles
    await wait_until(lambda: driver.device_status()[cabinet.id].failed_cycles >= failed + 4, what="more failed cycles")
    assert len(sink.batches) == batches  # no republication while it stays lost
    lost_logs = [r for r in caplog.records if "communication lost" in r.getMessage()]
    assert len(lost_logs) == 1 and cabinet.id in lost_logs[0].getMessage()

    device.set_ir(100, [65])
    await asyncio.to_thread(server.start)
    await wait_until(
        lambda: all(sink.latest[tag].quality == Quality.GOOD for tag in value_tags), within=3, what="Good again"
    )
    assert sink.latest[comm].value is True
    recovery = sink.batches[batches]
    assert {r.tag for r in recovery} == value_tags | {comm}  # a full publication after recovery
    assert sink.latest[level].value == 65.0 and sink.latest[level].source_ts > last_good
    recovered_logs = [r for r in caplog.records if "recovered" in r.getMessage()]
    assert len(recovered_logs) == 1
    assert len([r for r in caplog.records if "communication lost" in r.getMessage()]) == 1


async def test_unreachable_at_start_is_bad_at_once(
    drivers: Drivers, sink: Sink, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    sign = make_sign(free_tcp_port(), poll_ms=50)
    driver = drivers([sign], sink)
    await driver.start()
    comm = f"{sign.path}/CommunicationOk"
    await wait_until(lambda: comm in sink.latest, what="first publication")
    first = sink.batches[0]
    values = [r for r in first if r.tag != comm]
    assert {r.tag for r in values} == tags_of(sign.path, Kind.SIGN) - {comm}
    assert all(r.quality == Quality.BAD_COMM and r.value is None for r in values)
    assert sink.latest[comm].value is False
    await wait_until(lambda: driver.device_status()[sign.id].failed_cycles >= 5, what="more attempts")
    assert len(sink.batches) == 1
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1 and sign.id in warnings[0], warnings  # pymodbus's per-attempt warnings included


async def test_device_answering_exceptions_is_bad_device_failure(
    servers: Servers, drivers: Drivers, sink: Sink, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="drivers.modbus")
    cabinet = make_cabinet(0, 4)
    device = ConformanceDevice(reg.lighting_map(2))  # the device drives 2 lamps, the configuration names 4
    server = servers({1: device})
    point(cabinet, server.port, poll_ms=50)
    driver = drivers([cabinet], sink)
    await driver.start()
    comm = f"{cabinet.path}/CommunicationOk"
    await wait_until(lambda: comm in sink.latest, what="first publication")
    assert sink.latest[f"{cabinet.path}/Mode"].quality == Quality.BAD_DEVICE_FAILURE
    assert sink.latest[comm].value is True  # it answers
    status = driver.device_status()[cabinet.id]
    assert status.state is LinkState.FAILED and "exception 02" in status.last_error
    logs = [r.getMessage() for r in caplog.records]
    assert len(logs) == 1 and "address 100" in logs[0]


async def test_wrong_device_kind_is_refused(servers: Servers, drivers: Drivers, sink: Sink) -> None:
    cabinet = make_cabinet(0, 1)
    device = conformance_for(cabinet)
    device.set_ir(0, [3])  # a traffic controller answers at that address
    server = servers({1: device})
    point(cabinet, server.port, poll_ms=50)
    driver = drivers([cabinet], sink)
    await driver.start()
    await wait_until(lambda: driver.device_status()[cabinet.id].state is LinkState.FAILED, what="refusal")
    assert "kind 3" in driver.device_status()[cabinet.id].last_error
    assert sink.latest[f"{cabinet.path}/LampCount"].quality == Quality.BAD_DEVICE_FAILURE


async def test_start_times_are_jittered(servers: Servers, drivers: Drivers, sink: Sink) -> None:
    devices = {unit: conformance_for(make_controller(0)) for unit in range(1, 21)}
    server = servers(devices)
    controllers = [make_controller(server.port, unit=unit, poll_ms=1000, ident=f"TLC-{unit:03d}") for unit in devices]
    driver = drivers(controllers, sink)
    started = time.monotonic()
    await driver.start()
    await wait_until(lambda: driver.cycle_stats().ok == 20, within=3, what="every controller polled")
    first: dict[int, float] = {}
    for request in server.reads():
        first.setdefault(request.unit, request.at - started)
    offsets = sorted(first.values())
    assert len(offsets) == 20
    assert offsets[-1] - offsets[0] > 0.5, offsets  # spread over the 1 s period, not a burst
    assert len({int(offset / 0.05) for offset in offsets}) >= 8, offsets  # in many distinct 50 ms slots


async def test_a_failing_consumer_does_not_stop_polling(servers: Servers, drivers: Drivers) -> None:
    calls: list[int] = []

    def broken(records: object) -> None:
        calls.append(1)
        raise RuntimeError("consumer bug")

    controller = make_controller(0)
    device = conformance_for(controller)
    server = servers({1: device})
    point(controller, server.port, poll_ms=50)
    driver = drivers([controller], broken)
    await driver.start()
    await wait_until(lambda: len(calls) == 1, what="the first publication")
    device.set_ir(5, [4])
    await wait_until(lambda: len(calls) == 2, what="a later publication")
    assert driver.device_status()[controller.id].state is LinkState.OK


async def test_statistics(servers: Servers, drivers: Drivers, sink: Sink) -> None:
    cabinets = [make_cabinet(0, 128, unit=unit, ident=f"CAB-{unit:04d}") for unit in (1, 2)]
    server = servers({unit: conformance_for(cab) for unit, cab in zip((1, 2), cabinets, strict=True)})
    for cab in cabinets:
        point(cab, server.port, poll_ms=50)
    driver = drivers(cabinets, sink)
    await driver.start()
    await wait_until(lambda: all(s.cycles >= 3 for s in driver.device_status().values()), what="three cycles each")
    status = driver.device_status()["CAB-0001"]
    assert status.reads_per_cycle == 13
    assert status.reads >= 3 * 13 and status.errors == 0 and status.connected
    assert 0 < status.last_cycle_s < 1 and status.max_cycle_s >= status.last_cycle_s
    sweep = await driver.poll_all()
    stats = driver.cycle_stats()
    assert stats.devices == 2 and stats.ok == 2 and stats.reads_per_sweep == 26
    assert stats.last_sweep_s == sweep and 0 < sweep < 1
    assert stats.reads_per_s > 0 and stats.mean_cycle_s > 0
