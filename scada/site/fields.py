"""Field specifications and column parsers: turn raw cells into typed values, or into exact issues."""

from __future__ import annotations

import enum
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from scada.model import ConfigIssue
from scada.site.sources import INVALID, MISSING, Table, describe

ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}")
"""A valid id: it becomes part of OPC UA NodeId paths, so no '/', no spaces, at most 64 characters."""

MSG_MISSING_FIELD = "missing required field"
MSG_MISSING_VALUE = "missing required value"
MSG_MISSING_COLUMN = "missing required column"


class FieldType(enum.Enum):
    """What a field holds."""

    ID = "id"  # an identifier (ID_PATTERN)
    TEXT = "text"  # any non-empty text
    FLOAT = "float"  # a finite number within [lo, hi]
    INT = "int"  # an integer within [lo, hi]
    CHOICE = "choice"  # one of `choices`
    POINTS = "points"  # a list of at least 2 [longitude, latitude] pairs


@dataclass(frozen=True, slots=True)
class Col:
    """One field of a section: its type, whether it is required, its range and its default."""

    name: str
    type: FieldType
    required: bool = True
    lo: float | None = None
    hi: float | None = None
    choices: tuple[str, ...] = ()
    default: Any = None  # value of an empty optional field (None: resolved later, e.g. from site defaults)


class BadValue(Exception):
    """A cell's value is wrong; the message is the issue's text."""


def number_text(x: float) -> str:
    """A number as messages show it: 90 rather than 90.0."""
    if isinstance(x, float) and x.is_integer() and abs(x) < 1e15:
        return str(int(x))
    return str(x)


def _range_message(col: Col, raw: Any) -> str:
    shown = raw.strip() if isinstance(raw, str) else number_text(raw)
    return f"{shown} is outside {number_text(col.lo or 0)}..{number_text(col.hi or 0)}"


def _to_float(col: Col, raw: Any) -> float:
    if isinstance(raw, bool) or not isinstance(raw, (int, float, str)):
        raise BadValue(f"expected a number, got {describe(raw)}")
    try:
        value = float(raw)
    except ValueError:
        raise BadValue(f"expected a number, got {describe(raw)}") from None
    if not math.isfinite(value):
        raise BadValue(f"expected a number, got {describe(raw)}")
    if col.lo is not None and col.hi is not None and not col.lo <= value <= col.hi:
        raise BadValue(_range_message(col, raw))
    return value


def _to_int(col: Col, raw: Any) -> int:
    if isinstance(raw, bool) or not isinstance(raw, (int, str)):
        if isinstance(raw, float) and raw.is_integer():
            raise BadValue(f"expected an integer, got {describe(raw)} (write it without a decimal point)")
        raise BadValue(f"expected an integer, got {describe(raw)}")
    try:
        value = int(raw)
    except ValueError:
        raise BadValue(f"expected an integer, got {describe(raw)}") from None
    if col.lo is not None and col.hi is not None and not col.lo <= value <= col.hi:
        raise BadValue(_range_message(col, raw))
    return value


def _to_text(col: Col, raw: Any) -> str:
    if not isinstance(raw, str):
        hint = " (put it in quotes)" if isinstance(raw, (int, float, bool)) else ""
        raise BadValue(f"expected text, got {describe(raw)}{hint}")
    return raw


def _to_id(col: Col, raw: Any) -> str:
    text = _to_text(col, raw)
    if ID_PATTERN.fullmatch(text) is None:
        raise BadValue(
            f"invalid id {text!r}: use letters, digits, '-', '_' and '.', starting with a letter or digit"
            " (at most 64 characters)"
        )
    return text


def _to_choice(col: Col, raw: Any) -> str:
    text = _to_text(col, raw)
    if text not in col.choices:
        raise BadValue(f"unknown {col.name} {text!r}, expected {' or '.join(col.choices)}")
    return text


