"""The fast data-change path (scada.opcua.fastsub): real asyncua clients over TCP against the city server.

Order and latest value, coalescing, queues > 1 with DiscardOldest and the Overflow bit, absolute deadband,
two subscriptions with different intervals, monitoring mode, modify and delete, a second session closing,
server-internal subscriptions, and the bulk encoder against asyncua's own serializer.
"""

from __future__ import annotations

import asyncio
import gc
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from asyncua import Client, ua
from asyncua.ua.ua_binary import struct_to_binary
from uakit import City

from scada.model import Quality, ValueRecord
from scada.opcua.fastencode import NotificationEncoder
from scada.opcua.fastsub import FastItem, FastSubscription
from scada.opcua.gcpolicy import relax_full_collections

pytestmark = pytest.mark.asyncio(loop_scope="session")

T0 = datetime(2026, 11, 25, 18, 0, 0, tzinfo=UTC)
OVERFLOW = 0x0480


class Recorder:
    """A subscription handler recording (arrival time, NodeId identifier, DataValue) of every data change."""

    def __init__(self) -> None:
        self.seen: list[tuple[float, str, ua.DataValue]] = []
        self.arrived = asyncio.Event()

    def datachange_notification(self, node: Any, val: Any, data: Any) -> None:
        """asyncua's callback."""
        self.seen.append((time.monotonic(), node.nodeid.Identifier, data.monitored_item.Value))
        self.arrived.set()

    def values(self, tag: str | None = None) -> list[Any]:
        """The values received (for one tag)."""
        return [dv.Value.Value for _, ident, dv in self.seen if tag is None or ident == tag]

    async def wait_for(self, count: int, within: float = 5.0) -> None:
        """Wait until at least `count` data changes arrived (fails the test after `within` seconds)."""
        deadline = time.monotonic() + within
        while len(self.seen) < count:
            self.arrived.clear()
            await asyncio.wait_for(self.arrived.wait(), max(deadline - time.monotonic(), 0.001))

    async def settle(self, quiet: float = 0.3) -> None:
        """Wait until nothing arrived for `quiet` seconds."""
        while True:
            count = len(self.seen)
            await asyncio.sleep(quiet)
            if len(self.seen) == count:
                return


def double_tags(city: City) -> list[str]:
    """The Double device variables of the test site, in a stable order (each test takes its own slice)."""
    tags = city.server._builder.tags  # type: ignore[union-attr]
    return sorted(tag for tag, node in tags.items() if node.shape.vtype == ua.VariantType.Double)


def write(city: City, tag: str, value: float, quality: int = Quality.GOOD, step: int = 0) -> None:
    """One value record through the real value path."""
    city.server.writer.apply([ValueRecord(tag, value, quality, T0 + timedelta(seconds=step))])


async def subscribe(city: City, interval: float, tags: list[str], **kwargs: Any) -> tuple[Any, Recorder, list[int]]:
    """A subscription of the shared client on tags, its recorder (initial values received and dropped)."""
    recorder = Recorder()
    subscription = await city.client.create_subscription(interval, recorder)
    handles = await subscription.subscribe_data_change([city.node(tag) for tag in tags], **kwargs)
    await recorder.wait_for(len(tags))
    recorder.seen.clear()
    return subscription, recorder, handles


async def create_item(subscription: Any, city: City, tag: str, **parameters: Any) -> Any:
    """CreateMonitoredItems with explicit MonitoringParameters (DiscardOldest, Filter...) through asyncua's client:
    the server's item (FastItem), or the StatusCode refusing it."""
    request = ua.MonitoredItemCreateRequest()
    request.ItemToMonitor = ua.ReadValueId(NodeId=ua.NodeId(tag, city.ns), AttributeId=ua.AttributeIds.Value)
    request.MonitoringMode = parameters.pop("mode", ua.MonitoringMode.Reporting)
    request.RequestedParameters = ua.MonitoringParameters(ClientHandle=900 + len(subscription._monitored_items))
    for name, value in parameters.items():
        setattr(request.RequestedParameters, name, value)
    results = await subscription.create_monitored_items([request])
    if isinstance(results[0], ua.StatusCode):
        return results[0]
    return server_item(city, subscription, results[0])


def server_item(city: City, subscription: Any, mid: int) -> FastItem:
    """The server's FastItem of a monitored item id."""
    internal = city.server.asyncua_server.iserver.subscription_service.subscriptions[subscription.subscription_id]
    return internal.monitored_item_srv._fast[mid]


