"""The Modbus TCP server: framing, exception codes, unit ids, garbage, concurrency, listener kill/restart."""

from __future__ import annotations

import asyncio
import logging
import struct

import pytest

from drivers.sim.runner import CitySimulator


async def test_reads_answer_the_identification_block(raw) -> None:
    words = await raw.read_registers(4, 0, 10)
    assert words[0] == 1 and words[1] == 1  # kind lighting, map version 1
    assert words[4] == 20  # lamp count


@pytest.mark.parametrize(
    ("pdu", "code"),
    [
        (struct.pack(">BHH", 4, 0, 0), 3),  # zero quantity
        (struct.pack(">BHH", 4, 100, 126), 3),  # more than 125 registers
        (struct.pack(">BHH", 3, 0, 126), 3),
        (struct.pack(">BHH", 2, 0, 2001), 3),  # more than 2000 bits
        (struct.pack(">BHH", 4, 10, 1), 2),  # IR10: not in the lighting map
        (struct.pack(">BHH", 4, 8, 3), 2),  # IR8-10 crosses the end of the identification block
        (struct.pack(">BHH", 4, 100 + 8 * 20, 1), 2),  # one past the last lamp
        (struct.pack(">BHH", 3, 3, 1), 2),  # HR3
        (struct.pack(">BHH", 1, 0, 1), 2),  # no coils
        (struct.pack(">BHH", 2, 0, 1), 2),  # no discrete inputs on a cabinet
        (struct.pack(">BHH", 5, 0, 0xFF00), 2),  # write coil: no coils
        (struct.pack(">BHH", 5, 0, 0x1234), 3),  # write coil: bad value
        (struct.pack(">BHHB", 15, 0, 8, 1) + b"\x00", 2),
        (struct.pack(">BHHB", 15, 0, 8, 2) + b"\x00\x00", 3),  # byte count does not match
        (struct.pack(">BHH", 6, 3, 1), 2),  # HR3 not in map
        (struct.pack(">BHH", 6, 0, 3), 3),  # command 3 is out of range
        (struct.pack(">BHHB", 16, 100, 2, 3) + b"\x00\x01\x00", 3),  # byte count mismatch
        (struct.pack(">BHHB", 16, 100, 0, 0), 3),  # zero registers
        (struct.pack(">BHHB", 16, 100, 124, 246) + b"\x00" * 246, 3),  # more than 123 registers (frame max 253)
        (struct.pack(">BHH", 43, 0, 0), 1),  # illegal function
        (struct.pack(">BHH", 23, 0, 0), 1),
        (bytes([4, 0, 0]), 3),  # truncated read request
    ],
)
async def test_exception_codes(raw, pdu: bytes, code: int) -> None:
    answer = await raw.request(pdu)
    assert answer == bytes((pdu[0] | 0x80, code))


async def test_full_lamp_table_reads_in_125_register_blocks(raw) -> None:
    for start in range(100, 100 + 8 * 20, 125):
        count = min(125, 100 + 8 * 20 - start)
        words = await raw.read_registers(4, start, count)
        assert isinstance(words, list) and len(words) == count


async def test_other_unit_id_answers_gateway_exception_without_traceback(raw, caplog) -> None:
    caplog.set_level(logging.DEBUG, logger="drivers.sim")
    answer = await raw.request(struct.pack(">BHH", 4, 0, 10), unit=7)
    assert answer == bytes((0x84, 0x0B))
    assert await raw.read_registers(4, 0, 1) == [1]  # the connection still works
    assert not any(record.exc_info for record in caplog.records)


async def test_partial_frames_are_reassembled(raw) -> None:
    frame = raw.frame(struct.pack(">BHH", 4, 0, 2))
    for byte in frame:
        raw.writer.write(bytes([byte]))
        await raw.writer.drain()
        await asyncio.sleep(0)
    _, _, pdu = await raw.answer()
    assert pdu == bytes([4, 4, 0, 1, 0, 1])


async def test_pipelined_frames_are_answered_in_order(raw) -> None:
    frames = [raw.frame(struct.pack(">BHH", 4, 0, 1)) for _ in range(50)]
    raw.writer.write(b"".join(frames))
    await raw.writer.drain()
    tids = [(await raw.answer())[0] for _ in range(50)]
    assert tids == list(range(1, 51))


