"""Incident playbooks: the `playbooks:` section of site.yaml, validated once at start.

    playbooks:
      accident:
        auto_execute: true        # false: actions are only proposed until an operator confirms them
        signs: {within_m: 3000, upstream_only: true, cone_deg: 60,
                text: "ACCIDENT\\n{road} A {distance_km} KM\\nRALENTIR", pictogram: 1, flashing: true}
        traffic: {within_m: 400, plan: 9, duration_s: 1800, restore_duration_s: 900}
        parking: {within_m: 800, display_mode: null}
        notify: {severity: 800, message: "Accident reported at {lat:.5f},{lon:.5f}"}

One playbook per incident kind (accident, roadworks, congestion, hazard); every part is optional and a kind
without a playbook gets an incident record and no action. Sign text placeholders: {road} (the sign's road),
{distance_km} (one decimal unless a format is given), {distance_m} (rounded to 100 m), {kind} (upper case).
Notification placeholders: {id}, {kind}, {lat}, {lon}, {description}. Substituted values are folded to ASCII.

A sign text must fit 3 lines of 18 printable ASCII characters on EVERY sign the rule could ever choose: it is
rendered at start for every sign of the site with its own road and with the extreme distances (0 and within_m),
and each rendering is checked with scada.catalog.sign_lines. Unknown placeholders are errors.
"""

from __future__ import annotations

import string
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from scada.catalog import sign_lines
from scada.incidents.settings import SectionReader, section_lines, site_label
from scada.model import ConfigError
from scada.opcua.incidents import INCIDENT_KINDS
from scada.site.model import Site

SECTION = "playbooks"
SIGN_PLACEHOLDERS = frozenset({"road", "distance_km", "distance_m", "kind"})
NOTIFY_PLACEHOLDERS = frozenset({"id", "kind", "lat", "lon", "description"})
MAX_RADIUS_M = 50_000.0
PLAN_RANGE = (1, 10)  # catalog select_plan Plan
DURATION_RANGE = (10, 86_400)  # catalog select_plan DurationSeconds
PICTOGRAM_RANGE = (0, 7)
DISPLAY_MODE_RANGE = (0, 2)


class TemplateError(ValueError):
    """A text template is malformed or names an unknown placeholder."""


def ascii_fold(text: str) -> str:
    """Text with accents removed and anything else outside printable ASCII dropped ("Chenôve" -> "Chenove")."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if 0x20 <= ord(c) <= 0x7E)


class _Formatter(string.Formatter):
    """str.format with plain fields only, floats to one decimal unless a format spec says otherwise."""

    def format_field(self, value: Any, format_spec: str) -> Any:
        if isinstance(value, float) and not format_spec:
            return f"{value:.1f}"
        return super().format_field(value, format_spec)


_FORMATTER = _Formatter()


@dataclass(frozen=True, slots=True)
class Template:
    """A text with {placeholders}; built only from a valid template (see parse)."""

    text: str
    fields: frozenset[str]

    @classmethod
    def parse(cls, text: str, allowed: frozenset[str]) -> Template:
        """Check a template: plain {name} fields among `allowed` (format specs allowed); TemplateError otherwise."""
        fields: set[str] = set()
        try:
            parsed = list(_FORMATTER.parse(text))
        except ValueError as exc:
            raise TemplateError(f"malformed template: {exc}") from None
        for _literal, name, _spec, conversion in parsed:
            if name is None:
                continue
            if name == "" or not name.isidentifier():
                raise TemplateError(f"placeholder {{{name}}} is not a plain name (expected one of {_names(allowed)})")
            if name not in allowed:
                raise TemplateError(f"unknown placeholder {{{name}}} (expected one of {_names(allowed)})")
            if conversion is not None:
                raise TemplateError(f"placeholder {{{name}!{conversion}}}: conversions are not allowed")
            fields.add(name)
        return cls(text, frozenset(fields))

    def render(self, values: Mapping[str, Any]) -> str:
        """The text with every placeholder replaced; text values are folded to ASCII."""
        clean = {k: ascii_fold(v) if isinstance(v, str) else v for k, v in values.items() if k in self.fields}
        return _FORMATTER.vformat(self.text, (), clean)


def _names(allowed: frozenset[str]) -> str:
    return ", ".join(f"{{{name}}}" for name in sorted(allowed))


def sign_values(road: str, distance: float, kind: str) -> dict[str, Any]:
    """The placeholder values of a sign text for a sign on `road` at `distance` metres from the incident."""
    return {
        "road": road,
        "distance_km": distance / 1000.0,
        "distance_m": max(100, round(distance / 100.0) * 100),
        "kind": kind.upper(),
    }


@dataclass(frozen=True, slots=True)
class SignRule:
    """Messages on the signs within a distance (upstream of the location only, by default)."""

    within_m: float
    text: Template
    pictogram: int = 0
    flashing: bool = False
    upstream_only: bool = True
    cone_deg: float = 60.0

    def render(self, road: str, distance: float, kind: str) -> str:
        """The message of one sign."""
        return self.text.render(sign_values(road, distance, kind))


@dataclass(frozen=True, slots=True)
class TrafficRule:
    """A plan on the traffic controllers within a distance, for a duration (the driver refreshes its watchdog)."""

    within_m: float
    plan: int
    duration_s: int
    restore_duration_s: int  # when a central plan ran before: how long the restore re-selects it


@dataclass(frozen=True, slots=True)
class ParkingRule:
    """The entrance display mode of the car parks within a distance (None: no parking action)."""

    within_m: float
    display_mode: int | None = None


@dataclass(frozen=True, slots=True)
class NotifyRule:
    """The operator notification: an event of this severity with this message."""

    severity: int
    message: Template

    def render(self, incident_id: str, kind: str, lat: float, lon: float, description: str) -> str:
        """The notification text of one incident."""
        return self.message.render(
            {"id": incident_id, "kind": kind, "lat": lat, "lon": lon, "description": description}
        )


@dataclass(frozen=True, slots=True)
class Playbook:
    """The response to one kind of incident."""

    kind: str
    auto_execute: bool = False
    signs: SignRule | None = None
    traffic: TrafficRule | None = None
    parking: ParkingRule | None = None
    notify: NotifyRule | None = None


@dataclass(frozen=True, slots=True)
class Playbooks:
    """Every playbook of the site, by incident kind."""

    by_kind: Mapping[str, Playbook]

    def for_kind(self, kind: str) -> Playbook:
        """The playbook of a kind (an empty, proposing-nothing one when the site has none)."""
        found = self.by_kind.get(kind)
        return found if found is not None else Playbook(kind)


def load_playbooks(site: Site) -> Playbooks:
    """The site's playbooks section validated against the site; ConfigError with every issue otherwise."""
    return parse_playbooks(site.settings.get(SECTION), site, site_label(site), section_lines(site, SECTION))


