"""Fast data-change path of the server's subscriptions: coalesced per monitored item, published in bulk.

asyncua (2.1) handles each value change of each monitored item with a chain of coroutines (datachange_callback,
enqueue_datachange_event, _enqueue_event, _trigger_publish), a deep copy of the DataValue and a
MonitoredItemNotification, then encodes every notification field by field: about 14-20k changes/s on one core.
Here a data-change monitored item is a `FastItem`, itself the callback registered on the node, which:

- is offered each new value synchronously (`AddressSpaceWriter.apply` calls `offer`; any other writer, e.g.
  `write_attribute_value`, awaits it as the coroutine callback asyncua expects);
- applies the data change filter (trigger Status / StatusValue / StatusValueTimestamp, absolute deadband against
  the last value queued for the client, Part 4 7.22.2) and the monitoring mode;
- keeps its queue: the latest value only for queue size 1 (coalescing: the value that arrives is always the
  latest), a bounded deque otherwise, honouring DiscardOldest and setting the Overflow info bit (Part 4
  5.12.1.5). Values are exception-based (pollers push them at the node's MinimumSamplingInterval), so every
  change that passes the filter is queued: never slower than the sampling interval a client asks for, which is
  revised as asyncua does (-1: the publishing interval);
- marks itself dirty once per publishing interval in its subscription's list.

The subscription (`FastSubscription`, asyncua's InternalSubscription with its publishing loop, keep-alives,
acknowledgements, republish and lifetime untouched) builds one DataChangeNotification from its dirty items at
each publish, already encoded (scada.opcua.fastencode) for client subscriptions. Events, status changes, event
items and subscriptions with a publishing interval of 0 stay on asyncua's own path.

`install_fast_subscriptions(iserver)` upgrades every subscription created afterwards; it returns the undo.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Generator
from typing import Any

from asyncua import ua
from asyncua.server.internal_subscription import InternalSubscription
from asyncua.server.monitored_item_service import MonitoredItemService

from scada.opcua.fastencode import NotificationEncoder
from scada.opcua.nodes import status_code

log = logging.getLogger(__name__)

_DISABLED = ua.MonitoringMode.Disabled
_REPORTING = ua.MonitoringMode.Reporting
_OVERFLOW = 0x0480  # InfoType DataValue + Overflow bit (Part 4, 7.34.1)
_STATUS, _STATUS_VALUE, _STATUS_VALUE_TIMESTAMP = 0, 1, 2


class _Done:
    """An already-finished awaitable: what a FastItem returns to callers that await their callbacks."""

    __slots__ = ()

    def __await__(self) -> Generator[Any, None, None]:
        yield from ()


_DONE = _Done()


class FastItem:
    """A data-change monitored item: filter, queue and dirty flag (see the module docstring)."""

    __slots__ = (
        "alive",
        "client_handle",
        "deadband",
        "dirty",
        "discard_oldest",
        "handle",
        "has_last",
        "last_code",
        "last_source",
        "last_value",
        "latest",
        "mid",
        "mode",
        "queue",
        "queue_size",
        "sub",
        "trigger",
    )

    def __init__(self, sub: FastSubscription, mid: int, client_handle: int) -> None:
        self.sub = sub
        self.mid = mid
        self.client_handle = client_handle
        self.handle = 0
        self.mode = _REPORTING
        self.trigger = _STATUS_VALUE
        self.deadband: float | None = None
        self.queue_size = 1
        self.discard_oldest = True
        self.has_last = False
        self.last_code = 0
        self.last_value: Any = None
        self.last_source: Any = None
        self.latest: ua.DataValue | None = None
        self.queue: deque[ua.DataValue] | None = None
        self.dirty = False
        self.alive = True

    def __call__(self, handle: int, value: ua.DataValue | None, error: ua.StatusCode | None = None) -> _Done:
        """asyncua's datachange callback signature (awaited by its writers, called plainly on node deletion)."""
        if error is not None:
            # asyncua's own reaction (a subscription-wide StatusChangeNotification), without its coroutine
            self.sub._triggered_statuschanges.append(error)
        elif value is not None:
            self.offer(value)
        return _DONE

    def offer(self, dv: ua.DataValue) -> None:
        """A new value of the monitored attribute: filter it, queue it, mark the item for the next publish."""
        if self.mode is _DISABLED or not self.alive:
            return
        variant = dv.Value
        value = None if variant is None else variant.Value
        status = dv.StatusCode
        code = 0 if status is None else status.value
        if self.has_last and code == self.last_code:
            trigger = self.trigger
            if trigger == _STATUS:
                return
            last = self.last_value
            changed = value != last
            if changed and self.deadband is not None:
                changed = _outside(value, last, self.deadband)
            if not changed and (trigger != _STATUS_VALUE_TIMESTAMP or dv.SourceTimestamp == self.last_source):
                return
        self.has_last = True
        self.last_code = code
        self.last_value = value
        self.last_source = dv.SourceTimestamp
        if self.queue_size == 1:
            self.latest = dv
        else:
            self._queue(dv)
        if not self.dirty:
            self.dirty = True
            self.sub._dirty.append(self)

    def _queue(self, dv: ua.DataValue) -> None:
        queue = self.queue
        if queue is None:
            queue = self.queue = deque()
        if len(queue) < self.queue_size:
            queue.append(dv)
        elif self.discard_oldest:
            queue.popleft()
            queue.append(dv)
            queue[0] = _overflowed(queue[0])
        else:
            queue[-1] = _overflowed(dv)

    def take(self, handles: list[int], values: list[ua.DataValue]) -> None:
        """Move the queued values into the notification being built and empty the queue."""
        handle = self.client_handle
        if self.queue_size == 1:
            latest = self.latest
            if latest is not None:
                handles.append(handle)
                values.append(latest)
                self.latest = None
        elif self.queue:
            queue = self.queue
            handles.extend([handle] * len(queue))
            values.extend(queue)
            queue.clear()

    def configure(self, params: ua.MonitoringParameters, queue_size: int) -> None:
        """Apply (revised) monitoring parameters; a smaller queue keeps its newest values."""
        self.client_handle = params.ClientHandle
        self.queue_size = queue_size
        self.discard_oldest = bool(params.DiscardOldest)
        trigger, deadband = _filter_settings(params.Filter)
        self.trigger, self.deadband = trigger, deadband
        queue = self.queue
        if queue_size == 1:
            if queue:
                self.latest = queue[-1]
            self.queue = None
        elif queue is not None:
            while len(queue) > queue_size:
                queue.popleft()
        elif self.latest is not None:
            self.queue = deque((self.latest,))
            self.latest = None

    def clear(self) -> None:
        """Drop the queued values (monitoring disabled)."""
        self.latest = None
        if self.queue:
            self.queue.clear()


