"""The simulated clock (sim time = start + speed × real elapsed, plus jumps) and the site's local time of day."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from scada.model import utcnow


class SimClock:
    """Sim time in POSIX seconds: runs `speed` times faster than real time, or only moves by `advance` (manual)."""

    def __init__(self, start: datetime | None = None, *, speed: float = 1.0, manual: bool = False) -> None:
        start = start if start is not None else utcnow()
        if start.tzinfo is None:
            raise ValueError("the start time must be timezone-aware")
        _check_speed(speed)
        self._manual = manual
        self._speed = speed
        self._anchor_sim = start.timestamp()
        self._anchor_real = time.monotonic()
        self._last = self._anchor_sim

    @property
    def speed(self) -> float:
        """How many sim seconds pass per real second."""
        return self._speed

    @property
    def manual(self) -> bool:
        """True when time moves only through advance()."""
        return self._manual

    def now(self) -> float:
        """The current sim time, POSIX seconds (never goes backwards)."""
        if self._manual:
            return self._anchor_sim
        t = self._anchor_sim + (time.monotonic() - self._anchor_real) * self._speed
        if t < self._last:
            return self._last
        self._last = t
        return t

    def datetime(self) -> datetime:
        """The current sim time as a UTC datetime."""
        return datetime.fromtimestamp(self.now(), UTC)

    def set_speed(self, speed: float) -> None:
        """Change the speed factor from now on (sim time stays continuous)."""
        _check_speed(speed)
        self._rebase(self.now())
        self._speed = speed

    def advance(self, seconds: float) -> None:
        """Jump sim time forward by `seconds` (the only way a manual clock moves)."""
        if seconds < 0:
            raise ValueError("sim time cannot go backwards")
        self._rebase(self.now() + seconds)

    def real_seconds(self, sim_seconds: float) -> float:
        """The real time that `sim_seconds` of sim time take at the current speed (inf for a manual clock)."""
        return float("inf") if self._manual else sim_seconds / self._speed

    def _rebase(self, sim_now: float) -> None:
        self._anchor_sim = sim_now
        self._anchor_real = time.monotonic()
        self._last = sim_now


def _check_speed(speed: float) -> None:
    if not 0.001 <= speed <= 100_000:
        raise ValueError(f"speed factor {speed} is outside 0.001-100000")


class LocalTime:
    """The site's local time of day for a sim time (UTC offsets cached per hour)."""

    def __init__(self, timezone: str) -> None:
        self._tz = ZoneInfo(timezone) if timezone else ZoneInfo("UTC")
        self._offsets: dict[int, float] = {}

    def offset(self, t: float) -> float:
        """The UTC offset in seconds at sim time `t`."""
        hour = int(t // 3600)
        offset = self._offsets.get(hour)
        if offset is None:
            delta = datetime.fromtimestamp(hour * 3600, self._tz).utcoffset()
            offset = delta.total_seconds() if delta is not None else 0.0
            self._offsets[hour] = offset
        return offset

    def seconds_of_day(self, t: float) -> float:
        """Local seconds since midnight at sim time `t`."""
        return (t + self.offset(t)) % 86400.0

    def hour(self, t: float) -> int:
        """The local hour (0-23) at sim time `t`."""
        return int(self.seconds_of_day(t) // 3600)

    def day_of_year(self, t: float) -> int:
        """The local day of the year (1-366) at sim time `t`."""
        return datetime.fromtimestamp(t, self._tz).timetuple().tm_yday


def next_hour(t: float) -> float:
    """The next whole-hour boundary after `t` (local hours start there for whole-hour UTC offsets)."""
    return (int(t // 3600) + 1) * 3600.0
