"""DeviceConnection against the independent pyModbusTCP device: reads, writes, exceptions, timeouts, backoff."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator, Callable

import pytest
from modbus_conformance import ConformanceDevice, ConformanceServer
from modbus_helpers import free_tcp_port
from pymodbus.exceptions import ModbusIOException
from pymodbus.pdu.register_message import ReadInputRegistersResponse

from drivers.modbus import registers as reg
from drivers.modbus.client import (
    Backoff,
    BackoffWait,
    DeviceConnection,
    DeviceExceptionError,
    FastInputRegisters,
    LinkError,
)

Servers = Callable[[dict[int, ConformanceDevice]], ConformanceServer]


@pytest.fixture
async def cabinet_link(
    servers: Servers,
) -> AsyncIterator[tuple[DeviceConnection, ConformanceServer, ConformanceDevice]]:
    device = ConformanceDevice(reg.lighting_map(4))
    server = servers({7: device})
    connection = DeviceConnection(
        "127.0.0.1", server.port, 7, timeout=0.3, backoff=Backoff(0.05, 0.2, random.Random(3)), label="test"
    )
    yield connection, server, device
    connection.close()


async def test_reads_and_writes_with_the_unit_id(
    cabinet_link: tuple[DeviceConnection, ConformanceServer, ConformanceDevice],
) -> None:
    connection, server, device = cabinet_link
    device.set_ir(100, [55, 1, 420, 0, 10, 3, 99, 0])
    await connection.connect()
    assert connection.connected
    assert await connection.read_input_registers(100, 8) == [55, 1, 420, 0, 10, 3, 99, 0]
    await connection.write_registers(101, [33])
    await connection.write_registers(100, [10, 20, 30])
    assert await connection.read_holding_registers(100, 4) == [10, 20, 30, 0]
    assert [(r.unit, r.function, r.address, r.values) for r in server.writes()] == [
        (7, 6, 101, (33,)),
        (7, 16, 100, (10, 20, 30)),
    ]
    assert {r.unit for r in server.requests} == {7}


async def test_discrete_inputs_are_cut_to_the_count(servers: Servers) -> None:
    device = ConformanceDevice(reg.parking_map(11))
    device.set_di(0, [True, False, True] + [False] * 7 + [True])
    server = servers({1: device})
    connection = DeviceConnection("127.0.0.1", server.port, 1, timeout=0.5, backoff=Backoff(), label="t")
    await connection.connect()
    try:
        bits = await connection.read_discrete_inputs(0, 11)
        assert bits == [True, False, True] + [False] * 7 + [True]
    finally:
        connection.close()


async def test_exception_answers_are_typed(
    cabinet_link: tuple[DeviceConnection, ConformanceServer, ConformanceDevice],
) -> None:
    connection, _, device = cabinet_link
    await connection.connect()
    with pytest.raises(DeviceExceptionError) as address_error:
        await connection.read_input_registers(10, 5)  # IR 10-99 is a gap of the map
    assert address_error.value.code == 2 and address_error.value.function == 0x04
    with pytest.raises(DeviceExceptionError) as value_error:
        await connection.write_registers(0, [3])  # HR 0 accepts 0-2
    assert value_error.value.code == 3
    device.fail_next = 6
    with pytest.raises(DeviceExceptionError) as busy:
        await connection.read_input_registers(0, 10)
    assert busy.value.code == 6
    assert connection.connected  # an exception answer is not a link failure
    assert (await connection.read_input_registers(0, 2)) == [1, 1]


async def test_silent_device_times_out_and_drops_the_connection(
    cabinet_link: tuple[DeviceConnection, ConformanceServer, ConformanceDevice],
) -> None:
    connection, server, _ = cabinet_link
    await connection.connect()
    server.silence()
    started = time.monotonic()
    with pytest.raises(LinkError, match="no answer"):
        await connection.read_input_registers(0, 10)
    assert 0.25 < time.monotonic() - started < 1.5
    assert not connection.connected
    assert connection.stats.link_errors == 1


async def test_killed_device_fails_the_request_in_flight_at_once(
    cabinet_link: tuple[DeviceConnection, ConformanceServer, ConformanceDevice],
) -> None:
    connection, server, _ = cabinet_link
    connection.timeout = 5.0
    await connection.connect()
    server.silence()
    request = asyncio.create_task(connection.read_input_registers(0, 10))
    await asyncio.sleep(0.05)
    started = time.monotonic()
    await asyncio.to_thread(server.kill)
    with pytest.raises(LinkError):
        await request
    assert time.monotonic() - started < 2.0  # not the 5 s timeout: the closed connection fails it


async def test_unreachable_device_backs_off(
    cabinet_link: tuple[DeviceConnection, ConformanceServer, ConformanceDevice],
) -> None:
    connection, server, _ = cabinet_link
    connection.backoff = Backoff(2.0, 4.0, random.Random(1))
    server.kill()
    with pytest.raises(LinkError, match="cannot connect"):
        await connection.connect()
    with pytest.raises(BackoffWait):
        await connection.connect()
    assert 1.0 <= connection.retry_in <= 2.0
    server.start()
    with pytest.raises(BackoffWait):
        await connection.connect()  # still inside the backoff delay
    await connection.connect(force=True)  # a command may try at once
    assert connection.connected


async def test_reconnects_after_the_device_closed_an_idle_connection(
    cabinet_link: tuple[DeviceConnection, ConformanceServer, ConformanceDevice],
) -> None:
    connection, server, _ = cabinet_link
    await connection.connect()
    server.restart()
    await asyncio.sleep(0.05)
    with pytest.raises(LinkError):
        await connection.read_input_registers(0, 10)
    connection.reset_backoff()
    await connection.connect()
    assert await connection.read_input_registers(0, 2) == [1, 1]


async def test_connect_to_a_closed_port_fails_fast() -> None:
    connection = DeviceConnection("127.0.0.1", free_tcp_port(), 1, timeout=2.0, backoff=Backoff(), label="t")
    started = time.monotonic()
    with pytest.raises(LinkError):
        await connection.connect()
    assert time.monotonic() - started < 1.0
    assert connection.stats.connect_failures == 1


def test_backoff_grows_exponentially_with_jitter_up_to_the_cap() -> None:
    backoff = Backoff(1.0, 30.0, random.Random(5))
    delays = [backoff.next_delay() for _ in range(10)]
    ceilings = [1, 2, 4, 8, 16, 30, 30, 30, 30, 30]
    for delay, ceiling in zip(delays, ceilings, strict=True):
        assert ceiling / 2 <= delay <= ceiling
    assert len(set(delays)) == len(delays)  # jittered
    backoff.reset()
    assert backoff.next_delay() <= 1.0


@pytest.mark.parametrize("words", [[0], [1, 0xFFFF, 0x8000, 42], list(range(125))])
def test_fast_register_decoding_matches_pymodbus(words: list[int]) -> None:
    payload = bytes([2 * len(words)]) + b"".join(word.to_bytes(2, "big") for word in words)
    reference = ReadInputRegistersResponse()
    reference.decode(payload)
    fast = FastInputRegisters()
    fast.decode(payload)
    assert fast.registers == reference.registers == words
    assert fast.function_code == 4
    assert "count=" in str(fast)


def test_fast_register_decoding_rejects_a_short_answer() -> None:
    with pytest.raises(ModbusIOException):
        FastInputRegisters().decode(bytes([8, 0, 1, 0, 2]))
