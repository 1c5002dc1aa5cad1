"""City scale: the Dijon site's address space, counted device by device through the OPC UA interface."""

from __future__ import annotations

from pathlib import Path

import pytest
from asyncua import Client, ua
from uakit import command_service

from scada.catalog import OBJECT_TYPES, VARIABLES, Kind
from scada.model import Quality, ValueRecord, utcnow
from scada.opcua import CityServer
from scada.site.loader import load_site

pytestmark = pytest.mark.slow


async def browse_many(client: Client, nodeids: list[ua.NodeId], reftype: int) -> list[list[ua.ReferenceDescription]]:
    """Forward references of one type from many nodes, in batched Browse requests."""
    results: list[list[ua.ReferenceDescription]] = []
    for start in range(0, len(nodeids), 500):
        params = ua.BrowseParameters()
        for nodeid in nodeids[start : start + 500]:
            description = ua.BrowseDescription()
            description.NodeId = nodeid
            description.BrowseDirection = ua.BrowseDirection.Forward
            description.ReferenceTypeId = ua.NodeId(reftype)
            description.IncludeSubtypes = False
            description.NodeClassMask = ua.NodeClass.Object
            description.ResultMask = ua.BrowseResultMask.All
            params.NodesToBrowse.append(description)
        for result in await client.uaclient.browse(params):
            assert result.StatusCode.is_good()
            results.append(result.References)
    return results


async def test_dijon_device_counts_through_browse(dijon_site_dir: Path) -> None:
    assert (dijon_site_dir / "site.yaml").exists(), "config/dijon is missing: run tools/gen_dijon.py"
    site = load_site(dijon_site_dir)
    service, _driver = command_service(site)
    server = CityServer(site, service, "127.0.0.1", 0)
    await server.start()
    try:
        ns = server.namespace_index
        type_ids = {kind: ua.NodeId(f"Types/{OBJECT_TYPES[kind]}", ns) for kind in Kind}

        def of_type(refs: list[ua.ReferenceDescription], kind: Kind) -> list[ua.ReferenceDescription]:
            return [ref for ref in refs if ref.TypeDefinition == type_ids[kind]]

        counted: dict[Kind, int] = {}
        async with Client(server.endpoint_url, timeout=60, watchdog_intervall=60.0) as client:
            [cabinets, controllers, signs, parkings] = await browse_many(
                client,
                [ua.NodeId(name, ns) for name in ("Lighting", "Traffic", "Signs", "Parking")],
                ua.ObjectIds.Organizes,
            )
            counted[Kind.CABINET] = len(of_type(cabinets, Kind.CABINET))
            counted[Kind.CONTROLLER] = len(of_type(controllers, Kind.CONTROLLER))
            counted[Kind.SIGN] = len(of_type(signs, Kind.SIGN))
            counted[Kind.PARKING_SITE] = len(of_type(parkings, Kind.PARKING_SITE))
            lamps = await browse_many(client, [ref.NodeId for ref in cabinets], ua.ObjectIds.HasComponent)
            counted[Kind.LAMP] = sum(len(of_type(refs, Kind.LAMP)) for refs in lamps)
            sensors = await browse_many(client, [ref.NodeId for ref in parkings], ua.ObjectIds.HasComponent)
            counted[Kind.PARKING_SENSOR] = sum(len(of_type(refs, Kind.PARKING_SENSOR)) for refs in sensors)
            assert counted == site.counts()
            assert counted[Kind.LAMP] >= 30000

            # values fed through the value path are read back in a batch from the last cabinet's lamps
            last = list(site.cabinets.values())[-1]
            tags = [f"{lamp.path}/Level" for lamp in last.lamps]
            now = utcnow()
            server.writer.apply([ValueRecord(tag, float(i % 101), Quality.GOOD, now) for i, tag in enumerate(tags)])
            values = await client.read_values([client.get_node(ua.NodeId(tag, ns)) for tag in tags])
            assert values == [float(i % 101) for i in range(len(tags))]
        stats = server.build_stats
        per_device = {kind: 1 + len(VARIABLES[kind]) + 3 for kind in Kind}
        assert stats.nodes >= sum(per_device[kind] * count for kind, count in site.counts().items())
        print(f"Dijon: {stats.nodes:,} nodes built in {stats.seconds:.2f} s (CPU {stats.cpu_seconds:.2f} s)")
    finally:
        await server.stop()
