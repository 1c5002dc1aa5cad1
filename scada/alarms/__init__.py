"""Alarms & Conditions of the control post: definitions, the Part 9 state machine, flood suppression, shelving.

The core here is protocol-free (no asyncua): scada.opcua.conditions exposes it as OPC UA Part 9 conditions.
"""

from scada.alarms.config import AlarmsConfig, CarParkFullConfig, FloodConfig, load_alarms_config, parse_alarms
from scada.alarms.definitions import ALARM_KINDS, KINDS_BY_KEY, AlarmKind, ConditionClass, Rule
from scada.alarms.engine import AlarmEngine
from scada.alarms.journal import TRANSITIONS, AlarmTransition, Journal, historian_journal
from scada.alarms.shelving import Shelving
from scada.alarms.slots import AlarmSlot
from scada.alarms.state import (
    AlarmError,
    AlreadyAckedError,
    AlreadyConfirmedError,
    AlreadyDisabledError,
    AlreadyEnabledError,
    AlreadyShelvedError,
    ConditionDisabledError,
    ConditionState,
    EventIdUnknownError,
    NotShelvedError,
    ShelvingTimeError,
    UnknownConditionError,
)
from scada.alarms.summary import AlarmSummary, Counts

__all__ = [
    "ALARM_KINDS",
    "KINDS_BY_KEY",
    "TRANSITIONS",
    "AlarmEngine",
    "AlarmError",
    "AlarmKind",
    "AlarmSlot",
    "AlarmSummary",
    "AlarmTransition",
    "AlarmsConfig",
    "AlreadyAckedError",
    "AlreadyConfirmedError",
    "AlreadyDisabledError",
    "AlreadyEnabledError",
    "AlreadyShelvedError",
    "CarParkFullConfig",
    "ConditionClass",
    "ConditionDisabledError",
    "ConditionState",
    "Counts",
    "EventIdUnknownError",
    "FloodConfig",
    "Journal",
    "NotShelvedError",
    "Rule",
    "Shelving",
    "ShelvingTimeError",
    "UnknownConditionError",
    "historian_journal",
    "load_alarms_config",
    "parse_alarms",
]
