"""Reading one section of site.yaml with located issues, as the playbooks and parking guidance read theirs.

The reader itself is scada.site.sections.SectionReader; this module keeps the names the playbooks and the parking
guidance import, and the one thing they read differently: a mapping that is absent (null) is reported as
"expected a mapping, got nothing" rather than skipped.
"""

from __future__ import annotations

from typing import Any

from scada.site import sections
from scada.site.model import Site
from scada.site.sections import site_label

__all__ = ["SectionReader", "section_lines", "site_label"]


def section_lines(site: Site, section: str) -> dict[str, int]:
    """Lines of the section's nodes, read again from site.yaml (empty when the file no longer matches)."""
    return sections.section_lines(site, section, site.settings.get(section))


class SectionReader(sections.SectionReader):
    """Converts the values of one section, collecting every issue with its line and field path."""

    def mapping(
        self, value: Any, path: str, known: tuple[str, ...] | None = None, *, required: bool = True
    ) -> dict[str, Any] | None:
        """A mapping with string keys; unknown keys become issues. None when it is not a mapping (reported,
        absent included unless `required` is False)."""
        if value is None and required:
            self.expected(path, "a mapping", value)
            return None
        return super().mapping(value, path, known, required=required)