@pytest.mark.parametrize(
    "garbage",
    [
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
        struct.pack(">HHHB", 1, 0, 0, 1),  # length 0
        struct.pack(">HHHB", 1, 0, 1000, 1) + b"\x04",  # length beyond 254
        struct.pack(">HHHB", 1, 7, 6, 1) + struct.pack(">BHH", 4, 0, 1),  # protocol id 7
        bytes(range(256)) * 4,
    ],
)
async def test_garbage_closes_the_connection_and_the_server_lives(sim: CitySimulator, connect, garbage: bytes) -> None:
    bad = await connect("CAB-0001")
    bad.writer.write(garbage)
    await bad.writer.drain()
    assert await asyncio.wait_for(bad.reader.read(), 5) == b""  # closed by the server
    good = await connect("CAB-0001")
    assert await good.read_registers(4, 0, 1) == [1]


async def test_concurrent_clients(sim: CitySimulator, connect) -> None:
    clients = [await connect(device_id) for device_id in ("CAB-0001", "CAB-0001", "CAB-0002", "TLC-001", "VMS-01")]

    async def hammer(client) -> int:
        done = 0
        for _ in range(100):
            words = await client.read_registers(4, 0, 10)
            assert isinstance(words, list) and words[1] == 1
            done += 1
        return done

    assert sum(await asyncio.gather(*(hammer(client) for client in clients))) == 500


async def test_silent_device_answers_nothing(sim: CitySimulator, raw) -> None:
    await sim.set_fault("CAB-0001", "silent", True)
    raw.writer.write(raw.frame(struct.pack(">BHH", 4, 0, 1)))
    await raw.writer.drain()
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(raw.reader.readexactly(1), 0.3)
    await sim.set_fault("CAB-0001", "silent", False)
    assert await raw.read_registers(4, 0, 1) == [1]


async def test_kill_and_restart_a_listener(sim: CitySimulator, connect) -> None:
    client = await connect("TLC-001")
    port = sim.endpoints["TLC-001"].port
    assert await client.read_registers(4, 0, 1) == [3]
    await sim.set_fault("TLC-001", "offline", True)
    assert not sim.listening("TLC-001")
    assert await asyncio.wait_for(client.reader.read(), 5) == b""  # dropped
    with pytest.raises(OSError):
        await connect("TLC-001")
    other = await connect("TLC-002")  # the others keep running
    assert await other.read_registers(4, 0, 1) == [3]
    await sim.set_fault("TLC-001", "offline", False)
    assert sim.endpoints["TLC-001"].port == port and sim.listening("TLC-001")
    again = await connect("TLC-001")
    assert await again.read_registers(4, 0, 1) == [3]


async def test_start_and_stop_are_idempotent(site) -> None:
    simulator = CitySimulator(site, bind="free", manual_clock=True)
    await simulator.start()
    await simulator.start()
    endpoint = simulator.endpoints["VMS-01"]
    await simulator.stop()
    await simulator.stop()
    with pytest.raises(OSError):
        await asyncio.open_connection(endpoint.host, endpoint.port)


async def test_site_bind_uses_the_site_endpoints_and_shares_ports_by_unit(site) -> None:
    from dataclasses import replace

    from drivers.sim.errors import BindError

    probe = CitySimulator(site, bind="free", manual_clock=True)
    await probe.start()
    port = probe.endpoints["CAB-0001"].port
    await probe.stop()
    # two devices on one port with different unit ids: one listener serves both
    site.cabinets["CAB-0001"].endpoint = replace(site.cabinets["CAB-0001"].endpoint, port=port, unit=1)
    site.cabinets["CAB-0002"].endpoint = replace(site.cabinets["CAB-0002"].endpoint, port=port, unit=2)
    for device in site.field_devices():
        if device.id not in ("CAB-0001", "CAB-0002"):
            device.endpoint = replace(device.endpoint, port=0)
    shared = CitySimulator(site, bind="site", manual_clock=True)
    with pytest.raises(BindError):  # every other device asks for port 0 on the same host with unit 1
        await shared.start()
    site.controllers.clear()
    site.signs.clear()
    site.parking.clear()
    site.cabinets.pop("CAB-0003")
    shared = CitySimulator(site, bind="site", manual_clock=True)
    await shared.start()
    try:
        assert shared.endpoints["CAB-0001"].port == shared.endpoints["CAB-0002"].port == port
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        for unit, lamps in ((1, 20), (2, 20)):
            writer.write(struct.pack(">HHHBBHH", unit, 0, 6, unit, 4, 4, 1))
            answer = await reader.readexactly(11)
            assert struct.unpack(">H", answer[-2:])[0] == lamps
        writer.close()
    finally:
        await shared.stop()
