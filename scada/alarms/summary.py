"""Counts of conditions by state, per alarm kind and per district (for the console's overview)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from scada.alarms.state import ConditionState


@dataclass(slots=True)
class Counts:
    """How many conditions are in each state."""

    active: int = 0
    unacked: int = 0
    unconfirmed: int = 0
    shelved: int = 0
    suppressed: int = 0
    disabled: int = 0
    retained: int = 0

    def add(self, cond: ConditionState) -> None:
        """Count one condition."""
        self.active += cond.active
        self.unacked += not cond.acked
        self.unconfirmed += not cond.confirmed
        self.shelved += cond.shelved
        self.suppressed += cond.suppressed and cond.active
        self.disabled += not cond.enabled
        self.retained += cond.retain


@dataclass(slots=True)
class AlarmSummary:
    """Counts of conditions in total, per alarm kind and per district (for the console)."""

    total: Counts = field(default_factory=Counts)
    by_kind: dict[str, Counts] = field(default_factory=dict)
    by_district: dict[str, Counts] = field(default_factory=dict)


def summarize(conditions: Iterable[ConditionState]) -> AlarmSummary:
    """Count conditions in total, per alarm kind and per district."""
    summary = AlarmSummary()
    for cond in conditions:
        summary.total.add(cond)
        kind = summary.by_kind.get(cond.kind.key)
        if kind is None:
            kind = summary.by_kind[cond.kind.key] = Counts()
        kind.add(cond)
        district = summary.by_district.get(cond.district)
        if district is None:
            district = summary.by_district[cond.district] = Counts()
        district.add(cond)
    return summary
