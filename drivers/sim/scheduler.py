"""A discrete-event scheduler on sim time: a heap of (time, sequence, callback, argument)."""

from __future__ import annotations

import heapq
import logging
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

Callback = Callable[[float, Any], None]


class EventScheduler:
    """Runs callbacks in sim-time order; ties keep the order they were scheduled in (deterministic)."""

    __slots__ = ("_failures", "_heap", "_running", "_seq", "processed", "time")

    def __init__(self, start: float) -> None:
        self._heap: list[tuple[float, int, Callback, Any]] = []
        self._seq = 0
        self._running = False
        self._failures = 0
        self.processed = 0
        self.time = start  # sim time of the last event run (or of the last run_until)

    def at(self, t: float, callback: Callback, arg: Any = None) -> None:
        """Schedule `callback(t, arg)` at sim time `t`."""
        heapq.heappush(self._heap, (t, self._seq, callback, arg))
        self._seq += 1

    def due(self, now: float) -> bool:
        """True when some event is due at or before `now`."""
        return bool(self._heap) and self._heap[0][0] <= now

    def next_time(self) -> float | None:
        """The time of the next event, or None."""
        return self._heap[0][0] if self._heap else None

    def run_until(self, now: float) -> int:
        """Run every event due at or before `now`, in order; returns how many ran (re-entrant calls run none)."""
        if self._running:
            return 0
        self._running = True
        heap = self._heap
        pop = heapq.heappop
        count = 0
        try:
            while heap and heap[0][0] <= now:
                t, _, callback, arg = pop(heap)
                self.time = t
                try:
                    callback(t, arg)
                except Exception:
                    self._failures += 1
                    if self._failures <= 5:
                        log.exception("simulated event %r failed", callback)
                count += 1
            if now > self.time:
                self.time = now
        finally:
            self._running = False
        self.processed += count
        return count

    def __len__(self) -> int:
        return len(self._heap)
