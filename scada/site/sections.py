"""Reading one section of site.yaml with located issues: the reader the alarms, lighting, incidents and parking
configurations share.

Each problem becomes a ConfigIssue naming the file, the line of the nearest YAML node (read again from site.yaml
with the loader's line-keeping parser, see `section_lines`) and the dotted field path, e.g.
`lighting.profiles.residential[2].level`. A module subclasses SectionReader for the values only it reads
(durations, clock times, alarm kinds...) and for the few places where its messages differ (the hooks
`UNKNOWN_FIELD`, `key`, `format_number`, `absent`), so that every message it gives stays the same.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, ClassVar

from scada.model import ConfigIssue
from scada.site.model import Site
from scada.site.sources import SourceError, describe, parse_yaml, read_text

MISSING_FIELD = "missing required field"
_PARENT = re.compile(r"(\.[^.\[]*|\[\d+\])$|^[^.\[]*$")
"""The last step of a dotted path (`.name` or `[index]`), or the whole of a one-step path."""


def site_label(site: Site) -> str:
    """How issues name the site's site.yaml (folder/site.yaml)."""
    return f"{site.folder.name}/site.yaml" if site.folder.name else "site.yaml"


def section_lines(site: Site, section_name: str, value: Any) -> dict[str, int]:
    """Lines of the nodes of site.yaml (dotted path -> line), read again from the file, for a section whose
    loaded value is `value`; empty when the section is absent or the file no longer matches it."""
    if value is None:
        return {}
    label = site_label(site)
    try:
        doc = parse_yaml(read_text(site.folder / "site.yaml", label), label, [])
    except SourceError:
        return {}
    if not isinstance(doc.data, dict) or doc.data.get(section_name) != value:
        return {}  # the settings were changed after loading: no line would be right
    return doc.lines


def number_text(value: float) -> str:
    """A number as a message shows it: 10 rather than 10.0."""
    return str(int(value)) if float(value).is_integer() else str(value)


class SectionReader:
    """Converts the values of one section, collecting every issue with its line and field path.

    A value of None is absent: the converters give their default, or report a missing required field.
    """

    UNKNOWN_FIELD: ClassVar[str] = "unknown field (expected {})"
    """The message of a key a mapping does not know; {} is the known keys, comma-separated."""

    def __init__(self, label: str, lines: Mapping[str, int]) -> None:
        self.label = label
        self.lines = lines
        self.issues: list[ConfigIssue] = []

    # -- hooks ------------------------------------------------------------------------------------------------

    @staticmethod
    def key(key: Any) -> str:
        """A mapping key as the field paths name it."""
        return str(key)

    @staticmethod
    def format_number(value: float) -> str:
        """A number or a bound in an "is outside" message."""
        return number_text(value)

    def absent(self, value: Any, path: str, *, required: bool) -> bool:
        """True when a value is absent (None), reported as a missing field when it is required."""
        if value is not None:
            return False
        if required:
            self.issue(path, MISSING_FIELD)
        return True

    # -- issues -----------------------------------------------------------------------------------------------

    def issue(self, path: str, message: str) -> None:
        """Record one problem at a dotted path (line of the nearest node that has one)."""
        probe = path
        line = self.lines.get(probe)
        while line is None and probe:
            probe = _PARENT.sub("", probe, count=1)
            line = self.lines.get(probe)
        self.issues.append(ConfigIssue(self.label, line, path, message))

    def expected(self, path: str, what: str, value: Any) -> None:
        """Record a value of the wrong kind: "expected <what>, got <the value described>"."""
        self.issue(path, f"expected {what}, got {describe(value)}")

    # -- values -----------------------------------------------------------------------------------------------

    def mapping(
        self, value: Any, path: str, known: tuple[str, ...] | None = None, *, required: bool = False
    ) -> dict[str, Any] | None:
        """A mapping with string keys; keys not in `known` become issues (None: any key). None when absent or
        not a mapping (reported)."""
        if self.absent(value, path, required=required):
            return None
        if not isinstance(value, dict):
            self.expected(path, "a mapping", value)
            return None
        result = {self.key(k): v for k, v in value.items()}
        if known is not None:
            for key in result:
                if key not in known:
                    self.issue(f"{path}.{key}", self.UNKNOWN_FIELD.format(", ".join(known)))
        return result

    def number(self, value: Any, path: str, low: float, high: float, default: float | None = None) -> float | None:
        """A finite number within [low, high]; the default when absent (required when there is no default)."""
        if self.absent(value, path, required=default is None):
            return default
        if isinstance(value, bool) or not isinstance(value, int | float) or value != value:
            self.expected(path, "a number", value)
            return None
        if not low <= value <= high:
            show = self.format_number
            self.issue(path, f"{show(value)} is outside {show(low)}..{show(high)}")
            return None
        return float(value)

    def integer(self, value: Any, path: str, low: int, high: int, default: int | None = None) -> int | None:
        """An integer within [low, high]; the default when absent (required when there is no default)."""
        if self.absent(value, path, required=default is None):
            return default
        if isinstance(value, bool) or not isinstance(value, int):
            self.expected(path, "an integer", value)
            return None
        if not low <= value <= high:
            self.issue(path, f"{value} is outside {low}..{high}")
            return None
        return int(value)

    def boolean(self, value: Any, path: str, default: bool) -> bool | None:
        """true or false; the default when absent."""
        if isinstance(value, bool):
            return value
        if self.absent(value, path, required=False):
            return default
        self.expected(path, "true or false", value)
        return None

    def text(self, value: Any, path: str, *, required: bool = True) -> str | None:
        """A string (numbers are not silently turned into text)."""
        if self.absent(value, path, required=required):
            return None
        if not isinstance(value, str):
            self.expected(path, "a text", value)
            return None
        return value
