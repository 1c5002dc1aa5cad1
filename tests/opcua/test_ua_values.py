"""The value path: records written by AddressSpaceWriter are read back and notified with status and timestamps."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import pytest
from asyncua import ua
from uakit import City, DataChanges

from scada.model import Quality, ValueRecord

pytestmark = pytest.mark.asyncio(loop_scope="session")

T0 = datetime(2026, 11, 25, 17, 30, 0, 123456, tzinfo=UTC)


async def test_good_value_is_read_back_with_status_and_timestamps(city: City) -> None:
    before = datetime.now(UTC)
    city.server.writer.apply([ValueRecord("Lighting/CAB-0001/L-000001/Level", 42, Quality.GOOD, T0)])
    dv = await city.node("Lighting/CAB-0001/L-000001/Level").read_data_value()
    assert dv.Value == ua.Variant(42.0, ua.VariantType.Double)
    assert dv.StatusCode.value == Quality.GOOD
    assert dv.SourceTimestamp == T0
    assert dv.ServerTimestamp is not None and dv.ServerTimestamp >= before - timedelta(milliseconds=1)


@pytest.mark.parametrize(
    ("path", "value", "variant"),
    [
        ("Traffic/TLC-001/Stage", 3, ua.Variant(3, ua.VariantType.UInt16)),
        ("Traffic/TLC-001/VehicleCount", 70000, ua.Variant(70000, ua.VariantType.UInt32)),
        ("Traffic/TLC-001/ControlMode", 2, ua.Variant(2, ua.VariantType.Int32)),
        ("Traffic/TLC-001/Fault", 1, ua.Variant(True, ua.VariantType.Boolean)),
        ("Signs/VMS-01/Message", "ROUTE\nBARREE", ua.Variant("ROUTE\nBARREE", ua.VariantType.String)),
        ("Energy/LightingPowerKW", 123.5, ua.Variant(123.5, ua.VariantType.Double)),
    ],
)
async def test_values_take_their_variable_data_type(city: City, path: str, value: object, variant: ua.Variant) -> None:
    city.server.writer.apply([ValueRecord(path, value, Quality.GOOD, T0)])
    dv = await city.node(path).read_data_value()
    assert dv.Value == variant


async def test_bad_quality_nulls_the_value_and_keeps_the_last_good_time(city: City) -> None:
    path = "Lighting/CAB-0001/MainsVoltage"
    writer = city.server.writer
    writer.apply([ValueRecord(path, 231.5, Quality.GOOD, T0)])
    writer.apply([ValueRecord(path, 231.5, Quality.BAD_COMM, T0)])
    dv = await city.node(path).read_data_value(raise_on_bad_status=False)
    assert dv.StatusCode.value == Quality.BAD_COMM
    assert dv.Value.Value is None
    assert dv.SourceTimestamp == T0


async def test_uncertain_quality_keeps_the_value(city: City) -> None:
    path = "Lighting/CAB-0001/EnergyKWh"
    city.server.writer.apply([ValueRecord(path, 1234.5, Quality.UNCERTAIN_LAST_USABLE, T0)])
    dv = await city.node(path).read_data_value(raise_on_bad_status=False)
    assert dv.StatusCode.value == Quality.UNCERTAIN_LAST_USABLE
    assert dv.Value == ua.Variant(1234.5, ua.VariantType.Double)


async def test_unknown_tags_are_counted_and_logged_once(city: City, caplog: pytest.LogCaptureFixture) -> None:
    writer = city.server.writer
    before = writer.unknown_count
    with caplog.at_level(logging.WARNING, logger="scada.opcua.values"):
        writer.apply(
            [
                ValueRecord("Lighting/CAB-9999/Level", 1.0, Quality.GOOD, T0),
                ValueRecord("Lighting/CAB-0001/L-000001/PowerW", 12.0, Quality.GOOD, T0),
                ValueRecord("Lighting/CAB-9999/Level", 2.0, Quality.GOOD, T0),
            ]
        )
    assert writer.unknown_count == before + 2
    assert sum("CAB-9999" in record.getMessage() for record in caplog.records) == 1
    assert (await city.node("Lighting/CAB-0001/L-000001/PowerW").read_value()) == 12.0


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("Traffic/TLC-002/Stage", 70000),  # does not fit UInt16
        ("Traffic/TLC-002/ActivePlan", 2.5),  # not a whole number
        ("Traffic/TLC-002/CycleSecond", None),  # Good quality without a value
        ("Lighting/CAB-0002/MainsVoltage", "230"),  # a string for a Double
        ("Signs/VMS-02/Message", 12),  # a number for a String
    ],
)
async def test_values_that_do_not_fit_become_bad_internal_error(city: City, path: str, value: object) -> None:
    writer = city.server.writer
    rejected = writer.rejected_count
    writer.apply([ValueRecord(path, value, Quality.GOOD, T0)])
    dv = await city.node(path).read_data_value(raise_on_bad_status=False)
    assert dv.StatusCode.value == Quality.BAD_INTERNAL
    assert dv.Value.Value is None
    assert writer.rejected_count == rejected + 1


async def test_subscription_sees_values_and_the_bad_transition(city: City) -> None:
    path = "Lighting/CAB-0002/L-001002/Level"
    handler = DataChanges()
    subscription = await city.client.create_subscription(20, handler)
    try:
        await subscription.subscribe_data_change(city.node(path), queuesize=10)
        nodeid, first = await handler.next()
        assert nodeid == ua.NodeId(path, city.ns)
        assert first.StatusCode.value == Quality.BAD_WAITING_FOR_INITIAL_DATA
        writer = city.server.writer
        t1 = T0 + timedelta(seconds=1)
        writer.apply([ValueRecord(path, 55.0, Quality.GOOD, t1)])
        _, good = await handler.next()
        assert good.Value.Value == 55.0 and good.StatusCode.value == Quality.GOOD and good.SourceTimestamp == t1
        writer.apply([ValueRecord(path, 55.0, Quality.BAD_COMM, t1)])
        _, bad = await handler.next()
        assert bad.StatusCode.value == Quality.BAD_COMM
        assert bad.Value.Value is None
        assert bad.SourceTimestamp == t1
        t2 = t1 + timedelta(seconds=5)
        writer.apply([ValueRecord(path, 60.0, Quality.GOOD, t2)])
        _, back = await handler.next()
        assert back.Value.Value == 60.0 and back.StatusCode.value == Quality.GOOD and back.SourceTimestamp == t2
    finally:
        await subscription.delete()


async def test_many_monitored_items_get_every_change_in_order(city: City) -> None:
    tags = [f"Lighting/CAB-0001/{lamp.id}/PowerW" for lamp in city.site.cabinets["CAB-0001"].lamps]
    handler = DataChanges()
    subscription = await city.client.create_subscription(20, handler)
    try:
        await subscription.subscribe_data_change([city.node(tag) for tag in tags], queuesize=100)
        for _ in tags:
            await handler.next()  # initial values
        writer = city.server.writer
        for step in range(1, 6):
            writer.apply([ValueRecord(tag, float(step), Quality.GOOD, T0 + timedelta(seconds=step)) for tag in tags])
        seen: dict[str, list[float]] = {tag: [] for tag in tags}
        for _ in range(5 * len(tags)):
            nodeid, dv = await handler.next()
            seen[nodeid.Identifier].append(dv.Value.Value)
        assert all(values == [1.0, 2.0, 3.0, 4.0, 5.0] for values in seen.values()), seen
    finally:
        await subscription.delete()


async def test_asyncua_own_write_path_works_on_compact_nodes(city: City) -> None:
    # other layers (history, events) may use asyncua's API on our nodes: it must keep working
    path = "Signs/VMS-02/Luminance"
    handler = DataChanges()
    subscription = await city.client.create_subscription(20, handler)
    try:
        await subscription.subscribe_data_change(city.node(path))
        await handler.next()
        dv = ua.DataValue(ua.Variant(250.0, ua.VariantType.Double), ua.StatusCode(Quality.GOOD), T0)
        status = await city.server.asyncua_server.write_attribute_value(ua.NodeId(path, city.ns), dv)
        assert status is None or status.is_good()
        assert (await handler.next())[1].Value.Value == 250.0
        assert await city.node(path).read_value() == 250.0
    finally:
        await subscription.delete()
