"""Validation of the opcua_sources mappings and the pure conversions of the OPC UA client driver (no I/O)."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from asyncua import ua
from opcua_remote import SOURCES, UTC_MAPPING, controllers, parking_site

from drivers.opcua.convert import command_error, converter, timestamp, to_variant, variant_type_of_datatype
from drivers.opcua.mapping import MethodTarget, NodeRef, WriteTarget, build_plans, parse_node
from drivers.opcua_client import OpcUaClientDriver
from scada.model import (
    AccessDeniedError,
    ConfigError,
    DeviceCommunicationError,
    DeviceRejectedError,
    InvalidArgumentError,
    OutOfRangeError,
)
from scada.site.model import Cabinet, Endpoint, Lamp, Sign

URL = "opc.tcp://127.0.0.1:4841/utc"


def fields(exc: ConfigError) -> list[str]:
    """The fields named by a ConfigError's issues."""
    return [issue.field for issue in exc.issues]


def with_mapping(**changes: Any) -> dict[str, Any]:
    """The test sources with the utc-north mapping changed."""
    sources = copy.deepcopy(SOURCES)
    sources["utc-north"].update(changes)
    return sources


def test_plan_groups_devices_by_server_and_expands_templates() -> None:
    other = "opc.tcp://127.0.0.1:4999/utc"
    devices = [*controllers(URL), parking_site(URL), *controllers(other)[:1]]
    devices[-1].id = "TLC-003"
    plans = {plan.url: plan for plan in build_plans(devices, SOURCES)}
    assert set(plans) == {URL, other}
    plan = plans[URL]
    assert [d.id for d in plan.devices] == ["TLC-001", "TLC-002", "PK-01"]
    assert plan.device_ids == ["TLC-001", "TLC-002", "PK-01", "PS-01-0000", "PS-01-0001"]
    by_tag = {item.tag: item for item in plan.items}
    assert by_tag["Traffic/TLC-002/ActivePlan"].node == NodeRef("s=TLC-002.Plan.Active", uri="urn:vendor:utc")
    assert by_tag["Parking/PK-01/PS-01-0001/Occupied"].node.identifier == "s=PK-01.Bay1"
    assert by_tag["Parking/PK-01/PS-01-0001/Occupied"].device_id == "PK-01"
    assert by_tag["Traffic/TLC-001/Stage"].sampling_ms == 200
    select = plan.actions[("TLC-001", "select_plan")]
    assert isinstance(select, MethodTarget)
    assert select.object.identifier == "s=TLC-001" and [a.name for a in select.args] == ["Plan", "DurationSeconds"]
    assert isinstance(plan.actions[("PK-01", "set_display_mode")], WriteTarget)
    # publishing interval: the mapping's own (100 ms) and the car park's poll_ms (200 ms): the smallest wins.
    assert plan.publishing_ms == 100
    assert plans[other].device_ids == ["TLC-003"]


def test_accepts_the_whole_site_settings_or_the_section() -> None:
    direct = OpcUaClientDriver(controllers(URL), lambda records: None, settings=SOURCES)
    nested = OpcUaClientDriver(controllers(URL), lambda records: None, settings={"opcua_sources": SOURCES})
    assert direct.device_ids() == nested.device_ids() == ["TLC-001", "TLC-002"]


def test_unknown_variable_is_named() -> None:
    variables = {**UTC_MAPPING["variables"], "Bogus": "s={id}.Bogus"}
    with pytest.raises(ConfigError) as caught:
        build_plans(controllers(URL), with_mapping(variables=variables))
    assert fields(caught.value) == ["opcua_sources.utc-north.variables.Bogus"]
    issue = caught.value.issues[0]
    assert issue.file == "site.yaml" and issue.line is None and "controller has no variable 'Bogus'" in issue.message