def _outside(value: Any, last: Any, deadband: float) -> bool:
    """Absolute deadband (Part 8, 6.2): |value - last reported| > deadband; a non-number always passes."""
    try:
        return bool(abs(value - last) > deadband)
    except TypeError:
        return True


_FLAGGED: dict[int, ua.StatusCode] = {}
_new = object.__new__


def _overflowed(dv: ua.DataValue) -> ua.DataValue:
    """The value with the Overflow info bit set (a copy: DataValues are shared with the node and other items)."""
    status = dv.StatusCode
    code = 0 if status is None else status.value
    if code & _OVERFLOW == _OVERFLOW:
        return dv
    flagged = _FLAGGED.get(code)
    if flagged is None:
        flagged = _FLAGGED.setdefault(code, status_code(code | _OVERFLOW))
    copy = _new(ua.DataValue)  # without the dataclass __init__/__post_init__: this runs once per discarded value
    copy.Encoding = dv.Encoding
    copy.Value = dv.Value
    copy.StatusCode = flagged
    copy.SourceTimestamp = dv.SourceTimestamp
    copy.ServerTimestamp = dv.ServerTimestamp
    copy.SourcePicoseconds = dv.SourcePicoseconds
    copy.ServerPicoseconds = dv.ServerPicoseconds
    return copy


def _filter_settings(flt: Any) -> tuple[int, float | None]:
    """(trigger, absolute deadband or None) of a validated filter."""
    if not _is_data_change_filter(flt):  # None, or the empty ExtensionObject clients send for "no filter"
        return _STATUS_VALUE, None
    deadband = float(flt.DeadbandValue) if flt.DeadbandType == ua.DeadbandType.Absolute else None
    return int(flt.Trigger), deadband


