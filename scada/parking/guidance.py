"""Parking guidance: signs that show the free places of car parks, refreshed on change, yielding to incidents.

    parking_guidance:
      - sign: VMS-01
        lines: [{site: PK-01, label: "DAUPHINE"}, {site: PK-02, label: "GRANGIER"}]   # 1 to 3 lines
        pictogram: 0              # optional (0-7)
        min_interval_s: 10        # optional: at most one update of the sign per this many seconds

Each line reads "<LABEL padded to 10> <value right-aligned in 7>" (18 characters): the free places from the
sensors (Parking/<id>/Free, as the driver decodes them), "COMPLET" when the site is full (Full, or its entrance
forced to full), "FERME" when its entrance is closed, "--" when the site cannot be read. A sign is written only
when its rendered text differs from what it shows, at most once per min_interval_s (changes in between are
coalesced). While an incident holds the sign (scada.incidents.holds.DeviceHolds), guidance writes nothing; when
the incident releases it, the sign goes straight to the current guidance text (the guidance is its base
provider), so priority is incident > guidance > whatever the sign showed before.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from scada.catalog import SIGN_COLUMNS, SIGN_LINES, sign_lines
from scada.incidents.holds import DeviceHolds, Outcome
from scada.incidents.planner import Command
from scada.incidents.settings import SectionReader, section_lines, site_label
from scada.incidents.values import TagCache
from scada.model import ConfigError, ValueRecord, is_good
from scada.site.model import Site

log = logging.getLogger(__name__)

SECTION = "parking_guidance"
VALUE_WIDTH = 7  # "COMPLET"
LABEL_WIDTH = SIGN_COLUMNS - 1 - VALUE_WIDTH
FULL_TEXT = "COMPLET"
CLOSED_TEXT = "FERME"
UNKNOWN_TEXT = "--"
ORIGIN = "automation"
DISPLAY_FULL, DISPLAY_CLOSED = 1, 2


@dataclass(frozen=True, slots=True)
class GuidanceLine:
    """One line of a guidance sign: a parking site and its label."""

    site_id: str
    label: str


@dataclass(frozen=True, slots=True)
class GuidanceRule:
    """What one guidance sign shows."""

    sign_id: str
    lines: tuple[GuidanceLine, ...]
    pictogram: int = 0
    min_interval_s: float = 10.0


def load_guidance(site: Site) -> list[GuidanceRule]:
    """The site's parking_guidance section validated against the site; ConfigError with every issue otherwise."""
    return parse_guidance(site.settings.get(SECTION), site, site_label(site), section_lines(site, SECTION))


def parse_guidance(
    section: Any, site: Site, label: str = "site.yaml", lines: Mapping[str, int] | None = None
) -> list[GuidanceRule]:
    """Validate a parking_guidance section (None: no guidance sign); ConfigError with every issue found."""
    if section is None:
        return []
    reader = SectionReader(label, lines or {})
    if not isinstance(section, list):
        reader.issue(SECTION, "expected a list of signs")
        raise ConfigError(reader.issues)
    rules: list[GuidanceRule] = []
    seen: dict[str, str] = {}
    for index, item in enumerate(section):
        path = f"{SECTION}[{index}]"
        before = len(reader.issues)
        data = reader.mapping(item, path, ("sign", "lines", "pictogram", "min_interval_s"))
        if data is None:
            continue
        sign_id = reader.text(data.get("sign"), f"{path}.sign")
        if sign_id is not None:
            if sign_id not in site.signs:
                reader.issue(f"{path}.sign", f"unknown sign {sign_id!r}")
            elif sign_id in seen:
                reader.issue(f"{path}.sign", f"sign {sign_id} is already a guidance sign ({seen[sign_id]})")
            else:
                seen[sign_id] = path
        pictogram = reader.integer(data.get("pictogram"), f"{path}.pictogram", 0, 7, default=0)
        interval = reader.number(data.get("min_interval_s"), f"{path}.min_interval_s", 1.0, 3600.0, 10.0)
        parsed = _lines(reader, data.get("lines"), f"{path}.lines", site)
        if len(reader.issues) == before and sign_id is not None and pictogram is not None and interval is not None:
            rules.append(GuidanceRule(sign_id, parsed, pictogram, interval))
    if reader.issues:
        raise ConfigError(reader.issues)
    return rules


