"""The information model as a third-party client sees it: namespace, types, instances, NodeIds, attributes.

The expected names and data types below are copied from docs/spec information-model.md (version 1), not taken
from scada.catalog: the test fails if the catalog or the builder drifts from the contract.
"""

from __future__ import annotations

from typing import Any

import pytest
from asyncua import ua
from uakit import City

pytestmark = pytest.mark.asyncio(loop_scope="session")

SPEC_TYPES: dict[str, tuple[dict[str, str], dict[str, list[tuple[str, str]]]]] = {
    "StreetLightType": (
        {
            "Level": "Double",
            "LevelSetpoint": "Double",
            "On": "Boolean",
            "PowerW": "Double",
            "EnergyKWh": "Double",
            "PresenceDetected": "Boolean",
            "LampFailure": "Boolean",
            "BurningHours": "UInt32",
        },
        {"SetLevel": [("Level", "Double")]},
    ),
    "LightingCabinetType": (
        {
            "Mode": "Int32",
            "EnergyKWh": "Double",
            "MainsVoltage": "Double",
            "DoorOpen": "Boolean",
            "MainsFailure": "Boolean",
            "PresenceBoostLevel": "Double",
            "PresenceHoldSeconds": "UInt32",
        },
        {"SetMode": [("Mode", "Int32")], "SetAllLevels": [("Level", "Double")]},
    ),
    "TrafficControllerType": (
        {
            "ActivePlan": "UInt16",
            "RequestedPlan": "UInt16",
            "Stage": "UInt16",
            "ControlMode": "Int32",
            "Fault": "Boolean",
            "SignalLampFailure": "Boolean",
            "VehicleCount": "UInt32",
        },
        {"SelectPlan": [("Plan", "UInt16"), ("DurationSeconds", "UInt32")], "ReleasePlan": []},
    ),
    "VariableMessageSignType": (
        {"Message": "String", "Pictogram": "UInt16", "Flashing": "Boolean", "MessageId": "UInt16", "Fault": "Boolean"},
        {"Display": [("Text", "String"), ("Pictogram", "UInt16"), ("Flashing", "Boolean")], "Blank": []},
    ),
    "ParkingSiteType": (
        {"Capacity": "UInt32", "Occupied": "UInt32", "Free": "UInt32", "Full": "Boolean", "DisplayMode": "Int32"},
        {"SetDisplayMode": [("Mode", "Int32")]},
    ),
    "ParkingSensorType": ({"Occupied": "Boolean", "SensorFault": "Boolean"}, {}),
}
SPEC_PROPERTIES = {"Latitude": "Double", "Longitude": "Double", "DeviceId": "String"}

# one instance of each type in the test site: (type, NodeId path)
INSTANCES = [
    ("StreetLightType", "Lighting/CAB-0002/L-001002"),
    ("LightingCabinetType", "Lighting/CAB-0001"),
    ("TrafficControllerType", "Traffic/TLC-002"),
    ("VariableMessageSignType", "Signs/VMS-01"),
    ("ParkingSiteType", "Parking/PK-01"),
    ("ParkingSensorType", "Parking/PK-01/PS-01-0003"),
]


def dtype_id(name: str) -> ua.NodeId:
    return ua.NodeId(getattr(ua.ObjectIds, name))


async def attr(node: Any, attribute: ua.AttributeIds) -> Any:
    dv = await node.read_attribute(attribute)
    return dv.Value.Value


async def references(node: Any, reftype: int, direction: ua.BrowseDirection = ua.BrowseDirection.Forward) -> list[Any]:
    return await node.get_references(refs=reftype, direction=direction, includesubtypes=False)


async def test_namespace_is_found_by_uri(city: City) -> None:
    array = await city.client.get_namespace_array()
    assert array[city.ns] == "urn:cityscada:city"
    assert city.ns == city.server.namespace_index
    assert city.server.endpoint_url.endswith("/cityscada")
    assert city.server.endpoint_url.startswith("opc.tcp://127.0.0.1:")


async def test_server_identity(city: City) -> None:
    array = await city.client.get_namespace_array()
    assert array[1] == "urn:cityscada:server"
    build = await city.client.get_node(ua.ObjectIds.Server_ServerStatus_BuildInfo_ProductName).read_value()
    assert build == "cityscada"


