"""Garbage-collector policy of the server process while it serves subscriptions.

The address space is frozen out of the collector after it is built (scada.opcua.builder). CPython (3.11) then
runs a full collection whenever ten generation-1 collections have passed and the objects promoted since the last
full collection exceed a quarter of the long-lived ones, which no longer count the frozen address space: with a
steady flow of values (each node's current DataValue lives until the next one, long enough to be promoted) that
is a full collection about every second, each walking every monitored item and current value (150-370 ms with
100,000 monitored items, measured by bench/subscriptions.py): publishes late by as much.

`relax_full_collections()` raises the generation-2 threshold (never lowers it), making full collections about 20
times rarer; young garbage is still collected by generations 0 and 1 as before. It returns the undo.
"""

from __future__ import annotations

import gc
import logging
from collections.abc import Callable

log = logging.getLogger(__name__)

FULL_COLLECTION_THRESHOLD = 200
"""Generation-1 collections between two full collections (CPython's default is 10)."""


def relax_full_collections(threshold: int = FULL_COLLECTION_THRESHOLD) -> Callable[[], None]:
    """Raise gc's generation-2 threshold to `threshold` if lower; the returned function puts the old one back."""
    before = gc.get_threshold()
    if before[2] < threshold:
        gc.set_threshold(before[0], before[1], threshold)
        log.debug("gc thresholds %s -> %s", before, gc.get_threshold())

    def restore() -> None:
        current = gc.get_threshold()
        if current[2] == max(threshold, before[2]):  # nobody changed it since
            gc.set_threshold(current[0], current[1], before[2])

    return restore