def _is_data_change_filter(flt: Any) -> bool:
    # by shape: asyncua decodes filters into a DataChangeFilter class that is not always `ua.DataChangeFilter`
    return hasattr(flt, "DeadbandType") and hasattr(flt, "Trigger")


def _check_filter(flt: Any) -> ua.StatusCode | None:
    """The status code refusing a filter of a data-change item, or None when it is accepted."""
    if flt is None or (isinstance(flt, ua.ExtensionObject) and not flt):
        return None
    if _is_data_change_filter(flt):
        if flt.DeadbandType == ua.DeadbandType.Absolute and flt.DeadbandValue < 0:
            return status_code(ua.StatusCodes.BadDeadbandFilterInvalid)
        if flt.DeadbandType == ua.DeadbandType.Percent:
            # asyncua accepts it and does not apply it; so do we (no EURange lookup per item)
            log.warning("percent deadband is not implemented: the item reports every change")
        return None
    if hasattr(flt, "AggregateType"):
        return status_code(ua.StatusCodes.BadMonitoredItemFilterUnsupported)
    return status_code(ua.StatusCodes.BadFilterNotAllowed)


class FastMonitoredItemService(MonitoredItemService):
    """asyncua's MonitoredItemService with FastItems for data-change items (events unchanged)."""

    _fast: dict[int, FastItem]

    def _upgrade(self) -> None:
        self._fast = {}

    async def _create_data_change_monitored_item(
        self, params: ua.MonitoredItemCreateRequest
    ) -> ua.MonitoredItemCreateResult:
        result, mdata = self._make_monitored_item_common(params)
        requested = params.RequestedParameters
        refused = _check_filter(requested.Filter)
        if refused is not None:
            result.StatusCode = refused
            return result
        if requested.QueueSize == 0:
            result.RevisedQueueSize = mdata.queue_size = 1  # Part 4: 0 or 1 is a queue of one
        publishing_ms = self.isub.data.RevisedPublishingInterval
        result.RevisedSamplingInterval = publishing_ms if requested.SamplingInterval < 0 else requested.SamplingInterval
        sub: FastSubscription = self.isub  # type: ignore[assignment]
        item = FastItem(sub, result.MonitoredItemId, requested.ClientHandle)
        item.configure(requested, result.RevisedQueueSize)
        target = params.ItemToMonitor
        result.StatusCode, handle = self.aspace.add_datachange_callback(target.NodeId, target.AttributeId, item)
        mdata.callback_handle = item.handle = handle
        self._commit_monitored_item(result, mdata)
        if result.StatusCode.is_good():
            self._monitored_datachange[handle] = result.MonitoredItemId
            self._fast[result.MonitoredItemId] = item
            item.mode = ua.MonitoringMode(params.MonitoringMode)
            if item.mode is not _DISABLED:
                item.offer(self.aspace.read_attribute_value(target.NodeId, target.AttributeId))
        return result

    def _modify_monitored_item(self, params: ua.MonitoredItemModifyRequest) -> ua.MonitoredItemModifyResult:
        item = self._fast.get(params.MonitoredItemId)
        if item is None:
            return super()._modify_monitored_item(params)  # event items: asyncua's way
        result = ua.MonitoredItemModifyResult()
        requested = params.RequestedParameters
        refused = _check_filter(requested.Filter)
        if refused is not None:
            result.StatusCode = refused
            return result
        mdata = self._monitored_items[params.MonitoredItemId]
        queue_size = 1 if requested.QueueSize == 0 else self._revise_queue_size(requested.QueueSize)
        publishing_ms = self.isub.data.RevisedPublishingInterval
        item.configure(requested, queue_size)
        mdata.filter = requested.Filter
        mdata.queue_size = queue_size
        mdata.client_handle = requested.ClientHandle
        result.RevisedQueueSize = queue_size
        result.RevisedSamplingInterval = publishing_ms if requested.SamplingInterval < 0 else requested.SamplingInterval
        return result

    async def _set_monitoring_mode(self, mode: ua.MonitoringMode, mid: int) -> ua.StatusCode:
        item = self._fast.get(mid)
        if item is None:
            return await super()._set_monitoring_mode(mode, mid)
        mode = ua.MonitoringMode(mode)
        self._monitored_items[mid].mode = mode
        previous, item.mode = item.mode, mode
        if mode is _DISABLED:
            item.clear()
        elif previous is _DISABLED:
            item.has_last = False  # re-enabled: the current value is reported again
            nodeid, attr = self.aspace._handle_to_attribute_map[item.handle]
            item.offer(self.aspace.read_attribute_value(nodeid, attr))
        elif mode is _REPORTING and not item.dirty and (item.latest is not None or item.queue):
            item.dirty = True
            self.isub._dirty.append(item)  # type: ignore[attr-defined]
        return ua.StatusCode()

    def _delete_monitored_items(self, mid: int) -> ua.StatusCode:
        item = self._fast.pop(mid, None)
        if item is None:
            return super()._delete_monitored_items(mid)
        item.alive = False
        item.clear()
        self.aspace.delete_datachange_callback(item.handle)
        self._monitored_datachange.pop(item.handle, None)
        self._monitored_items.pop(mid, None)
        return ua.StatusCode()

    async def trigger_datachange(self, handle: int, nodeid: ua.NodeId, attr: ua.AttributeIds) -> None:
        mid = self._monitored_datachange.get(handle)
        item = self._fast.get(mid) if mid is not None else None
        if item is None:
            await super().trigger_datachange(handle, nodeid, attr)
        else:
            item.offer(self.aspace.read_attribute_value(nodeid, attr))


