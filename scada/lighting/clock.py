"""Time for the lighting automation: the site clock (real, injected or accelerated) and its mapping to real delays.

Every decision of the automation (which profile step is in force, when a follow-me hold or an override ends)
is taken in *site time*, given by a clock callable returning aware datetimes. APScheduler and asyncio timers run
on real time, so a timer for site time `at` fires after (at - now) / speed real seconds, where `speed` is the
clock's `speed` attribute (site seconds per real second; 1 when the callable has none). An accelerated clock
lets tests run a night in seconds without sleeping for real hours.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from scada.model import utcnow


class AcceleratedClock:
    """Site time that starts at `start` and runs `speed` times faster than real time (jumps with advance())."""

    def __init__(self, start: datetime, speed: float = 1.0) -> None:
        if start.tzinfo is None:
            raise ValueError("the start time must be timezone-aware")
        if not 0 < speed <= 1_000_000:
            raise ValueError(f"speed {speed} must be positive (at most 1e6)")
        self._anchor = start.astimezone(UTC)
        self._real = time.monotonic()
        self._speed = float(speed)

    @property
    def speed(self) -> float:
        """Site seconds per real second."""
        return self._speed

    def __call__(self) -> datetime:
        """The current site time (UTC)."""
        return self._anchor + timedelta(seconds=(time.monotonic() - self._real) * self._speed)

    def set_speed(self, speed: float) -> None:
        """Change the speed from now on (site time stays continuous)."""
        if not 0 < speed <= 1_000_000:
            raise ValueError(f"speed {speed} must be positive (at most 1e6)")
        self._anchor, self._real = self(), time.monotonic()
        self._speed = float(speed)

    def advance(self, seconds: float) -> None:
        """Jump forward (call LightingService.resync() afterwards: timers were set for the old time)."""
        if seconds < 0:
            raise ValueError("site time cannot go backwards")
        self._anchor, self._real = self() + timedelta(seconds=seconds), time.monotonic()


class SiteClock:
    """The clock the lighting service reads: `now()` in UTC and real delays until a site time."""

    def __init__(self, clock: Callable[[], datetime] | None = None) -> None:
        self._clock = clock

    @property
    def speed(self) -> float:
        """Site seconds per real second (the clock's `speed` attribute, read each time; 1 by default)."""
        speed = getattr(self._clock, "speed", 1.0) if self._clock is not None else 1.0
        return float(speed) if speed and speed > 0 else 1.0

    def now(self) -> datetime:
        """The current site time, aware UTC; a naive datetime from the injected clock is an error."""
        if self._clock is None:
            return utcnow()
        value = self._clock()
        if value.tzinfo is None:
            raise ValueError("the lighting clock must return timezone-aware datetimes")
        return value.astimezone(UTC)

    def real_delay(self, at: datetime) -> float:
        """Real seconds from now until site time `at` (0 when it is already past)."""
        return max(0.0, (at - self.now()).total_seconds() / self.speed)

    def real_time(self, at: datetime) -> datetime:
        """The real (wall clock) instant at which site time reaches `at`: what APScheduler triggers need."""
        return utcnow() + timedelta(seconds=self.real_delay(at))

    def real_seconds(self, site_seconds: float) -> float:
        """How many real seconds `site_seconds` of site time take."""
        return site_seconds / self.speed
