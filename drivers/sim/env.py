"""The shared context of every simulated device: clock, event scheduler, local time, seeded random streams."""

from __future__ import annotations

import random
from collections import deque
from datetime import UTC, datetime
from typing import Any

from drivers.sim.clock import LocalTime, SimClock
from drivers.sim.scheduler import EventScheduler


class SimEnv:
    """Clock + scheduler + per-device random streams; `sync()` brings the city up to the current sim time."""

    def __init__(self, clock: SimClock, *, timezone: str = "UTC", seed: int = 1, trace: bool = False) -> None:
        self.clock = clock
        self.seed = seed
        self.local = LocalTime(timezone)
        self.scheduler = EventScheduler(clock.now())
        self.trace: list[tuple[float, str, str]] | None = [] if trace else None
        self.recent: deque[dict[str, Any]] = deque(maxlen=500)

    def sync(self) -> float:
        """Run every event due by now and return the current sim time."""
        now = self.clock.now()
        scheduler = self.scheduler
        if scheduler.due(now):
            scheduler.run_until(now)
        return now

    def rng(self, *parts: object) -> random.Random:
        """An independent random stream for (seed, *parts), e.g. rng("CAB-0001", "faults")."""
        return random.Random(":".join(str(part) for part in (self.seed, *parts)))

    def record(self, t: float, device: str, what: str, *, notable: bool = True) -> None:
        """Note a city event: always in the trace (if enabled); notable ones also in the recent-events ring."""
        if self.trace is not None:
            self.trace.append((round(t, 6), device, what))
        if notable:
            self.recent.append({"time": datetime.fromtimestamp(t, UTC).isoformat(), "device": device, "event": what})