async def test_subscriptions_of_the_city_are_fast(city: City) -> None:
    subscription, _, _ = await subscribe(city, 50, double_tags(city)[:1])
    try:
        internal = city.server.asyncua_server.iserver.subscription_service.subscriptions[subscription.subscription_id]
        assert isinstance(internal, FastSubscription)
        node = city.server._builder.tags[double_tags(city)[0]]  # type: ignore[union-attr]
        assert any(type(callback) is FastItem for callback in node.value.datachange_callbacks.values())
    finally:
        await subscription.delete()


async def test_values_arrive_in_order_and_the_latest_always_arrives(city: City) -> None:
    tags = double_tags(city)[:5]
    subscription, recorder, _ = await subscribe(city, 50, tags, queuesize=1)
    try:
        for step in range(1, 6):  # slower than publishing: every value arrives, in order
            for tag in tags:
                write(city, tag, float(step), step=step)
            await recorder.wait_for(step * len(tags))
        assert all(recorder.values(tag) == [1.0, 2.0, 3.0, 4.0, 5.0] for tag in tags), recorder.seen
        recorder.seen.clear()
        for step in range(6, 206):  # far faster than publishing: fewer notifications, the last value last
            for tag in tags:
                write(city, tag, float(step), step=step)
            if step % 50 == 0:
                await asyncio.sleep(0.06)
        await recorder.settle()
        for tag in tags:
            values = recorder.values(tag)
            assert values[-1] == 205.0
            assert values == sorted(values)
            assert len(values) < 50, values
    finally:
        await subscription.delete()


async def test_queue_size_one_coalesces_to_the_latest(city: City) -> None:
    tag = double_tags(city)[5]
    subscription, recorder, _ = await subscribe(city, 300, [tag], queuesize=1)
    try:
        for step in range(1, 101):
            write(city, tag, float(step), step=step)
        await recorder.wait_for(1)
        await recorder.settle(0.5)
        assert recorder.values() == [100.0]
        assert recorder.seen[0][2].SourceTimestamp == T0 + timedelta(seconds=100)
        assert recorder.seen[0][2].StatusCode.value == Quality.GOOD  # queue size 1: no Overflow bit
    finally:
        await subscription.delete()


async def test_queue_larger_than_one_keeps_values_and_discards_the_oldest(city: City) -> None:
    tag = double_tags(city)[6]
    subscription, recorder, _ = await subscribe(city, 300, [tag], queuesize=3)
    try:
        for step in range(1, 11):
            write(city, tag, float(step), step=step)
        await recorder.wait_for(3)
        await recorder.settle(0.5)
        assert recorder.values() == [8.0, 9.0, 10.0]
        statuses = [dv.StatusCode.value for _, _, dv in recorder.seen]
        assert statuses == [OVERFLOW, 0, 0]  # Part 4 5.12.1.5: the oldest value left carries the Overflow bit
    finally:
        await subscription.delete()


async def test_discard_oldest_false_keeps_the_first_values_and_replaces_the_last(city: City) -> None:
    tag = double_tags(city)[7]
    recorder = Recorder()
    subscription = await city.client.create_subscription(300, recorder)
    try:
        item = await create_item(subscription, city, tag, QueueSize=3, DiscardOldest=False)
        assert item.queue_size == 3 and item.discard_oldest is False
        await recorder.wait_for(1)
        recorder.seen.clear()
        for step in range(1, 11):
            write(city, tag, float(step), step=step)
        await recorder.wait_for(3)
        await recorder.settle(0.5)
        assert recorder.values() == [1.0, 2.0, 10.0]
        assert [dv.StatusCode.value for _, _, dv in recorder.seen] == [0, 0, OVERFLOW]
    finally:
        await subscription.delete()


async def test_queue_size_zero_is_revised_to_one(city: City) -> None:
    tag = double_tags(city)[8]
    recorder = Recorder()
    subscription = await city.client.create_subscription(100, recorder)
    try:
        item = await create_item(subscription, city, tag, QueueSize=0)
        assert item.queue_size == 1
    finally:
        await subscription.delete()


async def test_absolute_deadband_is_measured_from_the_last_reported_value(city: City) -> None:
    tag = double_tags(city)[9]
    write(city, tag, 10.0, step=0)
    recorder = Recorder()
    subscription = await city.client.create_subscription(30, recorder)
    try:
        deadband = ua.DataChangeFilter(
            Trigger=ua.DataChangeTrigger.StatusValue, DeadbandType=ua.DeadbandType.Absolute, DeadbandValue=1.0
        )
        item = await create_item(subscription, city, tag, QueueSize=10, Filter=deadband)
        assert item.deadband == 1.0
        await recorder.wait_for(1)
        for step, value in enumerate([10.5, 10.9, 11.2, 11.9, 12.1, 12.3, 12.3], start=1):
            write(city, tag, value, step=step)
        write(city, tag, 12.3, Quality.BAD_COMM, step=9)  # a status change always passes
        await recorder.settle()
        assert recorder.values() == [10.0, 11.2, 12.3, None]
        assert recorder.seen[-1][2].StatusCode.value == Quality.BAD_COMM
    finally:
        await subscription.delete()


