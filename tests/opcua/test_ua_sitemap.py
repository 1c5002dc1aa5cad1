"""SiteMap and LampStates as a client sees them: the whole geometry in one read, one byte per lamp per cabinet."""

from __future__ import annotations

import asyncio
import hashlib
import json

import pytest
from asyncua import ua
from uakit import City, DataChanges

from scada.lampstates import DIMMED, FAILED, UNKNOWN, LampStates
from scada.model import Quality, ValueRecord, utcnow

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def test_site_map_devices_cover_every_device(city: City) -> None:
    site_doc, devices_doc, streets_doc, digest = await city.client.read_values(
        [city.node(f"SiteMap/{name}") for name in ("Site", "Devices", "Streets", "Digest")]
    )
    site = json.loads(site_doc)
    assert (site["name"], site["latitude"], site["longitude"]) == (city.site.name, city.site.lat, city.site.lon)
    devices = json.loads(devices_doc)
    counts = {kind: len(columns["id"]) for kind, columns in devices.items() if kind != "version"}
    assert counts == {kind.value: count for kind, count in city.site.counts().items()}
    lamps = devices["lamp"]
    for position, lamp in enumerate(city.site.lamps()):
        assert lamps["id"][position] == lamp.id
        assert (lamps["cabinet"][position], lamps["index"][position]) == (lamp.cabinet_id, lamp.index)
        assert lamps["lat"][position] == pytest.approx(lamp.lat, abs=1e-6)
        assert lamps["lon"][position] == pytest.approx(lamp.lon, abs=1e-6)
    assert json.loads(streets_doc)["streets"] == [
        {"id": s.id, "name": s.name, "district": s.district, "points": [list(p) for p in s.points]}
        for s in city.site.streets.values()
    ]
    expected = hashlib.sha256(f"{site_doc}\0{devices_doc}\0{streets_doc}\0".encode()).hexdigest()
    assert digest == expected


async def test_site_map_is_browsable_under_city(city: City) -> None:
    children = await city.node("City").get_children()
    assert ua.NodeId("SiteMap", city.ns) in [child.nodeid for child in children]
    names = {(await child.read_browse_name()).Name for child in await city.node("SiteMap").get_children()}
    assert names == {"Site", "Devices", "Streets", "Digest"}


async def test_lamp_states_variable_of_every_cabinet(city: City) -> None:
    for cabinet in city.site.cabinets.values():
        node = city.node(f"{cabinet.path}/LampStates")
        assert await node.read_data_type() == ua.NodeId(ua.ObjectIds.ByteString)
        assert (await node.read_browse_name()).Name == "LampStates"
        children = [child.nodeid for child in await city.node(cabinet.path).get_children()]
        assert node.nodeid in children
    type_children = await city.node("Types/LightingCabinetType").get_children()
    assert ua.NodeId("Types/LightingCabinetType/LampStates", city.ns) in [child.nodeid for child in type_children]


async def test_lamp_states_reach_a_subscriber_and_refuse_writes(city: City) -> None:
    cabinet = next(iter(city.site.cabinets.values()))
    states = LampStates(city.site, city.server.writer.apply)
    handler = DataChanges()
    subscription = await city.client.create_subscription(50, handler)
    node = city.node(f"{cabinet.path}/LampStates")
    await subscription.subscribe_data_change([node], queuesize=1)
    first, second = cabinet.lamps[0], cabinet.lamps[1]
    now = utcnow()
    states(
        [
            ValueRecord(f"{first.path}/Level", 40.0, Quality.GOOD, now),
            ValueRecord(f"{first.path}/On", True, Quality.GOOD, now),
            ValueRecord(f"{second.path}/LampFailure", True, Quality.GOOD, now),
        ]
    )
    while True:
        _nodeid, dv = await asyncio.wait_for(handler.queue.get(), 5)
        if dv.Value.Value is not None:
            break
    codes = dv.Value.Value
    assert isinstance(codes, bytes) and len(codes) == len(cabinet.lamps)
    assert (codes[first.index], codes[second.index], codes[cabinet.lamps[2].index]) == (DIMMED, FAILED, UNKNOWN)
    assert dv.SourceTimestamp is not None
    with pytest.raises(ua.UaStatusCodeError):
        await node.write_value(ua.Variant(b"\x00\x00\x00", ua.VariantType.ByteString))
    await subscription.delete()
