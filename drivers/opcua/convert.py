"""Pure conversions between remote OPC UA values and the catalog: incoming values, outgoing arguments, statuses."""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from asyncua import ua

from scada.model import (
    AccessDeniedError,
    CommandError,
    DeviceCommunicationError,
    DeviceRejectedError,
    InvalidArgumentError,
    OutOfRangeError,
    UnknownDeviceError,
)

_S = ua.StatusCodes

# Integer ranges of the OPC UA integer types (value checked before anything is sent).
_INT_RANGES: dict[ua.VariantType, tuple[int, int]] = {
    ua.VariantType.SByte: (-(2**7), 2**7 - 1),
    ua.VariantType.Byte: (0, 2**8 - 1),
    ua.VariantType.Int16: (-(2**15), 2**15 - 1),
    ua.VariantType.UInt16: (0, 2**16 - 1),
    ua.VariantType.Int32: (-(2**31), 2**31 - 1),
    ua.VariantType.UInt32: (0, 2**32 - 1),
    ua.VariantType.Int64: (-(2**63), 2**63 - 1),
    ua.VariantType.UInt64: (0, 2**64 - 1),
}
_FLOATS = (ua.VariantType.Float, ua.VariantType.Double)

# Remote statuses that mean "the argument is wrong", "the link is wrong", "who are you", "no such node".
_INVALID = {_S.BadInvalidArgument, _S.BadTypeMismatch, _S.BadArgumentsMissing, _S.BadTooManyArguments}
_COMM = {
    _S.BadCommunicationError,
    _S.BadNotConnected,
    _S.BadNoCommunication,
    _S.BadTimeout,
    _S.BadServerNotConnected,
    _S.BadConnectionClosed,
    _S.BadSessionClosed,
    _S.BadSessionIdInvalid,
    _S.BadSecureChannelClosed,
    _S.BadShutdown,
    _S.BadServerHalted,
    _S.BadRequestTimeout,
}
_DENIED = {_S.BadUserAccessDenied, _S.BadNotWritable, _S.BadIdentityTokenRejected, _S.BadIdentityTokenInvalid}
_UNKNOWN = {_S.BadNodeIdUnknown, _S.BadNodeIdInvalid, _S.BadMethodInvalid}


def status_name(status: int) -> str:
    """The symbolic name of an OPC UA status code ("BadOutOfRange"), info bits ignored."""
    name, _ = ua.status_codes.get_name_and_doc(status & 0xFFFF0000)
    return name


def command_error(status: int, message: str) -> CommandError:
    """The typed CommandError for a Bad status answered by the remote server; it keeps that status."""
    code = status & 0xFFFF0000
    text = f"{message}: {status_name(status)}"
    if code == _S.BadOutOfRange:
        return OutOfRangeError(text, status)
    if code in _INVALID:
        return InvalidArgumentError(text, status)
    if code in _COMM:
        return DeviceCommunicationError(text, status)
    if code in _DENIED:
        return AccessDeniedError(text, status)
    if code in _UNKNOWN:
        return UnknownDeviceError(text, status)
    return DeviceRejectedError(text, status)


def variant_type_of(dtype: str) -> ua.VariantType:
    """The VariantType of a catalog data type name ("UInt16" -> VariantType.UInt16)."""
    return ua.VariantType[dtype]


def variant_type_of_datatype(datatype: ua.NodeId) -> ua.VariantType | None:
    """The built-in VariantType of a remote DataType node id, or None when it is no built-in scalar type."""
    if datatype.NamespaceIndex != 0 or datatype.NodeIdType not in (
        ua.NodeIdType.Numeric,
        ua.NodeIdType.TwoByte,
        ua.NodeIdType.FourByte,
    ):
        return None
    number = int(datatype.Identifier)
    if 1 <= number <= 25:
        return ua.VariantType(number)
    if number == ua.ObjectIds.Enumeration:
        return ua.VariantType.Int32
    return None


def to_variant(name: str, value: Any, vtype: ua.VariantType) -> ua.Variant:
    """An argument as a Variant of the remote type; OutOfRangeError / InvalidArgumentError before anything is sent."""
    if vtype == ua.VariantType.Boolean:
        if not isinstance(value, bool):
            raise InvalidArgumentError(f"{name} must be a Boolean, got {type(value).__name__}")
        return ua.Variant(value, vtype)
    if vtype == ua.VariantType.String:
        if not isinstance(value, str):
            raise InvalidArgumentError(f"{name} must be a String, got {type(value).__name__}")
        return ua.Variant(value, vtype)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidArgumentError(f"{name} must be a number ({vtype.name}), got {type(value).__name__}")
    if vtype in _FLOATS:
        if not math.isfinite(value):
            raise InvalidArgumentError(f"{name} must be a finite number")
        return ua.Variant(float(value), vtype)
    if vtype in _INT_RANGES:
        if isinstance(value, float) and not value.is_integer():
            raise InvalidArgumentError(f"{name} must be a whole number ({vtype.name}), got {value}")
        number = int(value)
        low, high = _INT_RANGES[vtype]
        if not low <= number <= high:
            raise OutOfRangeError(f"{name}={number} does not fit the remote {vtype.name}")
        return ua.Variant(number, vtype)
    raise InvalidArgumentError(f"{name}: the remote expects a {vtype.name}, which cityscada cannot send")


def _to_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    raise TypeError(f"{value!r} is not a Boolean")


def _to_int(value: Any) -> int:
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    raise TypeError(f"{value!r} is not an integer")


def _to_float(value: Any) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    raise TypeError(f"{value!r} is not a number")


def _to_str(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, ua.LocalizedText):
        return value.Text or ""
    raise TypeError(f"{value!r} is not a String")


def _to_datetime(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    raise TypeError(f"{value!r} is not a DateTime")


CONVERTERS: dict[str, Callable[[Any], Any]] = {
    "Boolean": _to_bool,
    "UInt16": _to_int,
    "UInt32": _to_int,
    "Int32": _to_int,
    "Double": _to_float,
    "String": _to_str,
    "DateTime": _to_datetime,
}


def converter(dtype: str) -> Callable[[Any], Any]:
    """The function turning a remote value into the catalog dtype's Python type (TypeError when it cannot)."""
    return CONVERTERS[dtype]


def timestamp(dv: ua.DataValue, now: datetime) -> datetime:
    """The source time of a remote value, timezone-aware UTC: SourceTimestamp, else ServerTimestamp, else `now`."""
    ts = dv.SourceTimestamp or dv.ServerTimestamp
    if ts is None:
        return now
    return ts if ts.tzinfo is not None else ts.replace(tzinfo=UTC)
