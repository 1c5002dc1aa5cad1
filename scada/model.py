"""Shared vocabulary of cityscada: value records, quality codes, commands, the driver protocol, errors.

Standard library only: drivers, the core, the historian and the console all speak it.
"""

from __future__ import annotations

import enum
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, NamedTuple, Protocol, runtime_checkable


class Quality(enum.IntEnum):
    """OPC UA StatusCode values used for data quality and command results (Part 4, 7.34)."""

    GOOD = 0x00000000
    UNCERTAIN_LAST_USABLE = 0x40900000  # UncertainLastUsableValue
    UNCERTAIN_NO_COMM_LAST_USABLE = 0x408F0000  # UncertainNoCommunicationLastUsableValue
    UNCERTAIN_INITIAL = 0x40920000  # UncertainInitialValue
    BAD_INTERNAL = 0x80020000  # BadInternalError
    BAD_COMM = 0x80050000  # BadCommunicationError
    BAD_TIMEOUT = 0x800A0000  # BadTimeout
    BAD_USER_ACCESS_DENIED = 0x801F0000  # BadUserAccessDenied
    BAD_NO_COMMUNICATION = 0x80310000  # BadNoCommunication
    BAD_WAITING_FOR_INITIAL_DATA = 0x80320000  # BadWaitingForInitialData
    BAD_NODE_ID_UNKNOWN = 0x80340000  # BadNodeIdUnknown
    BAD_NOT_WRITABLE = 0x803B0000  # BadNotWritable
    BAD_OUT_OF_RANGE = 0x803C0000  # BadOutOfRange
    BAD_NOT_SUPPORTED = 0x803D0000  # BadNotSupported
    BAD_NOT_FOUND = 0x803E0000  # BadNotFound
    BAD_TYPE_MISMATCH = 0x80740000  # BadTypeMismatch
    BAD_NOT_CONNECTED = 0x808A0000  # BadNotConnected
    BAD_DEVICE_FAILURE = 0x808B0000  # BadDeviceFailure
    BAD_INVALID_ARGUMENT = 0x80AB0000  # BadInvalidArgument
    BAD_INVALID_STATE = 0x80AF0000  # BadInvalidState

    @property
    def is_good(self) -> bool:
        """True for a Good status."""
        return (self.value & 0xC0000000) == 0

    @property
    def is_bad(self) -> bool:
        """True for a Bad status."""
        return (self.value & 0x80000000) != 0


def is_good(status: int) -> bool:
    """True when an OPC UA status code (int) is Good."""
    return (status & 0xC0000000) == 0


def utcnow() -> datetime:
    """The current time, timezone-aware UTC (the only kind of timestamp cityscada uses)."""
    return datetime.now(UTC)


class ValueRecord(NamedTuple):
    """One value of one tag as it leaves a driver: the unit that flows device → core → clients."""

    tag: str  # the NodeId path, e.g. "Lighting/CAB-0042/L-004113/Level"
    value: Any
    quality: int  # an OPC UA status code (see Quality)
    source_ts: datetime  # when the device produced it (last good time when quality is not Good)


Publish = Callable[[Sequence[ValueRecord]], None]
"""What a driver calls with every batch of value records it produces (never blocks)."""


@dataclass(frozen=True, slots=True)
class WriteRequest:
    """A command on one device of the site: the single shape of everything that flows back to the field."""

    device_id: str  # a site device id (a lamp id is allowed: its cabinet drives it)
    action: str  # an action name of scada.catalog (e.g. "set_level", "display")
    args: Mapping[str, Any] = field(default_factory=dict)
    user: str | None = None  # who asked (None: the system itself)
    origin: str = "system"  # "opcua-method", "opcua-write", "automation", "incident", "console", ...


