"""Storage by exception: which tags are historized, their deadbands, and the per-tag filter fed by the core.

The filter runs in the event loop, inside ``Historian.submit()``: it is pure Python on in-memory state (no I/O),
about a microsecond per record. What it keeps becomes a sample row ``(tag, ts_us, value, text, quality)``.

Rules, per tag, against the last *stored* sample:
- the first value seen is stored;
- a change of quality is always stored (a Bad value stamped with the last good time, as drivers do, is stored at
  the historian's receive time so that the primary key (tag, ts) does not swallow the transition);
- a value older than or as old as the last stored one, with the same quality, is dropped as stale;
- numbers: stored when ``|v - last| > threshold`` (threshold 0: on any change), threshold = max(absolute,
  percent x EU range / 100); NaN to number and back counts as a change;
- booleans, strings and integers without a deadband: stored on change;
- a value is stored whatever its change once ``max_interval`` has elapsed since the last stored sample, and
  ``sweep()`` stores the held (last seen) value again when a tag has been silent for ``max_interval``.
"""

from __future__ import annotations

import fnmatch
import heapq
import json
import math
import re
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, NamedTuple, Protocol

from historian.schema import US_PER_S, from_us, to_us
from scada.catalog import VARIABLES, Kind, VarSpec
from scada.model import ValueRecord, WriteRequest, WriteResult

NUMERIC_DTYPES = frozenset({"Boolean", "UInt16", "UInt32", "Int32", "Double", "Float", "Int16", "Int64", "UInt64"})
_ONE_US = timedelta(microseconds=1)
_EPOCH = from_us(0)


@dataclass(frozen=True, slots=True)
class Deadband:
    """A storage deadband: absolute (in the tag's unit) and/or percent of the EU range; the larger one applies."""

    absolute: float = 0.0
    percent: float = 0.0

    def __post_init__(self) -> None:
        if self.absolute < 0 or self.percent < 0 or not math.isfinite(self.absolute + self.percent):
            raise ValueError(f"a deadband is finite and not negative, got {self}")

    def threshold(self, eu_range: tuple[float, float] | None) -> float:
        """The absolute threshold for a tag of that EU range (percent needs a range, else it is ignored)."""
        span = (eu_range[1] - eu_range[0]) if eu_range else 0.0
        return max(self.absolute, self.percent * span / 100.0)


class TagInfo(NamedTuple):
    """What the historian knows about one tag: whether to store it, how, and its retention class."""

    name: str
    historized: bool
    dtype: str = "Double"
    tag_class: str = "system"
    unit: str = ""
    threshold: float = 0.0

    @property
    def numeric(self) -> bool:
        """True when the value is stored in the `value` column (numbers, booleans)."""
        return self.dtype in NUMERIC_DTYPES


# Tag path roots -> device kind by depth ("Lighting/CAB/Level" is a cabinet, "Lighting/CAB/L/Level" a lamp).
_KINDS_BY_ROOT: dict[str, dict[int, Kind]] = {
    "Lighting": {3: Kind.CABINET, 4: Kind.LAMP},
    "Traffic": {3: Kind.CONTROLLER},
    "Signs": {3: Kind.SIGN},
    "Parking": {3: Kind.PARKING_SITE, 4: Kind.PARKING_SENSOR},
}
_CATALOG: dict[tuple[str, int, str], tuple[Kind, VarSpec]] = {
    (root, depth, spec.name): (kind, spec)
    for root, depths in _KINDS_BY_ROOT.items()
    for depth, kind in depths.items()
    for spec in VARIABLES[kind]
}


def catalog_spec(tag: str) -> tuple[Kind, VarSpec] | None:
    """The device kind and catalog variable a tag path names, or None when it is not a catalog variable."""
    parts = tag.split("/")
    return _CATALOG.get((parts[0], len(parts), parts[-1]))


