"""Conformance with independent clients: pyModbusTCP's ModbusClient and pymodbus's AsyncModbusTcpClient."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from pymodbus.client import AsyncModbusTcpClient
from pyModbusTCP.client import ModbusClient

from drivers.modbus import registers as reg
from drivers.modbus.codec import sign_message, sign_text_registers, u32
from drivers.sim.runner import CitySimulator

KINDS = {"CAB-0001": 1, "CAB-0003": 1, "PK-01": 2, "TLC-001": 3, "TLC-002": 3, "VMS-01": 4, "VMS-02": 4}


def _client(sim: CitySimulator, device_id: str) -> ModbusClient:
    endpoint = sim.endpoints[device_id]
    return ModbusClient(host=endpoint.host, port=endpoint.port, unit_id=endpoint.unit, timeout=5.0, auto_open=True)


async def _call(client: ModbusClient, method: str, *args: Any) -> Any:
    """pyModbusTCP is blocking and the server runs on this loop: call it from a thread."""
    return await asyncio.to_thread(getattr(client, method), *args)


@pytest.fixture
async def pymodbus_client(sim: CitySimulator) -> AsyncIterator[Callable[[str], Any]]:
    """A factory of connected pymodbus clients (closed at teardown)."""
    clients: list[AsyncModbusTcpClient] = []

    async def make(device_id: str) -> AsyncModbusTcpClient:
        endpoint = sim.endpoints[device_id]
        client = AsyncModbusTcpClient(endpoint.host, port=endpoint.port, timeout=5, retries=0)
        assert await client.connect()
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


async def test_identification_block_of_every_kind_pymodbustcp(sim: CitySimulator) -> None:
    for device_id, kind in KINDS.items():
        client = _client(sim, device_id)
        words = await _call(client, "read_input_registers", 0, 10)
        assert words is not None, client.last_error_as_txt
        assert words[0] == kind and words[1] == reg.MAP_VERSION
        sim.advance(7)
        again = await _call(client, "read_input_registers", 0, 10)
        assert (again[2] - words[2]) % 0x10000 == 7  # heartbeat +1 per second
        assert words[8] == words[9] == 0  # reserved
        client.close()


async def test_heartbeat_wraps_at_65535(sim: CitySimulator) -> None:
    client = _client(sim, "VMS-01")
    before = (await _call(client, "read_input_registers", 2, 1))[0]
    sim.advance(65536 - before + 3)
    assert (await _call(client, "read_input_registers", 2, 1))[0] == 3
    client.close()


async def test_identification_block_pymodbus(sim: CitySimulator, pymodbus_client) -> None:
    for device_id, kind in KINDS.items():
        client = await pymodbus_client(device_id)
        answer = await client.read_input_registers(0, count=10, device_id=1)
        assert not answer.isError()
        assert answer.registers[0] == kind and answer.registers[1] == 1


@pytest.mark.parametrize(
    ("device_id", "method", "address", "count"),
    [
        ("CAB-0001", "read_input_registers", 10, 1),
        ("CAB-0001", "read_input_registers", 99, 2),
        ("CAB-0001", "read_holding_registers", 3, 1),
        ("CAB-0001", "read_holding_registers", 120, 1),  # 20 lamps: HR100-119
        ("PK-01", "read_input_registers", 10, 1),
        ("PK-01", "read_holding_registers", 1, 1),
        ("PK-01", "read_discrete_inputs", 50, 1),  # 50 bays
        ("PK-01", "read_discrete_inputs", 4096 + 49, 2),
        ("TLC-001", "read_input_registers", 18, 1),
        ("TLC-001", "read_holding_registers", 2, 1),
        ("VMS-01", "read_input_registers", 37, 1),
        ("VMS-01", "read_holding_registers", 5, 1),
        ("VMS-01", "read_holding_registers", 37, 1),
        ("TLC-001", "read_coils", 0, 1),
    ],
)
async def test_outside_the_map_is_exception_02(
    sim: CitySimulator, device_id: str, method: str, address: int, count: int
) -> None:
    client = _client(sim, device_id)
    assert await _call(client, method, address, count) is None
    assert client.last_except == 2
    client.close()


@pytest.mark.parametrize(
    ("device_id", "address", "value"),
    [
        ("CAB-0001", 0, 3),
        ("CAB-0001", 1, 101),
        ("CAB-0001", 2, 0),
        ("CAB-0001", 2, 3601),
        ("CAB-0001", 105, 101),
        ("PK-01", 0, 3),
        ("TLC-001", 0, 11),
        ("TLC-001", 1, 9),
        ("TLC-001", 1, 3601),
        ("VMS-01", 1, 8),
        ("VMS-01", 2, 2),
        ("VMS-01", 3, 101),
        ("VMS-01", 10, 0x4107),  # 'A', BEL
        ("VMS-01", 11, 0x7F41),  # DEL
        ("VMS-01", 12, 0xC341),
    ],
)
async def test_out_of_range_write_is_exception_03_and_changes_nothing(
    sim: CitySimulator, device_id: str, address: int, value: int
) -> None:
    client = _client(sim, device_id)
    before = await _call(client, "read_holding_registers", address, 1)
    assert await _call(client, "write_single_register", address, value) is False
    assert client.last_except == 3
    assert await _call(client, "read_holding_registers", address, 1) == before
    client.close()


async def test_write_multiple_is_validated_whole(sim: CitySimulator) -> None:
    client = _client(sim, "CAB-0001")
    assert await _call(client, "write_multiple_registers", 100, [10, 20, 30]) is True
    assert await _call(client, "write_multiple_registers", 100, [40, 50, 101, 60]) is False
    assert client.last_except == 3
    assert await _call(client, "read_holding_registers", 100, 4) == [10, 20, 30, 0]
    lamps = await _call(client, "read_input_registers", 100, 8 * 4)
    assert [lamps[8 * i] for i in range(4)] == [10, 20, 30, 0]
    client.close()


async def test_valid_writes_read_back_pymodbus(sim: CitySimulator, pymodbus_client) -> None:
    client = await pymodbus_client("CAB-0002")
    assert not (await client.write_registers(100, list(range(0, 100, 5)), device_id=1)).isError()
    answer = await client.read_holding_registers(100, count=20, device_id=1)
    assert answer.registers == list(range(0, 100, 5))
    assert not (await client.write_register(1, 70, device_id=1)).isError()
    assert (await client.read_holding_registers(0, count=3, device_id=1)).registers == [0, 70, 60]
    wrong = await client.write_register(0, 7, device_id=1)
    assert wrong.isError() and wrong.exception_code == 3


async def test_other_unit_id_is_an_error_not_an_answer(sim: CitySimulator, pymodbus_client) -> None:
    client = await pymodbus_client("TLC-001")
    answer = await client.read_input_registers(0, count=10, device_id=9)
    assert answer.isError() and answer.exception_code == 0x0B


async def test_sign_commit_order(sim: CitySimulator, pymodbus_client) -> None:
    client = await pymodbus_client("VMS-01")
    text = sign_text_registers("ACCIDENT\nA 500 M\nRALENTIR")
    # held: pictogram, flashing, brightness, text ... nothing displayed yet
    assert not (await client.write_registers(1, [1, 1, 0], device_id=1)).isError()
    assert not (await client.write_registers(10, text, device_id=1)).isError()
    shown = await client.read_input_registers(0, count=37, device_id=1)
    assert shown.registers[4] == 0 and sign_message(shown.registers[10:37]) == ""
    assert (await client.read_holding_registers(10, count=27, device_id=1)).registers == text
    # writing HR0 commits
    assert not (await client.write_register(0, 42, device_id=1)).isError()
    shown = await client.read_input_registers(0, count=37, device_id=1)
    assert shown.registers[4] == 42
    assert sign_message(shown.registers[10:37]) == "ACCIDENT\nA 500 M\nRALENTIR"
    sign = sim.device("VMS-01")
    assert sign.pictogram == 1 and sign.flashing == 1  # type: ignore[attr-defined]
    # HR0-HR36 in one write-multiple also commits (the reserved HR4-9 inside are ignored)
    other = sign_text_registers("BOUCHON")
    assert not (await client.write_registers(0, [43, 3, 0, 0, 9, 9, 9, 9, 9, 9, *other], device_id=1)).isError()
    shown = await client.read_input_registers(4, count=33, device_id=1)
    assert shown.registers[0] == 43 and sign_message(shown.registers[6:33]) == "BOUCHON"
    assert (await client.read_holding_registers(0, count=37, device_id=1)).registers[4:10] == [0] * 6
    # a bad character anywhere: exception 03, nothing held, nothing displayed
    bad = sign_text_registers("FEU")
    bad[5] = 0x4109
    answer = await client.write_registers(0, [44, 0, 0, 0, 0, 0, 0, 0, 0, 0, *bad], device_id=1)
    assert answer.isError() and answer.exception_code == 3
    shown = await client.read_input_registers(4, count=33, device_id=1)
    assert shown.registers[0] == 43 and sign_message(shown.registers[6:33]) == "BOUCHON"
    held = await client.read_holding_registers(0, count=4, device_id=1)
    assert held.registers == [43, 3, 0, 0]
    # starting in the reserved gap is outside the map
    answer = await client.write_registers(5, [0] * 10, device_id=1)
    assert answer.isError() and answer.exception_code == 2
    # message id 0 with empty text blanks the sign
    assert not (await client.write_registers(1, [0, 0, 0], device_id=1)).isError()
    assert not (await client.write_registers(10, [0] * 27, device_id=1)).isError()
    shown = await client.read_input_registers(4, count=33, device_id=1)
    assert shown.registers[0] == 43  # held only: HR0 not written yet
    assert not (await client.write_register(0, 0, device_id=1)).isError()
    shown = await client.read_input_registers(4, count=33, device_id=1)
    assert shown.registers[0] == 0 and shown.registers[6:33] == [0] * 27
    assert shown.registers[2] == 0  # blank: no luminance


async def test_parking_bits_and_counts_pymodbus(sim: CitySimulator, pymodbus_client) -> None:
    client = await pymodbus_client("PK-01")
    sim.set_occupancy("PK-01", 17)
    await sim.set_fault("PS-01-0003", "sensor", True)
    ident = (await client.read_input_registers(0, count=10, device_id=1)).registers
    bits = (await client.read_discrete_inputs(0, count=50, device_id=1)).bits[:50]
    faults = (await client.read_discrete_inputs(4096, count=50, device_id=1)).bits[:50]
    assert ident[4] == 50
    assert ident[5] == sum(bits) and ident[6] == sum(faults) == 1
    assert faults[2] and not bits[2]
    assert sum(bits) in (16, 17)  # bay 2 reads free while its sensor is faulty


async def test_lamp_registers_decode(sim: CitySimulator) -> None:
    client = _client(sim, "CAB-0001")
    assert await _call(client, "write_multiple_registers", 100, [100, 50]) is True
    words = await _call(client, "read_input_registers", 100, 16)
    cabinet = sim.device("CAB-0001")
    rated = cabinet._rated  # type: ignore[attr-defined]
    assert words[0] == 100 and words[1] & 1 and words[2] == round(rated[0] * 10)
    assert words[8] == 50 and words[10] == round(rated[1] * (0.05 + 0.95 * 0.5) * 10)
    energy = u32(words[3], words[4])
    sim.advance(3600)
    later = await _call(client, "read_input_registers", 100, 8)
    assert u32(later[3], later[4]) - energy == pytest.approx(rated[0], abs=1.01)
    client.close()
