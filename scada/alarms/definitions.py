"""The alarms the control post raises: which device variable drives each, how it is evaluated, its texts and class.

One table (ALARM_KINDS) names every alarm kind by its configuration key (the keys of `alarms.severities`):
the device kinds it applies to, the variable it watches, the rule that turns the variable's value into an
active/inactive state, the OPC UA event type and condition class it is reported with, and the messages shown.
Standard library only: the OPC UA layer maps the names given here to NodeIds.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from scada.catalog import Kind


class Rule(enum.Enum):
    """How a variable's value makes an alarm active."""

    TRUE = "true"  # a Boolean that is True in the abnormal state (LampFailure, DoorOpen, ...)
    FALSE = "false"  # a Boolean that is False in the abnormal state (CommunicationOk)
    LOW_HYSTERESIS = "low_hysteresis"  # a count: active at or below `low`, cleared at or above `high`


class ConditionClass(enum.Enum):
    """Part 9 condition classes (the OPC UA layer maps them to BaseConditionClassType subtypes)."""

    MAINTENANCE = "Maintenance"
    SYSTEM = "System"
    PROCESS = "Process"
    SAFETY = "Safety"


@dataclass(frozen=True, slots=True)
class AlarmKind:
    """One kind of alarm: its configuration key, the variable it watches and how it is reported."""

    key: str  # configuration key, e.g. "lamp_failure"
    condition: str  # Part 9 ConditionName, e.g. "LampFailure" (also the last element of the condition's NodeId)
    devices: tuple[Kind, ...]  # device kinds that carry it
    variable: str  # the watched variable of scada.catalog (the tag is f"{device.path}/{variable}")
    rule: Rule
    event_type: str  # BrowseName of the standard event type (OffNormalAlarmType, SystemOffNormalAlarmType)
    condition_class: ConditionClass
    active_text: str  # message while active; {label} is the device, {value} the watched value
    normal_text: str  # message once back to normal
    default_severity: int  # 1..1000 (Part 9), used when the configuration does not give one
    flood_parent: bool = False  # a cabinet alarm that may suppress its lamps' alarms (alarms.flood)

    def message(self, active: bool, label: str, value: Any) -> str:
        """The Message of an event of this alarm."""
        return (self.active_text if active else self.normal_text).format(label=label, value=value)


ALARM_KINDS: tuple[AlarmKind, ...] = (
    AlarmKind(
        "lamp_failure",
        "LampFailure",
        (Kind.LAMP,),
        "LampFailure",
        Rule.TRUE,
        "OffNormalAlarmType",
        ConditionClass.MAINTENANCE,
        "Lamp failure: {label}",
        "Lamp back in service: {label}",
        300,
    ),
    AlarmKind(
        "comm_lost",
        "CommunicationLost",
        (Kind.CABINET, Kind.CONTROLLER, Kind.SIGN, Kind.PARKING_SITE),
        "CommunicationOk",
        Rule.FALSE,
        "SystemOffNormalAlarmType",
        ConditionClass.SYSTEM,
        "Communication lost: {label}",
        "Communication restored: {label}",
        700,
        flood_parent=True,
    ),
    AlarmKind(
        "door_open",
        "DoorOpen",
        (Kind.CABINET,),
        "DoorOpen",
        Rule.TRUE,
        "OffNormalAlarmType",
        ConditionClass.MAINTENANCE,
        "Cabinet door open: {label}",
        "Cabinet door closed: {label}",
        500,
        flood_parent=True,
    ),
    AlarmKind(
        "mains_failure",
        "MainsFailure",
        (Kind.CABINET,),
        "MainsFailure",
        Rule.TRUE,
        "OffNormalAlarmType",
        ConditionClass.MAINTENANCE,
        "Mains failure: {label}",
        "Mains restored: {label}",
        800,
        flood_parent=True,
    ),
    AlarmKind(
        "controller_fault",
        "ControllerFault",
        (Kind.CONTROLLER,),
        "Fault",
        Rule.TRUE,
        "OffNormalAlarmType",
        ConditionClass.SAFETY,
        "Conflict fault, flashing amber: {label}",
        "Conflict fault cleared: {label}",
        900,
    ),
    AlarmKind(
        "signal_lamp_failure",
        "SignalLampFailure",
        (Kind.CONTROLLER,),
        "SignalLampFailure",
        Rule.TRUE,
        "OffNormalAlarmType",
        ConditionClass.MAINTENANCE,
        "Signal lamp failure: {label}",
        "Signal lamps repaired: {label}",
        600,
    ),
    AlarmKind(
        "sign_fault",
        "SignFault",
        (Kind.SIGN,),
        "Fault",
        Rule.TRUE,
        "OffNormalAlarmType",
        ConditionClass.MAINTENANCE,
        "Sign fault: {label}",
        "Sign fault cleared: {label}",
        400,
    ),
    AlarmKind(
        "car_park_full",
        "CarParkFull",
        (Kind.PARKING_SITE,),
        "Free",
        Rule.LOW_HYSTERESIS,
        "OffNormalAlarmType",
        ConditionClass.PROCESS,
        "Car park full: {label} ({value} free)",
        "Car park has free places again: {label} ({value} free)",
        200,
    ),
)

KINDS_BY_KEY: dict[str, AlarmKind] = {kind.key: kind for kind in ALARM_KINDS}
FLOOD_PARENTS: tuple[str, ...] = tuple(kind.key for kind in ALARM_KINDS if kind.flood_parent)


def evaluator(kind: AlarmKind, low: float = 0.0, high: float = 0.0) -> Callable[[Any, bool], bool]:
    """The function (value, currently active) -> active of an alarm kind (low/high: the hysteresis limits)."""
    if kind.rule is Rule.TRUE:
        return lambda value, active: value is True or value == 1
    if kind.rule is Rule.FALSE:
        return lambda value, active: value is False or value == 0

    def hysteresis(value: Any, active: bool) -> bool:
        if isinstance(value, bool) or not isinstance(value, int | float):
            return active
        if value <= low:
            return True
        if value >= high:
            return False
        return active  # between the limits: the state holds

    return hysteresis
