"""Commands through the driver against the independent pyModbusTCP device: register writes, read-back, errors."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

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
)

from drivers.modbus import registers as reg
from drivers.modbus.driver import ModbusDriver
from scada.model import (
    DeviceCommunicationError,
    DeviceRejectedError,
    InvalidArgumentError,
    OutOfRangeError,
    Quality,
    UnknownDeviceError,
    WriteRequest,
)
from scada.site.model import Cabinet, FieldDevice, ParkingSite, Sign, TrafficController

Servers = Callable[[dict[int, ConformanceDevice]], ConformanceServer]
Drivers = Callable[..., ModbusDriver]


@dataclass
class City:
    """Four devices of four kinds on one conformance server (unit ids 1-4), a driver polling them."""

    server: ConformanceServer
    driver: ModbusDriver
    sink: Sink
    cabinet: Cabinet
    controller: TrafficController
    sign: Sign
    parking: ParkingSite

    def device(self, unit: int) -> ConformanceDevice:
        return self.server.devices[unit]


@pytest.fixture
async def city(servers: Servers, drivers: Drivers, sink: Sink) -> AsyncIterator[City]:
    cabinet = make_cabinet(0, 4, unit=1)
    controller = make_controller(0, unit=2)
    sign = make_sign(0, unit=3)
    parking = make_parking(0, 3, unit=4)
    devices: list[FieldDevice] = [cabinet, controller, sign, parking]
    server = servers({unit: conformance_for(d) for unit, d in zip((1, 2, 3, 4), devices, strict=True)})
    for device in devices:
        point(device, server.port, poll_ms=60_000)  # the loops stay quiet: the tests drive the cycles
    driver = drivers(devices, sink, refresh_s=0.1, watchdog_s=10)
    await driver.start()
    await driver.poll_all()
    server.clear()
    yield City(server, driver, sink, cabinet, controller, sign, parking)


def wire(server: ConformanceServer) -> list[tuple[int, int, int, tuple[int, ...]]]:
    """(unit, function, address, values) of every write received."""
    return [(r.unit, r.function, r.address, r.values) for r in server.writes()]


async def test_lamp_set_level_is_fc06_and_updates_at_once(city: City) -> None:
    lamp = city.cabinet.lamps[2]
    result = await city.driver.execute(WriteRequest(lamp.id, "set_level", {"Level": 33.3}, user="op"))
    assert wire(city.server) == [(1, 6, 102, (33,))]
    assert city.device(1).hr[102] == 33
    tag = f"{lamp.path}/LevelSetpoint"
    assert result.ok and result.status == Quality.GOOD
    assert result.values == {tag: 33.0}
    assert city.sink.latest[tag].value == 33.0 and city.sink.latest[tag].quality == Quality.GOOD  # no poll needed
    reads = [(r.function, r.address, r.count) for r in city.server.reads()]
    assert reads == [(3, 102, 1)]  # the read-back of exactly what was written


async def test_set_all_levels_is_one_write_multiple(city: City) -> None:
    result = await city.driver.execute(WriteRequest(city.cabinet.id, "set_all_levels", {"Level": 80}))
    assert wire(city.server) == [(1, 16, 100, (80, 80, 80, 80))]
    assert result.values == {f"{lamp.path}/LevelSetpoint": 80.0 for lamp in city.cabinet.lamps}


async def test_group_of_lamps_is_written_by_contiguous_runs(city: City) -> None:
    result = await city.driver.execute_group(city.cabinet.id, {0: 10, 1: 20.4, 3: 40})
    assert wire(city.server) == [(1, 16, 100, (10, 20)), (1, 6, 103, (40,))]
    assert city.device(1).hr[100:104] == [10, 20, 0, 40]
    assert len(result.values) == 3
    with pytest.raises(OutOfRangeError):
        await city.driver.execute_group(city.cabinet.id, {0: 120})
    with pytest.raises(InvalidArgumentError):
        await city.driver.execute_group(city.cabinet.id, {9: 50})
    with pytest.raises(UnknownDeviceError):
        await city.driver.execute_group(city.sign.id, {0: 50})


async def test_cabinet_settings(city: City) -> None:
    cab = city.cabinet
    await city.driver.execute(WriteRequest(cab.id, "set_mode", {"Mode": 2}))
    await city.driver.execute(WriteRequest(cab.id, "set_presence_boost", {"Level": 75}))
    await city.driver.execute(WriteRequest(cab.id, "set_presence_hold", {"Seconds": 600}))
    result = await city.driver.execute(WriteRequest(cab.id, "set_presence", {"BoostLevel": 60, "HoldSeconds": 45}))
    assert wire(city.server) == [(1, 6, 0, (2,)), (1, 6, 1, (75,)), (1, 6, 2, (600,)), (1, 16, 1, (60, 45))]
    assert result.values == {f"{cab.path}/PresenceBoostLevel": 60.0, f"{cab.path}/PresenceHoldSeconds": 45}
    assert city.sink.value(f"{cab.path}/Mode") == 2


async def test_sign_display_commits_hr_0_to_36_in_one_request(city: City) -> None:
    sign = city.sign
    result = await city.driver.execute(
        WriteRequest(sign.id, "display", {"Text": "ACCIDENT\nA 2 KM", "Pictogram": 1, "Flashing": True})
    )
    [write] = city.server.writes()
    assert (write.unit, write.function, write.address, write.count) == (3, 16, 0, 37)
    assert write.values[0:4] == (1, 1, 1, 0)  # new id, pictogram, flashing, automatic brightness
    assert city.device(3).ir[4] == 1  # the device committed it
    assert result.values == {
        f"{sign.path}/Message": "ACCIDENT\nA 2 KM",
        f"{sign.path}/MessageId": 1,
        f"{sign.path}/Pictogram": 1,
        f"{sign.path}/Flashing": True,
        f"{sign.path}/Brightness": 0,
    }
    assert city.sink.value(f"{sign.path}/Message") == "ACCIDENT\nA 2 KM"

    second = await city.driver.execute(WriteRequest(sign.id, "display", {"Text": "BOUCHON", "Pictogram": 3}))
    assert second.values[f"{sign.path}/MessageId"] == 2
    blank = await city.driver.execute(WriteRequest(sign.id, "blank"))
    assert city.server.writes()[-1].values == (0,) * 37
    assert blank.values[f"{sign.path}/Message"] == "" and blank.values[f"{sign.path}/MessageId"] == 0
    third = await city.driver.execute(WriteRequest(sign.id, "display", {"Text": "OK"}))
    assert third.values[f"{sign.path}/MessageId"] == 3  # ids keep incrementing after a blank
    assert all(w.function == 16 and w.count == 37 for w in city.server.writes())


async def test_sign_message_ids_continue_after_the_one_shown(city: City) -> None:
    city.device(3).set_ir(4, [65535])
    await city.driver.poll_all()
    result = await city.driver.execute(WriteRequest(city.sign.id, "display", {"Text": "X"}))
    assert result.values[f"{city.sign.path}/MessageId"] == 1  # 65535 wraps to 1, skipping 0


async def test_concurrent_displays_get_distinct_ids(city: City) -> None:
    requests = [WriteRequest(city.sign.id, "display", {"Text": f"MSG {n}"}) for n in range(5)]
    results = await asyncio.gather(*(city.driver.execute(request) for request in requests))
    assert all(result.ok for result in results)
    assert sorted(w.values[0] for w in city.server.writes()) == [1, 2, 3, 4, 5]


async def test_bad_sign_text_sends_nothing(city: City) -> None:
    with pytest.raises(InvalidArgumentError, match="19 characters"):
        await city.driver.execute(WriteRequest(city.sign.id, "display", {"Text": "X" * 19}))
    with pytest.raises(InvalidArgumentError):
        await city.driver.execute(WriteRequest(city.sign.id, "display", {"Text": "PÉAGE"}))
    assert city.server.writes() == []


async def test_parking_display_mode(city: City) -> None:
    result = await city.driver.execute(WriteRequest(city.parking.id, "set_display_mode", {"Mode": 1}))
    assert wire(city.server) == [(4, 6, 0, (1,))]
    assert result.values == {f"{city.parking.path}/DisplayMode": 1}


async def test_device_exception_03_is_out_of_range(city: City) -> None:
    city.device(1).fail_next = 3
    with pytest.raises(OutOfRangeError) as error:
        await city.driver.execute(WriteRequest(city.cabinet.id, "set_mode", {"Mode": 1}))
    assert error.value.status == Quality.BAD_OUT_OF_RANGE
    assert city.device(1).hr[0] == 0


async def test_device_exception_02_is_rejected_as_not_supported(servers: Servers, drivers: Drivers, sink: Sink) -> None:
    cabinet = make_cabinet(0, 4)
    server = servers({1: ConformanceDevice(reg.lighting_map(2))})  # the device has 2 lamps, the site names 4
    point(cabinet, server.port, poll_ms=60_000)
    driver = drivers([cabinet], sink)
    await driver.start()
    with pytest.raises(DeviceRejectedError) as error:
        await driver.execute(WriteRequest(cabinet.lamps[3].id, "set_level", {"Level": 50}))
    assert error.value.status == Quality.BAD_NOT_SUPPORTED
    assert "exception 02" in str(error.value)
    ok = await driver.execute(WriteRequest(cabinet.lamps[1].id, "set_level", {"Level": 50}))
    assert ok.ok


async def test_other_device_exceptions_are_rejected(city: City) -> None:
    city.device(4).fail_next = 4
    with pytest.raises(DeviceRejectedError) as error:
        await city.driver.execute(WriteRequest(city.parking.id, "set_display_mode", {"Mode": 2}))
    assert error.value.status == Quality.BAD_DEVICE_FAILURE


@pytest.mark.parametrize(
    ("device_id", "action", "args", "error"),
    [
        ("NOPE", "set_mode", {"Mode": 1}, UnknownDeviceError),
        ("CAB-0001", "explode", {}, InvalidArgumentError),
        ("CAB-0001", "set_level", {"Level": 5}, InvalidArgumentError),  # a lamp action on the cabinet
        ("PK-01-S0000", "set_display_mode", {"Mode": 1}, InvalidArgumentError),
        ("CAB-0001", "set_mode", {"Mode": 7}, OutOfRangeError),
        ("TLC-001", "select_plan", {"Plan": 0, "DurationSeconds": 60}, OutOfRangeError),
        ("TLC-001", "select_plan", {"Plan": 2}, InvalidArgumentError),
    ],
)
async def test_refused_requests_send_nothing(
    city: City, device_id: str, action: str, args: dict[str, object], error: type[Exception]
) -> None:
    with pytest.raises(error):
        await city.driver.execute(WriteRequest(device_id, action, args))
    assert city.server.writes() == []


async def test_unreachable_device_is_a_communication_error(city: City) -> None:
    await asyncio.to_thread(city.server.kill)
    with pytest.raises(DeviceCommunicationError) as error:
        await city.driver.execute(WriteRequest(city.cabinet.id, "set_mode", {"Mode": 1}))
    assert error.value.status == Quality.BAD_COMM


async def test_silent_device_times_out(city: City) -> None:
    city.server.silence()
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(DeviceCommunicationError, match="no answer"):
        await city.driver.execute(WriteRequest(city.parking.id, "set_display_mode", {"Mode": 1}))
    assert 0.4 < loop.time() - started < 2.0  # the driver's 0.5 s timeout


async def test_commands_share_the_connection_with_fast_polling(servers: Servers, drivers: Drivers, sink: Sink) -> None:
    cabinet = make_cabinet(0, 16)
    device = conformance_for(cabinet)
    server = servers({1: device})
    point(cabinet, server.port, poll_ms=5)
    driver = drivers([cabinet], sink)
    await driver.start()
    results = await asyncio.gather(
        *(driver.execute(WriteRequest(lamp.id, "set_level", {"Level": lamp.index * 5})) for lamp in cabinet.lamps)
    )
    assert all(result.ok for result in results)
    assert device.hr[100:116] == [index * 5 for index in range(16)]
    assert server.connections == 1
    assert driver.device_status()[cabinet.id].errors == 0


async def test_stopped_driver_refuses_commands(city: City) -> None:
    await city.driver.stop()
    with pytest.raises(DeviceCommunicationError, match="not running"):
        await city.driver.execute(WriteRequest(city.cabinet.id, "set_mode", {"Mode": 1}))