class TagResolver:
    """Decides per tag path whether it is historized, with which deadband and class (catalog + registrations)."""

    def __init__(self, deadbands: Mapping[str, Deadband] | None = None) -> None:
        self._patterns = [(re.compile(fnmatch.translate(p)).match, band) for p, band in (deadbands or {}).items()]
        self._registered: dict[str, TagInfo] = {}
        self._cache: dict[str, TagInfo] = {}

    def register(
        self,
        name: str,
        *,
        dtype: str = "Double",
        tag_class: str = "system",
        unit: str = "",
        deadband: Deadband | None = None,
        eu_range: tuple[float, float] | None = None,
    ) -> TagInfo:
        """Historize a tag the catalog does not cover (energy totals, system counters); returns its info."""
        band = deadband or self._pattern_deadband(name) or Deadband()
        info = TagInfo(name, True, dtype, tag_class, unit, band.threshold(eu_range))
        self._registered[name] = info
        self._cache[name] = info
        return info

    def _pattern_deadband(self, name: str) -> Deadband | None:
        """The deadband of the first configured pattern that matches the tag (fnmatch, '*' crosses '/')."""
        for match, band in self._patterns:
            if match(name):
                return band
        return None

    def resolve(self, name: str) -> TagInfo:
        """The tag's info (cached); tags that are neither historized catalog variables nor registered are not stored."""
        info = self._cache.get(name)
        if info is not None:
            return info
        info = self._registered.get(name)
        if info is None:
            found = catalog_spec(name)
            if found is None or not found[1].historized:
                info = TagInfo(name, False)
            else:
                kind, spec = found
                band = self._pattern_deadband(name) if self._patterns else None
                threshold = spec.deadband if band is None else band.threshold(spec.eu_range)
                info = TagInfo(name, True, spec.dtype, kind.value, spec.unit, threshold)
        self._cache[name] = info
        return info


SampleRow = tuple[str | int, int, float | None, str | None, int]
"""One sample as queued: (tag id, or the tag name until the writer has resolved it; ts µs since epoch UTC; value;
text; quality). Plain tuples are fastest on the hot path; the journal always holds names."""


def encode_value(value: Any) -> tuple[float | None, str | None]:
    """A record's value as the (value, text) columns: numbers and booleans as doubles, anything else as text."""
    if value is None:
        return None, None
    if isinstance(value, (bool, int, float)):
        return float(value), None
    if isinstance(value, datetime):
        return None, value.isoformat()
    return None, value if isinstance(value, str) else str(value)


class _State:
    """Per-tag filter state, owned by the event loop thread."""

    __slots__ = (
        "due", "held", "info", "last_quality", "last_ts", "last_value", "numeric", "tag_id", "threshold",
    )  # fmt: skip

    def __init__(self, info: TagInfo) -> None:
        self.info = info
        self.tag_id: int | None = None  # set by the writer thread once the tag exists in the database
        self.numeric = info.numeric
        self.threshold = info.threshold
        self.last_ts: int | None = None
        self.last_value: Any = None
        self.last_quality = 0
        self.held: tuple[int, Any, int] | None = None  # the last record not stored (within deadband, unchanged)
        self.due = False  # has an entry in the sweep heap


@dataclass(slots=True)
class FilterCounters:
    """What the filter did since start."""

    received: int = 0
    accepted: int = 0
    filtered: int = 0
    not_historized: int = 0
    repeated: int = 0  # held values stored again by the max-interval sweep


