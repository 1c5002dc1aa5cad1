"""The value path: value records from the core into the address space, with status code and source timestamp.

`AddressSpaceWriter.apply` does inline what asyncua's `AddressSpace.write_attribute_value` does for each value
(Bad status -> null value, store the DataValue, call every datachange callback of the node) without its
per-call overhead: no NodeId lookup, no coroutine per value, one cached StatusCode per status, one server
timestamp per batch. Data-change items of scada.opcua.fastsub are offered each value at once; other subscription
callbacks (coroutines) are queued and awaited in order by a single drain task.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from asyncua import ua

from scada.model import Quality, ValueRecord
from scada.opcua.fastsub import FastItem
from scada.opcua.nodes import NULL_VARIANT, VariableNode, status_code

log = logging.getLogger(__name__)

_BAD = 0x80000000
_NODE_GONE = ua.DataValue(NULL_VARIANT, status_code(ua.StatusCodes.BadNodeIdUnknown))
MAX_LOGGED_TAGS = 1000


class AddressSpaceWriter:
    """Maps tags to variable nodes and writes value records into them, notifying subscriptions."""

    def __init__(self, tags: Mapping[str, VariableNode], *, max_pending: int = 1_000_000) -> None:
        self._tags = tags
        self._status: dict[int, ua.StatusCode] = {}
        self._pending: deque[tuple[Callable[..., Any], int, ua.DataValue]] = deque()
        self._max_pending = max_pending
        self._drainer: asyncio.Task[None] | None = None
        self._closed = False
        self._unknown: set[str] = set()
        self._bad_values: set[str] = set()
        self.unknown_count = 0
        """How many records named a tag the address space does not have."""
        self.rejected_count = 0
        """How many records carried a value that does not fit their variable (published as BadInternalError)."""
        self.dropped_notifications = 0
        """Subscription notifications dropped because subscribers fell more than max_pending behind."""

    def __contains__(self, tag: object) -> bool:
        return tag in self._tags

    def status(self, code: int) -> ua.StatusCode:
        """The shared StatusCode object of a status code value."""
        status = self._status.get(code)
        if status is None:
            status = self._status[code] = status_code(int(code))
        return status

    def apply(self, records: Sequence[ValueRecord]) -> None:
        """Write a batch of value records (sync, from the event loop); unknown tags are counted and logged once."""
        if self._closed:
            return
        now = datetime.now(UTC)
        tags = self._tags
        statuses = self._status
        # untyped local aliases: the hot loop builds asyncua objects directly (see the module docstring)
        variant: Any = ua.Variant
        datavalue: Any = ua.DataValue
        new = object.__new__
        notify: list[tuple[Callable[..., Any], int, ua.DataValue]] | None = None
        for tag, value, quality, source_ts in records:
            node = tags.get(tag)
            if node is None:
                self._unknown_tag(tag)
                continue
            status = statuses.get(quality)
            if status is None:
                status = self.status(quality)
            if quality & _BAD:
                # Part 4, 7.7.1: a Bad status code goes with a null value
                dv = datavalue(NULL_VARIANT, status, source_ts, now)
            else:
                shape = node.shape
                try:
                    # ua.Variant(converted, vtype) without __post_init__'s guessing and checks: the converter has
                    # already made `value` a scalar of exactly the Python type of vtype
                    var = new(variant)
                    var.Value = shape.convert(value)
                    var.VariantType = shape.vtype
                    var.Dimensions = None
                    var.is_array = False
                    dv = datavalue(var, status, source_ts, now)
                except (TypeError, ValueError, OverflowError) as exc:
                    dv = datavalue(NULL_VARIANT, self.status(Quality.BAD_INTERNAL), source_ts, now)
                    self._bad_value(tag, value, exc)
            attribute = node.value
            if attribute.value_setter is not None:
                attribute.value_setter(node, ua.AttributeIds.Value, dv)
            else:
                attribute.value = dv
                attribute.value_callback = None
            callbacks = attribute._callbacks
            if callbacks:
                for handle, callback in callbacks.items():
                    if type(callback) is FastItem:
                        callback.offer(dv)  # scada.opcua.fastsub: filtered and queued now, no coroutine
                    else:
                        if notify is None:
                            notify = []
                        notify.append((callback, handle, dv))
        if notify:
            self._enqueue(notify)

    def set_value(self, node: VariableNode, dv: ua.DataValue) -> None:
        """Write one DataValue into a node of ours and notify its subscribers (used for incident objects)."""
        attribute = node.value
        attribute.value = dv
        callbacks = attribute._callbacks
        if callbacks:
            self._enqueue([(callback, handle, dv) for handle, callback in callbacks.items()])

    def forget(self, node: Any, aspace: Any) -> None:
        """Tell the monitored items of a node being deleted that it is gone, then drop their callbacks.

        Each item gets a data change with status BadNodeIdUnknown (asyncua's own delete path sends a
        subscription-wide StatusChangeNotification instead, which clients take for a lost subscription).
        """
        attribute = node.value if isinstance(node, VariableNode) else None
        if attribute is None or not attribute._callbacks:
            return
        handles = list(attribute._callbacks.items())
        self._enqueue([(callback, handle, _NODE_GONE) for handle, callback in handles])
        for handle, _callback in handles:
            aspace.delete_datachange_callback(handle)

    def _enqueue(self, items: list[tuple[Callable[..., Any], int, ua.DataValue]]) -> None:
        if self._closed:
            return
        pending = self._pending
        overflow = len(pending) + len(items) - self._max_pending
        if overflow > 0:
            if not self.dropped_notifications:
                log.warning("subscribers are %d notifications behind: dropping the oldest", len(pending))
            for _ in range(min(overflow, len(pending))):
                pending.popleft()
            self.dropped_notifications += overflow
        pending.extend(items)
        if self._drainer is None or self._drainer.done():
            self._drainer = asyncio.get_running_loop().create_task(self._drain(), name="opcua-value-notify")

    async def _drain(self) -> None:
        pending = self._pending
        while pending:
            callback, handle, dv = pending.popleft()
            try:
                await callback(handle, dv)
            except Exception:
                log.exception("datachange callback %s failed", handle)

    async def close(self) -> None:
        """Stop notifying: drop what is queued and wait for the drain task to end (idempotent)."""
        self._closed = True
        self._pending.clear()
        drainer, self._drainer = self._drainer, None
        if drainer is not None and not drainer.done():
            drainer.cancel()
            await asyncio.wait({drainer})  # does not raise the drainer's CancelledError, lets ours through

    def _unknown_tag(self, tag: str) -> None:
        self.unknown_count += 1
        if tag not in self._unknown and len(self._unknown) < MAX_LOGGED_TAGS:
            self._unknown.add(tag)
            log.warning("value record for unknown tag %r ignored (logged once per tag)", tag)

    def _bad_value(self, tag: str, value: Any, exc: Exception) -> None:
        self.rejected_count += 1
        if tag not in self._bad_values and len(self._bad_values) < MAX_LOGGED_TAGS:
            self._bad_values.add(tag)
            log.error("value %r of %s does not fit the variable (%s): published as BadInternalError", value, tag, exc)