@dataclass(frozen=True, slots=True)
class WriteResult:
    """The device's answer to a command."""

    status: int = Quality.GOOD  # an OPC UA status code
    message: str = "accepted"
    values: Mapping[str, Any] = field(default_factory=dict)  # what the device now reports, if read back

    @property
    def ok(self) -> bool:
        """True when the device accepted the command."""
        return is_good(self.status)


@runtime_checkable
class Driver(Protocol):
    """A field protocol driver: reads whole poll groups, publishes value records, executes one command."""

    name: str

    async def start(self) -> None:
        """Connect and start polling or subscribing (idempotent)."""

    async def stop(self) -> None:
        """Stop every task and close every connection (idempotent)."""

    def device_ids(self) -> Iterable[str]:
        """The site device ids this driver is responsible for (cabinets, controllers, signs, sites)."""

    async def execute(self, request: WriteRequest) -> WriteResult:
        """Carry out one command; raises a CommandError subclass when it cannot be done."""


class Service(Protocol):
    """Anything the application starts in order and stops in reverse."""

    async def start(self) -> None:
        """Start (idempotent)."""

    async def stop(self) -> None:
        """Stop (idempotent)."""


CommandHandler = Callable[[WriteRequest], Awaitable[WriteResult]]


@dataclass(frozen=True, slots=True)
class CommandAudit:
    """One line of the command audit trail: who asked what of which device, when, and what it answered."""

    ts: datetime  # when the command was received
    user: str | None
    origin: str
    device_id: str
    action: str
    args: Mapping[str, Any]
    status: int  # the OPC UA status code answered
    message: str
    duration_ms: float  # from receipt to the device's answer


AuditSink = Callable[[CommandAudit], None]
"""What the command service calls with every audit record (never blocks)."""


# ---------------------------------------------------------------------------------------------------------
# The exception tree
# ---------------------------------------------------------------------------------------------------------


class CityScadaError(Exception):
    """Root of every error cityscada raises on purpose."""


@dataclass(frozen=True, slots=True)
class ConfigIssue:
    """One thing wrong in the site configuration, located precisely."""

    file: str
    line: int | None  # 1-based line (YAML) or row (CSV, counting the header as line 1); None if unknown
    field: str  # dotted path of the field, e.g. "cabinets[3].endpoint.port" or the CSV column
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line is not None else self.file
        return f"{where}: {self.field}: {self.message}"


class ConfigError(CityScadaError):
    """The site configuration is invalid; carries every issue found, not only the first."""

    def __init__(self, issues: Sequence[ConfigIssue]) -> None:
        self.issues: list[ConfigIssue] = list(issues)
        count = len(self.issues)
        lines = "\n".join(f"  {issue}" for issue in self.issues)
        super().__init__(f"{count} error{'s' if count != 1 else ''} in the site configuration:\n{lines}")


class DriverError(CityScadaError):
    """A driver failed in a way its caller must know about (not a per-device communication loss)."""


class CommandError(CityScadaError):
    """A command could not be carried out; `status` is the OPC UA status code to answer with."""

    status: int = Quality.BAD_INTERNAL

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        if status is not None:
            self.status = status


class OutOfRangeError(CommandError):
    """An argument is outside its range: nothing was sent to the device."""

    status = Quality.BAD_OUT_OF_RANGE


class InvalidArgumentError(CommandError):
    """An argument is missing, of the wrong type or malformed: nothing was sent."""

    status = Quality.BAD_INVALID_ARGUMENT


class UnknownDeviceError(CommandError):
    """The command names a device or action the site does not have."""

    status = Quality.BAD_NODE_ID_UNKNOWN


class DeviceCommunicationError(CommandError):
    """The device cannot be reached."""

    status = Quality.BAD_COMM


class DeviceRejectedError(CommandError):
    """The device answered but refused the command (a Modbus exception other than 'illegal value')."""

    status = Quality.BAD_DEVICE_FAILURE


class AccessDeniedError(CommandError):
    """The user's role does not allow this command."""

    status = Quality.BAD_USER_ACCESS_DENIED
