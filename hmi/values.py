"""Values as the console handles them: one change of one watched variable, status code names, display formats."""

from __future__ import annotations

from datetime import datetime
from typing import Any, NamedTuple

from asyncua import ua

from scada.model import Quality, is_good

NOT_CONNECTED = int(Quality.BAD_NOT_CONNECTED)
"""The status the console gives every watched value while the connection is lost (the value shown turns stale)."""


class Change(NamedTuple):
    """One new value of one watched variable (path = the NodeId string, e.g. "Traffic/TLC-001/Stage")."""

    path: str
    value: Any  # None with a Bad status: keep showing the last value, marked stale
    status: int  # OPC UA status code
    source_ts: datetime | None


_NAME_BY_CODE: dict[int, str] = {}
for _key, _value in vars(ua.StatusCodes).items():
    if not _key.startswith("_") and isinstance(_value, int):
        _NAME_BY_CODE.setdefault(_value, _key)


def status_text(status: int) -> str:
    """Good, or the status code's name (fast path through a table)."""
    code = int(status)
    return "Good" if code == 0 else _NAME_BY_CODE.get(code, f"0x{code:08X}")


def is_stale(status: int) -> bool:
    """True when a value's status says it is not current (Bad or Uncertain)."""
    return not is_good(status)


def format_value(value: Any, unit: str = "", digits: int = 1) -> str:
    """A value for a panel: numbers with their unit, booleans as yes/no, "—" for none."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        text = f"{value:.{digits}f}"
    else:
        text = str(value)
    return f"{text} {unit}".strip() if unit else text