def _lines(reader: SectionReader, value: Any, path: str, site: Site) -> tuple[GuidanceLine, ...]:
    if not isinstance(value, list) or not value:
        reader.issue(path, f"expected a list of 1 to {SIGN_LINES} lines")
        return ()
    if len(value) > SIGN_LINES:
        reader.issue(path, f"a sign shows {SIGN_LINES} lines, {len(value)} are given")
    result: list[GuidanceLine] = []
    for index, item in enumerate(value):
        line_path = f"{path}[{index}]"
        data = reader.mapping(item, line_path, ("site", "label"))
        if data is None:
            continue
        site_id = reader.text(data.get("site"), f"{line_path}.site")
        if site_id is not None and site_id not in site.parking:
            reader.issue(f"{line_path}.site", f"unknown parking site {site_id!r}")
        label = reader.text(data.get("label"), f"{line_path}.label")
        if label is not None:
            if len(label) > LABEL_WIDTH:
                reader.issue(
                    f"{line_path}.label",
                    f"{label!r} has {len(label)} characters, at most {LABEL_WIDTH} fit before the count",
                )
            elif any(not 0x20 <= ord(c) <= 0x7E for c in label):
                reader.issue(
                    f"{line_path}.label", f"{label!r} holds characters a sign cannot show (printable ASCII only)"
                )
        if site_id is not None and label is not None:
            result.append(GuidanceLine(site_id, label))
    return tuple(result)


def render_line(label: str, free: Any, full: Any, mode: Any, readable: bool) -> str:
    """One guidance line from a site's values (see the module docstring)."""
    if not readable:
        value = UNKNOWN_TEXT
    elif mode == DISPLAY_CLOSED:
        value = CLOSED_TEXT
    elif mode == DISPLAY_FULL or full is True:
        value = FULL_TEXT
    elif isinstance(free, int) and not isinstance(free, bool):
        value = str(free)
    else:
        value = UNKNOWN_TEXT
    return f"{label:<{LABEL_WIDTH}} {value:>{VALUE_WIDTH}}"


def normalized(text: str) -> str:
    """A message as the sign reads it back: trailing blanks of each line and trailing empty lines cut."""
    lines = [line.rstrip() for line in text.split("\n")] if text else []
    while lines and not lines[-1]:
        lines.pop()
    return "\n".join(lines)


