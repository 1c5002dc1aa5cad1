"""ReportIncident / CloseIncident: incident objects appear and disappear under Objects/City/Incidents."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from asyncua import ua
from uakit import City, DataChanges

from scada.opcua import Incident, IncidentRegistry

pytestmark = pytest.mark.asyncio(loop_scope="session")

CONTACT = "jane.doe@example.org +33 6 12 34 56 78"


def s(text: str) -> ua.Variant:
    return ua.Variant(text, ua.VariantType.String)


def d(number: float) -> ua.Variant:
    return ua.Variant(number, ua.VariantType.Double)


async def call(city: City, method: str, *args: ua.Variant) -> ua.CallMethodResult:
    request = ua.CallMethodRequest()
    request.ObjectId = ua.NodeId("Incidents", city.ns)
    request.MethodId = ua.NodeId(f"Incidents/{method}", city.ns)
    request.InputArguments = list(args)
    [result] = await city.client.uaclient.call([request])
    return result


async def report(city: City, kind: str = "accident", lat: float = 47.32, lon: float = 5.04) -> ua.CallMethodResult:
    return await call(city, "ReportIncident", s(kind), d(lat), d(lon), s("two cars, lane blocked"), s(CONTACT))


async def children(city: City) -> set[str]:
    return {(await node.read_browse_name()).Name for node in await city.node("Incidents").get_children()}


async def test_report_and_close_round_trip(fresh: City) -> None:
    result = await report(fresh, "roadworks", 47.3301, 5.0402)
    assert result.StatusCode.is_good()
    [output] = result.OutputArguments
    incident_id = output.Value
    today = datetime.now(ZoneInfo(fresh.site.timezone)).strftime("%Y%m%d")
    assert incident_id.startswith(f"INC-{today}-") and len(incident_id) == len("INC-20261125-0001")
    assert incident_id in await children(fresh)
    obj = fresh.node(f"Incidents/{incident_id}")
    typedefs = await obj.get_references(refs=ua.ObjectIds.HasTypeDefinition)
    assert typedefs[0].NodeId == ua.NodeId("Types/IncidentType", fresh.ns)
    values = {(await node.read_browse_name()).Name: await node.read_value() for node in await obj.get_children()}
    assert values["Kind"] == "roadworks"
    assert values["Latitude"] == pytest.approx(47.3301)
    assert values["Longitude"] == pytest.approx(5.0402)
    assert values["Description"] == "two cars, lane blocked"
    assert values["Status"] == "open"
    assert isinstance(values["CreatedAt"], datetime)
    # the reporter's contact is personal data: not a variable, not a value anywhere in the object
    assert "ReporterContact" not in values
    assert all(CONTACT not in str(value) for value in values.values())

    closed = await call(fresh, "CloseIncident", s(incident_id))
    assert closed.StatusCode.is_good()
    assert incident_id not in await children(fresh)
    with pytest.raises(ua.UaStatusCodeError):
        await obj.read_browse_name()
    again = await call(fresh, "CloseIncident", s(incident_id))
    assert again.StatusCode.value == ua.StatusCodes.BadNotFound


async def test_ids_follow_each_other(fresh: City) -> None:
    first = (await report(fresh)).OutputArguments[0].Value
    second = (await report(fresh, "hazard")).OutputArguments[0].Value
    assert int(second.rsplit("-", 1)[1]) == int(first.rsplit("-", 1)[1]) + 1
    for incident_id in (first, second):
        assert (await call(fresh, "CloseIncident", s(incident_id))).StatusCode.is_good()


@pytest.mark.parametrize(
    ("args", "status", "per_argument"),
    [
        ((s("meteor"), d(47.3), d(5.0), s(""), s("")), ua.StatusCodes.BadInvalidArgument, [0x80AB0000, 0, 0, 0, 0]),
        ((s("accident"), d(95.0), d(5.0), s(""), s("")), ua.StatusCodes.BadOutOfRange, [0, 0x803C0000, 0, 0, 0]),
        ((s("accident"), d(47.0), d(-200.0), s(""), s("")), ua.StatusCodes.BadOutOfRange, [0, 0, 0x803C0000, 0, 0]),
        (
            (s("accident"), d(47.0), d(5.0), s("x" * 1001), s("")),
            ua.StatusCodes.BadOutOfRange,
            [0, 0, 0, 0x803C0000, 0],
        ),
        (
            (s("accident"), s("47.0"), d(5.0), s(""), s("")),
            ua.StatusCodes.BadInvalidArgument,
            [0, ua.StatusCodes.BadTypeMismatch, 0, 0, 0],
        ),
        ((s("accident"), d(47.0), d(5.0), s("")), ua.StatusCodes.BadArgumentsMissing, None),
    ],
)
async def test_report_errors(
    fresh: City, args: tuple[ua.Variant, ...], status: int, per_argument: list[int] | None
) -> None:
    before = await children(fresh)
    result = await call(fresh, "ReportIncident", *args)
    assert result.StatusCode.value == status
    if per_argument is not None:
        assert [code.value for code in result.InputArgumentResults] == per_argument
    assert await children(fresh) == before


async def test_close_errors(fresh: City) -> None:
    unknown = await call(fresh, "CloseIncident", s("INC-19990101-0001"))
    assert unknown.StatusCode.value == ua.StatusCodes.BadNotFound
    wrong_type = await call(fresh, "CloseIncident", ua.Variant(1, ua.VariantType.UInt32))
    assert wrong_type.StatusCode.value == ua.StatusCodes.BadInvalidArgument
    missing = await call(fresh, "CloseIncident")
    assert missing.StatusCode.value == ua.StatusCodes.BadArgumentsMissing


async def test_subscribers_see_the_incident_close(fresh: City) -> None:
    incident_id = (await report(fresh, "congestion")).OutputArguments[0].Value
    handler = DataChanges()
    subscription = await fresh.client.create_subscription(20, handler)
    try:
        await subscription.subscribe_data_change(fresh.node(f"Incidents/{incident_id}/Status"), queuesize=10)
        assert (await handler.next())[1].Value.Value == "open"
        assert (await call(fresh, "CloseIncident", s(incident_id))).StatusCode.is_good()
        assert (await handler.next())[1].Value.Value == "closed"
        gone = (await handler.next())[1]
        assert gone.StatusCode.value == ua.StatusCodes.BadNodeIdUnknown
    finally:
        await subscription.delete()


async def test_the_space_shows_incidents_from_other_paths(fresh: City) -> None:
    incidents = fresh.server.incidents
    assert isinstance(incidents.handler, IncidentRegistry)
    created = datetime(2026, 11, 25, 8, 0, tzinfo=ZoneInfo("UTC"))
    incidents.show(Incident("INC-EXT-1", "hazard", 47.31, 5.03, "oil on the road", created))
    assert "INC-EXT-1" in await children(fresh)
    assert await fresh.node("Incidents/INC-EXT-1/CreatedAt").read_value() == created
    assert incidents.withdraw("INC-EXT-1") is True
    assert incidents.withdraw("INC-EXT-1") is False
    assert "INC-EXT-1" not in await children(fresh)
