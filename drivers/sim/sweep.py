"""A lean poll-like sweep over simulated devices: read every register of each device's map, like a poll cycle.

Used by bench/sim_load.py and the city-scale test to load the simulator the way the control server does: one
connection per device, one request at a time, reads planned with codec.plan_reads (125 registers / 2000 bits).
"""

from __future__ import annotations

import asyncio
import struct
from dataclasses import dataclass, field

from drivers.modbus.codec import plan_reads
from drivers.modbus.registers import (
    KIND_LIGHTING,
    KIND_PARKING,
    KIND_SIGN,
    KIND_TRAFFIC,
    MAX_BITS_PER_READ,
    MAX_REGISTERS_PER_READ,
    DeviceMap,
    lighting_map,
    parking_map,
    sign_map,
    traffic_map,
)

_HEADER = struct.Struct(">HHHB")


class SweepError(Exception):
    """A device answered a sweep read with an exception or a malformed frame."""


@dataclass(slots=True)
class DeviceLink:
    """One open connection to one device and its read plan."""

    device_id: str
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    unit: int
    kind: int = 0
    reads: list[tuple[int, int, int]] = field(default_factory=list)  # (function, address, count)
    tid: int = 0

    async def request(self, fc: int, address: int, count: int) -> bytes:
        """One read request; returns the data bytes of the answer."""
        self.tid = (self.tid + 1) & 0xFFFF
        self.writer.write(_HEADER.pack(self.tid, 0, 6, self.unit) + struct.pack(">BHH", fc, address, count))
        header = await self.reader.readexactly(7)
        tid, _protocol, length, _unit = _HEADER.unpack(header)
        body = await self.reader.readexactly(length - 1)
        if tid != self.tid or body[0] != fc:
            raise SweepError(f"{self.device_id}: fc {fc} at {address}+{count} answered {body[:2].hex()}")
        return body[2:]

    async def identify(self) -> list[int]:
        """Read IR0-9, learn the kind and build the read plan of the whole map."""
        data = await self.request(4, 0, 10)
        ident = list(struct.unpack(">10H", data))
        self.kind = ident[0]
        self.reads = read_plan(device_map(ident))
        return ident

    def close(self) -> None:
        """Close the connection."""
        self.writer.close()


def device_map(ident: list[int]) -> DeviceMap:
    """The map of a device from its identification block."""
    kind = ident[0]
    if kind == KIND_LIGHTING:
        return lighting_map(ident[4])
    if kind == KIND_PARKING:
        return parking_map(ident[4])
    if kind == KIND_TRAFFIC:
        return traffic_map()
    if kind == KIND_SIGN:
        return sign_map()
    raise SweepError(f"unknown device kind {kind}")


def read_plan(dmap: DeviceMap) -> list[tuple[int, int, int]]:
    """Every read (function, address, count) that covers a map."""
    plan = [(4, a, n) for a, n in plan_reads(dmap.input_registers, MAX_REGISTERS_PER_READ)]
    plan += [(3, a, n) for a, n in plan_reads(dmap.holding_registers, MAX_REGISTERS_PER_READ)]
    plan += [(2, a, n) for a, n in plan_reads(dmap.discrete_inputs, MAX_BITS_PER_READ)]
    return plan


async def connect(device_id: str, host: str, port: int, unit: int) -> DeviceLink:
    """Open a link to a device."""
    reader, writer = await asyncio.open_connection(host, port)
    return DeviceLink(device_id, reader, writer, unit)


async def sweep(links: list[DeviceLink]) -> int:
    """Read every planned register of every device once, devices in parallel; returns the number of requests."""

    async def one(link: DeviceLink) -> int:
        for fc, address, count in link.reads:
            await link.request(fc, address, count)
        return len(link.reads)

    return sum(await asyncio.gather(*(one(link) for link in links)))


def process_stats(pid: int) -> tuple[float, float]:
    """(CPU seconds user+system, resident MB) of a process, from /proc (Linux)."""
    import os

    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    cpu = (int(fields[11]) + int(fields[12])) / ticks
    with open(f"/proc/{pid}/status") as status:
        rss_kb = next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))
    return cpu, rss_kb / 1024.0
