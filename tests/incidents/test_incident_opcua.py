"""Incident response through an OPC UA client: ReportIncident, the incident object's variables and methods,
CloseIncident, with the small site's simulators behind real Modbus TCP."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
from asyncua import Client, ua

from scada.catalog import NAMESPACE_URI
from scada.incidents.opcua import IncidentObjects
from scada.opcua import CityServer
from tests.incidents.incident_stack import AT_TLC, CONTACT, Stack, eventually


@dataclass
class Post:
    stack: Stack
    server: CityServer
    client: Client
    ns: int

    def node(self, path: str) -> Any:
        return self.client.get_node(ua.NodeId(path, self.ns))

    async def call(self, object_path: str, method_path: str, *args: ua.Variant) -> ua.CallMethodResult:
        request = ua.CallMethodRequest()
        request.ObjectId = ua.NodeId(object_path, self.ns)
        request.MethodId = ua.NodeId(method_path, self.ns)
        request.InputArguments = list(args)
        [result] = await self.client.uaclient.call([request])
        return result

    async def report(self, kind: str) -> str:
        result = await self.call(
            "Incidents", "Incidents/ReportIncident", s(kind), d(AT_TLC[0]), d(AT_TLC[1]), s("two cars"), s(CONTACT)
        )
        assert result.StatusCode.is_good(), result.StatusCode
        return str(result.OutputArguments[0].Value)

    async def action(self, incident_id: str, method: str, *args: ua.Variant) -> ua.CallMethodResult:
        return await self.call(f"Incidents/{incident_id}", f"Types/IncidentType/{method}", *args)

    async def values(self, incident_id: str) -> dict[str, Any]:
        children = await self.node(f"Incidents/{incident_id}").get_children(refs=ua.ObjectIds.HasComponent)
        out = {}
        for child in children:
            if await child.read_node_class() == ua.NodeClass.Variable:
                dv = await child.read_data_value(raise_on_bad_status=False)
                out[(await child.read_browse_name()).Name] = dv
        return out


def s(value: str) -> ua.Variant:
    return ua.Variant(value, ua.VariantType.String)


def d(value: float) -> ua.Variant:
    return ua.Variant(value, ua.VariantType.Double)


def u16(value: int) -> ua.Variant:
    return ua.Variant(value, ua.VariantType.UInt16)


@pytest.fixture
async def post(stack: Stack) -> AsyncIterator[Post]:
    server = CityServer(stack.site, stack.commands, "127.0.0.1", 0, incident_handler=stack.service)
    await server.start()
    objects = IncidentObjects(server, stack.service)
    await objects.start()
    stack.router.add_sink("address-space", server.writer.apply)
    client = Client(server.endpoint_url, timeout=10, watchdog_intervall=30.0)
    try:
        await client.connect()
        yield Post(stack, server, client, await client.get_namespace_index(NAMESPACE_URI))
    finally:
        await client.disconnect()
        await objects.stop()
        stack.router.remove_sink("address-space")
        await server.stop()


async def wait_response(post: Post, incident_id: str, timeout: float = 10.0) -> float:
    node = post.node(f"Incidents/{incident_id}/ResponseSeconds")
    deadline = time.monotonic() + timeout
    while True:
        dv = await node.read_data_value(raise_on_bad_status=False)
        if dv.StatusCode.is_good():
            return float(dv.Value.Value)
        assert time.monotonic() < deadline, f"ResponseSeconds stayed {dv.StatusCode}"
        await asyncio.sleep(0.05)


async def test_report_through_opcua_drives_the_simulators_and_close_restores(post: Post) -> None:
    stack = post.stack
    await stack.execute("VMS-01", "display", Text="BONJOUR", Pictogram=0, Flashing=False)
    incident_id = await post.report("accident")
    response = await wait_response(post, incident_id)
    assert 0 < response < 3
    assert stack.sign() == ("ACCIDENT\nD971 A 1.0 KM\nRALENTIR", 1, 1)
    assert stack.plan() == (9, 9, 1)

    values = await post.values(incident_id)
    assert {"Kind", "Status", "Actions", "Timeline", "ResponseSeconds", "PendingActions", "FailedActions"} <= set(
        values
    )
    actions = json.loads(values["Actions"].Value.Value)
    assert [(a["id"], a["device"], a["state"]) for a in actions] == [
        ("A1", "VMS-01", "confirmed"),
        ("A2", "TLC-001", "confirmed"),
        ("A3", None, "confirmed"),
    ]
    assert all(a["confirm_s"] <= response for a in actions)
    steps = [entry["step"] for entry in json.loads(values["Timeline"].Value.Value)]
    assert steps[0] == "reported" and "responded" in steps
    assert values["PendingActions"].Value.Value == 0 and values["FailedActions"].Value.Value == 0
    # the contact is nowhere in the object
    assert all(CONTACT not in str(dv.Value.Value) and "jane" not in str(dv.Value.Value) for dv in values.values())
    methods = {
        (await child.read_browse_name()).Name
        for child in await post.node(f"Incidents/{incident_id}").get_children(nodeclassmask=ua.NodeClass.Method)
    }
    assert {"ConfirmAction", "CancelAction", "ChangeAction"} <= methods

    closed = await post.call("Incidents", "Incidents/CloseIncident", s(incident_id))
    assert closed.StatusCode.is_good()
    assert stack.sign() == ("BONJOUR", 0, 0)
    assert stack.plan() == (0, 2, 0)
    children = {(await c.read_browse_name()).Name for c in await post.node("Incidents").get_children()}
    assert incident_id not in children


async def test_operator_methods_confirm_change_and_cancel(post: Post) -> None:
    stack = post.stack
    incident_id = await post.report("roadworks")  # proposed only
    await eventually(lambda: stack.service.get(incident_id).settled.is_set())
    assert stack.sign() == ("", 0, 0)
    values = await post.values(incident_id)
    assert values["PendingActions"].Value.Value == 1
    assert values["ResponseSeconds"].StatusCode.value == ua.StatusCodes.BadWaitingForInitialData

    confirmed = await post.action(incident_id, "ConfirmAction", s("A1"))
    assert confirmed.StatusCode.is_good() and confirmed.OutputArguments[0].Value == "confirmed"
    assert stack.sign() == ("TRAVAUX\nD971 A 1.0 KM\nPRUDENCE", 2, 0)
    await wait_response(post, incident_id)

    changed = await post.action(incident_id, "ChangeAction", s("A1"), s("TRAVAUX\nVOIE DE DROITE"), u16(6), u16(0))
    assert changed.StatusCode.is_good()
    assert stack.sign() == ("TRAVAUX\nVOIE DE DROITE", 6, 0)
    refused = await post.action(incident_id, "ChangeAction", s("A1"), s("X"), u16(0), u16(3))
    assert refused.StatusCode.value == ua.StatusCodes.BadInvalidArgument
    too_long = await post.action(incident_id, "ChangeAction", s("A1"), s("X" * 19), u16(0), u16(0))
    assert too_long.StatusCode.value == ua.StatusCodes.BadOutOfRange
    assert stack.sign() == ("TRAVAUX\nVOIE DE DROITE", 6, 0)

    cancelled = await post.action(incident_id, "CancelAction", s("A1"))
    assert cancelled.StatusCode.is_good() and cancelled.OutputArguments[0].Value == "cancelled"
    assert stack.sign() == ("", 0, 0)
    again = await post.action(incident_id, "CancelAction", s("A1"))
    assert again.StatusCode.value == ua.StatusCodes.BadInvalidState
    unknown = await post.action(incident_id, "ConfirmAction", s("A9"))
    assert unknown.StatusCode.value == ua.StatusCodes.BadNotFound
    notify = await post.action(incident_id, "CancelAction", s("A2"))
    assert notify.StatusCode.value == ua.StatusCodes.BadNotSupported
    wrong_type = await post.action(incident_id, "ConfirmAction", u16(1))
    assert wrong_type.StatusCode.value == ua.StatusCodes.BadInvalidArgument

    steps = [e["step"] for e in json.loads((await post.values(incident_id))["Timeline"].Value.Value)]
    assert steps.count("changed") == 1 and "cancelled" in steps
    closed = await post.call("Incidents", "Incidents/CloseIncident", s(incident_id))
    assert closed.StatusCode.is_good()