class SampleFilter:
    """The storage-by-exception filter: records in, sample rows out (see the module docstring for the rules)."""

    def __init__(self, resolver: TagResolver, max_interval_s: float = 900.0, clock: Callable[[], int] | None = None):
        if max_interval_s <= 0:
            raise ValueError("max_interval_s must be positive")
        self.resolver = resolver
        self.max_interval_us = int(max_interval_s * US_PER_S)
        self.clock = clock or _now_us
        self.counters = FilterCounters()
        self._states: dict[str, _State | None] = {}
        self._heap: list[tuple[int, int, str]] = []
        self._seq = 0
        self._last_dt: datetime | None = None
        self._last_dt_us = 0

    def _state(self, tag: str) -> _State | None:
        """Create the state of a tag seen for the first time (None: not historized)."""
        info = self.resolver.resolve(tag)
        state = _State(info) if info.historized else None
        self._states[tag] = state
        return state

    def forget(self, tag: str) -> None:
        """Drop a tag's state (after a registration change); its next value is stored."""
        self._states.pop(tag, None)

    def filter(self, records: Iterable[ValueRecord], out: list[SampleRow]) -> int:
        """Apply the rules to records in order, appending kept rows to `out`; returns how many were kept."""
        states = self._states
        max_us = self.max_interval_us
        append = out.append
        last_dt, last_dt_us = self._last_dt, self._last_dt_us
        kept = received = filtered = ignored = 0
        for tag, value, quality, source_ts in records:
            received += 1
            state = states.get(tag, _MISSING)
            if state is _MISSING:
                state = self._state(tag)
            if state is None:
                ignored += 1
                continue
            if source_ts is last_dt:
                ts = last_dt_us
            else:
                ts = last_dt_us = (source_ts - _EPOCH) // _ONE_US
                last_dt = source_ts
            last_ts = state.last_ts
            if last_ts is not None:
                if quality != state.last_quality:
                    if ts <= last_ts:
                        ts = max(self.clock(), last_ts + 1)
                elif ts <= last_ts:
                    filtered += 1
                    continue
                elif ts - last_ts < max_us:
                    last = state.last_value
                    if state.numeric and value is not None and last is not None:
                        try:
                            delta = abs(value - last)
                        except TypeError:  # not a number after all: compare as values
                            delta = 0.0 if value == last else math.inf
                        if not (delta > state.threshold or (delta != delta and (value == value or last == last))):
                            state.held = (ts, value, quality)
                            filtered += 1
                            continue
                    elif value == last:
                        state.held = (ts, value, quality)
                        filtered += 1
                        continue
            state.last_ts, state.last_value, state.last_quality, state.held = ts, value, quality, None
            key = state.tag_id
            if key is None:
                key = tag
            if value.__class__ is float:
                append((key, ts, value, None, quality))
            else:
                v, text = encode_value(value)
                append((key, ts, v, text, quality))
            kept += 1
            if not state.due:
                state.due = True
                self._seq += 1
                heapq.heappush(self._heap, (ts + max_us, self._seq, tag))
        self._last_dt, self._last_dt_us = last_dt, last_dt_us
        counters = self.counters
        counters.received += received
        counters.accepted += kept
        counters.filtered += filtered
        counters.not_historized += ignored
        return kept

    def sweep(self, out: list[SampleRow], now_us: int | None = None) -> int:
        """Store again the held value of every tag silent for max_interval (its last held record, else now)."""
        now = self.clock() if now_us is None else now_us
        heap = self._heap
        max_us = self.max_interval_us
        repeated = 0
        while heap and heap[0][0] <= now:
            _, _, tag = heapq.heappop(heap)
            state = self._states.get(tag)
            if state is None or state.last_ts is None:
                continue
            due = state.last_ts + max_us
            if due > now:  # stored again since it was queued: requeue at its real due time
                self._seq += 1
                heapq.heappush(heap, (due, self._seq, tag))
                continue
            if state.held is not None:
                ts, value, quality = state.held
            else:
                ts, value, quality = now, state.last_value, state.last_quality
            state.last_ts, state.last_value, state.last_quality, state.held = ts, value, quality, None
            v, text = encode_value(value)
            out.append((tag if state.tag_id is None else state.tag_id, ts, v, text, quality))
            repeated += 1
            self._seq += 1
            heapq.heappush(heap, (ts + max_us, self._seq, tag))
        self.counters.repeated += repeated
        self.counters.accepted += repeated
        return repeated

    def assign_ids(self, ids: Mapping[str, int]) -> None:
        """Learn the database ids of tags (called by the writer thread): later rows carry the id, not the name."""
        states = self._states
        for name, tag_id in ids.items():
            state = states.get(name)
            if state is not None:
                state.tag_id = tag_id

    def tracked(self) -> int:
        """How many historized tags have state."""
        return sum(1 for state in self._states.values() if state is not None)


_MISSING: Any = object()


