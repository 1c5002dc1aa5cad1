"""The Modbus register maps of field-devices.md (map version 1): addresses, bits and writable ranges.

Shared by the driver (what to read, what may be written) and the simulators (what to answer). Pure data.
"""

from __future__ import annotations

from dataclasses import dataclass

MAP_VERSION = 1
MAX_REGISTERS_PER_READ = 125
MAX_BITS_PER_READ = 2000
MAX_REGISTERS_PER_WRITE = 123

# Device kinds (IR 0)
KIND_LIGHTING = 1
KIND_PARKING = 2
KIND_TRAFFIC = 3
KIND_SIGN = 4

# Identification block, every kind: IR 0-9
IDENT_START = 0
IDENT_COUNT = 10
IR_KIND = 0
IR_MAP_VERSION = 1
IR_HEARTBEAT = 2
IR_STATUS = 3
STATUS_FAULT = 1 << 0
STATUS_DOOR_OPEN = 1 << 1
STATUS_MAINS_FAILURE = 1 << 2
STATUS_LOCAL_CONTROL = 1 << 3

# Kind 1: lighting segment controller
MAX_LAMPS = 128
LIGHT_IR_LAMP_COUNT = 4
LIGHT_IR_ENERGY_WH = 5  # uint32, 5-6
LIGHT_IR_MAINS_DV = 7  # V x 10
LAMP_IR_BASE = 100
LAMP_IR_STRIDE = 8
LAMP_LEVEL = 0
LAMP_STATUS = 1
LAMP_POWER_DW = 2  # W x 10
LAMP_ENERGY_WH = 3  # uint32, +3..+4
LAMP_PRESENCE_COUNT = 5
LAMP_BURNING_HOURS = 6
LAMP_RESERVED = 7
LAMP_BIT_ON = 1 << 0
LAMP_BIT_FAILURE = 1 << 1
LAMP_BIT_NODE_FAULT = 1 << 2
LAMP_BIT_PRESENCE = 1 << 3
LIGHT_HR_COMMAND = 0  # 0 automatic, 1 force 100 %, 2 force off
LIGHT_HR_BOOST = 1  # %
LIGHT_HR_HOLD = 2  # s
LAMP_HR_BASE = 100

# Kind 2: parking gateway
MAX_BAYS = 2000
PARK_IR_BAYS = 4
PARK_IR_OCCUPIED = 5
PARK_IR_FAULTY = 6
PARK_DI_FAULT_BASE = 4096
PARK_HR_DISPLAY = 0

# Kind 3: traffic light controller
TRAF_IR_PLAN = 4
TRAF_IR_STAGE = 5
TRAF_IR_CYCLE_SECOND = 6
TRAF_IR_FAULTS = 7
TRAF_IR_MODE = 8
TRAF_IR_DETECTOR_BASE = 10
DETECTORS = 8
FAULT_SIGNAL_LAMP = 1 << 0
FAULT_CONFLICT = 1 << 1
FAULT_DETECTOR = 1 << 2
FAULT_MANUAL_PANEL = 1 << 3
TRAF_HR_PLAN = 0
TRAF_HR_WATCHDOG = 1
PLAN_DARK = 0
PLAN_ALL_RED = 9
PLAN_FLASHING_AMBER = 10
MODE_LOCAL = 0
MODE_CENTRAL = 1
MODE_MANUAL = 2
MODE_FAULT = 3

# Kind 4: variable message sign
SIGN_IR_MESSAGE_ID = 4
SIGN_IR_FAULTS = 5
SIGN_IR_LUMINANCE = 6  # cd/m2 / 10
SIGN_IR_TEXT = 10
SIGN_TEXT_REGISTERS = 27  # IR/HR 10-36
SIGN_LINES = 3
SIGN_COLUMNS = 18
SIGN_FAULT_PIXELS = 1 << 0
SIGN_FAULT_POWER = 1 << 1
SIGN_FAULT_DOOR = 1 << 2
SIGN_FAULT_TEMPERATURE = 1 << 3
SIGN_HR_MESSAGE_ID = 0
SIGN_HR_PICTOGRAM = 1
SIGN_HR_FLASHING = 2
SIGN_HR_BRIGHTNESS = 3
SIGN_HR_TEXT = 10


