"""Alarm flood handling the ISA-18.2 way: suppression by design of a cabinet's lamp alarms.

While a cabinet has one of the configured parent alarms active (communication lost, mains failure), the alarms
of its lamps are consequences, not news: they are suppressed (SuppressedState true, Retain false, no event of
their own) and counted in the parent's message. When the last parent alarm clears, the children stay suppressed
for `release_delay_s` (the field needs a poll cycle or two to report the lamps again), then they are released
and evaluated from the latest values.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from scada.alarms.config import FloodConfig


@dataclass(slots=True)
class _Cabinet:
    active_parents: set[str] = field(default_factory=set)  # parent alarm kinds active now
    releasing: bool = False  # parents cleared, children still suppressed until the release delay ends
    published_count: int = 0  # the count last shown in the parents' messages


class FloodGuard:
    """Which cabinets suppress their lamps' alarms, and how many alarms each has suppressed."""

    def __init__(self, config: FloodConfig, children: dict[str, list[str]]) -> None:
        self.config = config
        self.children = children
        """Cabinet id -> condition ids (paths) of the alarms of its lamps."""
        self._cabinets: dict[str, _Cabinet] = {}

    @property
    def enabled(self) -> bool:
        """True when some alarm kind is configured to suppress children."""
        return bool(self.config.suppress_children_on)

    def is_parent_kind(self, kind: str) -> bool:
        """True when alarms of that kind suppress the lamps of their cabinet."""
        return kind in self.config.suppress_children_on

    def suppressing(self, cabinet_id: str | None) -> bool:
        """True while the cabinet's lamp alarms are suppressed (a parent active, or its release pending)."""
        if cabinet_id is None:
            return False
        state = self._cabinets.get(cabinet_id)
        return state is not None and (bool(state.active_parents) or state.releasing)

    def parent_active(self, cabinet_id: str) -> bool:
        """True while one of the cabinet's parent alarms is active."""
        state = self._cabinets.get(cabinet_id)
        return state is not None and bool(state.active_parents)

    def parent_changed(self, cabinet_id: str, kind: str, active: bool) -> str | None:
        """Record a parent alarm's new state; returns "suppress", "release" or None (nothing to do)."""
        state = self._cabinets.setdefault(cabinet_id, _Cabinet())
        was_suppressing = bool(state.active_parents) or state.releasing
        if active:
            state.active_parents.add(kind)
            state.releasing = False
            return None if was_suppressing else "suppress"
        state.active_parents.discard(kind)
        if state.active_parents or not was_suppressing:
            return None
        state.releasing = True
        return "release"

    def release(self, cabinet_id: str) -> bool:
        """End the release delay of a cabinet; False if a parent became active again meanwhile."""
        state = self._cabinets.get(cabinet_id)
        if state is None or not state.releasing or state.active_parents:
            return False
        state.releasing = False
        return True

    def update_count(self, cabinet_id: str, count: int) -> bool:
        """Store the cabinet's count of suppressed alarms; True when it differs from the one shown."""
        state = self._cabinets.setdefault(cabinet_id, _Cabinet())
        if state.published_count == count:
            return False
        state.published_count = count
        return True

    def count(self, cabinet_id: str) -> int:
        """The count of suppressed alarms last computed for a cabinet."""
        state = self._cabinets.get(cabinet_id)
        return state.published_count if state is not None else 0