@pytest.mark.parametrize("type_name", list(SPEC_TYPES))
async def test_object_type_declares_the_spec(city: City, type_name: str) -> None:
    ns = city.ns
    base = city.client.get_node(ua.ObjectIds.BaseObjectType)
    subtypes = {ref.BrowseName.to_string(): ref.NodeId for ref in await references(base, ua.ObjectIds.HasSubtype)}
    assert subtypes[f"{ns}:{type_name}"] == ua.NodeId(f"Types/{type_name}", ns)
    type_node = city.node(f"Types/{type_name}")
    assert await type_node.read_node_class() == ua.NodeClass.ObjectType
    assert await attr(type_node, ua.AttributeIds.IsAbstract) is False
    variables, methods = SPEC_TYPES[type_name]
    for name, dtype in variables.items():
        decl = await type_node.get_child(f"{ns}:{name}")
        assert decl.nodeid == ua.NodeId(f"Types/{type_name}/{name}", ns)
        assert await decl.read_node_class() == ua.NodeClass.Variable
        assert await decl.read_data_type() == dtype_id(dtype), name
        assert await decl.read_value_rank() == ua.ValueRank.Scalar
        rules = await references(decl, ua.ObjectIds.HasModellingRule)
        assert [ref.NodeId for ref in rules] == [ua.NodeId(ua.ObjectIds.ModellingRule_Mandatory)]
    props = {ref.BrowseName.Name: ref.NodeId for ref in await references(type_node, ua.ObjectIds.HasProperty)}
    for name, dtype in SPEC_PROPERTIES.items():
        assert props[name] == ua.NodeId(f"Types/{type_name}/{name}", ns)
        assert await city.client.get_node(props[name]).read_data_type() == dtype_id(dtype)
    for name, arguments in methods.items():
        method = await type_node.get_child(f"{ns}:{name}")
        assert method.nodeid == ua.NodeId(f"Types/{type_name}/{name}", ns)
        assert await method.read_node_class() == ua.NodeClass.Method
        assert await attr(method, ua.AttributeIds.Executable) is True
        children = {
            ref.BrowseName.to_string(): ref.NodeId for ref in await references(method, ua.ObjectIds.HasProperty)
        }
        assert "0:OutputArguments" not in children
        if not arguments:
            assert "0:InputArguments" not in children
            continue
        assert children["0:InputArguments"] == ua.NodeId(f"Types/{type_name}/{name}/InputArguments", ns)
        declared = await city.client.get_node(children["0:InputArguments"]).read_value()
        assert [(arg.Name, arg.DataType) for arg in declared] == [(n, dtype_id(d)) for n, d in arguments]
        assert all(arg.ValueRank == -1 for arg in declared)


@pytest.mark.parametrize(("type_name", "path"), INSTANCES)
async def test_instance_has_every_spec_variable_property_and_method(city: City, type_name: str, path: str) -> None:
    ns = city.ns
    obj = city.node(path)
    device = city.site.device(path.rsplit("/", 1)[-1])
    assert device is not None
    assert await obj.read_browse_name() == ua.QualifiedName(device.id, ns)
    assert await obj.read_node_class() == ua.NodeClass.Object
    typedefs = await references(obj, ua.ObjectIds.HasTypeDefinition)
    assert [ref.NodeId for ref in typedefs] == [ua.NodeId(f"Types/{type_name}", ns)]
    variables, methods = SPEC_TYPES[type_name]
    for name, dtype in variables.items():
        child = await obj.get_child(f"{ns}:{name}")
        assert child.nodeid == ua.NodeId(f"{path}/{name}", ns)
        assert await child.read_data_type() == dtype_id(dtype), name
        assert await child.read_value_rank() == ua.ValueRank.Scalar
    props = {ref.BrowseName.Name: ref.NodeId for ref in await references(obj, ua.ObjectIds.HasProperty)}
    assert {name: props[name] for name in SPEC_PROPERTIES} == {
        name: ua.NodeId(f"{path}/{name}", ns) for name in SPEC_PROPERTIES
    }
    for name, dtype in SPEC_PROPERTIES.items():
        assert await city.client.get_node(props[name]).read_data_type() == dtype_id(dtype)
    assert await city.node(f"{path}/Latitude").read_value() == pytest.approx(device.lat)
    assert await city.node(f"{path}/Longitude").read_value() == pytest.approx(device.lon)
    assert await city.node(f"{path}/DeviceId").read_value() == device.id
    for name in methods:
        method = await obj.get_child(f"{ns}:{name}")
        assert method.nodeid == ua.NodeId(f"Types/{type_name}/{name}", ns)  # shared with the type


