"""Night profiles: the dimming steps of a night, resolved to instants, and the level in force at any instant.

A profile is a list of steps `{from, level[, boost]}`. `from` is "on" (the switch-on), "on+1h", "off-45min"
(relative to the switch-off) or a local wall-clock time "HH:MM" (times from 12:00 belong to the evening of the
window's day, earlier ones to the next morning). Each step starts at its instant clamped to the night
[on, off); the level in force at t is the one of the latest step started at or before t (for steps starting
together, the one listed last), and 0 outside the night. A step whose instant falls at or after the switch-off
never happens. Times skipped or repeated by a DST change follow astro.local_to_utc.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from scada.lighting.astro import NOON, Night, local_to_utc

ON, OFF, CLOCK = "on", "off", "clock"

_OFFSET_PART = re.compile(r"(\d+(?:\.\d+)?)(h|min|m|s)")
_UNIT_SECONDS = {"h": 3600.0, "min": 60.0, "m": 60.0, "s": 1.0}
_CLOCK = re.compile(r"([01]?\d|2[0-3]):([0-5]\d)")


def parse_offset(text: str) -> timedelta:
    """A signed offset like "+10min", "-1h30min", "+90s"; ValueError when malformed."""
    text = text.strip().replace(" ", "")
    if not text:
        return timedelta(0)
    if text[0] not in "+-":
        raise ValueError(f"offset {text!r} must start with + or -")
    sign = -1.0 if text[0] == "-" else 1.0
    body, position, seconds = text[1:], 0, 0.0
    if not body:
        raise ValueError(f"offset {text!r} has no amount")
    while position < len(body):
        match = _OFFSET_PART.match(body, position)
        if match is None:
            raise ValueError(f"offset {text!r}: expected amounts like 10min, 1h or 30s")
        seconds += float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
        position = match.end()
    return timedelta(seconds=sign * seconds)


def parse_clock(text: str) -> time | None:
    """A local wall-clock time "HH:MM", or None when `text` is not one."""
    match = _CLOCK.fullmatch(text.strip())
    if match is None:
        return None
    return time(int(match.group(1)), int(match.group(2)))


def split_anchor(text: str) -> tuple[str, str]:
    """Split "sunset+10min" into ("sunset", "+10min"), "23:00" into ("23:00", "")."""
    text = text.strip()
    for position, char in enumerate(text):
        if char in "+-" and position > 0:
            return text[:position].strip(), text[position:]
    return text, ""


@dataclass(frozen=True, slots=True)
class StepTime:
    """When a step starts: at the switch-on or -off plus an offset, or at a local wall-clock time."""

    anchor: str  # ON, OFF or CLOCK
    offset: timedelta = timedelta(0)
    clock: time | None = None
    text: str = ""

    @classmethod
    def parse(cls, text: str) -> StepTime:
        """Parse "on", "on+1h", "off-30min" or "HH:MM"; ValueError with a readable message when malformed."""
        base, offset = split_anchor(text)
        if base in (ON, OFF):
            return cls(base, parse_offset(offset), None, text.strip())
        clock = parse_clock(base)
        if clock is None:
            raise ValueError(f"unknown time {text!r}: expected on, off, on±offset, off±offset or HH:MM")
        return cls(CLOCK, parse_offset(offset), clock, text.strip())

    def resolve(self, night: Night, tz: ZoneInfo) -> datetime:
        """The instant this step time designates in a lit night (before clamping)."""
        if self.anchor == ON:
            assert night.on is not None
            return night.on + self.offset
        if self.anchor == OFF:
            assert night.off is not None
            return night.off + self.offset
        assert self.clock is not None
        day: date = night.day if self.clock >= NOON else night.day + timedelta(days=1)
        return local_to_utc(day, self.clock, tz) + self.offset


@dataclass(frozen=True, slots=True)
class Step:
    """One step of a profile: from when, which level, and optionally its own presence boost level."""

    start: StepTime
    level: float
    boost: float | None = None  # None: the site's presence boost level

    @property
    def label(self) -> str:
        """How status and logs name the step (as written)."""
        return self.start.text


@dataclass(frozen=True, slots=True)
class Profile:
    """A named night profile: its steps in the order written."""

    name: str
    steps: tuple[Step, ...]


@dataclass(frozen=True, slots=True)
class ProfileState:
    """What a profile asks for at one instant: level, local presence boost, and the step that gives them."""

    profile: str
    lit: bool  # within the night [on, off)
    level: float  # setpoint for every lamp, %
    boost: float  # local presence boost to configure, % (0: none, the level is already as high)
    step: str  # the step's label, "day" outside the night
    since: datetime | None  # when this state began (None: before the window)
    until: datetime | None  # when the next state begins (None: not within the window)


@dataclass(frozen=True, slots=True)
class PlannedStep:
    """A step placed on a night: when it starts (UTC) and what it sets."""

    at: datetime
    level: float
    boost: float
    label: str


@dataclass(frozen=True, slots=True)
class NightPlan:
    """One profile over one night window: the steps that actually happen, in time order."""

    profile: str
    night: Night
    steps: tuple[PlannedStep, ...]  # within [on, off), strictly increasing instants

    def state_at(self, t: datetime) -> ProfileState:
        """The state in force at instant `t` of the window (the day state outside the night)."""
        night = self.night
        if night.on is None or night.off is None or not self.steps:
            return ProfileState(self.profile, False, 0.0, 0.0, "day", night.start, night.end)
        if t < night.on:
            return ProfileState(self.profile, False, 0.0, 0.0, "day", night.start, night.on)
        if t >= night.off:
            return ProfileState(self.profile, False, 0.0, 0.0, "day", night.off, night.end)
        current = 0
        for index, step in enumerate(self.steps):
            if step.at <= t:
                current = index
            else:
                break
        step = self.steps[current]
        until = self.steps[current + 1].at if current + 1 < len(self.steps) else night.off
        return ProfileState(self.profile, True, step.level, step.boost, step.label, step.at, until)

    def changes(self) -> list[datetime]:
        """Every instant of the window where the state changes: each step start and the switch-off."""
        if self.night.off is None or not self.steps:
            return []
        return [step.at for step in self.steps] + [self.night.off]


def local_boost(level: float, boost: float) -> float:
    """The cabinet's presence boost for a step: the boost when it raises the level, 0 (disabled) otherwise."""
    return boost if boost > level else 0.0


def plan_night(profile: Profile, night: Night, tz: ZoneInfo, default_boost: float) -> NightPlan:
    """Place a profile's steps on one night: resolve, clamp to [on, off), order, drop the overridden ones."""
    if night.on is None or night.off is None:
        return NightPlan(profile.name, night, ())
    placed: list[tuple[datetime, int, Step]] = []
    for index, step in enumerate(profile.steps):
        at = max(night.on, step.start.resolve(night, tz))
        if at < night.off:
            placed.append((at, index, step))
    placed.sort(key=lambda item: (item[0], item[1]))
    steps: list[PlannedStep] = []
    for at, _, step in placed:
        boost = local_boost(step.level, step.boost if step.boost is not None else default_boost)
        planned = PlannedStep(at, step.level, boost, step.label)
        if steps and steps[-1].at == at:
            steps[-1] = planned  # starting together: the one listed last wins
        else:
            steps.append(planned)
    if steps and steps[0].at > night.on:
        # Nothing starts at the switch-on (validation requires an "on" step; this guards a clamped-away one).
        first = steps[0]
        steps.insert(0, PlannedStep(night.on, first.level, first.boost, first.label))
    return NightPlan(profile.name, night, tuple(steps))