def _now_us() -> int:
    """The wall clock as µs since the epoch."""
    return time.time_ns() // 1000


# ---------------------------------------------------------------------------------------------------------
# Events, command audits and incidents: what record_event/record_command/upsert_incident queue and journal
# ---------------------------------------------------------------------------------------------------------


def new_uid() -> str:
    """A 32-hex-digit unique key: makes a journaled row idempotent on replay."""
    return uuid.uuid4().hex


class AuditLike(Protocol):
    """Anything shaped like a command audit record (the command service's own dataclass qualifies)."""

    @property
    def ts(self) -> datetime: ...
    @property
    def user(self) -> str | None: ...
    @property
    def origin(self) -> str: ...
    @property
    def device_id(self) -> str: ...
    @property
    def action(self) -> str: ...
    @property
    def args(self) -> Mapping[str, Any]: ...
    @property
    def status(self) -> int: ...
    @property
    def message(self) -> str: ...
    @property
    def duration_ms(self) -> float | None: ...


@dataclass(frozen=True, slots=True)
class CommandAudit:
    """One entry of the command audit trail: who asked what of which device, when, and the device's answer."""

    ts: datetime
    user: str | None
    origin: str
    device_id: str
    action: str
    args: Mapping[str, Any] = field(default_factory=dict)
    status: int = 0
    message: str = ""
    duration_ms: float | None = None

    @classmethod
    def of(cls, request: WriteRequest, result: WriteResult, ts: datetime, duration_ms: float) -> CommandAudit:
        """The audit record of a command and its answer."""
        return cls(
            ts, request.user, request.origin, request.device_id, request.action, dict(request.args),
            int(result.status), result.message, duration_ms,
        )  # fmt: skip


def _json(value: Any) -> str:
    """Compact JSON; values JSON does not know (datetimes, bytes) become strings."""
    return json.dumps(value, separators=(",", ":"), default=str, sort_keys=True)


def event_row(
    *,
    source: str,
    event_type: str,
    message: str = "",
    severity: int = 500,
    ts: datetime | None = None,
    condition: str | None = None,
    state: str | None = None,
    user: str | None = None,
    comment: str | None = None,
    data: Mapping[str, Any] | None = None,
    now_us: int | None = None,
) -> dict[str, Any]:
    """An events-table row (with its idempotency uid) from keyword arguments."""
    return {
        "ts": to_us(ts) if ts is not None else (now_us if now_us is not None else _now_us()),
        "source": source,
        "event_type": event_type,
        "severity": int(severity),
        "message": message,
        "condition": condition,
        "state": state,
        "user": user,
        "comment": comment,
        "data": None if data is None else _json(data),
        "uid": new_uid(),
    }


def command_row(audit: AuditLike) -> dict[str, Any]:
    """A commands-table row (with its idempotency uid) from an audit record."""
    return {
        "ts": to_us(audit.ts),
        "user": audit.user,
        "origin": audit.origin,
        "device_id": audit.device_id,
        "action": audit.action,
        "args": _json(dict(audit.args)),
        "status": int(audit.status) & 0xFFFFFFFF,
        "message": audit.message,
        "duration_ms": audit.duration_ms,
        "uid": new_uid(),
    }


def incident_row(
    incident_id: str,
    *,
    kind: str,
    lat: float,
    lon: float,
    description: str = "",
    contact: bytes | None = None,
    status: str = "open",
    created: datetime,
    closed: datetime | None = None,
    timeline: Sequence[Mapping[str, Any]] = (),
    updated: datetime | None = None,
    now_us: int | None = None,
) -> dict[str, Any]:
    """An incidents-table row; `updated` (default now) orders upserts so that a late replay never wins."""
    return {
        "id": incident_id,
        "kind": kind,
        "lat": float(lat),
        "lon": float(lon),
        "description": description,
        "contact": contact,
        "status": status,
        "created_ts": to_us(created),
        "closed_ts": None if closed is None else to_us(closed),
        "timeline": _json(list(timeline)),
        "updated_ts": to_us(updated) if updated is not None else (now_us if now_us is not None else _now_us()),
    }
