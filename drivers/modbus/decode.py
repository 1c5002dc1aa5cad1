"""Pure decoding of register blocks into catalog values (and encoding of command values), per device kind.

Mapping from the register map of field-devices.md (map version 1) to the variables of scada.catalog.
IR = input register, HR = holding register, DI = discrete input; i = lamp or bay index (Lamp.index,
ParkingSensor.index). Python types follow the catalog dtype: bool for Boolean, int for UInt16/UInt32/Int32,
float for Double, str for String.

    Lamp i (StreetLightType)             base = IR 100 + 8*i
      Level             float  IR base+0                      %
      LevelSetpoint     float  HR 100+i                       %
      On                bool   IR base+1 bit0
      LampFailure       bool   IR base+1 bit1
      NodeFault         bool   IR base+1 bit2
      PresenceDetected  bool   IR base+1 bit3
      PowerW            float  IR base+2 / 10                 W
      EnergyKWh         float  u32(IR base+3, IR base+4) / 1000   (Wh -> kWh)
      PresenceCount     int    IR base+5                      (raw device counter, wraps at 65536)
      BurningHours      int    IR base+6                      h
    Cabinet (LightingCabinetType)
      Mode              int    HR 0
      PresenceBoostLevel float HR 1                           %
      PresenceHoldSeconds int  HR 2                           s
      Heartbeat         int    IR 2
      Fault / DoorOpen / MainsFailure / LocalControl   bool   IR 3 bit0 / bit1 / bit2 / bit3
      LampCount         int    IR 4
      EnergyKWh         float  u32(IR 5, IR 6) / 1000
      MainsVoltage      float  IR 7 / 10                      V
    Traffic controller (TrafficControllerType)
      ActivePlan int IR 4; Stage int IR 5; CycleSecond int IR 6; ControlMode int IR 8
      SignalLampFailure / Fault (conflict) / DetectorFault / ManualPanel   bool   IR 7 bit0 / bit1 / bit2 / bit3
      VehicleCount      int    running total of the detector counters IR 10+k (k < detectors, at most 8),
                               advanced by codec.counter_delta each poll (one wrap at most per poll), starting at
                               their sum at the first read, modulo 2**32 (UInt32)
      RequestedPlan     int    HR 0
      WatchdogSeconds   int    HR 1
    Message sign (VariableMessageSignType)
      MessageId int IR 4; Luminance float IR 6 * 10 (cd/m2); Message str codec.sign_message(IR 10-36)
      PixelFailure / PowerFault / DoorOpen / OverTemperature   bool   IR 5 bit0 / bit1 / bit2 / bit3
      Fault             bool   IR 5 != 0 (any fault bit)
      Pictogram int HR 1; Flashing bool HR 2 != 0; Brightness int HR 3 (0 = automatic)
    Parking site (ParkingSiteType)
      Capacity int IR 4; Occupied int IR 5; FaultySensors int IR 6; DisplayMode int HR 0
      Free              int    max(0, Capacity - Occupied - FaultySensors)
      Full              bool   Free == 0
      OccupancyPercent  float  100 * Occupied / (Capacity - FaultySensors), the share of the bays whose state is
                               known, clamped to 0-100; 100.0 when no bay state is known (then Free == 0 and Full)
                               so that Full and OccupancyPercent == 100 always agree
    Parking sensor (ParkingSensorType)
      Occupied bool DI i; SensorFault bool DI 4096+i
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from drivers.modbus import registers as reg
from drivers.modbus.codec import counter_delta, sign_message, sign_text_registers, u32

# Field order of each decoder's tuple (the same names as scada.catalog.VARIABLES, CommunicationOk excepted).
LAMP_FIELDS: tuple[str, ...] = (
    "Level",
    "LevelSetpoint",
    "On",
    "PowerW",
    "EnergyKWh",
    "PresenceDetected",
    "LampFailure",
    "BurningHours",
    "NodeFault",
    "PresenceCount",
)
CABINET_FIELDS: tuple[str, ...] = (
    "Mode",
    "EnergyKWh",
    "MainsVoltage",
    "DoorOpen",
    "MainsFailure",
    "PresenceBoostLevel",
    "PresenceHoldSeconds",
    "LampCount",
    "Fault",
    "LocalControl",
    "Heartbeat",
)
CONTROLLER_FIELDS: tuple[str, ...] = (
    "ActivePlan",
    "RequestedPlan",
    "Stage",
    "CycleSecond",
    "ControlMode",
    "Fault",
    "SignalLampFailure",
    "DetectorFault",
    "ManualPanel",
    "VehicleCount",
    "WatchdogSeconds",
)
SIGN_FIELDS: tuple[str, ...] = (
    "Message",
    "Pictogram",
    "Flashing",
    "MessageId",
    "Fault",
    "PixelFailure",
    "PowerFault",
    "DoorOpen",
    "OverTemperature",
    "Luminance",
    "Brightness",
)
PARKING_SITE_FIELDS: tuple[str, ...] = (
    "Capacity",
    "Occupied",
    "Free",
    "Full",
    "DisplayMode",
    "FaultySensors",
    "OccupancyPercent",
)
SENSOR_FIELDS: tuple[str, ...] = ("Occupied", "SensorFault")

COMM_FIELD = "CommunicationOk"
VEHICLE_TOTAL_MODULUS = 1 << 32  # VehicleCount is a UInt32


class IdentityError(ValueError):
    """The identification block (IR 0-1) does not describe the device the configuration names."""


def check_identity(ident: Sequence[int], kind: int) -> None:
    """Raise IdentityError unless IR 0 is the expected device kind and IR 1 the supported map version."""
    if ident[reg.IR_KIND] != kind:
        raise IdentityError(f"device reports kind {ident[reg.IR_KIND]} (IR 0), the configuration expects kind {kind}")
    if ident[reg.IR_MAP_VERSION] != reg.MAP_VERSION:
        raise IdentityError(
            f"device reports register map version {ident[reg.IR_MAP_VERSION]} (IR 1), "
            f"this driver speaks version {reg.MAP_VERSION}"
        )


def decode_lamp(regs: Sequence[int], setpoint: int) -> tuple[Any, ...]:
    """LAMP_FIELDS values of lamp i from its 8 input registers (IR 100+8i ..) and its setpoint (HR 100+i)."""
    status = regs[reg.LAMP_STATUS]
    return (
        float(regs[reg.LAMP_LEVEL]),
        float(setpoint),
        (status & reg.LAMP_BIT_ON) != 0,
        regs[reg.LAMP_POWER_DW] / 10,
        u32(regs[reg.LAMP_ENERGY_WH], regs[reg.LAMP_ENERGY_WH + 1]) / 1000,
        (status & reg.LAMP_BIT_PRESENCE) != 0,
        (status & reg.LAMP_BIT_FAILURE) != 0,
        regs[reg.LAMP_BURNING_HOURS],
        (status & reg.LAMP_BIT_NODE_FAULT) != 0,
        regs[reg.LAMP_PRESENCE_COUNT],
    )


def decode_cabinet(ident: Sequence[int], hr: Sequence[int]) -> tuple[Any, ...]:
    """CABINET_FIELDS values from IR 0-9 and HR 0-2 of a lighting segment controller."""
    status = ident[reg.IR_STATUS]
    return (
        hr[reg.LIGHT_HR_COMMAND],
        u32(ident[reg.LIGHT_IR_ENERGY_WH], ident[reg.LIGHT_IR_ENERGY_WH + 1]) / 1000,
        ident[reg.LIGHT_IR_MAINS_DV] / 10,
        (status & reg.STATUS_DOOR_OPEN) != 0,
        (status & reg.STATUS_MAINS_FAILURE) != 0,
        float(hr[reg.LIGHT_HR_BOOST]),
        hr[reg.LIGHT_HR_HOLD],
        ident[reg.LIGHT_IR_LAMP_COUNT],
        (status & reg.STATUS_FAULT) != 0,
        (status & reg.STATUS_LOCAL_CONTROL) != 0,
        ident[reg.IR_HEARTBEAT],
    )


def vehicle_total(total: int | None, previous: Sequence[int] | None, counts: Sequence[int]) -> int:
    """The running vehicle total after reading `counts`: their sum at the first read, then the wrapped deltas."""
    if total is None or previous is None:
        return sum(counts) % VEHICLE_TOTAL_MODULUS
    advance = sum(counter_delta(old, new) for old, new in zip(previous, counts, strict=True))
    return (total + advance) % VEHICLE_TOTAL_MODULUS


def decode_controller(ir: Sequence[int], hr: Sequence[int], vehicles: int) -> tuple[Any, ...]:
    """CONTROLLER_FIELDS values from IR 0-17, HR 0-1 and the running vehicle total."""
    faults = ir[reg.TRAF_IR_FAULTS]
    return (
        ir[reg.TRAF_IR_PLAN],
        hr[reg.TRAF_HR_PLAN],
        ir[reg.TRAF_IR_STAGE],
        ir[reg.TRAF_IR_CYCLE_SECOND],
        ir[reg.TRAF_IR_MODE],
        (faults & reg.FAULT_CONFLICT) != 0,
        (faults & reg.FAULT_SIGNAL_LAMP) != 0,
        (faults & reg.FAULT_DETECTOR) != 0,
        (faults & reg.FAULT_MANUAL_PANEL) != 0,
        vehicles,
        hr[reg.TRAF_HR_WATCHDOG],
    )


def decode_sign(ir: Sequence[int], hr: Sequence[int]) -> tuple[Any, ...]:
    """SIGN_FIELDS values from IR 0-36 and HR 0-3 of a variable message sign."""
    faults = ir[reg.SIGN_IR_FAULTS]
    return (
        sign_message(ir[reg.SIGN_IR_TEXT : reg.SIGN_IR_TEXT + reg.SIGN_TEXT_REGISTERS]),
        hr[reg.SIGN_HR_PICTOGRAM],
        hr[reg.SIGN_HR_FLASHING] != 0,
        ir[reg.SIGN_IR_MESSAGE_ID],
        faults != 0,
        (faults & reg.SIGN_FAULT_PIXELS) != 0,
        (faults & reg.SIGN_FAULT_POWER) != 0,
        (faults & reg.SIGN_FAULT_DOOR) != 0,
        (faults & reg.SIGN_FAULT_TEMPERATURE) != 0,
        float(ir[reg.SIGN_IR_LUMINANCE] * 10),
        hr[reg.SIGN_HR_BRIGHTNESS],
    )


def decode_parking_site(ident: Sequence[int], hr: Sequence[int]) -> tuple[Any, ...]:
    """PARKING_SITE_FIELDS values from IR 0-9 and HR 0 of a parking gateway."""
    capacity = ident[reg.PARK_IR_BAYS]
    occupied = ident[reg.PARK_IR_OCCUPIED]
    faulty = ident[reg.PARK_IR_FAULTY]
    free = max(0, capacity - occupied - faulty)
    known = capacity - faulty
    percent = 100.0 if known <= 0 else min(100.0, max(0.0, 100.0 * occupied / known))
    return (capacity, occupied, free, free == 0, hr[reg.PARK_HR_DISPLAY], faulty, percent)


def decode_sensor(occupied: bool, fault: bool) -> tuple[Any, ...]:
    """SENSOR_FIELDS values of bay i from DI i and DI 4096+i."""
    return (bool(occupied), bool(fault))


# ---------------------------------------------------------------------------------------------------------
# Encoding (command values -> register values)
# ---------------------------------------------------------------------------------------------------------


def percent_register(value: float) -> int:
    """A % value (0-100, Double) as the integer register the device holds, rounded half up."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"{value!r} is not a finite number")
    if not 0 <= value <= 100:
        raise ValueError(f"{value} is outside 0-100")
    return math.floor(value + 0.5)


