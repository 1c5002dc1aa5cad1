"""The `lighting` section of site.yaml: parsed and validated once, at start, into a LightingConfig.

    lighting:
      switch: {on: "sunset+10min", off: "sunrise-10min", depression: civil}   # or dusk/dawn, or "HH:MM"
      profiles:
        residential: [{from: "on", level: 100}, {from: "23:00", level: 30, boost: 80}, {from: "05:30", level: 70}]
      districts: {centre-ville: main-roads, "*": residential}
      presence: {boost_level: 100, hold_seconds: 90,
                 follow_me: {lamps_ahead: 3, hold_seconds: 60, level: 100, track_seconds: 120,
                             max_commands_per_second: 200, cabinet_commands_per_second: 10,
                             min_interval_ms: 200}}
      overrides: {max_minutes: 480}

A missing `profiles` gives one all-night profile at 100 %; `districts` may be left out when there is one profile.
Every problem is reported together as a ConfigError of ConfigIssues naming site.yaml, the line (read again from
the file with the loader's line-keeping parser) and the dotted field path. YAML 1.1 reads an unquoted `on`/`off`
as a boolean: both spellings are accepted.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import time, timedelta
from typing import Any

from scada.lighting.astro import DEPRESSIONS, EVENING_EVENTS, FIXED, MORNING_EVENTS, NOON, SwitchTime
from scada.lighting.profiles import ON, Profile, Step, StepTime, parse_clock, parse_offset, split_anchor
from scada.model import ConfigError
from scada.site.fields import ID_PATTERN
from scada.site.model import Site
from scada.site.sections import SectionReader, section_lines, site_label

SECTION = "lighting"
WILDCARD = "*"
MAX_SWITCH_OFFSET = timedelta(hours=3)


@dataclass(frozen=True, slots=True)
class FollowMeConfig:
    """Central follow-me lighting: how many lamps ahead, how long, how high, and how gently on the field bus."""

    enabled: bool = True
    lamps_ahead: int = 3
    hold_seconds: float = 60.0
    level: float | None = None  # None: presence.boost_level
    track_seconds: float = 120.0  # a detection this recent on the same street gives the walking direction
    max_commands_per_second: float = 200.0  # lamp commands of the whole site (the command service's load)
    cabinet_commands_per_second: float = 10.0  # lamp commands of one cabinet (its field bus)
    min_interval_ms: float = 200.0  # between two command batches of one cabinet


@dataclass(frozen=True, slots=True)
class PresenceConfig:
    """Presence response: the cabinets' local boost and the central follow-me mode."""

    boost_level: float = 100.0
    hold_seconds: int = 90
    follow_me: FollowMeConfig = field(default_factory=FollowMeConfig)

    @property
    def follow_level(self) -> float:
        """The level follow-me raises lamps to."""
        return self.follow_me.level if self.follow_me.level is not None else self.boost_level


@dataclass(frozen=True, slots=True)
class LightingConfig:
    """The validated lighting section."""

    on: SwitchTime
    off: SwitchTime
    depression: float
    profiles: dict[str, Profile]
    districts: dict[str, str]  # every district of the site -> its profile name
    presence: PresenceConfig
    max_override_minutes: int = 480


DEFAULT_SECTION: dict[str, Any] = {
    "switch": {"on": "sunset+10min", "off": "sunrise-10min"},
    "profiles": {"all-night": [{"from": "on", "level": 100}]},
    "districts": {WILDCARD: "all-night"},
}
"""What a site without a lighting section gets: full light from sunset+10 min to sunrise-10 min."""


def load_lighting_config(site: Site) -> LightingConfig:
    """The site's lighting section (or the default one), validated; ConfigError with every issue otherwise."""
    section = site.settings.get(SECTION)
    lines = section_lines(site, SECTION, section)
    return parse_lighting(DEFAULT_SECTION if section is None else section, site, site_label(site), lines)


def parse_lighting(
    section: Any, site: Site, label: str = "site.yaml", lines: Mapping[str, int] | None = None
) -> LightingConfig:
    """Validate a lighting section against the site; ConfigError with every issue found."""
    reader = _Reader(label, lines or {})
    config = reader.section(section, site)
    if reader.issues or config is None:
        raise ConfigError(reader.issues)
    return config


def _key(key: Any) -> str:
    """A mapping key as written: YAML 1.1 turns unquoted on/off into booleans."""
    if key is True:
        return "on"
    if key is False:
        return "off"
    return str(key)


