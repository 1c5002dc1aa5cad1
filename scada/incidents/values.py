"""A router sink that keeps the latest value of the few tags incident response and parking guidance read.

Signs (message, pictogram, flashing), controllers (requested and active plan, control mode) and parking sites
(free, full, display mode, capacity) plus every device's CommunicationOk: a set lookup per record, so the
sink stays cheap under a city's 34,000 lamps. Listeners hear about the changes of the tags they watch.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from typing import Any, NamedTuple

from scada.model import ValueRecord, is_good
from scada.site.model import Site

log = logging.getLogger(__name__)

SIGN_TAGS = ("Message", "Pictogram", "Flashing", "MessageId", "CommunicationOk")
CONTROLLER_TAGS = ("RequestedPlan", "ActivePlan", "ControlMode", "CommunicationOk")
PARKING_TAGS = ("Free", "Full", "Capacity", "Occupied", "DisplayMode", "CommunicationOk")

Listener = Callable[[Sequence[ValueRecord]], None]


class Seen(NamedTuple):
    """The last value of a tag and its quality."""

    value: Any
    quality: int


def site_tags(site: Site) -> set[str]:
    """Every tag the cache keeps for a site."""
    tags: set[str] = set()
    for sign in site.signs.values():
        tags.update(f"{sign.path}/{name}" for name in SIGN_TAGS)
    for controller in site.controllers.values():
        tags.update(f"{controller.path}/{name}" for name in CONTROLLER_TAGS)
    for parking in site.parking.values():
        tags.update(f"{parking.path}/{name}" for name in PARKING_TAGS)
    return tags


class TagCache:
    """Latest value and quality of a fixed set of tags; call it with record batches (a TagRouter sink)."""

    def __init__(self, tags: Iterable[str]) -> None:
        self._wanted = frozenset(tags)
        self._seen: dict[str, Seen] = {}
        self._listeners: list[Listener] = []

    @classmethod
    def for_site(cls, site: Site) -> TagCache:
        """A cache of the sign, controller and parking-site tags of a site."""
        return cls(site_tags(site))

    def __call__(self, records: Sequence[ValueRecord]) -> None:
        """Keep the records of wanted tags; tell the listeners about those batches (never raises)."""
        wanted = self._wanted
        seen = self._seen
        kept: list[ValueRecord] | None = None
        for record in records:
            if record.tag in wanted:
                seen[record.tag] = Seen(record.value, record.quality)
                if kept is None:
                    kept = []
                kept.append(record)
        if kept and self._listeners:
            for listener in self._listeners:
                try:
                    listener(kept)
                except Exception:
                    log.exception("tag cache listener %r failed", listener)

    def add_listener(self, listener: Listener) -> None:
        """Call `listener` with every batch of wanted records (after the cache is updated)."""
        self._listeners.append(listener)

    def remove_listener(self, listener: Listener) -> None:
        """Stop calling `listener`."""
        self._listeners = [x for x in self._listeners if x is not listener]

    def value(self, tag: str) -> Any:
        """The last value of a tag (the last usable one when the device is away), None if never seen."""
        seen = self._seen.get(tag)
        return None if seen is None else seen.value

    def good(self, tag: str) -> Any:
        """The value of a tag if its quality is Good now, otherwise None."""
        seen = self._seen.get(tag)
        return seen.value if seen is not None and is_good(seen.quality) else None

    def seen(self, tag: str) -> Seen | None:
        """Value and quality of a tag, None if never seen."""
        return self._seen.get(tag)
