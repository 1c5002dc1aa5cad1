"""Method calls and writes from an OPC UA client reach the one command path (real CommandService) or are refused."""

from __future__ import annotations

import pytest
from asyncua import ua
from uakit import City

from scada.model import DeviceCommunicationError, DeviceRejectedError, Quality, WriteRequest

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def call(city: City, path: str, method: str, *args: ua.Variant) -> ua.CallMethodResult:
    """Call a method of a device object and return the full result (no exception on Bad status)."""
    request = ua.CallMethodRequest()
    request.ObjectId = ua.NodeId(path, city.ns)
    request.MethodId = (await city.node(path).get_child(f"{city.ns}:{method}")).nodeid
    request.InputArguments = list(args)
    [result] = await city.client.uaclient.call([request])
    return result


async def write(city: City, path: str, variant: ua.Variant, attribute: ua.AttributeIds = ua.AttributeIds.Value) -> int:
    """Write one attribute and return the StatusCode value the server answered."""
    item = ua.WriteValue()
    item.NodeId = ua.NodeId(path, city.ns)
    item.AttributeId = attribute
    item.Value = ua.DataValue(variant)
    params = ua.WriteParameters()
    params.NodesToWrite = [item]
    [status] = await city.client.uaclient.write(params)
    return int(status.value)


def double(value: float) -> ua.Variant:
    return ua.Variant(value, ua.VariantType.Double)


async def test_good_method_call_reaches_the_driver(fresh: City) -> None:
    result = await call(fresh, "Lighting/CAB-0001/L-000002", "SetLevel", double(40.0))
    assert result.StatusCode.is_good()
    assert fresh.driver.requests == [WriteRequest("L-000002", "set_level", {"Level": 40.0}, None, "opcua-method")]
    assert fresh.audits[-1].origin == "opcua-method"


@pytest.mark.parametrize(
    ("path", "method", "args", "expected"),
    [
        ("Lighting/CAB-0001", "SetMode", [ua.Variant(1, ua.VariantType.Int32)], ("set_mode", {"Mode": 1})),
        ("Lighting/CAB-0002", "SetAllLevels", [double(70.0)], ("set_all_levels", {"Level": 70.0})),
        (
            "Traffic/TLC-001",
            "SelectPlan",
            [ua.Variant(3, ua.VariantType.UInt16), ua.Variant(600, ua.VariantType.UInt32)],
            ("select_plan", {"Plan": 3, "DurationSeconds": 600}),
        ),
        ("Traffic/TLC-002", "ReleasePlan", [], ("release_plan", {})),
        (
            "Signs/VMS-01",
            "Display",
            [
                ua.Variant("ACCIDENT\nA 300 M", ua.VariantType.String),
                ua.Variant(1, ua.VariantType.UInt16),
                ua.Variant(True, ua.VariantType.Boolean),
            ],
            ("display", {"Text": "ACCIDENT\nA 300 M", "Pictogram": 1, "Flashing": True}),
        ),
        ("Signs/VMS-02", "Blank", [], ("blank", {})),
        ("Parking/PK-01", "SetDisplayMode", [ua.Variant(2, ua.VariantType.Int32)], ("set_display_mode", {"Mode": 2})),
    ],
)
async def test_every_device_method_maps_to_its_action(
    fresh: City, path: str, method: str, args: list[ua.Variant], expected: tuple[str, dict[str, object]]
) -> None:
    result = await call(fresh, path, method, *args)
    assert result.StatusCode.is_good(), result
    [request] = fresh.driver.requests
    assert (request.device_id, request.action, dict(request.args)) == (path.rsplit("/", 1)[-1], *expected)
    assert request.origin == "opcua-method"


async def test_numeric_arguments_of_another_integer_type_are_accepted(fresh: City) -> None:
    # generic clients send Int64 for Python ints: the command service checks that the value fits
    result = await call(fresh, "Lighting/CAB-0001", "SetMode", ua.Variant(2, ua.VariantType.Int64))
    assert result.StatusCode.is_good()
    assert fresh.driver.requests[0].args == {"Mode": 2}