class _Reader(SectionReader):
    """Walks the section, converting values and collecting located issues."""

    def __init__(self, label: str, lines: Mapping[str, int]) -> None:
        super().__init__(label, lines)
        self.profile_names: set[str] = set()  # every profile named, valid or not (for the district references)

    key = staticmethod(_key)

    # -- the section ----------------------------------------------------------------------------------------

    def section(self, section: Any, site: Site) -> LightingConfig | None:
        """The whole section."""
        top = self.mapping(
            section, SECTION, ("switch", "profiles", "districts", "presence", "overrides"), required=True
        )
        if top is None:
            return None
        on, off, depression = self.switch(top.get("switch"), f"{SECTION}.switch")
        profiles = self.profiles(top.get("profiles", DEFAULT_SECTION["profiles"]), f"{SECTION}.profiles")
        districts = self.districts(top.get("districts"), f"{SECTION}.districts", site, profiles)
        presence = self.presence(top.get("presence"), f"{SECTION}.presence")
        overrides = self.mapping(top.get("overrides"), f"{SECTION}.overrides", ("max_minutes",)) or {}
        max_minutes = self.integer(overrides.get("max_minutes"), f"{SECTION}.overrides.max_minutes", 1, 1440, 480)
        if None in (on, off, depression, profiles, districts, presence, max_minutes):
            return None
        assert on is not None and off is not None and depression is not None and profiles is not None
        assert districts is not None and presence is not None and max_minutes is not None
        return LightingConfig(on, off, depression, profiles, districts, presence, max_minutes)

    def switch(self, value: Any, path: str) -> tuple[SwitchTime | None, SwitchTime | None, float | None]:
        """switch: on, off and the twilight depression."""
        mapping = self.mapping(value, path, ("on", "off", "depression"))
        mapping = mapping if mapping is not None else {}
        on = self.switch_time(mapping.get("on", "sunset+10min"), f"{path}.on", EVENING_EVENTS, evening=True)
        off = self.switch_time(mapping.get("off", "sunrise-10min"), f"{path}.off", MORNING_EVENTS, evening=False)
        depression = self.depression(mapping.get("depression"), f"{path}.depression")
        return on, off, depression

    def switch_time(self, value: Any, path: str, events: tuple[str, ...], *, evening: bool) -> SwitchTime | None:
        """One switching time: an event of the right half of the day, or a fixed local time, plus an offset."""
        if not isinstance(value, str) or not value.strip():
            self.expected(path, f"text like {events[0]}+10min", value)
            return None
        base, offset_text = split_anchor(value)
        try:
            offset = parse_offset(offset_text)
        except ValueError as exc:
            self.issue(path, str(exc))
            return None
        if abs(offset) > MAX_SWITCH_OFFSET:
            self.issue(path, f"offset {offset_text} is more than {MAX_SWITCH_OFFSET.seconds // 3600} h")
            return None
        if base in events:
            return SwitchTime(base, offset, None, value.strip())
        clock = parse_clock(base)
        if clock is None:
            other = MORNING_EVENTS if evening else EVENING_EVENTS
            hint = f" ({base} is {'a morning' if evening else 'an evening'} event)" if base in other else ""
            self.issue(
                path, f"unknown time {value!r}{hint}: expected {' or '.join(events)} with an optional offset, or HH:MM"
            )
            return None
        if evening != (clock >= NOON):
            half = "from 12:00 to 23:59" if evening else "from 00:00 to 11:59"
            self.issue(path, f"a fixed switch-{'on' if evening else 'off'} time must be {half}, got {base}")
            return None
        return SwitchTime(FIXED, offset, clock, value.strip())

    def depression(self, value: Any, path: str) -> float | None:
        """civil (6°), nautical (12°), astronomical (18°) or a number of degrees."""
        if value is None:
            return DEPRESSIONS["civil"]
        if isinstance(value, str):
            if value in DEPRESSIONS:
                return DEPRESSIONS[value]
            self.issue(path, f"unknown depression {value!r}, expected civil, nautical, astronomical or degrees")
            return None
        return self.number(value, path, 0.0, 18.0)

    def profiles(self, value: Any, path: str) -> dict[str, Profile] | None:
        """Every named profile."""
        mapping = self.mapping(value, path, required=True)
        if mapping is None:
            return None
        if not mapping:
            self.issue(path, "at least one profile is needed")
            return None
        profiles: dict[str, Profile] = {}
        self.profile_names = set(mapping)
        ok = True
        for name, steps in mapping.items():
            if ID_PATTERN.fullmatch(name) is None or name == WILDCARD:
                self.issue(f"{path}.{name}", f"invalid profile name {name!r}")
                ok = False
                continue
            profile = self.profile(name, steps, f"{path}.{name}")
            if profile is None:
                ok = False
            else:
                profiles[name] = profile
        return profiles if ok else None

    def profile(self, name: str, value: Any, path: str) -> Profile | None:
        """One profile: a non-empty list of steps, one of which starts at "on"."""
        if not isinstance(value, list) or not value:
            self.expected(path, "a list of steps like {from: on, level: 100}", value)
            return None
        steps: list[Step] = []
        ok = True
        for index, item in enumerate(value):
            step = self.step(item, f"{path}[{index}]")
            if step is None:
                ok = False
            else:
                steps.append(step)
        if not ok:
            return None
        if not any(s.start.anchor == ON and s.start.offset == timedelta(0) for s in steps):
            self.issue(path, 'no step starts at the switch-on: add {from: "on", level: ...}')
            return None
        clocks = [
            (s.start.clock, s.label) for s in steps if s.start.clock is not None and s.start.offset == timedelta(0)
        ]
        seen: dict[time, str] = {}
        for clock, label in clocks:
            if clock in seen:
                self.issue(path, f"two steps start at {label}")
                return None
            seen[clock] = label
        return Profile(name, tuple(steps))

    def step(self, value: Any, path: str) -> Step | None:
        """{from, level[, boost]}."""
        mapping = self.mapping(value, path, ("from", "level", "boost"), required=True)
        if mapping is None:
            return None
        start: StepTime | None = None
        raw = mapping.get("from")
        if raw is None:
            self.issue(f"{path}.from", "missing required field")
        else:
            text = _key(raw) if isinstance(raw, bool) else raw
            if not isinstance(text, str):
                self.expected(f"{path}.from", "on, off±offset or HH:MM (in quotes)", raw)
            else:
                try:
                    start = StepTime.parse(text)
                except ValueError as exc:
                    self.issue(f"{path}.from", str(exc))
        level = self.number(mapping.get("level"), f"{path}.level", 0.0, 100.0)
        boost = None
        if mapping.get("boost") is not None:
            boost = self.number(mapping.get("boost"), f"{path}.boost", 0.0, 100.0)
            if boost is None:
                return None
        if start is None or level is None:
            return None
        return Step(start, level, boost)

    def districts(
        self, value: Any, path: str, site: Site, profiles: dict[str, Profile] | None
    ) -> dict[str, str] | None:
        """District -> profile; "*" gives the profile of every district not named; every district needs one."""
        mapping = self.mapping(value, path)
        if mapping is None:
            if value is None and profiles is not None and len(profiles) == 1:
                only = next(iter(profiles))
                return dict.fromkeys(site.districts, only)
            if value is None:
                self.issue(path, "missing required field (which profile does each district follow?)")
            return None
        ok = True
        for district, profile in mapping.items():
            where = f"{path}.{district}"
            if district != WILDCARD and district not in site.districts:
                self.issue(
                    where, f"unknown district {district!r}, expected one of: {', '.join(sorted(site.districts))}"
                )
                ok = False
            if not isinstance(profile, str):
                self.expected(where, "a profile name", profile)
                ok = False
            elif self.profile_names and profile not in self.profile_names:
                names = ", ".join(sorted(self.profile_names))
                self.issue(where, f"unknown profile {profile!r}, expected one of: {names}")
                ok = False
        if not ok:
            return None
        default = mapping.get(WILDCARD)
        result: dict[str, str] = {}
        missing = []
        for district in site.districts:
            chosen = mapping.get(district, default)
            if chosen is None:
                missing.append(district)
            else:
                result[district] = chosen
        if missing:
            self.issue(path, f'no profile for district {", ".join(missing)}: name it or add a "*" entry')
            return None
        return result

    def presence(self, value: Any, path: str) -> PresenceConfig | None:
        """presence: boost_level, hold_seconds, follow_me."""
        mapping = self.mapping(value, path, ("boost_level", "hold_seconds", "follow_me")) or {}
        boost = self.number(mapping.get("boost_level"), f"{path}.boost_level", 0.0, 100.0, 100.0)
        hold = self.integer(mapping.get("hold_seconds"), f"{path}.hold_seconds", 1, 3600, 90)
        follow = self.follow_me(mapping.get("follow_me"), f"{path}.follow_me")
        if boost is None or hold is None or follow is None:
            return None
        return PresenceConfig(boost, hold, follow)

    def follow_me(self, value: Any, path: str) -> FollowMeConfig | None:
        """follow_me: false to disable, or its settings."""
        if value is False:
            return FollowMeConfig(enabled=False)
        known = (
            "enabled",
            "lamps_ahead",
            "hold_seconds",
            "level",
            "track_seconds",
            "max_commands_per_second",
            "cabinet_commands_per_second",
            "min_interval_ms",
        )
        mapping = self.mapping(value, path, known) or {}
        enabled = mapping.get("enabled", True)
        if not isinstance(enabled, bool):  # a null `enabled` is wrong too, unlike SectionReader.boolean
            self.expected(f"{path}.enabled", "true or false", enabled)
            return None
        ahead = self.integer(mapping.get("lamps_ahead"), f"{path}.lamps_ahead", 1, 20, 3)
        hold = self.number(mapping.get("hold_seconds"), f"{path}.hold_seconds", 1.0, 3600.0, 60.0)
        level = None
        if mapping.get("level") is not None:
            level = self.number(mapping.get("level"), f"{path}.level", 0.0, 100.0)
            if level is None:
                return None
        track = self.number(mapping.get("track_seconds"), f"{path}.track_seconds", 1.0, 3600.0, 120.0)
        rate = self.number(
            mapping.get("max_commands_per_second"), f"{path}.max_commands_per_second", 0.1, 10_000.0, 200.0
        )
        per_cabinet = self.number(
            mapping.get("cabinet_commands_per_second"), f"{path}.cabinet_commands_per_second", 0.1, 1000.0, 10.0
        )
        gap = self.number(mapping.get("min_interval_ms"), f"{path}.min_interval_ms", 0.0, 60_000.0, 200.0)
        if ahead is None or hold is None or track is None or rate is None or per_cabinet is None or gap is None:
            return None
        return FollowMeConfig(enabled, ahead, hold, level, track, rate, per_cabinet, gap)
