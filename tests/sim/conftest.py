"""Fixtures of the simulator tests: synthetic sites, a quiet simulator on a manual clock, a raw Modbus client."""

from __future__ import annotations

import asyncio
import contextlib
import struct
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest

from drivers.sim.city import CityOptions
from drivers.sim.runner import CitySimulator
from drivers.sim.synthetic import small_site
from scada.site.model import Site

# 18:00 local in Dijon in winter (UTC+1): evening, busy streets, lamps lit by the centre.
EVENING = datetime(2026, 1, 15, 17, 0, tzinfo=UTC)
QUIET = CityOptions(movers=0, cars=False, random_faults=False)


@pytest.fixture
def site() -> Site:
    """A small synthetic site (3 cabinets × 20 lamps, 2 controllers, 2 signs, 1 parking site of 50 bays)."""
    return small_site()


@pytest.fixture
async def sim(site: Site) -> AsyncIterator[CitySimulator]:
    """A quiet simulator (no movers, cars or random faults) on a manual clock, every device on a free port."""
    simulator = CitySimulator(site, seed=3, bind="free", start_time=EVENING, manual_clock=True, options=QUIET)
    await simulator.start()
    try:
        yield simulator
    finally:
        await simulator.stop()


class RawClient:
    """A minimal Modbus TCP client on raw frames, to send what real clients never would."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.tid = 0

    @classmethod
    async def connect(cls, host: str, port: int) -> RawClient:
        """Open a connection."""
        reader, writer = await asyncio.open_connection(host, port)
        return cls(reader, writer)

    def frame(self, pdu: bytes, unit: int = 1) -> bytes:
        """An MBAP frame around a PDU."""
        self.tid = (self.tid + 1) & 0xFFFF
        return struct.pack(">HHHB", self.tid, 0, len(pdu) + 1, unit) + pdu

    async def answer(self) -> tuple[int, int, bytes]:
        """Read one answer: (transaction id, unit, pdu)."""
        header = await asyncio.wait_for(self.reader.readexactly(7), 5)
        tid, protocol, length, unit = struct.unpack(">HHHB", header)
        assert protocol == 0
        pdu = await asyncio.wait_for(self.reader.readexactly(length - 1), 5)
        return tid, unit, pdu

    async def request(self, pdu: bytes, unit: int = 1) -> bytes:
        """Send one request and return the answer PDU."""
        self.writer.write(self.frame(pdu, unit))
        await self.writer.drain()
        tid, answered_unit, answer = await self.answer()
        assert tid == self.tid and answered_unit == unit
        return answer

    async def read_registers(self, fc: int, address: int, count: int, unit: int = 1) -> list[int] | int:
        """FC3/FC4: the registers, or the exception code."""
        answer = await self.request(struct.pack(">BHH", fc, address, count), unit)
        if answer[0] & 0x80:
            return answer[1]
        assert answer[1] == 2 * count
        return list(struct.unpack(f">{count}H", answer[2:]))

    async def close(self) -> None:
        """Close the connection."""
        self.writer.close()
        with contextlib.suppress(ConnectionError, OSError):
            await self.writer.wait_closed()


@pytest.fixture
async def raw(sim: CitySimulator) -> AsyncIterator[RawClient]:
    """A raw client connected to CAB-0001."""
    endpoint = sim.endpoints["CAB-0001"]
    client = await RawClient.connect(endpoint.host, endpoint.port)
    try:
        yield client
    finally:
        await client.close()


@pytest.fixture
async def connect(sim: CitySimulator) -> AsyncIterator:
    """A factory: `await connect("TLC-001")` opens a raw client to that device (closed at teardown)."""
    clients: list[RawClient] = []

    async def _connect(device_id: str) -> RawClient:
        endpoint = sim.endpoints[device_id]
        client = await RawClient.connect(endpoint.host, endpoint.port)
        clients.append(client)
        return client

    yield _connect
    for client in clients:
        await client.close()
