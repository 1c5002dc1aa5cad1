"""The console's watches: groups of watched variables, their monitored items, and delivery of changes in batches.

A watch is what a part of the console asks for ("these paths, call me with their changes"). Every watch lives in
one table that outlives sessions: after a reconnection the client creates every watch's monitored items again from
it. Changes are delivered per publish response, grouped by watch: one call per watch with all its changes.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence

from asyncua import ua

from hmi.values import NOT_CONNECTED, Change

log = logging.getLogger(__name__)

WatchCallback = Callable[[list[Change]], None]


class Watch:
    """A group of watched variables and the callback that receives their changes."""

    __slots__ = ("callback", "handles", "item_ids", "name", "paths", "refused", "sampling_ms")

    def __init__(self, paths: Sequence[str], callback: WatchCallback, sampling_ms: float, name: str) -> None:
        self.paths = tuple(paths)
        self.callback = callback
        self.sampling_ms = sampling_ms
        self.name = name
        self.handles: list[int] = []
        self.item_ids: dict[int, int] = {}  # client handle -> monitored item id of the current session
        self.refused: dict[str, int] = {}  # path -> status the server answered when creating its item

    def __repr__(self) -> str:
        return f"Watch({self.name!r}, {len(self.paths)} paths)"


def monitor_request(handle: int, nodeid: ua.NodeId, sampling_ms: float) -> ua.MonitoredItemCreateRequest:
    """One monitored item: the Value attribute, queue size 1 (asyncua turns 0 into 10,000), newest wins."""
    return ua.MonitoredItemCreateRequest(
        ItemToMonitor=ua.ReadValueId(NodeId=nodeid, AttributeId=ua.AttributeIds.Value),
        MonitoringMode=ua.MonitoringMode.Reporting,
        RequestedParameters=ua.MonitoringParameters(
            ClientHandle=handle, SamplingInterval=sampling_ms, QueueSize=1, DiscardOldest=True
        ),
    )


class WatchTable:
    """Every watch of the console, by client handle (handles are unique for the life of the console)."""

    def __init__(self) -> None:
        self._next_handle = 1
        self._by_handle: dict[int, tuple[Watch, int]] = {}
        self._watches: list[Watch] = []
        self.delivered = 0
        """How many changes were delivered to callbacks."""

    def __len__(self) -> int:
        return len(self._by_handle)

    @property
    def watches(self) -> list[Watch]:
        """The watches, oldest first."""
        return list(self._watches)

    def add(self, paths: Sequence[str], callback: WatchCallback, sampling_ms: float, name: str = "") -> Watch:
        """Register a watch and give each of its paths a client handle."""
        watch = Watch(paths, callback, sampling_ms, name or f"watch-{len(self._watches) + 1}")
        for position in range(len(watch.paths)):
            handle = self._next_handle
            self._next_handle += 1
            watch.handles.append(handle)
            self._by_handle[handle] = (watch, position)
        self._watches.append(watch)
        return watch

    def remove(self, watch: Watch) -> list[int]:
        """Forget a watch; returns the monitored item ids it had in the current session."""
        if watch not in self._watches:
            return []
        self._watches.remove(watch)
        for handle in watch.handles:
            self._by_handle.pop(handle, None)
        ids = list(watch.item_ids.values())
        watch.item_ids.clear()
        return ids

    def forget_session(self) -> None:
        """The session ended: no watch has monitored items any more."""
        for watch in self._watches:
            watch.item_ids.clear()
            watch.refused.clear()

    def requests(
        self, watch: Watch, nodeid: Callable[[str], ua.NodeId]
    ) -> list[tuple[int, ua.MonitoredItemCreateRequest]]:
        """The monitored item requests of a watch (client handle, request)."""
        return [
            (handle, monitor_request(handle, nodeid(path), watch.sampling_ms))
            for handle, path in zip(watch.handles, watch.paths, strict=True)
        ]

    def created(self, handle: int, result: ua.MonitoredItemCreateResult) -> None:
        """Record the server's answer to the creation of one item (refusals are delivered as Bad changes)."""
        found = self._by_handle.get(handle)
        if found is None:
            return
        watch, position = found
        if result.StatusCode.is_good():
            watch.item_ids[handle] = result.MonitoredItemId
        else:
            watch.refused[watch.paths[position]] = result.StatusCode.value

    def deliver_refusals(self, watches: Iterable[Watch]) -> None:
        """Tell each watch which of its paths the server refused (value None, the server's status)."""
        for watch in watches:
            if watch.refused:
                self._call(watch, [Change(path, None, status, None) for path, status in watch.refused.items()])

    def deliver(self, notification: ua.DataChangeNotification) -> None:
        """Hand the changes of one data-change notification to their watches (one call per watch)."""
        grouped: dict[Watch, list[Change]] = {}
        by_handle = self._by_handle
        for item in notification.MonitoredItems:
            found = by_handle.get(item.ClientHandle)
            if found is None:
                continue  # an item of a watch removed meanwhile
            watch, position = found
            dv = item.Value
            variant = dv.Value
            status = dv.StatusCode.value if dv.StatusCode is not None else 0
            change = Change(
                watch.paths[position], variant.Value if variant is not None else None, status, dv.SourceTimestamp
            )
            changes = grouped.get(watch)
            if changes is None:
                grouped[watch] = [change]
            else:
                changes.append(change)
        for watch, changes in grouped.items():
            self._call(watch, changes)

    def deliver_lost(self) -> None:
        """The connection is lost: every watched path gets value None with BadNotConnected (show it stale)."""
        for watch in list(self._watches):
            self._call(watch, [Change(path, None, NOT_CONNECTED, None) for path in watch.paths])

    def _call(self, watch: Watch, changes: list[Change]) -> None:
        self.delivered += len(changes)
        try:
            watch.callback(changes)
        except Exception:
            log.exception("the callback of %r failed", watch)