class ParkingGuidance:
    """Keeps the guidance signs current (a Service: start()/stop())."""

    def __init__(
        self,
        site: Site,
        holds: DeviceHolds,
        cache: TagCache,
        rules: Sequence[GuidanceRule],
        *,
        start_grace_s: float = 30.0,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self._site = site
        self._holds = holds
        self._cache = cache
        self.rules = {rule.sign_id: rule for rule in rules}
        self._grace_s = start_grace_s
        self._clock = clock
        self._watch: dict[str, list[str]] = {}  # tag -> guidance signs it feeds
        for rule in rules:
            for line in rule.lines:
                path = site.parking[line.site_id].path
                for name in ("Free", "Full", "DisplayMode", "CommunicationOk"):
                    self._watch.setdefault(f"{path}/{name}", []).append(rule.sign_id)
        self._wake: dict[str, asyncio.Event] = {}
        self._last_write: dict[str, float] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._started_at = 0.0
        self._failing: set[str] = set()
        self.writes = 0  # signs written by guidance
        self.skipped_held = 0  # updates not written because an incident held the sign

    def _now(self) -> float:
        return self._clock() if self._clock is not None else asyncio.get_running_loop().time()

    async def start(self) -> None:
        """Follow the parking values and keep the signs current (idempotent)."""
        if self._tasks or not self.rules:
            return
        self._started_at = self._now()
        for sign_id in self.rules:
            self._wake[sign_id] = asyncio.Event()
            self._wake[sign_id].set()
            self._holds.set_base_provider(sign_id, self._provider(sign_id))
            self._tasks.append(asyncio.create_task(self._run(sign_id), name=f"parking-guidance-{sign_id}"))
        self._cache.add_listener(self._changed)
        self._holds.add_freed_listener(self._freed)
        log.info("parking guidance on %d sign(s)", len(self.rules))

    async def stop(self) -> None:
        """Stop updating the signs (idempotent); they keep what they show."""
        tasks, self._tasks = self._tasks, []
        if not tasks:
            return
        self._cache.remove_listener(self._changed)
        for sign_id in self.rules:
            self._holds.set_base_provider(sign_id, None)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def render(self, sign_id: str) -> str:
        """The text a guidance sign should show now."""
        rule = self.rules[sign_id]
        lines = []
        for line in rule.lines:
            path = self._site.parking[line.site_id].path
            free = self._cache.seen(f"{path}/Free")
            comm = self._cache.value(f"{path}/CommunicationOk")
            readable = free is not None and is_good(free.quality) and comm is not False
            lines.append(
                render_line(
                    line.label,
                    free.value if free is not None else None,
                    self._cache.value(f"{path}/Full"),
                    self._cache.value(f"{path}/DisplayMode"),
                    readable,
                )
            )
        text = "\n".join(lines)
        sign_lines(text)  # labels are validated: a failure here is a bug
        return text

    def command(self, sign_id: str) -> Command:
        """The display command of a guidance sign now."""
        return Command(
            "display", {"Text": self.render(sign_id), "Pictogram": self.rules[sign_id].pictogram, "Flashing": False}
        )

    def _provider(self, sign_id: str) -> Callable[[], Command | None]:
        def provide() -> Command | None:
            return self.command(sign_id) if self._ready(sign_id) else None

        return provide

    def _ready(self, sign_id: str) -> bool:
        """True once every site of the sign has been read (or the start grace has passed)."""
        if self._now() - self._started_at >= self._grace_s:
            return True
        return all(
            self._cache.seen(f"{self._site.parking[line.site_id].path}/Free") is not None
            for line in self.rules[sign_id].lines
        )

    def _changed(self, records: Sequence[ValueRecord]) -> None:
        for record in records:
            for sign_id in self._watch.get(record.tag, ()):
                wake = self._wake.get(sign_id)
                if wake is not None:
                    wake.set()

    def _freed(self, device_id: str, outcome: Outcome) -> None:
        if device_id in self.rules and outcome.ok:
            self._last_write[device_id] = self._now()
            self._wake[device_id].set()  # in case the values changed while the restore was on its way

    def _shows(self, sign_id: str, command: Command) -> bool:
        """True when the sign already shows the command's text and pictogram."""
        path = self._site.signs[sign_id].path
        message = self._cache.good(f"{path}/Message")
        pictogram = self._cache.good(f"{path}/Pictogram")
        return message == normalized(command.args["Text"]) and pictogram == command.args["Pictogram"]

    async def _run(self, sign_id: str) -> None:
        wake = self._wake[sign_id]
        rule = self.rules[sign_id]
        grace = asyncio.get_running_loop().call_later(self._grace_s, wake.set)
        try:
            while True:
                await wake.wait()
                wait = self._last_write.get(sign_id, -1e18) + rule.min_interval_s - self._now()
                if wait > 0:
                    await asyncio.sleep(wait)
                wake.clear()
                try:
                    await self._refresh(sign_id)
                except Exception:
                    log.exception("guidance update of %s failed", sign_id)
        finally:
            grace.cancel()

    async def _refresh(self, sign_id: str) -> None:
        if not self._ready(sign_id):
            return
        command = self.command(sign_id)
        if self._shows(sign_id, command):
            return
        outcome = await self._holds.write_free(sign_id, command, user=None, origin=ORIGIN)
        if outcome is None:
            self.skipped_held += 1
            return
        self._last_write[sign_id] = self._now()
        if outcome.ok:
            self.writes += 1
            if sign_id in self._failing:
                self._failing.discard(sign_id)
                log.info("guidance sign %s updated again", sign_id)
        else:
            if sign_id not in self._failing:
                self._failing.add(sign_id)
                log.warning("guidance sign %s not updated (%s); retrying", sign_id, outcome.message)
            self._wake[sign_id].set()  # retried after min_interval_s