@dataclass(frozen=True, slots=True)
class DeviceMap:
    """The defined addresses of one device: contiguous ranges per table and the writable limits."""

    kind: int
    input_registers: tuple[range, ...]
    holding_registers: tuple[range, ...]
    discrete_inputs: tuple[range, ...] = ()
    holding_limits: tuple[tuple[range, int, int], ...] = ()  # (addresses, low, high) for writes

    def limits(self, address: int) -> tuple[int, int] | None:
        """The writable (low, high) of a holding register, or None when it is not writable."""
        for addresses, low, high in self.holding_limits:
            if address in addresses:
                return low, high
        return None


def lighting_map(lamps: int) -> DeviceMap:
    """The map of a lighting segment controller with `lamps` luminaires (1-128)."""
    if not 1 <= lamps <= MAX_LAMPS:
        raise ValueError(f"lamp count {lamps} is outside 1-{MAX_LAMPS}")
    return DeviceMap(
        kind=KIND_LIGHTING,
        input_registers=(range(0, IDENT_COUNT), range(LAMP_IR_BASE, LAMP_IR_BASE + LAMP_IR_STRIDE * lamps)),
        holding_registers=(range(0, 3), range(LAMP_HR_BASE, LAMP_HR_BASE + lamps)),
        holding_limits=(
            (range(LIGHT_HR_COMMAND, LIGHT_HR_COMMAND + 1), 0, 2),
            (range(LIGHT_HR_BOOST, LIGHT_HR_BOOST + 1), 0, 100),
            (range(LIGHT_HR_HOLD, LIGHT_HR_HOLD + 1), 1, 3600),
            (range(LAMP_HR_BASE, LAMP_HR_BASE + lamps), 0, 100),
        ),
    )


def parking_map(bays: int) -> DeviceMap:
    """The map of a parking gateway with `bays` bays (1-2000)."""
    if not 1 <= bays <= MAX_BAYS:
        raise ValueError(f"bay count {bays} is outside 1-{MAX_BAYS}")
    return DeviceMap(
        kind=KIND_PARKING,
        input_registers=(range(0, IDENT_COUNT),),
        holding_registers=(range(0, 1),),
        discrete_inputs=(range(0, bays), range(PARK_DI_FAULT_BASE, PARK_DI_FAULT_BASE + bays)),
        holding_limits=((range(PARK_HR_DISPLAY, PARK_HR_DISPLAY + 1), 0, 2),),
    )


def traffic_map() -> DeviceMap:
    """The map of a traffic light controller."""
    return DeviceMap(
        kind=KIND_TRAFFIC,
        input_registers=(range(0, TRAF_IR_DETECTOR_BASE + DETECTORS),),
        holding_registers=(range(0, 2),),
        holding_limits=(
            (range(TRAF_HR_PLAN, TRAF_HR_PLAN + 1), 0, 10),
            (range(TRAF_HR_WATCHDOG, TRAF_HR_WATCHDOG + 1), 10, 3600),
        ),
    )


def sign_map() -> DeviceMap:
    """The map of a variable message sign (text registers accept ASCII 0x20-0x7E or 0x00 in each byte)."""
    text = range(SIGN_HR_TEXT, SIGN_HR_TEXT + SIGN_TEXT_REGISTERS)
    return DeviceMap(
        kind=KIND_SIGN,
        input_registers=(range(0, SIGN_IR_TEXT + SIGN_TEXT_REGISTERS),),
        holding_registers=(range(0, 4), text),
        holding_limits=(
            (range(SIGN_HR_MESSAGE_ID, SIGN_HR_MESSAGE_ID + 1), 0, 65535),
            (range(SIGN_HR_PICTOGRAM, SIGN_HR_PICTOGRAM + 1), 0, 7),
            (range(SIGN_HR_FLASHING, SIGN_HR_FLASHING + 1), 0, 1),
            (range(SIGN_HR_BRIGHTNESS, SIGN_HR_BRIGHTNESS + 1), 0, 100),
            (text, 0, 0xFFFF),  # byte-wise check: codec.valid_text_register
        ),
    )
