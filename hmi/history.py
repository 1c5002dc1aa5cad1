"""History as the console asks for it: raw or processed (Part 11 ReadProcessed) reads, the plan for a time range,
and samples as plot arrays where Bad values are gaps.

A short range is read raw (every stored value); a long one is read processed, with the interval chosen so that the
answer has about `TARGET_POINTS` values: a year of a 1 s tag is 31 million rows in the historian and one thousand
time-weighted averages on the wire.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

import numpy as np
from asyncua import Client, ua

from hmi.client import ConsoleClient

RAW_MAX_SECONDS = 6 * 3600.0
"""Ranges up to this span are read raw; longer ones processed."""
TARGET_POINTS = 1000
"""About how many processed values a long range is read as."""
AGGREGATES: dict[str, int] = {
    "TimeAverage": ua.ObjectIds.AggregateFunction_TimeAverage,
    "Average": ua.ObjectIds.AggregateFunction_Average,
    "Minimum": ua.ObjectIds.AggregateFunction_Minimum,
    "Maximum": ua.ObjectIds.AggregateFunction_Maximum,
    "Count": ua.ObjectIds.AggregateFunction_Count,
    "Start": ua.ObjectIds.AggregateFunction_Start,
    "End": ua.ObjectIds.AggregateFunction_End,
}


@dataclass(frozen=True, slots=True)
class ReadPlan:
    """How a time range is read: raw, or processed with an aggregate and an interval (s)."""

    start: datetime
    end: datetime
    processed: bool
    interval_s: float = 0.0
    aggregate: str = "TimeAverage"

    @property
    def mode(self) -> str:
        """ "raw" or "TimeAverage 60 s" (for the status line)."""
        return f"{self.aggregate} {self.interval_s:g} s" if self.processed else "raw"


def plan_read(start: datetime, end: datetime, aggregate: str = "TimeAverage") -> ReadPlan:
    """Raw up to RAW_MAX_SECONDS, otherwise processed with a whole-second interval giving ~TARGET_POINTS values."""
    span = (end - start).total_seconds()
    if span <= 0:
        raise ValueError(f"the range ends ({end:%Y-%m-%d %H:%M}) before it starts ({start:%Y-%m-%d %H:%M})")
    if span <= RAW_MAX_SECONDS:
        return ReadPlan(start, end, False)
    return ReadPlan(start, end, True, float(math.ceil(span / TARGET_POINTS)), aggregate)


def ua_session(client: ConsoleClient) -> Client:
    """The asyncua client of the console's current session (ConsoleError when not connected), for the requests
    ConsoleClient does not wrap (browse, ReadProcessed)."""
    return client.session()


async def read_processed(
    client: ConsoleClient, path: str, start: datetime, end: datetime, interval_s: float, aggregate: str = "TimeAverage"
) -> list[ua.DataValue]:
    """Processed history of a variable: one value per interval (continuation points followed)."""
    if aggregate not in AGGREGATES:
        raise ValueError(f"unknown aggregate {aggregate!r} (known: {', '.join(AGGREGATES)})")
    details = ua.ReadProcessedDetails(
        StartTime=start,
        EndTime=end,
        ProcessingInterval=interval_s * 1000.0,
        AggregateType=[ua.NodeId(cast(ua.Int32, AGGREGATES[aggregate]))],
        AggregateConfiguration=ua.AggregateConfiguration(UseServerCapabilitiesDefaults=True),
    )
    values: list[ua.DataValue] = await client.history_read(
        client.nodeid(path), details, f"{aggregate} history of {path}"
    )
    return values


async def read_plan(client: ConsoleClient, path: str, plan: ReadPlan) -> list[ua.DataValue]:
    """The history of one variable as the plan says."""
    if plan.processed:
        return await read_processed(client, path, plan.start, plan.end, plan.interval_s, plan.aggregate)
    return await client.read_history(path, plan.start, plan.end)


def numeric(value: Any) -> float:
    """A plottable number (booleans as 0/1), NaN for anything else."""
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if isinstance(value, int | float):
        return float(value)
    return math.nan


def timestamp_of(dv: ua.DataValue) -> datetime | None:
    """The value's source time (the server's time when the source gave none)."""
    return dv.SourceTimestamp or dv.ServerTimestamp


def samples(values: Iterable[ua.DataValue]) -> tuple[np.ndarray, np.ndarray]:
    """Times (epoch seconds) and values of DataValues; a Bad value (or a non-number) is NaN: a gap in the plot."""
    times: list[float] = []
    ys: list[float] = []
    for dv in values:
        moment = timestamp_of(dv)
        if moment is None:
            continue
        bad = dv.StatusCode is not None and dv.StatusCode.is_bad()
        times.append(moment.timestamp())
        ys.append(math.nan if bad or dv.Value is None else numeric(dv.Value.Value))
    return np.asarray(times, dtype=float), np.asarray(ys, dtype=float)


def value_at(times: np.ndarray, values: np.ndarray, moment: float) -> float:
    """The value in force at `moment` (the last sample at or before it; NaN before the first or in a gap)."""
    index = int(np.searchsorted(times, moment, side="right")) - 1
    return float(values[index]) if 0 <= index < len(values) else math.nan


def merge_sorted(times: np.ndarray, values: np.ndarray, more: Sequence[tuple[float, float]]) -> tuple[Any, Any]:
    """Append newer samples (older than the last kept are dropped: the history already has them)."""
    last = times[-1] if len(times) else -math.inf
    fresh = [(t, v) for t, v in more if t > last]
    if not fresh:
        return times, values
    new_t, new_v = zip(*fresh, strict=True)
    return np.concatenate([times, np.asarray(new_t, dtype=float)]), np.concatenate([values, np.asarray(new_v)])