async def test_address_space_layout(city: City) -> None:
    ns = city.ns
    objects = city.client.nodes.objects
    for folder in ("Lighting", "Traffic", "Signs", "Parking", "Incidents", "Energy"):
        node = await objects.get_child([f"{ns}:City", f"{ns}:{folder}"])
        assert node.nodeid == ua.NodeId(folder, ns)
    lamp = await objects.get_child([f"{ns}:City", f"{ns}:Lighting", f"{ns}:CAB-0001", f"{ns}:L-000002"])
    assert lamp.nodeid == ua.NodeId("Lighting/CAB-0001/L-000002", ns)
    sensor = await objects.get_child([f"{ns}:City", f"{ns}:Parking", f"{ns}:PK-01", f"{ns}:PS-01-0004"])
    assert sensor.nodeid == ua.NodeId("Parking/PK-01/PS-01-0004", ns)
    # lamps are components of their cabinet, both ways
    cabinet = city.node("Lighting/CAB-0001")
    components = {ref.NodeId for ref in await references(cabinet, ua.ObjectIds.HasComponent)}
    assert {ua.NodeId(lamp.path, ns) for lamp in city.site.cabinets["CAB-0001"].lamps} <= components
    parents = await references(lamp, ua.ObjectIds.HasComponent, ua.BrowseDirection.Inverse)
    assert [ref.NodeId for ref in parents] == [cabinet.nodeid]
    level = city.node("Lighting/CAB-0001/L-000002/Level")
    assert await level.get_parent() == lamp
    # the folder lists exactly the site's devices
    lighting = city.node("Lighting")
    listed = {ref.BrowseName.Name for ref in await references(lighting, ua.ObjectIds.Organizes)}
    assert listed == set(city.site.cabinets)


async def test_analog_variables_have_eurange_and_units(city: City) -> None:
    level = city.node("Lighting/CAB-0002/L-001002/Level")
    assert await (await level.get_child("0:EURange")).read_value() == ua.Range(0.0, 100.0)
    units = await (await level.get_child("0:EngineeringUnits")).read_value()
    assert units.NamespaceUri == "http://www.opcfoundation.org/UA/units/un/cefact"
    assert units.UnitId == (ord("P") << 8) | ord("1")
    assert units.DisplayName.Text == "%"
    typedefs = await references(level, ua.ObjectIds.HasTypeDefinition)
    assert typedefs[0].NodeId == ua.NodeId(ua.ObjectIds.AnalogItemType)
    expected_units = {
        "Lighting/CAB-0002/L-001002/PowerW": "WTT",
        "Lighting/CAB-0001/MainsVoltage": "VLT",
        "Lighting/CAB-0001/EnergyKWh": "KWH",
        "Lighting/CAB-0001/PresenceHoldSeconds": "SEC",
        "Lighting/CAB-0002/L-001002/BurningHours": "HUR",
        "Signs/VMS-01/Luminance": "A24",
    }
    for path, code in expected_units.items():
        units = await (await city.node(path).get_child("0:EngineeringUnits")).read_value()
        assert units.UnitId == int.from_bytes(code.encode(), "big"), path
    voltage = await (await city.node("Lighting/CAB-0001/MainsVoltage").get_child("0:EURange")).read_value()
    assert voltage == ua.Range(0.0, 300.0)
    # a boolean is not analog
    with pytest.raises(ua.UaError):
        await city.node("Lighting/CAB-0001/DoorOpen").get_child("0:EURange")


async def test_sampling_interval_is_the_device_poll_period(city: City) -> None:
    cabinets = city.site.cabinets
    for cabinet_id, lamp_id in (("CAB-0001", "L-000001"), ("CAB-0002", "L-001002")):
        poll = float(cabinets[cabinet_id].endpoint.poll_ms)
        for path in (f"Lighting/{cabinet_id}/{lamp_id}/Level", f"Lighting/{cabinet_id}/Mode"):
            assert await attr(city.node(path), ua.AttributeIds.MinimumSamplingInterval) == poll, path
    assert cabinets["CAB-0001"].endpoint.poll_ms != cabinets["CAB-0002"].endpoint.poll_ms
    controller = city.site.controllers["TLC-002"]
    assert await attr(city.node("Traffic/TLC-002/Stage"), ua.AttributeIds.MinimumSamplingInterval) == float(
        controller.endpoint.poll_ms
    )
    parking = city.site.parking["PK-01"]
    sensor_occupied = city.node("Parking/PK-01/PS-01-0003/Occupied")
    assert await attr(sensor_occupied, ua.AttributeIds.MinimumSamplingInterval) == float(parking.endpoint.poll_ms)


