"""Kind 4 simulator: a variable message sign that displays what is committed by writing HR0.

HR1-HR36 are held; writing HR0 (alone, or within a write-multiple that may also carry HR1-HR36) copies the held
message id and text to IR4 and IR10-IR36, and the held pictogram and flashing to the display. Text registers
accept bytes 0x20-0x7E or 0x00 only; any other byte answers exception 03 and nothing is stored or displayed.
Message id 0 with empty text blanks the sign.

HR4-HR9 are not in the map, yet the datasheet allows "HR0-HR36 in one write-multiple request": a request that
starts and ends on defined registers may span them (they are reserved: written values are ignored, they read 0);
a request that starts or ends in HR4-HR9 answers exception 02. Luminance (IR6) follows the sun and HR3 (see profiles); 0 while
blank or without power.
"""

from __future__ import annotations

from array import array
from typing import Any

from drivers.modbus.codec import sign_message, valid_text_register
from drivers.modbus.registers import (
    KIND_SIGN,
    SIGN_FAULT_DOOR,
    SIGN_FAULT_PIXELS,
    SIGN_FAULT_POWER,
    SIGN_FAULT_TEMPERATURE,
    SIGN_HR_BRIGHTNESS,
    SIGN_HR_FLASHING,
    SIGN_HR_MESSAGE_ID,
    SIGN_HR_PICTOGRAM,
    SIGN_HR_TEXT,
    SIGN_IR_FAULTS,
    SIGN_IR_LUMINANCE,
    SIGN_IR_MESSAGE_ID,
    SIGN_IR_TEXT,
    SIGN_TEXT_REGISTERS,
    STATUS_DOOR_OPEN,
    STATUS_FAULT,
    STATUS_MAINS_FAILURE,
    sign_map,
)
from drivers.sim import profiles
from drivers.sim.base import SimDevice, covered
from drivers.sim.env import SimEnv
from drivers.sim.errors import ILLEGAL_DATA_VALUE, ModbusError
from scada.site.model import Sign

_TEXT = range(SIGN_HR_TEXT, SIGN_HR_TEXT + SIGN_TEXT_REGISTERS)
_RESERVED = range(SIGN_HR_BRIGHTNESS + 1, SIGN_HR_TEXT)
_ALL_HR = ((SIGN_HR_MESSAGE_ID, SIGN_HR_TEXT + SIGN_TEXT_REGISTERS),)


