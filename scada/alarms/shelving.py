"""Shelving (Part 9 ShelvedStateMachine) and the engine's timers: shelving expiry, flood release.

States: Unshelved, TimedShelved (until UnshelveTime runs out, at most MaxTimeShelved), OneShotShelved (until
the alarm returns to normal, at most MaxTimeShelved). Transitions carry the standard names so that the OPC UA
layer can map them to the ShelvedStateMachineType's state and transition NodeIds.
"""

from __future__ import annotations

import enum
import heapq
import itertools
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


class Shelving(enum.Enum):
    """The current state of a condition's ShelvingState."""

    UNSHELVED = "Unshelved"
    TIMED = "TimedShelved"
    ONE_SHOT = "OneShotShelved"

    @property
    def display(self) -> str:
        """The CurrentState text (Part 9 display names)."""
        return _DISPLAY[self]


_DISPLAY = {Shelving.UNSHELVED: "Unshelved", Shelving.TIMED: "Timed Shelved", Shelving.ONE_SHOT: "One Shot Shelved"}


def transition_name(before: Shelving, after: Shelving) -> str:
    """The ShelvedStateMachineType transition's BrowseName, e.g. "UnshelvedToTimedShelved"."""
    return f"{before.value}To{after.value}"


@dataclass(order=True, slots=True)
class _Entry:
    due: datetime
    seq: int
    action: str = field(compare=False)
    target: Any = field(compare=False)
    token: int = field(compare=False)


class Deadlines:
    """A heap of future actions (shelving expiry, flood release) with cancellable entries."""

    def __init__(self) -> None:
        self._heap: list[_Entry] = []
        self._seq = itertools.count()
        self._live: dict[tuple[str, Any], int] = {}  # (action, target) -> token of its live entry

    def schedule(self, due: datetime, action: str, target: Any) -> None:
        """Plan `action` on `target` at `due`; replaces an earlier plan of the same action on the same target."""
        token = next(self._seq)
        self._live[(action, target)] = token
        heapq.heappush(self._heap, _Entry(due, token, action, target, token))

    def cancel(self, action: str, target: Any) -> None:
        """Forget the plan of `action` on `target`, if any."""
        self._live.pop((action, target), None)

    def next_due(self) -> datetime | None:
        """When the earliest live plan is due (None: nothing planned)."""
        heap = self._heap
        while heap and self._live.get((heap[0].action, heap[0].target)) != heap[0].token:
            heapq.heappop(heap)
        return heap[0].due if heap else None

    def pop_due(self, now: datetime) -> list[tuple[str, Any]]:
        """Remove and return the live plans due at `now`, earliest first."""
        due: list[tuple[str, Any]] = []
        heap = self._heap
        while heap and heap[0].due <= now:
            entry = heapq.heappop(heap)
            key = (entry.action, entry.target)
            if self._live.get(key) == entry.token:
                del self._live[key]
                due.append(key)
        return due

    def __len__(self) -> int:
        return len(self._live)
