"""Tag routing: value records from the drivers fan out to the address space, the historian and the alarms.

Data flows one way: device -> driver -> router -> sinks. A sink is any callable taking a batch of records; it
must not block (the historian queues, the address space writes in memory). A failing sink is logged once per
kind of failure and never stops the others.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

from scada.model import ValueRecord

log = logging.getLogger(__name__)

Sink = Callable[[Sequence[ValueRecord]], None]


class TagRouter:
    """Delivers every batch of value records to every sink, in the order the sinks were added."""

    def __init__(self) -> None:
        self._sinks: list[tuple[str, Sink]] = []
        self._failing: set[str] = set()
        self.records = 0
        self.batches = 0

    def add_sink(self, name: str, sink: Sink) -> None:
        """Add a consumer of value records."""
        self._sinks.append((name, sink))

    def remove_sink(self, name: str) -> None:
        """Remove the consumer registered under `name`."""
        self._sinks = [(n, s) for n, s in self._sinks if n != name]

    def publish(self, records: Sequence[ValueRecord]) -> None:
        """Hand a batch to every sink (the scada.model.Publish callback given to drivers)."""
        if not records:
            return
        self.records += len(records)
        self.batches += 1
        for name, sink in self._sinks:
            try:
                sink(records)
            except Exception:
                if name not in self._failing:
                    self._failing.add(name)
                    log.exception("sink %s failed; further failures of it are counted, not logged", name)
            else:
                if name in self._failing:
                    self._failing.discard(name)
                    log.info("sink %s recovered", name)