async def test_a_negative_deadband_is_refused(city: City) -> None:
    recorder = Recorder()
    subscription = await city.client.create_subscription(100, recorder)
    try:
        bad = ua.DataChangeFilter(DeadbandType=ua.DeadbandType.Absolute, DeadbandValue=-1.0)
        refused = await create_item(subscription, city, double_tags(city)[10], Filter=bad)
        assert refused.value == ua.StatusCodes.BadDeadbandFilterInvalid
    finally:
        await subscription.delete()


async def test_two_subscriptions_publish_at_their_own_intervals(city: City) -> None:
    tag = double_tags(city)[11]
    fast, fast_seen, _ = await subscribe(city, 50, [tag])
    slow, slow_seen, _ = await subscribe(city, 400, [tag])
    try:
        started = time.monotonic()
        step = 0
        while time.monotonic() - started < 1.7:
            step += 1
            write(city, tag, float(step), step=step)
            await asyncio.sleep(0.02)
        await fast_seen.settle(0.5)
        await slow_seen.settle(0.6)
        assert fast_seen.values()[-1] == slow_seen.values()[-1] == float(step)
        assert 2 <= len(slow_seen.seen) <= 6, slow_seen.values()
        assert len(fast_seen.seen) >= 3 * len(slow_seen.seen), (fast_seen.values(), slow_seen.values())
        gaps = [b[0] - a[0] for a, b in zip(slow_seen.seen, slow_seen.seen[1:], strict=False)]
        assert all(gap > 0.3 for gap in gaps), gaps  # never faster than the publishing interval
    finally:
        await fast.delete()
        await slow.delete()


async def test_deleted_items_get_no_more_notifications(city: City) -> None:
    tags = double_tags(city)[12:14]
    subscription, recorder, handles = await subscribe(city, 50, tags)
    try:
        node = city.server._builder.tags[tags[0]]  # type: ignore[union-attr]
        before = len(node.value.datachange_callbacks)
        write(city, tags[0], 1.0, step=1)  # queued, then the item is deleted before it is published
        await subscription.unsubscribe(handles[0])
        assert len(node.value.datachange_callbacks) == before - 1
        write(city, tags[0], 2.0, step=2)
        write(city, tags[1], 3.0, step=3)
        await recorder.wait_for(1)
        await recorder.settle()
        assert [ident for _, ident, _ in recorder.seen] == [tags[1]]
    finally:
        await subscription.delete()


async def test_disabled_items_are_silent_and_report_the_current_value_when_enabled(city: City) -> None:
    tag = double_tags(city)[14]
    subscription, recorder, _ = await subscribe(city, 50, [tag])
    try:
        await subscription.set_monitoring_mode(ua.MonitoringMode.Disabled)
        write(city, tag, 41.0, step=1)
        write(city, tag, 42.0, step=2)
        await asyncio.sleep(0.3)
        assert recorder.seen == []
        await subscription.set_monitoring_mode(ua.MonitoringMode.Reporting)
        await recorder.wait_for(1)
        await recorder.settle()
        assert recorder.values() == [42.0]
    finally:
        await subscription.delete()


async def test_sampling_items_queue_without_reporting_until_reporting(city: City) -> None:
    tag = double_tags(city)[17]
    subscription, recorder, _ = await subscribe(city, 50, [tag], queuesize=5)
    try:
        await subscription.set_monitoring_mode(ua.MonitoringMode.Sampling)
        write(city, tag, 51.0, step=1)
        write(city, tag, 52.0, step=2)
        await asyncio.sleep(0.3)
        assert recorder.seen == []
        await subscription.set_monitoring_mode(ua.MonitoringMode.Reporting)
        await recorder.wait_for(2)
        await recorder.settle()
        assert recorder.values() == [51.0, 52.0]
    finally:
        await subscription.delete()