def test_every_problem_is_reported_together() -> None:
    sources = with_mapping(
        variables={"Stage": "s={id}.Stage", "CommunicationOk": "s={id}.Ok", "Fault": "s={nope}.Fault"},
        actions={
            "select_plan": {"method": "s={id}.SelectPlan"},
            "display": {"method": "s={id}.Display", "object": "s={id}"},
            "release_plan": {"write": "s={id}.Release"},
        },
        publishing_interval_ms=-5,
        varaibles={},
    )
    with pytest.raises(ConfigError) as caught:
        build_plans(controllers(URL), sources)
    assert sorted(fields(caught.value)) == [
        "opcua_sources.utc-north.publishing_interval_ms",
        "opcua_sources.utc-north.varaibles",
    ]  # structural problems first: the mapping is not expanded further
    del sources["utc-north"]["varaibles"]
    sources["utc-north"]["publishing_interval_ms"] = 100
    with pytest.raises(ConfigError) as caught:
        build_plans(controllers(URL), sources)
    assert sorted(fields(caught.value)) == [
        "opcua_sources.utc-north.actions.display",
        "opcua_sources.utc-north.actions.release_plan",
        "opcua_sources.utc-north.actions.select_plan.object",
        "opcua_sources.utc-north.variables.CommunicationOk",
        "opcua_sources.utc-north.variables.Fault",
    ]
    messages = {issue.field: issue.message for issue in caught.value.issues}
    assert "unknown placeholder {nope}" in messages["opcua_sources.utc-north.variables.Fault"]
    assert "one argument" in messages["opcua_sources.utc-north.actions.release_plan"]


def test_unknown_mapping_and_bad_endpoint() -> None:
    devices = controllers(URL)
    devices[0].endpoint = Endpoint("opcua", url=URL, mapping="utc-south")
    devices[1].endpoint = Endpoint("opcua", url="http://127.0.0.1/utc", mapping="utc-north")
    with pytest.raises(ConfigError) as caught:
        OpcUaClientDriver(devices, lambda records: None, settings=SOURCES)
    assert fields(caught.value) == ["opcua_sources.utc-south", "controllers[TLC-002].endpoint.url"]
    assert "TLC-001" in caught.value.issues[0].message


def test_namespace_is_required_unless_the_node_id_carries_one() -> None:
    mapping = {k: v for k, v in UTC_MAPPING.items() if k != "namespace"}
    mapping["variables"] = {
        "Stage": "s={id}.Stage",
        "Fault": "nsu=urn:vendor:utc;s={id}.Fault",
        "ActivePlan": "ns=4;i=1001",
    }
    mapping["actions"] = {}
    with pytest.raises(ConfigError) as caught:
        build_plans(controllers(URL), {"utc-north": mapping})
    assert fields(caught.value) == ["opcua_sources.utc-north.variables.Stage"]
    del mapping["variables"]["Stage"]
    (plan,) = build_plans(controllers(URL), {"utc-north": mapping})
    nodes = {item.tag: item.node for item in plan.items}
    assert nodes["Traffic/TLC-001/Fault"] == NodeRef("s=TLC-001.Fault", uri="urn:vendor:utc")
    assert nodes["Traffic/TLC-001/ActivePlan"] == NodeRef("i=1001", index=4)


def test_lamp_sections_only_for_cabinets() -> None:
    sources = {
        "x": {"namespace": "urn:x", "variables": {"Message": "s={id}.Text"}, "lamp_variables": {"Level": "s={id}"}}
    }
    sign = Sign(id="VMS-1", name="A", district="d", lat=0, lon=0, endpoint=Endpoint("opcua", url=URL, mapping="x"))
    with pytest.raises(ConfigError) as caught:
        build_plans([sign], sources)
    assert fields(caught.value) == ["opcua_sources.x.lamp_variables"]
    cabinet = Cabinet(
        id="CAB-1", name="C", district="d", lat=0, lon=0, endpoint=Endpoint("opcua", url=URL, mapping="y")
    )
    cabinet.lamps = [
        Lamp(id=f"L-{i}", cabinet_id="CAB-1", index=i, lat=0, lon=0, rated_w=50, legacy_w=150) for i in range(3)
    ]
    sources["y"] = {
        "namespace": "urn:x",
        "variables": {"Mode": "s={id}.Mode"},
        "lamp_variables": {"Level": "s={parent}.Lamp[{index}].Level"},
        "lamp_actions": {"set_level": {"write": "s={parent}.Lamp[{index}].Setpoint"}},
    }
    (plan,) = build_plans([cabinet], {"y": sources["y"]})
    assert plan.device_ids == ["CAB-1", "L-0", "L-1", "L-2"]  # lamp commands are routed to this driver
    assert [item.tag for item in plan.items] == [
        "Lighting/CAB-1/Mode",
        "Lighting/CAB-1/L-0/Level",
        "Lighting/CAB-1/L-1/Level",
        "Lighting/CAB-1/L-2/Level",
    ]
    assert plan.items[3].node.identifier == "s=CAB-1.Lamp[2].Level"
    assert plan.actions[("L-1", "set_level")] == WriteTarget(
        NodeRef("s=CAB-1.Lamp[1].Setpoint", uri="urn:x"), plan.actions[("L-1", "set_level")].arg
    )