def next_message_id(previous: int) -> int:
    """The message id after `previous`: 1-65535, incrementing, wrapping from 65535 to 1 (0 means blank)."""
    return previous % 0xFFFF + 1


SIGN_COMMIT_COUNT = reg.SIGN_HR_TEXT + reg.SIGN_TEXT_REGISTERS  # HR 0-36: one write-multiple commits a message


def sign_commit_block(message_id: int, text: str, pictogram: int, flashing: bool, brightness: int = 0) -> list[int]:
    """HR 0-36 of a sign commit: id, pictogram, flashing, brightness, HR 4-9 zero, then the 27 text registers.

    The text is checked with scada.catalog.sign_lines (ValueError when it breaks the 3 x 18 ASCII format).
    """
    if not 0 <= message_id <= 0xFFFF:
        raise ValueError(f"message id {message_id} is outside 0-65535")
    if not 0 <= pictogram <= 7:
        raise ValueError(f"pictogram {pictogram} is outside 0-7")
    if not 0 <= brightness <= 100:
        raise ValueError(f"brightness {brightness} is outside 0-100")
    block = [0] * SIGN_COMMIT_COUNT
    block[reg.SIGN_HR_MESSAGE_ID] = message_id
    block[reg.SIGN_HR_PICTOGRAM] = pictogram
    block[reg.SIGN_HR_FLASHING] = 1 if flashing else 0
    block[reg.SIGN_HR_BRIGHTNESS] = brightness
    block[reg.SIGN_HR_TEXT :] = sign_text_registers(text)
    return block
