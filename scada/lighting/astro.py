"""Astronomical clock: when the lighting switches on and off at the site, computed by astral, with offsets.

A *night window* runs from local noon of day D to local noon of day D+1: the lighting switches on in the evening
of D (sunset, civil dusk or a fixed time, plus an offset) and off in the morning of D+1 (sunrise, dawn or a fixed
time, plus an offset). Where the sun never crosses the threshold (polar day or night) astral raises ValueError;
the clock then falls back to "no night" (always off) or "night all day" (always on) and logs a warning once per
day, judging by the sun's elevation at solar noon and at local midnight.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

from astral import Observer
from astral import sun as astral_sun

log = logging.getLogger(__name__)

EVENING_EVENTS = ("sunset", "dusk")
MORNING_EVENTS = ("sunrise", "dawn")
FIXED = "fixed"
DEPRESSIONS = {"civil": 6.0, "nautical": 12.0, "astronomical": 18.0}
SUN_HORIZON_DEG = -0.833  # sunset/sunrise: upper limb on the horizon, with standard refraction
NOON = time(12, 0)


@dataclass(frozen=True, slots=True)
class SwitchTime:
    """When the lighting switches: an astronomical event or a fixed local time, plus an offset."""

    event: str  # "sunset", "dusk", "sunrise", "dawn" or "fixed"
    offset: timedelta = timedelta(0)
    fixed: time | None = None  # the local time when event is "fixed"
    text: str = ""  # as written in the configuration

    def __str__(self) -> str:
        return self.text or self.event


@dataclass(frozen=True, slots=True)
class Night:
    """The lighting night of one window: switch-on and switch-off instants (UTC), or none."""

    day: date  # the local date of the evening
    start: datetime  # window start: local noon of `day` (UTC)
    end: datetime  # window end: local noon of the next day (UTC)
    on: datetime | None  # None: the lamps stay off the whole window
    off: datetime | None
    polar: str | None = None  # why a fallback was used ("polar day", "polar night"), None normally

    @property
    def lit(self) -> bool:
        """True when the lighting switches on at all in this window."""
        return self.on is not None


def local_to_utc(day: date, clock: time, tz: ZoneInfo) -> datetime:
    """The UTC instant at which the local wall clock of `day` shows `clock`.

    A time repeated when the clocks go back is taken at its first occurrence; a time skipped when they go forward
    is taken at the transition itself (the moment the wall clock jumps past it).
    """
    wall = datetime.combine(day, clock)
    first = wall.replace(tzinfo=tz, fold=0).astimezone(UTC)
    if first.astimezone(tz).replace(tzinfo=None) == wall:
        return first
    # In a gap: fold=1 reads the wall time with the offset after the transition, which lands before it, and
    # fold=0 after it; the transition is the only instant in between where the offset changes.
    low = wall.replace(tzinfo=tz, fold=1).astimezone(UTC)
    high = first
    while high - low > timedelta(seconds=1):
        middle = low + (high - low) / 2
        if middle.astimezone(tz).utcoffset() == low.astimezone(tz).utcoffset():
            low = middle
        else:
            high = middle
    return high.replace(microsecond=0) if high.microsecond else high


class AstroClock:
    """Switching times for one position and time zone (astral underneath; results cached per day)."""

    def __init__(self, latitude: float, longitude: float, timezone: str, *, depression: float = 6.0) -> None:
        if not -90.0 <= latitude <= 90.0 or not -180.0 <= longitude <= 180.0:
            raise ValueError(f"position {latitude}, {longitude} is outside the globe")
        self.observer = Observer(latitude=latitude, longitude=longitude)
        self.tz = ZoneInfo(timezone)
        self.depression = float(depression)
        self._night = lru_cache(maxsize=64)(self._compute_night)
        self._warned: set[tuple[date, str]] = set()

    # -- windows --------------------------------------------------------------------------------------------

    def window_day(self, t: datetime) -> date:
        """The local date D of the window [noon D, noon D+1) holding instant `t`."""
        local = t.astimezone(self.tz)
        day = local.date()
        return day if local.time() >= NOON else day - timedelta(days=1)

    def noon(self, day: date) -> datetime:
        """Local noon of `day`, as UTC: where windows start and end."""
        return local_to_utc(day, NOON, self.tz)

    # -- events ---------------------------------------------------------------------------------------------

    def event(self, name: str, day: date) -> datetime:
        """The UTC instant of sunset, dusk, sunrise or dawn on local date `day`; ValueError when it does not occur."""
        observer, tz = self.observer, self.tz
        if name == "sunset":
            value = astral_sun.sunset(observer, day, tz)
        elif name == "sunrise":
            value = astral_sun.sunrise(observer, day, tz)
        elif name == "dusk":
            value = astral_sun.dusk(observer, day, self.depression, tz)
        elif name == "dawn":
            value = astral_sun.dawn(observer, day, self.depression, tz)
        else:
            raise ValueError(f"unknown astronomical event {name!r}")
        return value.astimezone(UTC)

    def threshold(self, name: str) -> float:
        """The solar elevation (degrees) that defines an event: the horizon or the twilight depression."""
        return SUN_HORIZON_DEG if name in ("sunset", "sunrise") else -self.depression

    def elevation(self, t: datetime) -> float:
        """The sun's elevation (degrees, with refraction) at the site at instant `t`."""
        return float(astral_sun.elevation(self.observer, t))

    def night(self, day: date, on: SwitchTime, off: SwitchTime) -> Night:
        """The lighting night of the window starting at local noon of `day` (cached)."""
        return self._night(day, on, off)

    def _compute_night(self, day: date, on: SwitchTime, off: SwitchTime) -> Night:
        start, end = self.noon(day), self.noon(day + timedelta(days=1))
        on_at, on_polar = self._switch(on, day, start, end)
        off_at, off_polar = self._switch(off, day + timedelta(days=1), start, end)
        polar = on_polar or off_polar
        if on_polar == "polar day":  # the sun never goes down on D: no night in this window
            return Night(day, start, end, None, None, polar)
        if on_at is None or off_at is None or off_at <= on_at:
            return Night(day, start, end, None, None, polar)
        return Night(day, start, end, max(start, on_at), min(end, off_at), polar)

    def _switch(
        self, spec: SwitchTime, day: date, start: datetime, end: datetime
    ) -> tuple[datetime | None, str | None]:
        """The switching instant of `spec` on local date `day`, or a polar fallback and its reason."""
        if spec.event == FIXED:
            assert spec.fixed is not None
            return local_to_utc(day, spec.fixed, self.tz) + spec.offset, None
        try:
            return self.event(spec.event, day) + spec.offset, None
        except ValueError as exc:
            reason = self._polar_reason(spec.event, day)
            evening = spec.event in EVENING_EVENTS
            if reason == "polar night":
                fallback = start if evening else end  # dark all day: on from noon, off only at the next noon
            elif evening:
                fallback = None  # never dark enough: no switch-on at all
            else:
                fallback = local_to_utc(day, time(0, 0), self.tz)  # light all day D+1: the night ended by midnight
            key = (day, spec.event)
            if key not in self._warned:
                self._warned.add(key)
                what = "always on" if reason == "polar night" else "always off"
                log.warning(
                    "no %s on %s at %.4f, %.4f (%s: %s): lighting %s for that part of the night",
                    spec.event,
                    day.isoformat(),
                    self.observer.latitude,
                    self.observer.longitude,
                    reason,
                    exc,
                    what,
                )
            return fallback, reason

    def _polar_reason(self, event: str, day: date) -> str:
        """'polar night' when the sun stays below the event's threshold all day, else 'polar day'."""
        threshold = self.threshold(event)
        highest = self.elevation(astral_sun.noon(self.observer, day))
        return "polar night" if highest < threshold else "polar day"
