"""Reading one section of site.yaml with located issues: the helpers the playbooks and parking guidance share.

Each problem becomes a ConfigIssue naming the file, the line of the nearest YAML node (read again from site.yaml
with the loader's line-keeping parser) and the dotted field path, e.g. `playbooks.accident.signs.text`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from scada.model import ConfigIssue
from scada.site.model import Site
from scada.site.sources import SourceError, describe, parse_yaml, read_text

_PARENT = re.compile(r"(\.[^.\[]*|\[\d+\])$|^[^.\[]*$")


def site_label(site: Site) -> str:
    """How issues name the site's site.yaml (folder/site.yaml)."""
    return f"{site.folder.name}/site.yaml" if site.folder.name else "site.yaml"


def section_lines(site: Site, section: str) -> dict[str, int]:
    """Lines of the section's nodes, read again from site.yaml (empty when the file no longer matches)."""
    value = site.settings.get(section)
    if value is None:
        return {}
    label = site_label(site)
    try:
        doc = parse_yaml(read_text(site.folder / "site.yaml", label), label, [])
    except SourceError:
        return {}
    if not isinstance(doc.data, dict) or doc.data.get(section) != value:
        return {}  # the settings were changed after loading: no line would be right
    return doc.lines


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


class SectionReader:
    """Converts the values of one section, collecting every issue with its line and field path."""

    def __init__(self, label: str, lines: Mapping[str, int]) -> None:
        self.label = label
        self.lines = lines
        self.issues: list[ConfigIssue] = []

    def issue(self, path: str, message: str) -> None:
        """Record one problem at a dotted path (line of the nearest node that has one)."""
        probe = path
        line = self.lines.get(probe)
        while line is None and probe:
            probe = _PARENT.sub("", probe, count=1)
            line = self.lines.get(probe)
        self.issues.append(ConfigIssue(self.label, line, path, message))

    def mapping(self, value: Any, path: str, known: tuple[str, ...]) -> dict[str, Any] | None:
        """A mapping with string keys; unknown keys become issues. None when it is not a mapping (reported)."""
        if not isinstance(value, dict):
            self.issue(path, f"expected a mapping, got {describe(value)}")
            return None
        result = {str(k): v for k, v in value.items()}
        for key in result:
            if key not in known:
                self.issue(f"{path}.{key}", f"unknown field (expected {', '.join(known)})")
        return result

    def number(self, value: Any, path: str, low: float, high: float, default: float | None = None) -> float | None:
        """A finite number within [low, high]; the default when absent (required when there is no default)."""
        if value is None:
            if default is None:
                self.issue(path, "missing required field")
            return default
        if isinstance(value, bool) or not isinstance(value, int | float) or value != value:
            self.issue(path, f"expected a number, got {describe(value)}")
            return None
        if not low <= value <= high:
            self.issue(path, f"{_num(value)} is outside {_num(low)}..{_num(high)}")
            return None
        return float(value)

    def integer(self, value: Any, path: str, low: int, high: int, default: int | None = None) -> int | None:
        """An integer within [low, high]; the default when absent (required when there is no default)."""
        if value is None:
            if default is None:
                self.issue(path, "missing required field")
            return default
        if isinstance(value, bool) or not isinstance(value, int):
            self.issue(path, f"expected an integer, got {describe(value)}")
            return None
        if not low <= value <= high:
            self.issue(path, f"{value} is outside {low}..{high}")
            return None
        return int(value)

    def boolean(self, value: Any, path: str, default: bool) -> bool | None:
        """true or false; the default when absent."""
        if value is None:
            return default
        if not isinstance(value, bool):
            self.issue(path, f"expected true or false, got {describe(value)}")
            return None
        return value

    def text(self, value: Any, path: str, *, required: bool = True) -> str | None:
        """A string (numbers are not silently turned into text)."""
        if value is None:
            if required:
                self.issue(path, "missing required field")
            return None
        if not isinstance(value, str):
            self.issue(path, f"expected a text, got {describe(value)}")
            return None
        return value
