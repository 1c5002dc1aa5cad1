"""Follow-me lighting: a presence detection raises the next lamps ahead along the street, then they fall back.

Detections come from the live value stream as *edges*: PresenceDetected going from False to True, or the
lamp's PresenceCount moving on (a new detection while the flag is still held); a Bad record forgets the state,
so a recovery is not taken for a detection. Lamps of a street are ordered by `seq`, across cabinet boundaries.
The walking direction is taken from the most recent earlier detection on the same street, near enough (at most
lamps_ahead + 1 lamps away) and recent enough (track_seconds); without one, both directions are raised.
Each raised lamp holds until the latest detection that raised it plus hold_seconds, so re-triggering extends
and several pedestrians overlap; the release is what the hold table says, whatever the order of detections.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import logging
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from scada.lighting.clock import SiteClock
from scada.lighting.config import PresenceConfig
from scada.model import ValueRecord, is_good
from scada.site.model import Lamp, Site

log = logging.getLogger(__name__)

EXPIRY_TOLERANCE = timedelta(milliseconds=1)


@dataclass(frozen=True, slots=True)
class Detection:
    """One presence detection on a street."""

    at: datetime
    position: int  # index in the street's lamp order
    lamp_id: str


@dataclass(slots=True)
class Hold:
    """A lamp raised by follow-me until `until`."""

    lamp: Lamp
    level: float
    since: datetime
    until: datetime


class StreetIndex:
    """The lamps of every street in `seq` order, whatever their cabinet."""

    def __init__(self, site: Site) -> None:
        streets: dict[str, list[Lamp]] = {}
        for lamp in site.lamps():
            if lamp.street_id:
                streets.setdefault(lamp.street_id, []).append(lamp)
        for lamps in streets.values():
            lamps.sort(key=lambda lamp: (lamp.seq, lamp.id))
        self.streets = streets
        self.position: dict[str, tuple[str, int]] = {
            lamp.id: (street, position) for street, lamps in streets.items() for position, lamp in enumerate(lamps)
        }

    def neighbours(self, lamp_id: str, direction: int | None, count: int) -> list[Lamp]:
        """The next `count` lamps after `lamp_id` in `direction` (+1 up the seq, -1 down, None both ways)."""
        where = self.position.get(lamp_id)
        if where is None:
            return []
        street, position = where
        lamps = self.streets[street]
        found: list[Lamp] = []
        for step in (1, -1) if direction is None else (direction,):
            for k in range(1, count + 1):
                other = position + step * k
                if 0 <= other < len(lamps):
                    found.append(lamps[other])
        return found


@dataclass(slots=True)
class Edges:
    """What one batch of records says: lamps with a new detection, cabinets that answer again."""

    detections: list[str]
    recovered: list[str]


_FLAG, _COUNT, _COMM = 0, 1, 2


class PresenceEdges:
    """Turns PresenceDetected / PresenceCount records into detection edges, and CommunicationOk into recoveries.

    One dictionary lookup per record (the stream carries every variable of every device): the Dijon site's full
    publish of 340,000 records costs tens of milliseconds.
    """

    def __init__(self, site: Site) -> None:
        watch: dict[str, tuple[int, str]] = {}
        for lamp in site.lamps():
            watch[f"{lamp.path}/PresenceDetected"] = (_FLAG, lamp.id)
            watch[f"{lamp.path}/PresenceCount"] = (_COUNT, lamp.id)
        for cabinet in site.cabinets.values():
            watch[f"{cabinet.path}/CommunicationOk"] = (_COMM, cabinet.id)
        self._watch = watch
        self._last: dict[tuple[int, str], object] = {}

    def feed(self, records: Sequence[ValueRecord]) -> Edges:
        """The lamps with a new detection (each once, in record order) and the cabinets that answer again."""
        fired: dict[str, None] = {}
        recovered: list[str] = []
        watch, last = self._watch, self._last
        for record in records:
            entry = watch.get(record.tag)
            if entry is None:
                continue
            kind, device_id = entry
            if not is_good(record.quality):
                if kind != _COMM:
                    last[entry] = None  # unknown: the next good value is a baseline, not a detection
                continue
            previous = last.get(entry)
            if kind == _FLAG:
                value: object = bool(record.value)
                if previous is False and value:
                    fired[device_id] = None
            elif kind == _COUNT:
                value = record.value if isinstance(record.value, int) else None
                if previous is not None and value is not None and value != previous:
                    fired[device_id] = None
            else:
                value = bool(record.value)
                if previous is False and value:
                    recovered.append(device_id)
            last[entry] = value
        return Edges(list(fired), recovered)


class FollowMe:
    """Holds raised lamps ahead of pedestrians and releases them when their hold ends."""

    def __init__(
        self,
        site: Site,
        presence: PresenceConfig,
        clock: SiteClock,
        *,
        raise_lamp: Callable[[Lamp, float | None], None],
        base_level: Callable[[Lamp], float | None],
    ) -> None:
        """`raise_lamp(lamp, level)` asks for a level (None: back to the profile); `base_level` is the profile
        level of a lamp now, None when follow-me must leave it alone (day, maintenance override)."""
        self.config = presence.follow_me
        self.level = presence.follow_level
        self.index = StreetIndex(site)
        self._clock = clock
        self._raise = raise_lamp
        self._base = base_level
        self._recent: dict[str, deque[Detection]] = {}
        self._holds: dict[str, Hold] = {}
        self._heap: list[tuple[datetime, str]] = []
        self._changed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.detections = 0
        self.raised = 0  # holds started or extended

    # -- detections -----------------------------------------------------------------------------------------

    def direction(self, lamp_id: str, at: datetime) -> int | None:
        """+1 or -1 from the latest earlier detection near this lamp on its street, None when there is none."""
        where = self.index.position.get(lamp_id)
        if where is None:
            return None
        street, position = where
        recent = self._recent.get(street)
        if not recent:
            return None
        horizon = at - timedelta(seconds=self.config.track_seconds)
        reach = self.config.lamps_ahead + 1
        for detection in reversed(recent):
            if detection.at < horizon:
                break
            if detection.position != position and abs(detection.position - position) <= reach:
                return 1 if position > detection.position else -1
        return None

    def detect(self, lamp_id: str, at: datetime | None = None) -> list[str]:
        """A detection at a lamp: raise the lamps ahead; returns the ids of the lamps raised or extended."""
        at = at if at is not None else self._clock.now()
        where = self.index.position.get(lamp_id)
        if where is None:
            return []
        self.detections += 1
        direction = self.direction(lamp_id, at)
        street, position = where
        recent = self._recent.setdefault(street, deque(maxlen=32))
        recent.append(Detection(at, position, lamp_id))
        if not self.config.enabled:
            return []
        until = at + timedelta(seconds=self.config.hold_seconds)
        raised: list[str] = []
        for lamp in self.index.neighbours(lamp_id, direction, self.config.lamps_ahead):
            base = self._base(lamp)
            if base is None or self.level <= base:
                continue
            hold = self._holds.get(lamp.id)
            if hold is None:
                hold = self._holds[lamp.id] = Hold(lamp, self.level, at, until)
            elif until > hold.until:
                hold.until = until
            else:
                continue
            heapq.heappush(self._heap, (hold.until, lamp.id))
            self._raise(lamp, hold.level)
            raised.append(lamp.id)
        if raised:
            self.raised += len(raised)
            self._changed.set()
            log.debug("presence at %s (direction %s): raised %s until %s", lamp_id, direction, raised, until)
        return raised

    # -- holds ----------------------------------------------------------------------------------------------

    def holds(self) -> list[Hold]:
        """The holds in force, soonest ending first."""
        return sorted(self._holds.values(), key=lambda hold: (hold.until, hold.lamp.id))

    def next_expiry(self) -> datetime | None:
        """When the next hold ends."""
        while self._heap:
            until, lamp_id = self._heap[0]
            hold = self._holds.get(lamp_id)
            if hold is not None and hold.until == until:
                return until
            heapq.heappop(self._heap)  # superseded by an extension or a release
        return None

    def expire(self, now: datetime | None = None) -> list[str]:
        """Release every hold ended by `now`; returns the lamp ids released."""
        now = now if now is not None else self._clock.now()
        released: list[str] = []
        while True:
            until = self.next_expiry()
            if until is None or until > now + EXPIRY_TOLERANCE:
                break
            _, lamp_id = heapq.heappop(self._heap)
            hold = self._holds.pop(lamp_id)
            self._raise(hold.lamp, None)
            released.append(lamp_id)
        return released

    def release(self, lamp_ids: Iterable[str] | None = None) -> list[str]:
        """End holds now (all of them when `lamp_ids` is None): the district went dark, a cabinet is overridden."""
        chosen = list(self._holds) if lamp_ids is None else [i for i in lamp_ids if i in self._holds]
        for lamp_id in chosen:
            hold = self._holds.pop(lamp_id)
            self._raise(hold.lamp, None)
        if chosen:
            self._changed.set()
        return chosen

    # -- the expiry timer -----------------------------------------------------------------------------------

    def start(self) -> None:
        """Start the task that releases holds when they end (idempotent)."""
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name="lighting-follow-me")

    async def stop(self) -> None:
        """Stop the expiry task (idempotent); holds stay in the table."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self) -> None:
        while True:
            self._changed.clear()
            self.expire()
            until = self.next_expiry()
            timeout = None if until is None else self._clock.real_delay(until)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), timeout)