async def test_out_of_range_argument_is_refused_before_the_driver(fresh: City) -> None:
    result = await call(fresh, "Lighting/CAB-0001/L-000001", "SetLevel", double(150.0))
    assert result.StatusCode.value == ua.StatusCodes.BadOutOfRange
    assert [code.value for code in result.InputArgumentResults] == [ua.StatusCodes.BadOutOfRange]
    assert fresh.driver.requests == []
    assert fresh.audits[-1].status == Quality.BAD_OUT_OF_RANGE  # refused commands are audited too
    result = await call(
        fresh,
        "Traffic/TLC-001",
        "SelectPlan",
        ua.Variant(11, ua.VariantType.UInt16),
        ua.Variant(600, ua.VariantType.UInt32),
    )
    assert result.StatusCode.value == ua.StatusCodes.BadOutOfRange
    assert [code.value for code in result.InputArgumentResults] == [ua.StatusCodes.BadOutOfRange, 0]
    assert fresh.driver.requests == []


async def test_badly_typed_argument_is_refused(fresh: City) -> None:
    result = await call(fresh, "Lighting/CAB-0001/L-000001", "SetLevel", ua.Variant("50", ua.VariantType.String))
    assert result.StatusCode.value == ua.StatusCodes.BadInvalidArgument
    assert [code.value for code in result.InputArgumentResults] == [ua.StatusCodes.BadTypeMismatch]
    result = await call(
        fresh,
        "Signs/VMS-01",
        "Display",
        ua.Variant("HELLO", ua.VariantType.String),
        ua.Variant(1.5, ua.VariantType.Double),
        ua.Variant(True, ua.VariantType.Boolean),
    )
    assert result.StatusCode.value == ua.StatusCodes.BadInvalidArgument
    assert [code.value for code in result.InputArgumentResults] == [0, ua.StatusCodes.BadTypeMismatch, 0]
    assert fresh.driver.requests == []


async def test_wrong_argument_count(fresh: City) -> None:
    missing = await call(fresh, "Traffic/TLC-001", "SelectPlan", ua.Variant(3, ua.VariantType.UInt16))
    assert missing.StatusCode.value == ua.StatusCodes.BadArgumentsMissing
    extra = await call(fresh, "Signs/VMS-01", "Blank", ua.Variant(1, ua.VariantType.UInt16))
    assert extra.StatusCode.value == ua.StatusCodes.BadTooManyArguments
    assert fresh.driver.requests == []


async def test_method_called_on_an_object_of_another_type(fresh: City) -> None:
    request = ua.CallMethodRequest()
    request.ObjectId = ua.NodeId("Lighting/CAB-0001", fresh.ns)  # a cabinet
    request.MethodId = ua.NodeId("Types/StreetLightType/SetLevel", fresh.ns)  # a lamp method
    request.InputArguments = [double(10.0)]
    [result] = await fresh.client.uaclient.call([request])
    assert result.StatusCode.value == ua.StatusCodes.BadMethodInvalid
    request.ObjectId = ua.NodeId("Types/StreetLightType", fresh.ns)  # the type itself
    [result] = await fresh.client.uaclient.call([request])
    assert result.StatusCode.value == ua.StatusCodes.BadMethodInvalid
    assert fresh.driver.requests == []


async def test_unreachable_device_answers_bad_communication_error(fresh: City) -> None:
    fresh.driver.fail = DeviceCommunicationError("CAB-0001 does not answer")
    result = await call(fresh, "Lighting/CAB-0001", "SetMode", ua.Variant(0, ua.VariantType.Int32))
    assert result.StatusCode.value == ua.StatusCodes.BadCommunicationError
    assert await write(fresh, "Lighting/CAB-0001/Mode", ua.Variant(0, ua.VariantType.Int32)) == (
        ua.StatusCodes.BadCommunicationError
    )
    fresh.driver.fail = DeviceRejectedError("exception 04")
    assert await write(fresh, "Lighting/CAB-0001/Mode", ua.Variant(0, ua.VariantType.Int32)) == (
        ua.StatusCodes.BadDeviceFailure
    )


async def test_write_of_a_writable_variable_is_a_command(fresh: City) -> None:
    status = await write(fresh, "Lighting/CAB-0002/L-001001/LevelSetpoint", double(25.0))
    assert status == ua.StatusCodes.Good
    hold = await write(fresh, "Lighting/CAB-0002/PresenceHoldSeconds", ua.Variant(90, ua.VariantType.UInt32))
    assert hold == ua.StatusCodes.Good
    assert fresh.driver.requests == [
        WriteRequest("L-001001", "set_level", {"Level": 25.0}, None, "opcua-write"),
        WriteRequest("CAB-0002", "set_presence_hold", {"Seconds": 90}, None, "opcua-write"),
    ]


