"""The `alarms` section of site.yaml: parsed and validated once, at start, into an AlarmsConfig.

    alarms:
      severities: {lamp_failure: 300, comm_lost: 700, door_open: 500, mains_failure: 800,
                   controller_fault: 900, signal_lamp_failure: 600, sign_fault: 400, car_park_full: 200}
      car_park_full: {full_at_free: 0, clear_at_free: 5, site_types: [carpark]}
      flood: {suppress_children_on: [comm_lost, mains_failure], release_delay_s: 10}
      shelving: {max_hours: 8}
      confirm: true            # acknowledged alarms wait for Confirm (Part 9 ConfirmedState)
      disabled: []             # alarm kinds not evaluated at all
      events: {coalesce_ms: 100}

Every field is optional; a site without the section gets the defaults of scada.alarms.definitions. Every problem
is reported together as a ConfigError of ConfigIssues naming site.yaml, the line and the dotted field path.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from scada.alarms.definitions import ALARM_KINDS, FLOOD_PARENTS, KINDS_BY_KEY
from scada.model import ConfigError
from scada.site.model import Site
from scada.site.sections import SectionReader, section_lines, site_label
from scada.site.sources import describe

SECTION = "alarms"
SITE_TYPES = ("carpark", "onstreet")
MAX_SHELVE_HOURS = 24 * 7
_FIELDS = ("severities", "car_park_full", "flood", "shelving", "confirm", "disabled", "events")


@dataclass(frozen=True, slots=True)
class CarParkFullConfig:
    """Hysteresis of the car-park-full alarm, on the site's Free count."""

    full_at_free: int = 0  # active when Free <= this
    clear_at_free: int = 5  # cleared when Free >= this
    site_types: tuple[str, ...] = ("carpark",)  # parking site types that have the alarm


@dataclass(frozen=True, slots=True)
class FloodConfig:
    """ISA-18.2 suppression by design: cabinet alarms that suppress the alarms of the cabinet's lamps."""

    suppress_children_on: frozenset[str] = frozenset({"comm_lost", "mains_failure"})
    release_delay_s: float = 10.0  # after the parent clears, children stay suppressed this long, then re-evaluate


@dataclass(frozen=True, slots=True)
class AlarmsConfig:
    """The validated alarms section."""

    severities: dict[str, int] = field(default_factory=lambda: {k.key: k.default_severity for k in ALARM_KINDS})
    car_park_full: CarParkFullConfig = field(default_factory=CarParkFullConfig)
    flood: FloodConfig = field(default_factory=FloodConfig)
    max_shelve_s: float = 8 * 3600.0
    confirm: bool = True
    disabled: frozenset[str] = frozenset()
    coalesce_ms: float = 100.0  # OPC UA events of one condition are coalesced over this period

    def severity(self, key: str) -> int:
        """The configured severity of an alarm kind."""
        return self.severities.get(key, KINDS_BY_KEY[key].default_severity)


def load_alarms_config(site: Site) -> AlarmsConfig:
    """The site's alarms section (or the defaults), validated; ConfigError with every issue otherwise."""
    section = site.settings.get(SECTION)
    return parse_alarms(section, site_label(site), section_lines(site, SECTION, section))


def parse_alarms(section: Any, label: str = "site.yaml", lines: Mapping[str, int] | None = None) -> AlarmsConfig:
    """Validate an alarms section (None: the defaults); ConfigError with every issue found."""
    reader = _Reader(label, lines or {})
    config = reader.section(section)
    if reader.issues:
        raise ConfigError(reader.issues)
    return config