def _to_points(col: Col, raw: Any) -> list[tuple[float, float]]:
    if not isinstance(raw, list):
        raise BadValue(f"expected a list of [longitude, latitude] points, got {describe(raw)}")
    if len(raw) < 2:
        raise BadValue(f"a line needs at least 2 points, got {len(raw)}")
    lengths = set(map(len, raw)) if set(map(type, raw)) == {list} else set()
    if lengths and lengths <= {2, 3}:  # whole-line checks at C speed
        lons = [point[0] for point in raw]
        lats = [point[1] for point in raw]
        types = set(map(type, lons)) | set(map(type, lats))
        if 3 in lengths:
            types |= {type(point[2]) for point in raw if len(point) == 3}
        if (
            types <= _NUMBER_TYPES
            and math.isfinite(sum(lons) + sum(lats))
            and min(lons) >= -180
            and max(lons) <= 180
            and min(lats) >= -90
            and max(lats) <= 90
        ):
            return list(zip(map(float, lons), map(float, lats), strict=True))
    points: list[tuple[float, float]] = []
    for k, point in enumerate(raw):  # point by point, to name the first bad one
        if type(point) is not list or not 2 <= len(point) <= 3 or any(type(c) not in _NUMBER for c in point):
            raise BadValue(f"point {k} is not [longitude, latitude]: {point!r}")
        lon, lat = float(point[0]), float(point[1])
        if not (-180.0 <= lon <= 180.0 and -90.0 <= lat <= 90.0):
            raise BadValue(
                f"point {k} [{number_text(lon)}, {number_text(lat)}] is outside longitude -180..180 or latitude -90..90"
            )
        points.append((lon, lat))
    return points


_NUMBER = (int, float)
_NUMBER_TYPES = {int, float}

_CONVERTERS: dict[FieldType, Callable[[Col, Any], Any]] = {
    FieldType.ID: _to_id,
    FieldType.TEXT: _to_text,
    FieldType.FLOAT: _to_float,
    FieldType.INT: _to_int,
    FieldType.CHOICE: _to_choice,
    FieldType.POINTS: _to_points,
}


def parse_column(table: Table, col: Col, issues: list[ConfigIssue]) -> list[Any]:
    """The typed values of one column; a wrong or missing cell becomes INVALID and an issue, an empty optional one the default."""
    raw = table.columns.get(col.name)
    if raw is None:  # a CSV without that column
        if col.required:
            issues.append(ConfigIssue(table.file, table.header_line, col.name, MSG_MISSING_COLUMN))
            return [INVALID] * table.size
        return [col.default] * table.size
    if table.text_only:
        fast = _parse_text_column(col, raw)
        if fast is not None:
            return fast
    convert = _CONVERTERS[col.type]
    values: list[Any] = []
    append = values.append
    for row, cell in enumerate(raw):
        if cell is INVALID:
            append(INVALID)
        elif cell is MISSING or cell is None or cell == "":
            if col.required:
                line, path = table.locate(row, col.name)
                message = MSG_MISSING_FIELD if cell is MISSING else MSG_MISSING_VALUE
                issues.append(ConfigIssue(table.file, line, path, message))
                append(INVALID)
            else:
                append(col.default)
        else:
            try:
                append(convert(col, cell))
            except BadValue as exc:
                line, path = table.locate(row, col.name)
                issues.append(ConfigIssue(table.file, line, path, str(exc)))
                append(INVALID)
    return values


def _parse_text_column(col: Col, raw: list[str]) -> list[Any] | None:
    """Whole-column parsing of CSV text at C speed; None when any cell needs the precise per-cell path."""
    if col.type is FieldType.FLOAT or col.type is FieldType.INT:
        try:
            values: list[Any] = list(map(float if col.type is FieldType.FLOAT else int, raw))
        except ValueError:
            return None
        if values:
            total = sum(values)
            if total != total or math.isinf(total):  # NaN or infinity somewhere
                return None
            if col.lo is not None and col.hi is not None and not (col.lo <= min(values) and max(values) <= col.hi):
                return None
        return values
    if "" in raw:
        return None
    if col.type is FieldType.TEXT:
        return list(raw)
    if col.type is FieldType.ID:
        return list(raw) if all(map(ID_PATTERN.fullmatch, raw)) else None
    if col.type is FieldType.CHOICE:
        return list(raw) if set(raw) <= set(col.choices) else None
    return None
