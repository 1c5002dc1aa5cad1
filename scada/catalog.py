"""The tag catalog: variables, properties and actions of every device kind (information model, version 1).

One table drives the OPC UA address space, the drivers' decoding targets, the command service's range checks
and the historian's tag classes. Standard library only.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Kind(enum.StrEnum):
    """The six device kinds of the information model."""

    LAMP = "lamp"
    CABINET = "cabinet"
    CONTROLLER = "controller"
    SIGN = "sign"
    PARKING_SITE = "parking_site"
    PARKING_SENSOR = "parking_sensor"


OBJECT_TYPES: dict[Kind, str] = {
    Kind.LAMP: "StreetLightType",
    Kind.CABINET: "LightingCabinetType",
    Kind.CONTROLLER: "TrafficControllerType",
    Kind.SIGN: "VariableMessageSignType",
    Kind.PARKING_SITE: "ParkingSiteType",
    Kind.PARKING_SENSOR: "ParkingSensorType",
}

NAMESPACE_URI = "urn:cityscada:city"
ENDPOINT_PATH = "/cityscada"

# The OPC UA built-in data types used here (names as in the standard).
DTYPES = ("Boolean", "UInt16", "UInt32", "Int32", "Double", "String", "DateTime")


@dataclass(frozen=True, slots=True)
class VarSpec:
    """One variable of a device object."""

    name: str
    dtype: str  # one of DTYPES
    unit: str = ""  # engineering unit display name ("%", "W", "kWh", "V", "s", "h", "cd/m²")
    eu_range: tuple[float, float] | None = None  # EURange for analog variables
    action: str | None = None  # writable through this action (the value is its only argument)
    historized: bool = False  # stored by the historian and readable through HistoryRead
    deadband: float = 0.0  # default absolute storage deadband of the historian
    description: str = ""

    @property
    def writable(self) -> bool:
        """True when clients may write the variable (it then becomes a command)."""
        return self.action is not None

    @property
    def analog(self) -> bool:
        """True for numeric variables with an engineering range (they get EURange and EngineeringUnits)."""
        return self.eu_range is not None


@dataclass(frozen=True, slots=True)
class ArgSpec:
    """One input argument of an action (and of the OPC UA method that carries it)."""

    name: str
    dtype: str
    low: float | None = None
    high: float | None = None
    description: str = ""


@dataclass(frozen=True, slots=True)
class ActionSpec:
    """A command a device kind accepts; `method` is the OPC UA method name (None: write-only action)."""

    name: str
    method: str | None
    args: tuple[ArgSpec, ...] = ()
    description: str = ""


_PCT = (0.0, 100.0)

LAMP_VARS: tuple[VarSpec, ...] = (
    VarSpec("Level", "Double", "%", _PCT, historized=True, deadband=1.0, description="actual light level"),
    VarSpec("LevelSetpoint", "Double", "%", _PCT, action="set_level", historized=True, description="level asked"),
    VarSpec("On", "Boolean", historized=True),
    VarSpec("PowerW", "Double", "W", (0.0, 1000.0), historized=True, deadband=0.5),
    VarSpec("EnergyKWh", "Double", "kWh", (0.0, 4294967.295), historized=True, deadband=0.01),
    VarSpec("PresenceDetected", "Boolean", historized=True),
    VarSpec("LampFailure", "Boolean", historized=True),
    VarSpec("BurningHours", "UInt32", "h", (0.0, 65535.0), historized=True),
    VarSpec("NodeFault", "Boolean", historized=True, description="communication fault of the luminaire node"),
    VarSpec("PresenceCount", "UInt32", description="presence detections since start (wraps)"),
)

COMM_VAR = VarSpec(
    "CommunicationOk", "Boolean", historized=True, description="the field device answers (always Good quality)"
)

CABINET_VARS: tuple[VarSpec, ...] = (
    VarSpec("Mode", "Int32", "", (0.0, 2.0), action="set_mode", historized=True),
    VarSpec("EnergyKWh", "Double", "kWh", (0.0, 4294967.295), historized=True, deadband=0.1),
    VarSpec("MainsVoltage", "Double", "V", (0.0, 300.0), historized=True, deadband=2.0),
    VarSpec("DoorOpen", "Boolean", historized=True),
    VarSpec("MainsFailure", "Boolean", historized=True),
    VarSpec("PresenceBoostLevel", "Double", "%", _PCT, action="set_presence_boost", historized=True),
    VarSpec("PresenceHoldSeconds", "UInt32", "s", (1.0, 3600.0), action="set_presence_hold", historized=True),
    VarSpec("LampCount", "UInt16", "", (1.0, 128.0)),
    VarSpec("Fault", "Boolean", historized=True, description="fault summary bit of the cabinet"),
    VarSpec("LocalControl", "Boolean", historized=True, description="local/manual control at the cabinet"),
    VarSpec("Heartbeat", "UInt16"),
    COMM_VAR,
)

CONTROLLER_VARS: tuple[VarSpec, ...] = (
    VarSpec("ActivePlan", "UInt16", "", (0.0, 10.0), historized=True),
    VarSpec("RequestedPlan", "UInt16", "", (0.0, 10.0), historized=True),
    VarSpec("Stage", "UInt16", historized=True),
    VarSpec("CycleSecond", "UInt16", "s"),
    VarSpec("ControlMode", "Int32", "", (0.0, 3.0), historized=True),
    VarSpec("Fault", "Boolean", historized=True, description="conflict fault: fell back to flashing amber"),
    VarSpec("SignalLampFailure", "Boolean", historized=True),
    VarSpec("DetectorFault", "Boolean", historized=True),
    VarSpec("ManualPanel", "Boolean", historized=True),
    VarSpec("VehicleCount", "UInt32", historized=True, description="vehicles, all detectors since start"),
    VarSpec("WatchdogSeconds", "UInt16", "s", (10.0, 3600.0)),
    COMM_VAR,
)

SIGN_VARS: tuple[VarSpec, ...] = (
    VarSpec("Message", "String", historized=True, description="text on display, lines joined by \\n"),
    VarSpec("Pictogram", "UInt16", "", (0.0, 7.0), historized=True),
    VarSpec("Flashing", "Boolean", historized=True),
    VarSpec("MessageId", "UInt16", historized=True),
    VarSpec("Fault", "Boolean", historized=True, description="any fault bit of the sign"),
    VarSpec("PixelFailure", "Boolean"),
    VarSpec("PowerFault", "Boolean"),
    VarSpec("DoorOpen", "Boolean"),
    VarSpec("OverTemperature", "Boolean"),
    VarSpec("Luminance", "Double", "cd/m²", (0.0, 655350.0), deadband=50.0),
    VarSpec("Brightness", "UInt16", "%", (0.0, 100.0)),
    COMM_VAR,
)

PARKING_SITE_VARS: tuple[VarSpec, ...] = (
    VarSpec("Capacity", "UInt32", "", (0.0, 2000.0), historized=True),
    VarSpec("Occupied", "UInt32", "", (0.0, 2000.0), historized=True),
    VarSpec("Free", "UInt32", "", (0.0, 2000.0), historized=True, description="bays known free"),
    VarSpec("Full", "Boolean", historized=True),
    VarSpec("DisplayMode", "Int32", "", (0.0, 2.0), action="set_display_mode", historized=True),
    VarSpec("FaultySensors", "UInt32", "", (0.0, 2000.0), historized=True),
    VarSpec("OccupancyPercent", "Double", "%", _PCT, historized=True, deadband=1.0),
    COMM_VAR,
)

PARKING_SENSOR_VARS: tuple[VarSpec, ...] = (
    VarSpec("Occupied", "Boolean", historized=True),
    VarSpec("SensorFault", "Boolean", historized=True),
)

VARIABLES: dict[Kind, tuple[VarSpec, ...]] = {
    Kind.LAMP: LAMP_VARS,
    Kind.CABINET: CABINET_VARS,
    Kind.CONTROLLER: CONTROLLER_VARS,
    Kind.SIGN: SIGN_VARS,
    Kind.PARKING_SITE: PARKING_SITE_VARS,
    Kind.PARKING_SENSOR: PARKING_SENSOR_VARS,
}

# Properties of every device object (information model): name -> data type.
DEVICE_PROPERTIES: dict[str, str] = {"Latitude": "Double", "Longitude": "Double", "DeviceId": "String"}

SIGN_LINES = 3
SIGN_COLUMNS = 18

_LEVEL = ArgSpec("Level", "Double", 0.0, 100.0, "light level, %")
_MODE_CAB = ArgSpec("Mode", "Int32", 0, 2, "0 automatic, 1 all on, 2 all off")

ACTIONS: dict[Kind, tuple[ActionSpec, ...]] = {
    Kind.LAMP: (ActionSpec("set_level", "SetLevel", (_LEVEL,), "set the lamp's level setpoint"),),
    Kind.CABINET: (
        ActionSpec("set_mode", "SetMode", (_MODE_CAB,), "cabinet command"),
        ActionSpec("set_all_levels", "SetAllLevels", (_LEVEL,), "one setpoint for every lamp of the cabinet"),
        ActionSpec("set_presence_boost", None, (ArgSpec("Level", "Double", 0.0, 100.0),)),
        ActionSpec("set_presence_hold", None, (ArgSpec("Seconds", "UInt32", 1, 3600),)),
        ActionSpec(
            "set_presence",
            "SetPresenceResponse",
            (ArgSpec("BoostLevel", "Double", 0.0, 100.0), ArgSpec("HoldSeconds", "UInt32", 1, 3600)),
            "configure the cabinet's local presence boost",
        ),
    ),
    Kind.CONTROLLER: (
        ActionSpec(
            "select_plan",
            "SelectPlan",
            (
                ArgSpec("Plan", "UInt16", 1, 10, "1-8 timing plan, 9 all red, 10 flashing amber"),
                ArgSpec("DurationSeconds", "UInt32", 10, 86400, "how long the centre keeps the plan"),
            ),
            "run a plan from the centre; the watchdog is refreshed while it is wanted",
        ),
        ActionSpec("release_plan", "ReleasePlan", (), "back to local time-of-day control"),
    ),
    Kind.SIGN: (
        ActionSpec(
            "display",
            "Display",
            (
                ArgSpec(
                    "Text", "String", 0, SIGN_LINES * SIGN_COLUMNS + SIGN_LINES - 1, "3 lines of 18, joined by \\n"
                ),
                ArgSpec("Pictogram", "UInt16", 0, 7, "0 none .. 7 pollution"),
                ArgSpec("Flashing", "Boolean"),
            ),
            "commit a message to the sign",
        ),
        ActionSpec("blank", "Blank", (), "blank the sign"),
    ),
    Kind.PARKING_SITE: (
        ActionSpec(
            "set_display_mode",
            "SetDisplayMode",
            (ArgSpec("Mode", "Int32", 0, 2, "0 auto, 1 full, 2 closed"),),
            "entrance display mode",
        ),
    ),
    Kind.PARKING_SENSOR: (),
}


def sign_lines(message: str) -> list[str]:
    """Split a sign message ("\\n" between lines) into exactly 3 lines; ValueError if it breaks the 3 x 18 format."""
    lines = message.split("\n") if message else []
    if len(lines) > SIGN_LINES:
        raise ValueError(f"a sign shows {SIGN_LINES} lines, the message has {len(lines)}")
    for number, line in enumerate(lines, start=1):
        if len(line) > SIGN_COLUMNS:
            raise ValueError(f"line {number} has {len(line)} characters, a sign shows {SIGN_COLUMNS}")
        for column, char in enumerate(line, start=1):
            if not 0x20 <= ord(char) <= 0x7E:
                raise ValueError(f"line {number} column {column}: {char!r} is not printable ASCII")
    return lines + [""] * (SIGN_LINES - len(lines))


def action_spec(kind: Kind, action: str) -> ActionSpec | None:
    """The action of that name for a device kind, or None."""
    for spec in ACTIONS[kind]:
        if spec.name == action:
            return spec
    return None


def var_spec(kind: Kind, name: str) -> VarSpec | None:
    """The variable of that name for a device kind, or None."""
    for spec in VARIABLES[kind]:
        if spec.name == name:
            return spec
    return None