class SignSim(SimDevice):
    """A 3 × 18 variable message sign with a pictogram, answering the kind-4 map."""

    kind = KIND_SIGN
    faults = frozenset({"door", "mains", "silent", "refuse", "pixels", "temperature"})

    def __init__(self, sign: Sign, env: SimEnv, *, lat: float | None = None, lon: float | None = None) -> None:
        super().__init__(sign.id, sign_map(), env)
        self.sign = sign
        self.lat = sign.lat if lat is None else lat
        self.lon = sign.lon if lon is None else lon
        self.pictogram = 0  # displayed (committed) pictogram
        self.flashing = 0
        self.commits = 0
        self._phase = env.rng(sign.id, "luminance").uniform(0, 6.283)

    def hr_covered(self, address: int, count: int) -> bool:
        """HR0-3 and HR10-36; a request may span the reserved HR4-9 if it starts and ends outside them."""
        return covered(_ALL_HR, address, count) and address not in _RESERVED and address + count - 1 not in _RESERVED

    def validate(self, address: int, values: list[int]) -> None:
        """Ranges of HR0-3, and every text byte 0x20-0x7E or 0x00 (reserved HR4-9 take anything)."""
        limits = self._limits
        for offset, value in enumerate(values):
            register = address + offset
            if register in _RESERVED:
                continue
            bounds = limits[register]
            if bounds is None or not bounds[0] <= value <= bounds[1]:
                raise ModbusError(ILLEGAL_DATA_VALUE)
            if register in _TEXT and not valid_text_register(value):
                raise ModbusError(ILLEGAL_DATA_VALUE)

    def on_write(self, start: int, stop: int, now: float) -> None:
        """Writing HR0 commits the held message to the display."""
        self.hr[_RESERVED.start : _RESERVED.stop] = array("H", bytes(2 * len(_RESERVED)))
        if start <= SIGN_HR_MESSAGE_ID < stop:
            hr, ir = self.hr, self.ir
            ir[SIGN_IR_MESSAGE_ID] = hr[SIGN_HR_MESSAGE_ID]
            ir[SIGN_IR_TEXT : SIGN_IR_TEXT + SIGN_TEXT_REGISTERS] = hr[
                SIGN_HR_TEXT : SIGN_HR_TEXT + SIGN_TEXT_REGISTERS
            ]
            self.pictogram = hr[SIGN_HR_PICTOGRAM]
            self.flashing = hr[SIGN_HR_FLASHING]
            self.commits += 1
            self.env.record(now, self.id, f"display {hr[SIGN_HR_MESSAGE_ID]}: {self.message()!r}")

    def message(self) -> str:
        """The text on display, lines joined by \\n."""
        return sign_message(self.ir[SIGN_IR_TEXT : SIGN_IR_TEXT + SIGN_TEXT_REGISTERS])

    def blank(self) -> bool:
        """True when nothing is displayed (no text, no pictogram)."""
        return self.pictogram == 0 and not any(
            self.ir[SIGN_IR_TEXT + k] & 0x5F5F for k in range(SIGN_TEXT_REGISTERS)
        )  # 0x5F5F: ignores 0x00/0x20 bytes

    def fault_bits(self) -> int:
        """IR5: pixels, power, door, over-temperature."""
        bits = 0
        if self.flag("pixels"):
            bits |= SIGN_FAULT_PIXELS
        if self.flag("mains"):
            bits |= SIGN_FAULT_POWER
        if self.flag("door"):
            bits |= SIGN_FAULT_DOOR
        if self.flag("temperature"):
            bits |= SIGN_FAULT_TEMPERATURE
        return bits

    def status_bits(self, now: float) -> int:
        """IR3 of a sign."""
        bits = 0
        if self.fault_bits() & (SIGN_FAULT_PIXELS | SIGN_FAULT_POWER | SIGN_FAULT_TEMPERATURE):
            bits |= STATUS_FAULT
        if self.flag("door"):
            bits |= STATUS_DOOR_OPEN
        if self.flag("mains"):
            bits |= STATUS_MAINS_FAILURE
        return bits

    def luminance(self, now: float) -> float:
        """Measured luminance, cd/m²."""
        if self.flag("mains") or self.blank():
            return 0.0
        brightness = self.hr[SIGN_HR_BRIGHTNESS]
        if brightness:
            value = profiles.LUMINANCE_DAY * brightness / 100.0
        else:
            value = profiles.sign_luminance(now, self.lat, self.lon)
        return value * (1.0 + 0.02 * profiles.wiggle(now // 60.0, self._phase))

    def refresh_inputs(self, start: int, stop: int, now: float) -> None:
        """Evaluate faults and luminance (the displayed message changes only on commit)."""
        self.ir[SIGN_IR_FAULTS] = self.fault_bits()
        self.ir[SIGN_IR_LUMINANCE] = min(0xFFFF, int(self.luminance(now) / 10.0 + 0.5))

    def snapshot(self) -> dict[str, Any]:
        """The sign as JSON-able data."""
        data = super().snapshot()
        now = self.env.clock.now()
        data.update(
            message_id=self.ir[SIGN_IR_MESSAGE_ID],
            message=self.message(),
            pictogram=self.pictogram,
            flashing=bool(self.flashing),
            brightness=self.hr[SIGN_HR_BRIGHTNESS],
            fault_bits=self.fault_bits(),
            luminance=round(self.luminance(now), 1),
            commits=self.commits,
        )
        return data
