"""The common part of every simulated field device: register tables, identification block, map checks, faults."""

from __future__ import annotations

import sys
from array import array
from typing import Any, ClassVar

from drivers.modbus.registers import (
    IDENT_COUNT,
    IR_HEARTBEAT,
    IR_KIND,
    IR_MAP_VERSION,
    IR_STATUS,
    MAP_VERSION,
    DeviceMap,
)
from drivers.sim.env import SimEnv
from drivers.sim.errors import ILLEGAL_DATA_ADDRESS, ILLEGAL_DATA_VALUE, SERVER_DEVICE_FAILURE, ModbusError

RANDOM = 1  # fault source: the city's own random processes
INJECTED = 2  # fault source: the fault-injection API

_SWAP = sys.byteorder == "little"

Ranges = tuple[tuple[int, int], ...]


def merged(ranges: tuple[range, ...]) -> Ranges:
    """The (start, stop) spans of a table, touching ranges merged."""
    spans: list[list[int]] = []
    for block in sorted((r for r in ranges if len(r)), key=lambda r: r.start):
        if spans and block.start <= spans[-1][1]:
            spans[-1][1] = max(spans[-1][1], block.stop)
        else:
            spans.append([block.start, block.stop])
    return tuple((a, b) for a, b in spans)


def covered(spans: Ranges, address: int, count: int) -> bool:
    """True when [address, address + count) lies inside one span of the map."""
    end = address + count
    for start, stop in spans:  # noqa: SIM110 (hot path: a plain loop beats any() with a generator)
        if start <= address and end <= stop:
            return True
    return False


def big_endian(table: array, address: int, count: int) -> bytes:
    """`count` registers of `table` from `address` as Modbus big-endian bytes."""
    words = table[address : address + count]
    if _SWAP:
        words.byteswap()
    return words.tobytes()


class SimDevice:
    """A simulated field device: answers the Modbus map of its kind from its own state."""

    kind: ClassVar[int] = 0
    faults: ClassVar[frozenset[str]] = frozenset({"door", "mains", "silent", "refuse"})

    def __init__(self, device_id: str, dmap: DeviceMap, env: SimEnv) -> None:
        self.id = device_id
        self.dmap = dmap
        self.env = env
        self.ir_spans = merged(dmap.input_registers)
        self.hr_spans = merged(dmap.holding_registers)
        self.di_spans = merged(dmap.discrete_inputs)
        self.ir = array("H", bytes(2 * (self.ir_spans[-1][1] if self.ir_spans else 0)))
        self.hr = array("H", bytes(2 * (self.hr_spans[-1][1] if self.hr_spans else 0)))
        self._limits: list[tuple[int, int] | None] = [dmap.limits(a) for a in range(len(self.hr))]
        self._flags: dict[str, int] = {}
        self.silent = False  # answers nothing (fault "silent"): the request times out at the client
        self.requests = 0
        init = env.rng(device_id, "init")
        self._heartbeat0 = init.randrange(0x10000)
        self._t0 = env.clock.now()
        self.ir[IR_KIND] = self.kind
        self.ir[IR_MAP_VERSION] = MAP_VERSION

    # ---- faults -----------------------------------------------------------------------------------------

    def flag(self, name: str) -> bool:
        """True while the fault `name` is active (from any source)."""
        return self._flags.get(name, 0) != 0

    def set_flag(self, name: str, on: bool, source: int, t: float) -> bool:
        """Raise or clear fault `name` for one source; returns True when the effective state changed."""
        old = self._flags.get(name, 0)
        new = (old | source) if on else (old & ~source)
        self._flags[name] = new
        if (old != 0) == (new != 0):
            return False
        if name == "silent":
            self.silent = new != 0
        self.on_flag(name, new != 0, t)
        self.env.record(t, self.id, f"{name} {'on' if new else 'off'}")
        return True

    def active_faults(self) -> list[str]:
        """The names of the faults active now."""
        return sorted(name for name, mask in self._flags.items() if mask)

    def on_flag(self, name: str, on: bool, t: float) -> None:
        """React to a fault changing state (subclasses recompute what it affects)."""

    # ---- identification block -----------------------------------------------------------------------------

    def heartbeat(self, now: float) -> int:
        """IR2: +1 every sim second, wraps at 65535."""
        return (self._heartbeat0 + int(now - self._t0)) & 0xFFFF

    def status_bits(self, now: float) -> int:
        """IR3: bit0 fault summary, bit1 door open, bit2 mains failure, bit3 local/manual control."""
        return 0

    def refresh_ident(self, now: float) -> None:
        """Bring IR0-9 up to date."""
        ir = self.ir
        ir[IR_HEARTBEAT] = self.heartbeat(now)
        ir[IR_STATUS] = self.status_bits(now)

    # ---- Modbus access (the server has checked function, quantity and map) -----------------------------------

    def hr_covered(self, address: int, count: int) -> bool:
        """True when holding registers [address, address + count) may be accessed in one request."""
        return covered(self.hr_spans, address, count)

    def read_input_registers(self, address: int, count: int) -> bytes:
        """FC4: the registers, big-endian."""
        now = self.env.sync()
        if address < IDENT_COUNT:
            self.refresh_ident(now)
        self.refresh_inputs(address, address + count, now)
        return big_endian(self.ir, address, count)

    def read_holding_registers(self, address: int, count: int) -> bytes:
        """FC3: the registers, big-endian."""
        now = self.env.sync()
        self.refresh_holding(now)
        return big_endian(self.hr, address, count)

    def read_discrete_inputs(self, address: int, count: int) -> bytes:
        """FC2: the bits packed LSB first (kinds without discrete inputs never get here)."""
        raise ModbusError(ILLEGAL_DATA_ADDRESS)

    def write_holding(self, address: int, values: list[int]) -> None:
        """FC6/FC16: validate the whole request, then apply it (exception 03 and no change on a bad value)."""
        if self.flag("refuse"):
            raise ModbusError(SERVER_DEVICE_FAILURE)
        self.validate(address, values)
        now = self.env.sync()
        self.refresh_holding(now)
        self.hr[address : address + len(values)] = array("H", values)
        self.on_write(address, address + len(values), now)

    def validate(self, address: int, values: list[int]) -> None:
        """Raise ModbusError(03) if any value is outside its range (02 if a register is not writable)."""
        limits = self._limits
        for offset, value in enumerate(values):
            bounds = limits[address + offset]
            if bounds is None:
                raise ModbusError(ILLEGAL_DATA_ADDRESS)
            if not bounds[0] <= value <= bounds[1]:
                raise ModbusError(ILLEGAL_DATA_VALUE)

    # ---- kind-specific hooks ------------------------------------------------------------------------------

    def refresh_inputs(self, start: int, stop: int, now: float) -> None:
        """Bring the input registers [start, stop) up to date (IR0-9 are done by refresh_ident)."""

    def refresh_holding(self, now: float) -> None:
        """Bring the holding registers up to date (e.g. a lapsed request)."""

    def on_write(self, start: int, stop: int, now: float) -> None:
        """React to holding registers [start, stop) having been written."""

    def snapshot(self) -> dict[str, Any]:
        """The device's state as JSON-able data (control channel, tests)."""
        now = self.env.sync()
        return {
            "id": self.id,
            "kind": self.kind,
            "heartbeat": self.heartbeat(now),
            "status": self.status_bits(now),
            "faults": self.active_faults(),
            "requests": self.requests,
        }