class FastSubscription(InternalSubscription):
    """asyncua's InternalSubscription publishing its FastItems' values in bulk (see the module docstring)."""

    _dirty: list[FastItem]
    _encoder: NotificationEncoder

    def _upgrade(self) -> None:
        self._dirty = []
        self._encoder = NotificationEncoder()
        service = self.monitored_item_srv
        service.__class__ = FastMonitoredItemService
        service._upgrade()  # type: ignore[attr-defined]

    def has_published_results(self) -> bool:
        if self._startup or (
            self._publishing_enabled and (self._dirty or self._triggered_datachanges or self._triggered_events)
        ):
            return True
        self._keep_alive_count += 1
        return self._keep_alive_count >= self.data.RevisedMaxKeepAliveCount

    def _pop_triggered_datachanges(self, result: ua.PublishResult) -> None:
        handles: list[int] = []
        values: list[ua.DataValue] = []
        dirty, self._dirty = self._dirty, []
        waiting = self._dirty
        for item in dirty:
            if not item.alive:
                continue
            if item.mode is _REPORTING:
                item.dirty = False
                item.take(handles, values)
            elif item.mode is _DISABLED:
                item.dirty = False
            else:
                waiting.append(item)  # sampling: queued until reported
        for queued in self._triggered_datachanges.values():  # items left on asyncua's path, if any
            for one in queued:
                handles.append(one.ClientHandle)
                values.append(one.Value)
        self._triggered_datachanges = {}
        if not values:
            return
        data = result.NotificationMessage.NotificationData
        if self.pub_request_callback is not None:
            data.append(self._encoder.extension_object(handles, values))  # type: ignore[arg-type]
        else:  # server-internal subscription: its callback wants objects
            notification = ua.DataChangeNotification()
            notification.MonitoredItems = [
                ua.MonitoredItemNotification(handle, dv) for handle, dv in zip(handles, values, strict=True)
            ]
            data.append(notification)


def install_fast_subscriptions(iserver: Any) -> Callable[[], None]:
    """Make every subscription created from now on (with a publishing interval > 0) a FastSubscription.

    Returns the undo (subscriptions already upgraded stay so until deleted).
    """
    service = iserver.subscription_service
    create = service.create_subscription

    async def create_subscription(
        params: ua.CreateSubscriptionParameters, callback: Any, session_id: ua.NodeId, request_callback: Any = None
    ) -> ua.CreateSubscriptionResult:
        result = await create(params, callback, session_id, request_callback=request_callback)
        sub = service.subscriptions.get(result.SubscriptionId)
        if type(sub) is InternalSubscription and result.RevisedPublishingInterval > 0:
            sub.__class__ = FastSubscription
            sub._upgrade()  # type: ignore[attr-defined]
        return result

    service.create_subscription = create_subscription

    def uninstall() -> None:
        if service.__dict__.get("create_subscription") is create_subscription:
            del service.create_subscription

    return uninstall
