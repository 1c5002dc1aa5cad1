"""Catalog data types and units as OPC UA sees them: VariantTypes, DataType NodeIds, coercions, UNECE units."""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import datetime
from typing import Any

from asyncua import ua

from scada.opcua.nodes import ns0

VARIANT_TYPES: dict[str, ua.VariantType] = {
    "Boolean": ua.VariantType.Boolean,
    "UInt16": ua.VariantType.UInt16,
    "UInt32": ua.VariantType.UInt32,
    "Int32": ua.VariantType.Int32,
    "Double": ua.VariantType.Double,
    "String": ua.VariantType.String,
    "DateTime": ua.VariantType.DateTime,
}
"""Catalog dtype name -> the VariantType of its values."""


def data_type_id(dtype: str) -> ua.NodeId:
    """The DataType NodeId (namespace 0) of a catalog dtype name."""
    return ns0(getattr(ua.ObjectIds, dtype))


_INT_LIMITS: dict[str, tuple[int, int]] = {
    "UInt16": (0, 0xFFFF),
    "UInt32": (0, 0xFFFFFFFF),
    "Int32": (-(2**31), 2**31 - 1),
}


def _integer(low: int, high: int) -> Callable[[Any], int]:
    def convert(value: Any) -> int:
        if isinstance(value, float) and not value.is_integer():
            raise ValueError(f"{value} is not a whole number")
        number = int(value)
        if low <= number <= high:
            return number
        raise ValueError(f"{number} is outside {low}..{high}")

    return convert


def _double(value: Any) -> float:
    if isinstance(value, str):
        raise TypeError("a string is not a Double")
    return float(value)


def _boolean(value: Any) -> bool:
    if isinstance(value, bool | int):
        return bool(value)
    raise TypeError(f"{type(value).__name__} is not a Boolean")


def _string(value: Any) -> str:
    if isinstance(value, str):
        return value
    raise TypeError(f"{type(value).__name__} is not a String")


def _datetime(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value
    raise TypeError(f"{type(value).__name__} is not a DateTime")


def converter(dtype: str) -> Callable[[Any], Any]:
    """The function that turns a driver's value into the Python value of a catalog dtype (raises on bad input)."""
    if dtype in _INT_LIMITS:
        return _integer(*_INT_LIMITS[dtype])
    return {"Double": _double, "Boolean": _boolean, "String": _string, "DateTime": _datetime}[dtype]


_INTEGER_VARIANTS = frozenset(
    {
        ua.VariantType.SByte,
        ua.VariantType.Byte,
        ua.VariantType.Int16,
        ua.VariantType.UInt16,
        ua.VariantType.Int32,
        ua.VariantType.UInt32,
        ua.VariantType.Int64,
        ua.VariantType.UInt64,
    }
)
_NUMERIC_VARIANTS = _INTEGER_VARIANTS | {ua.VariantType.Float, ua.VariantType.Double}


def accepts(dtype: str, variant: ua.Variant) -> bool:
    """True when a client's Variant may stand for a value of this dtype (written variable or method argument).

    The exact VariantType always does. Numbers are accepted for numbers (any integer VariantType for an integer
    dtype; any integer or floating VariantType for Double), because generic clients often send Int64 or Float:
    the command service then checks that the value fits the dtype and the range. Booleans, strings, arrays and
    nulls never stand for anything else.
    """
    if variant.is_array or variant.Value is None:
        return False
    expected = VARIANT_TYPES[dtype]
    if variant.VariantType == expected:
        return True
    if dtype == "Double":
        return variant.VariantType in _NUMERIC_VARIANTS and math.isfinite(float(variant.Value))
    if dtype in _INT_LIMITS:
        return variant.VariantType in _INTEGER_VARIANTS
    return False


# Engineering units: the catalog's unit symbol -> (UNECE common code, description) (OPC UA Part 8, 5.6.3).
UNECE_UNITS: dict[str, tuple[str, str]] = {
    "%": ("P1", "percent"),
    "W": ("WTT", "watt"),
    "kW": ("KWT", "kilowatt"),
    "kWh": ("KWH", "kilowatt hour"),
    "V": ("VLT", "volt"),
    "s": ("SEC", "second [unit of time]"),
    "h": ("HUR", "hour"),
    "cd/m²": ("A24", "candela per square metre"),
}
UNECE_NAMESPACE = "http://www.opcfoundation.org/UA/units/un/cefact"


def unece_unit_id(code: str) -> int:
    """The UnitId of a UNECE common code (Part 8: the code's characters packed into an Int32, first char highest)."""
    unit_id = 0
    for char in code:
        unit_id = (unit_id << 8) | ord(char)
    return unit_id


def eu_information(unit: str) -> ua.EUInformation:
    """The EUInformation of a catalog unit symbol; KeyError for a unit that has no UNECE code here."""
    code, description = UNECE_UNITS[unit]
    return ua.EUInformation(
        NamespaceUri=UNECE_NAMESPACE,
        UnitId=unece_unit_id(code),
        DisplayName=ua.LocalizedText(unit),
        Description=ua.LocalizedText(description),
    )