class _Reader(SectionReader):
    """Walks the section, converting values and collecting located issues.

    Unlike the other sections' readers, a field's value is checked whenever the field is written: a null value is
    "expected ..., got nothing" (absence is tested with `in`), a mapping gives {} when absent or wrong, an unknown
    key lists "one of" the known ones, and numbers are shown with the g format.
    """

    UNKNOWN_FIELD = "unknown field (expected one of {})"

    @staticmethod
    def format_number(value: float) -> str:
        """A number or a bound in an "is outside" message, in the g format."""
        return f"{value:g}"

    def absent(self, value: Any, path: str, *, required: bool) -> bool:
        """Never: a null value is a value of the wrong kind."""
        return False

    def mapping(
        self, value: Any, path: str, known: tuple[str, ...] | None = None, *, required: bool = False
    ) -> dict[str, Any]:
        """A mapping with string keys (empty when absent, or wrong: reported); unknown keys become issues."""
        if value is None:
            return {}
        return super().mapping(value, path, known, required=required) or {}

    def kinds(self, value: Any, path: str, allowed: tuple[str, ...], what: str) -> list[str]:
        """A list of alarm kind keys, each one of `allowed`."""
        if value is None:
            return []
        if not isinstance(value, list):
            self.expected(path, "a list of alarm kinds", value)
            return []
        found: list[str] = []
        for index, item in enumerate(value):
            if not isinstance(item, str) or item not in allowed:
                self.issue(f"{path}[{index}]", f"{describe(item)} is not {what} (expected one of {', '.join(allowed)})")
            elif item in found:
                self.issue(f"{path}[{index}]", f"{item!r} is listed twice")
            else:
                found.append(item)
        return found

    # -- the section ----------------------------------------------------------------------------------------

    def section(self, section: Any) -> AlarmsConfig:
        """The whole section."""
        defaults = AlarmsConfig()
        top = self.mapping(section, SECTION, _FIELDS)
        keys = tuple(KINDS_BY_KEY)
        severities = dict(defaults.severities)
        for key, value in self.mapping(top.get("severities"), f"{SECTION}.severities", keys).items():
            if key in KINDS_BY_KEY:
                severity = self.integer(value, f"{SECTION}.severities.{key}", 1, 1000)
                if severity is not None:
                    severities[key] = severity
        car_park = self.car_park(top.get("car_park_full"), f"{SECTION}.car_park_full")
        flood = self.flood(top.get("flood"), f"{SECTION}.flood")
        shelving = self.mapping(top.get("shelving"), f"{SECTION}.shelving", ("max_hours",))
        max_shelve_s = defaults.max_shelve_s
        if "max_hours" in shelving:
            hours = self.number(shelving["max_hours"], f"{SECTION}.shelving.max_hours", 0.001, MAX_SHELVE_HOURS)
            max_shelve_s = hours * 3600.0 if hours is not None else max_shelve_s
        confirm = self.boolean(top.get("confirm", True), f"{SECTION}.confirm", True)
        disabled = self.kinds(top.get("disabled"), f"{SECTION}.disabled", keys, "an alarm kind")
        events = self.mapping(top.get("events"), f"{SECTION}.events", ("coalesce_ms",))
        coalesce_ms = defaults.coalesce_ms
        if "coalesce_ms" in events:
            value = self.number(events["coalesce_ms"], f"{SECTION}.events.coalesce_ms", 0.0, 10_000.0)
            coalesce_ms = value if value is not None else coalesce_ms
        return AlarmsConfig(
            severities=severities,
            car_park_full=car_park,
            flood=flood,
            max_shelve_s=max_shelve_s,
            confirm=True if confirm is None else confirm,
            disabled=frozenset(disabled),
            coalesce_ms=coalesce_ms,
        )

    def car_park(self, value: Any, path: str) -> CarParkFullConfig:
        """The car-park-full hysteresis."""
        default = CarParkFullConfig()
        section = self.mapping(value, path, ("full_at_free", "clear_at_free", "site_types"))
        full_at = default.full_at_free
        clear_at = default.clear_at_free
        if "full_at_free" in section:
            full_at = self.integer(section["full_at_free"], f"{path}.full_at_free", 0, 100_000) or 0
        if "clear_at_free" in section:
            checked = self.integer(section["clear_at_free"], f"{path}.clear_at_free", 0, 100_000)
            clear_at = checked if checked is not None else max(clear_at, full_at + 1)
        if clear_at <= full_at:
            self.issue(
                f"{path}.clear_at_free",
                f"clear_at_free ({clear_at}) must be greater than full_at_free ({full_at}) for the hysteresis",
            )
        site_types = default.site_types
        if "site_types" in section:
            raw = section["site_types"]
            if not isinstance(raw, list) or not raw:
                self.expected(f"{path}.site_types", "a non-empty list of site types", raw)
            else:
                good = []
                for index, item in enumerate(raw):
                    if item not in SITE_TYPES:
                        self.issue(
                            f"{path}.site_types[{index}]",
                            f"{describe(item)} is not a parking site type (expected one of {', '.join(SITE_TYPES)})",
                        )
                    elif item not in good:
                        good.append(item)
                site_types = tuple(good) or site_types
        return CarParkFullConfig(full_at, clear_at, site_types)

    def flood(self, value: Any, path: str) -> FloodConfig:
        """Flood suppression: which cabinet alarms suppress lamp alarms, and the release delay."""
        default = FloodConfig()
        section = self.mapping(value, path, ("suppress_children_on", "release_delay_s"))
        parents = default.suppress_children_on
        if "suppress_children_on" in section:
            parents = frozenset(
                self.kinds(
                    section["suppress_children_on"], f"{path}.suppress_children_on", FLOOD_PARENTS, "a cabinet alarm"
                )
            )
        delay = default.release_delay_s
        if "release_delay_s" in section:
            checked = self.number(section["release_delay_s"], f"{path}.release_delay_s", 0.0, 3600.0)
            delay = checked if checked is not None else delay
        return FloodConfig(parents, delay)