def test_parse_node() -> None:
    assert parse_node("s=A;B", "urn:x") == NodeRef("s=A;B", uri="urn:x")
    assert parse_node("nsu=urn:y;i=5", "urn:x") == NodeRef("i=5", uri="urn:y")
    assert parse_node("ns=0;i=2253", None) == NodeRef("i=2253", index=0)
    for bad in ("Stage", "i=abc", "s=", "nsu=;s=A"):
        with pytest.raises(ValueError):
            parse_node(bad, "urn:x")


def test_incoming_values_take_the_catalog_type() -> None:
    assert converter("UInt16")(4) == 4 and converter("UInt16")(4.0) == 4
    assert converter("Double")(3) == 3.0 and type(converter("Double")(3)) is float
    assert converter("Boolean")(1) is True
    assert converter("String")(ua.LocalizedText("Bonjour")) == "Bonjour"
    for dtype, value in (("UInt16", 2.5), ("Boolean", 2), ("Double", "x"), ("String", 5), ("Int32", "7")):
        with pytest.raises(TypeError):
            converter(dtype)(value)
    now = datetime.now(UTC)
    naive = datetime(2026, 1, 1, 12, 0)
    assert timestamp(ua.DataValue(1, SourceTimestamp=naive), now) == naive.replace(tzinfo=UTC)
    server = datetime(2026, 1, 1, 13, 0, tzinfo=timezone(timedelta(hours=1)))
    assert timestamp(ua.DataValue(1, ServerTimestamp=server), now) == server
    assert timestamp(ua.DataValue(1), now) is now


def test_outgoing_arguments_fit_the_remote_type() -> None:
    assert to_variant("Plan", 3, ua.VariantType.UInt16) == ua.Variant(3, ua.VariantType.UInt16)
    assert to_variant("Level", 50, ua.VariantType.Float).Value == 50.0
    assert to_variant("Plan", 3.0, ua.VariantType.Byte).Value == 3
    with pytest.raises(OutOfRangeError):
        to_variant("Plan", 256, ua.VariantType.Byte)
    with pytest.raises(OutOfRangeError):
        to_variant("Mode", -1, ua.VariantType.UInt32)
    with pytest.raises(InvalidArgumentError):
        to_variant("Plan", 2.5, ua.VariantType.UInt16)
    with pytest.raises(InvalidArgumentError):
        to_variant("Flashing", 1, ua.VariantType.Boolean)
    with pytest.raises(InvalidArgumentError):
        to_variant("Level", float("nan"), ua.VariantType.Double)
    assert variant_type_of_datatype(ua.NodeId(ua.ObjectIds.UInt16)) == ua.VariantType.UInt16
    assert variant_type_of_datatype(ua.NodeId(ua.ObjectIds.Enumeration)) == ua.VariantType.Int32
    assert variant_type_of_datatype(ua.NodeId(3003, 2)) is None


def test_remote_statuses_become_typed_command_errors() -> None:
    cases = {
        ua.StatusCodes.BadOutOfRange: OutOfRangeError,
        ua.StatusCodes.BadTypeMismatch: InvalidArgumentError,
        ua.StatusCodes.BadArgumentsMissing: InvalidArgumentError,
        ua.StatusCodes.BadTimeout: DeviceCommunicationError,
        ua.StatusCodes.BadUserAccessDenied: AccessDeniedError,
        ua.StatusCodes.BadInvalidState: DeviceRejectedError,
    }
    for status, kind in cases.items():
        error = command_error(status, "TLC-001 select_plan")
        assert type(error) is kind and error.status == status
    assert "BadOutOfRange" in str(command_error(ua.StatusCodes.BadOutOfRange, "x"))