async def test_asyncua_client_write_value(fresh: City) -> None:
    node = fresh.node("Parking/PK-01/DisplayMode")
    await node.write_value(ua.Variant(1, ua.VariantType.Int32))
    assert fresh.driver.requests == [WriteRequest("PK-01", "set_display_mode", {"Mode": 1}, None, "opcua-write")]


async def test_write_out_of_range_is_refused_before_the_driver(fresh: City) -> None:
    status = await write(fresh, "Lighting/CAB-0001/L-000001/LevelSetpoint", double(101.0))
    assert status == ua.StatusCodes.BadOutOfRange
    status = await write(fresh, "Lighting/CAB-0001/Mode", ua.Variant(3, ua.VariantType.Int32))
    assert status == ua.StatusCodes.BadOutOfRange
    assert fresh.driver.requests == []


async def test_write_of_a_wrong_type_is_a_type_mismatch(fresh: City) -> None:
    status = await write(fresh, "Lighting/CAB-0001/L-000001/LevelSetpoint", ua.Variant("50", ua.VariantType.String))
    assert status == ua.StatusCodes.BadTypeMismatch
    status = await write(fresh, "Lighting/CAB-0001/Mode", ua.Variant(True, ua.VariantType.Boolean))
    assert status == ua.StatusCodes.BadTypeMismatch
    assert fresh.driver.requests == []


@pytest.mark.parametrize(
    "path",
    [
        "Lighting/CAB-0001/L-000001/Level",
        "Lighting/CAB-0001/L-000001/Latitude",
        "Traffic/TLC-001/Stage",
        "Energy/LightingPowerKW",
        "Types/StreetLightType/LevelSetpoint",
    ],
)
async def test_write_of_a_read_only_variable_is_not_writable(fresh: City, path: str) -> None:
    assert await write(fresh, path, double(1.0)) == ua.StatusCodes.BadNotWritable
    assert fresh.driver.requests == []


async def test_attributes_other_than_value_are_not_writable(fresh: City) -> None:
    name = ua.Variant(ua.QualifiedName("Renamed", fresh.ns), ua.VariantType.QualifiedName)
    path = "Lighting/CAB-0001/L-000001/LevelSetpoint"
    assert await write(fresh, path, name, ua.AttributeIds.BrowseName) == ua.StatusCodes.BadNotWritable
    assert await write(fresh, "Lighting/CAB-0001", name, ua.AttributeIds.BrowseName) == ua.StatusCodes.BadNotWritable
    level = ua.Variant(7, ua.VariantType.Byte)
    assert await write(fresh, path, level, ua.AttributeIds.AccessLevel) == ua.StatusCodes.BadNotWritable
    # the shared attributes did not change, on this node or on its siblings
    assert (await fresh.node(path).read_browse_name()).Name == "LevelSetpoint"
    assert (await fresh.node("Lighting/CAB-0002/L-001001/LevelSetpoint").read_browse_name()).Name == "LevelSetpoint"


async def test_unknown_node_in_the_city_namespace(fresh: City) -> None:
    assert await write(fresh, "Lighting/CAB-0001/L-999999/LevelSetpoint", double(1.0)) == (
        ua.StatusCodes.BadNodeIdUnknown
    )


async def test_writes_outside_the_city_namespace_still_work_as_in_asyncua(fresh: City) -> None:
    # ServerStatus is read-only for clients: asyncua's own answer comes back unchanged
    node = ua.NodeId(ua.ObjectIds.Server_ServiceLevel)
    item = ua.WriteValue()
    item.NodeId = node
    item.AttributeId = ua.AttributeIds.Value
    item.Value = ua.DataValue(ua.Variant(10, ua.VariantType.Byte))
    mine = ua.WriteValue()
    mine.NodeId = ua.NodeId("Lighting/CAB-0001/L-000001/LevelSetpoint", fresh.ns)
    mine.AttributeId = ua.AttributeIds.Value
    mine.Value = ua.DataValue(double(10.0))
    params = ua.WriteParameters()
    params.NodesToWrite = [item, mine]
    statuses = await fresh.client.uaclient.write(params)
    assert [s.value for s in statuses] == [ua.StatusCodes.BadUserAccessDenied, ua.StatusCodes.Good]
    assert [r.device_id for r in fresh.driver.requests] == ["L-000001"]