@pytest.mark.parametrize(
    ("path", "access", "historizing"),
    [
        ("Lighting/CAB-0001/L-000001/Level", 0b101, True),  # CurrentRead | HistoryRead
        ("Lighting/CAB-0001/L-000001/LevelSetpoint", 0b111, True),  # + CurrentWrite
        ("Lighting/CAB-0001/L-000001/PresenceCount", 0b001, False),
        ("Lighting/CAB-0001/Mode", 0b111, True),
        ("Parking/PK-01/DisplayMode", 0b111, True),
        ("Traffic/TLC-001/WatchdogSeconds", 0b001, False),
        ("Lighting/CAB-0001/L-000001/Latitude", 0b001, False),
    ],
)
async def test_access_level_and_historizing(city: City, path: str, access: int, historizing: bool) -> None:
    node = city.node(path)
    assert await attr(node, ua.AttributeIds.AccessLevel) == access
    assert await attr(node, ua.AttributeIds.UserAccessLevel) == access
    assert await attr(node, ua.AttributeIds.Historizing) is historizing
    assert await attr(node, ua.AttributeIds.WriteMask) == 0


async def test_device_variables_wait_for_initial_data(city: City) -> None:
    dv = await city.node("Parking/PK-01/PS-01-0002/SensorFault").read_data_value(raise_on_bad_status=False)
    assert dv.StatusCode.value == ua.StatusCodes.BadWaitingForInitialData
    assert dv.Value.Value is None


async def test_energy_variables(city: City) -> None:
    energy = city.node("Energy")
    for name, unit in (("LightingPowerKW", "kW"), ("LightingEnergyKWhToday", "kWh"), ("LightingSavingsPercent", "%")):
        node = await energy.get_child(f"{city.ns}:{name}")
        assert node.nodeid == ua.NodeId(f"Energy/{name}", city.ns)
        assert await node.read_data_type() == dtype_id("Double")
        units = await (await node.get_child("0:EngineeringUnits")).read_value()
        assert units.DisplayName.Text == unit


async def test_incident_methods_declare_their_arguments(city: City) -> None:
    incidents = city.node("Incidents")
    report = await incidents.get_child(f"{city.ns}:ReportIncident")
    inputs = await (await report.get_child("0:InputArguments")).read_value()
    outputs = await (await report.get_child("0:OutputArguments")).read_value()
    assert [(a.Name, a.DataType) for a in inputs] == [
        ("Kind", dtype_id("String")),
        ("Latitude", dtype_id("Double")),
        ("Longitude", dtype_id("Double")),
        ("Description", dtype_id("String")),
        ("ReporterContact", dtype_id("String")),
    ]
    assert [(a.Name, a.DataType) for a in outputs] == [("IncidentId", dtype_id("String"))]
    close = await incidents.get_child(f"{city.ns}:CloseIncident")
    inputs = await (await close.get_child("0:InputArguments")).read_value()
    assert [(a.Name, a.DataType) for a in inputs] == [("IncidentId", dtype_id("String"))]


async def test_translate_browse_path_and_batched_browse(city: City) -> None:
    ns = city.ns
    path = ua.BrowsePath()
    path.StartingNode = ua.NodeId(ua.ObjectIds.ObjectsFolder)
    for name in ("City", "Lighting", "CAB-0002", "L-001001", "LevelSetpoint"):
        element = ua.RelativePathElement()
        element.ReferenceTypeId = ua.NodeId(ua.ObjectIds.HierarchicalReferences)
        element.IncludeSubtypes = True
        element.IsInverse = False
        element.TargetName = ua.QualifiedName(name, ns)
        path.RelativePath.Elements.append(element)
    [result] = await city.client.uaclient.translate_browsepaths_to_nodeids([path])
    assert result.StatusCode.is_good()
    assert result.Targets[0].TargetId == ua.NodeId("Lighting/CAB-0002/L-001001/LevelSetpoint", ns)
    # a node table walk: every node under City answers its NodeClass and BrowseName
    seen = 0
    todo = [city.node("Lighting")]
    while todo:
        node = todo.pop()
        seen += 1
        for child in await node.get_children():
            if child.nodeid.NamespaceIndex == ns and not child.nodeid.Identifier.startswith("Types/"):
                todo.append(child)
    assert seen == 1 + 2 + 2 * (12 + 1 + 3) + 6 * (1 + 10 + 3)  # a cabinet: 12 variables, LampStates, 3 properties
