"""Helpers of the Modbus driver tests: site devices pointing at conformance servers, a publish sink, waiting."""

from __future__ import annotations

import asyncio
import dataclasses
import socket
from collections.abc import Callable, Sequence
from typing import Any

from modbus_conformance import ConformanceDevice

from drivers.modbus import registers as reg
from scada.model import ValueRecord
from scada.site.model import (
    Cabinet,
    Endpoint,
    FieldDevice,
    Lamp,
    ParkingSensor,
    ParkingSite,
    Sign,
    TrafficController,
)


def free_tcp_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Sink:
    """The publish callback of the tests: keeps every batch and the latest record per tag."""

    def __init__(self) -> None:
        self.batches: list[list[ValueRecord]] = []
        self.latest: dict[str, ValueRecord] = {}

    def __call__(self, records: Sequence[ValueRecord]) -> None:
        batch = list(records)
        self.batches.append(batch)
        for record in batch:
            self.latest[record.tag] = record

    def records(self) -> list[ValueRecord]:
        """Every record published, in order."""
        return [record for batch in self.batches for record in batch]

    def of(self, tag: str) -> list[ValueRecord]:
        """Every record published for one tag, in order."""
        return [record for record in self.records() if record.tag == tag]

    def value(self, tag: str) -> Any:
        """The latest value of a tag."""
        return self.latest[tag].value

    def clear(self) -> None:
        """Forget what was published."""
        self.batches.clear()
        self.latest.clear()


async def wait_until(predicate: Callable[[], bool], within: float = 5.0, what: str = "condition") -> None:
    """Poll `predicate` every 10 ms until it holds; fail the test after `within` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {within} s waiting for {what}")
        await asyncio.sleep(0.01)


def endpoint(port: int, unit: int = 1, poll_ms: int = 100) -> Endpoint:
    """A Modbus endpoint on the loopback."""
    return Endpoint(protocol="modbus", host="127.0.0.1", port=port, unit=unit, poll_ms=poll_ms)


def point(device: FieldDevice, port: int, *, poll_ms: int | None = None) -> None:
    """Aim a device's endpoint at a port (keeping its unit id), optionally with another poll period."""
    current = device.endpoint
    device.endpoint = dataclasses.replace(current, port=port, poll_ms=poll_ms or current.poll_ms)


def make_cabinet(port: int, lamps: int = 4, *, unit: int = 1, poll_ms: int = 100, ident: str = "CAB-0001") -> Cabinet:
    """A cabinet with `lamps` lamps of index 0..lamps-1."""
    return Cabinet(
        id=ident,
        name=ident,
        district="D1",
        lat=47.3,
        lon=5.0,
        endpoint=endpoint(port, unit, poll_ms),
        lamps=[
            Lamp(id=f"{ident}-L{i:03d}", cabinet_id=ident, index=i, lat=47.3, lon=5.0, rated_w=50.0, legacy_w=150.0)
            for i in range(lamps)
        ],
    )


def make_controller(port: int, *, unit: int = 1, poll_ms: int = 100, ident: str = "TLC-001") -> TrafficController:
    """A traffic controller with 8 detectors."""
    return TrafficController(
        id=ident, name=ident, district="D1", lat=47.3, lon=5.0, endpoint=endpoint(port, unit, poll_ms)
    )


def make_sign(port: int, *, unit: int = 1, poll_ms: int = 100, ident: str = "VMS-01") -> Sign:
    """A variable message sign."""
    return Sign(id=ident, name=ident, district="D1", lat=47.3, lon=5.0, endpoint=endpoint(port, unit, poll_ms))


def make_parking(port: int, bays: int = 6, *, unit: int = 1, poll_ms: int = 100, ident: str = "PK-01") -> ParkingSite:
    """A parking site with `bays` sensors of index 0..bays-1."""
    return ParkingSite(
        id=ident,
        name=ident,
        district="D1",
        site_type="carpark",
        lat=47.3,
        lon=5.0,
        capacity=bays,
        endpoint=endpoint(port, unit, poll_ms),
        sensors=[ParkingSensor(id=f"{ident}-S{i:04d}", site_id=ident, index=i, lat=47.3, lon=5.0) for i in range(bays)],
    )


def conformance_for(device: FieldDevice) -> ConformanceDevice:
    """A conformance device whose map matches the configured device (lamp or bay count set in IR 4)."""
    if isinstance(device, Cabinet):
        count = len(device.lamps)
        dev = ConformanceDevice(reg.lighting_map(count))
        dev.set_ir(4, [count])
        return dev
    if isinstance(device, ParkingSite):
        count = len(device.sensors)
        dev = ConformanceDevice(reg.parking_map(count))
        dev.set_ir(4, [count])
        return dev
    if isinstance(device, TrafficController):
        return ConformanceDevice(reg.traffic_map())
    return ConformanceDevice(reg.sign_map())