async def test_modify_changes_queue_size_and_filter(city: City) -> None:
    tag = double_tags(city)[15]
    subscription, recorder, handles = await subscribe(city, 300, [tag], queuesize=1)
    try:
        modify = ua.MonitoredItemModifyRequest()
        modify.MonitoredItemId = handles[0]
        modify.RequestedParameters = ua.MonitoringParameters(
            ClientHandle=server_item(city, subscription, handles[0]).client_handle,
            QueueSize=4,
            DiscardOldest=True,
            Filter=ua.DataChangeFilter(
                Trigger=ua.DataChangeTrigger.StatusValue, DeadbandType=ua.DeadbandType.Absolute, DeadbandValue=5.0
            ),
        )
        params = ua.ModifyMonitoredItemsParameters(SubscriptionId=subscription.subscription_id, ItemsToModify=[modify])
        results = await city.client.uaclient.modify_monitored_items(params)
        assert results[0].StatusCode.is_good() and results[0].RevisedQueueSize == 4
        for step, value in enumerate([100.0, 102.0, 110.0, 111.0, 120.0], start=1):
            write(city, tag, value, step=step)
        await recorder.wait_for(3)
        await recorder.settle(0.5)
        assert recorder.values() == [100.0, 110.0, 120.0]
    finally:
        await subscription.delete()


async def test_a_closed_session_leaves_no_callbacks(city: City) -> None:
    tags = double_tags(city)[30:40]
    nodes = [city.server._builder.tags[tag] for tag in tags]  # type: ignore[union-attr]
    before = [len(node.value.datachange_callbacks) for node in nodes]
    other = Client(city.server.endpoint_url, timeout=10, watchdog_intervall=30.0)
    await other.connect()
    recorder = Recorder()
    subscription = await other.create_subscription(50, recorder)
    await subscription.subscribe_data_change([other.get_node(ua.NodeId(tag, city.ns)) for tag in tags])
    await recorder.wait_for(len(tags))
    write(city, tags[0], 7.0, step=1)
    await recorder.wait_for(len(tags) + 1)
    assert recorder.values(tags[0])[-1] == 7.0
    assert [len(node.value.datachange_callbacks) for node in nodes] == [n + 1 for n in before]
    await other.disconnect()
    assert [len(node.value.datachange_callbacks) for node in nodes] == before


async def test_server_internal_subscriptions_get_decoded_notifications(city: City) -> None:
    tag = double_tags(city)[16]
    recorder = Recorder()
    server = city.server.asyncua_server
    subscription = await server.create_subscription(50, recorder)
    try:
        await subscription.subscribe_data_change(server.get_node(ua.NodeId(tag, city.ns)))
        await recorder.wait_for(1)
        write(city, tag, 77.0, step=1)
        await recorder.wait_for(2)
        assert recorder.values()[-1] == 77.0
    finally:
        await subscription.delete()


async def test_bulk_encoding_is_what_asyncua_encodes() -> None:
    now = datetime.now(UTC)
    v = ua.VariantType
    values = [
        ua.DataValue(ua.Variant(1.5, v.Double), ua.StatusCode(0), now, now),
        ua.DataValue(ua.Variant(True, v.Boolean), ua.StatusCode(0), now, now),
        ua.DataValue(ua.Variant(70000, v.UInt32), ua.StatusCode(0), None, now),
        ua.DataValue(ua.Variant(-3, v.Int32), ua.StatusCode(OVERFLOW), now, None),
        ua.DataValue(ua.Variant("ROUTE\nBARRÉE", v.String), ua.StatusCode(0x80000000), now, now),
        ua.DataValue(ua.Variant(None, v.String), ua.StatusCode(0), now, now),
        ua.DataValue(ua.Variant(), ua.StatusCode(ua.StatusCodes.BadCommunicationError), now, now),
        ua.DataValue(ua.Variant([1, 2, 3], v.Int32)),
        ua.DataValue(ua.Variant(now, v.DateTime), ua.StatusCode(0), now, now, 7, 9),
        ua.DataValue(ua.Variant(ua.LocalizedText("x"), v.LocalizedText)),
        ua.DataValue(ua.Variant(2**40, v.Int64), ua.StatusCode(0), now + timedelta(seconds=1), now),
    ]
    handles = list(range(1, len(values) + 1))
    expected = ua.DataChangeNotification(
        MonitoredItems=[ua.MonitoredItemNotification(h, dv) for h, dv in zip(handles, values, strict=True)]
    )
    encoder = NotificationEncoder()
    assert encoder.body(handles, values) == struct_to_binary(expected)
    assert encoder.body(handles[:2], values[:2]) == struct_to_binary(
        ua.DataChangeNotification(MonitoredItems=expected.MonitoredItems[:2])
    )


async def test_full_collections_are_relaxed_and_restored() -> None:
    before = gc.get_threshold()
    restore = relax_full_collections(before[2] + 100)
    try:
        assert gc.get_threshold() == (before[0], before[1], before[2] + 100)
    finally:
        restore()
    assert gc.get_threshold() == before
    restore_lower = relax_full_collections(1)  # never lowers
    assert gc.get_threshold() == before
    restore_lower()
    assert gc.get_threshold() == before