def parse_playbooks(
    section: Any, site: Site, label: str = "site.yaml", lines: Mapping[str, int] | None = None
) -> Playbooks:
    """Validate a playbooks section (None: no playbook); ConfigError with every issue found."""
    if section is None:
        return Playbooks({})
    reader = _PlaybookReader(label, lines or {}, site)
    top = reader.mapping(section, SECTION, INCIDENT_KINDS)
    result: dict[str, Playbook] = {}
    if top is not None:
        for kind, body in top.items():
            if kind in INCIDENT_KINDS:
                playbook = reader.playbook(kind, body, f"{SECTION}.{kind}")
                if playbook is not None:
                    result[kind] = playbook
    if reader.issues:
        raise ConfigError(reader.issues)
    return Playbooks(result)


class _PlaybookReader(SectionReader):
    """SectionReader with the parts of a playbook."""

    def __init__(self, label: str, lines: Mapping[str, int], site: Site) -> None:
        super().__init__(label, lines)
        self.site = site

    def playbook(self, kind: str, body: Any, path: str) -> Playbook | None:
        """One kind's playbook."""
        if body is None:
            return Playbook(kind)
        data = self.mapping(body, path, ("auto_execute", "signs", "traffic", "parking", "notify"))
        if data is None:
            return None
        before = len(self.issues)
        auto = self.boolean(data.get("auto_execute"), f"{path}.auto_execute", False)
        signs = self.signs(data.get("signs"), f"{path}.signs", kind) if data.get("signs") is not None else None
        traffic = self.traffic(data.get("traffic"), f"{path}.traffic") if data.get("traffic") is not None else None
        parking = self.parking(data.get("parking"), f"{path}.parking") if data.get("parking") is not None else None
        notify = self.notify(data.get("notify"), f"{path}.notify", kind) if data.get("notify") is not None else None
        if len(self.issues) != before:
            return None
        return Playbook(kind, bool(auto), signs, traffic, parking, notify)

    def signs(self, body: Any, path: str, kind: str) -> SignRule | None:
        """The signs part; its text is rendered for every sign of the site at the extreme distances."""
        data = self.mapping(body, path, ("within_m", "upstream_only", "cone_deg", "text", "pictogram", "flashing"))
        if data is None:
            return None
        within = self.number(data.get("within_m"), f"{path}.within_m", 1.0, MAX_RADIUS_M)
        upstream = self.boolean(data.get("upstream_only"), f"{path}.upstream_only", True)
        cone = self.number(data.get("cone_deg"), f"{path}.cone_deg", 1.0, 180.0, 60.0)
        pictogram = self.integer(data.get("pictogram"), f"{path}.pictogram", *PICTOGRAM_RANGE, default=0)
        flashing = self.boolean(data.get("flashing"), f"{path}.flashing", False)
        raw = self.text(data.get("text"), f"{path}.text")
        template = self.template(raw, f"{path}.text", SIGN_PLACEHOLDERS) if raw is not None else None
        if template is not None and within is not None:
            self.check_fits(template, within, kind, f"{path}.text")
        if None in (within, upstream, cone, pictogram, flashing, template):
            return None
        assert within is not None and template is not None and pictogram is not None and cone is not None
        return SignRule(within, template, pictogram, bool(flashing), bool(upstream), cone)

    def check_fits(self, template: Template, within: float, kind: str, path: str) -> None:
        """Every sign's rendering (its road, distances 0 and within_m) must be 3 lines of 18 printable ASCII."""
        problems: dict[str, list[str]] = {}
        for sign in self.site.signs.values():
            for distance in (0.0, within):
                try:
                    sign_lines(template.render(sign_values(sign.road, distance, kind)))
                except (ValueError, KeyError, IndexError) as exc:
                    problems.setdefault(str(exc), []).append(f"{sign.id} at {distance / 1000.0:.1f} km")
                    break
        if not self.site.signs:  # still check the template itself with a plausible road
            try:
                sign_lines(template.render(sign_values("D000", within, kind)))
            except (ValueError, KeyError, IndexError) as exc:
                problems.setdefault(str(exc), []).append(f"a road 'D000' at {within / 1000.0:.1f} km")
        for message, where in problems.items():
            shown = ", ".join(where[:5]) + (f" and {len(where) - 5} more" if len(where) > 5 else "")
            self.issue(path, f"does not fit a sign (3 lines of 18 printable ASCII characters): {message} ({shown})")

    def template(self, text: str, path: str, allowed: frozenset[str]) -> Template | None:
        """A parsed template, or None (issue recorded)."""
        try:
            return Template.parse(text, allowed)
        except TemplateError as exc:
            self.issue(path, str(exc))
            return None

    def traffic(self, body: Any, path: str) -> TrafficRule | None:
        """The traffic part."""
        data = self.mapping(body, path, ("within_m", "plan", "duration_s", "restore_duration_s"))
        if data is None:
            return None
        within = self.number(data.get("within_m"), f"{path}.within_m", 1.0, MAX_RADIUS_M)
        plan = self.integer(data.get("plan"), f"{path}.plan", *PLAN_RANGE)
        duration = self.integer(data.get("duration_s"), f"{path}.duration_s", *DURATION_RANGE)
        restore = self.integer(
            data.get("restore_duration_s"), f"{path}.restore_duration_s", *DURATION_RANGE, default=duration or 900
        )
        if None in (within, plan, duration, restore):
            return None
        assert within is not None and plan is not None and duration is not None and restore is not None
        return TrafficRule(within, plan, duration, restore)

    def parking(self, body: Any, path: str) -> ParkingRule | None:
        """The parking part (display_mode null: the car parks are listed, no command)."""
        data = self.mapping(body, path, ("within_m", "display_mode"))
        if data is None:
            return None
        within = self.number(data.get("within_m"), f"{path}.within_m", 1.0, MAX_RADIUS_M)
        mode: int | None = None
        if data.get("display_mode") is not None:
            mode = self.integer(data.get("display_mode"), f"{path}.display_mode", *DISPLAY_MODE_RANGE)
            if mode is None:
                return None
        if within is None:
            return None
        return ParkingRule(within, mode)

    def notify(self, body: Any, path: str, kind: str) -> NotifyRule | None:
        """The notification part; its message is rendered once with sample values."""
        data = self.mapping(body, path, ("severity", "message"))
        if data is None:
            return None
        severity = self.integer(data.get("severity"), f"{path}.severity", 1, 1000, default=500)
        raw = self.text(data.get("message"), f"{path}.message")
        template = self.template(raw, f"{path}.message", NOTIFY_PLACEHOLDERS) if raw is not None else None
        if template is not None:
            try:
                template.render({"id": "INC-20260101-0001", "kind": kind, "lat": 47.3, "lon": 5.0, "description": ""})
            except (ValueError, KeyError, IndexError) as exc:
                self.issue(f"{path}.message", f"cannot be rendered: {exc}")
                template = None
        if severity is None or template is None:
            return None
        return NotifyRule(severity, template)
