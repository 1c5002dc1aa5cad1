"""The HTTP JSON control channel: status, endpoints, device state, fault injection, presence, occupancy, speed."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import aiohttp
import pytest

from drivers.sim.runner import CitySimulator
from drivers.sim.synthetic import small_site

EVENING = datetime(2026, 1, 15, 17, 0, tzinfo=UTC)


@pytest.fixture
async def controlled() -> AsyncIterator[tuple[CitySimulator, aiohttp.ClientSession]]:
    """A simulator with its control channel on a free port, and an HTTP session."""
    from drivers.sim.city import CityOptions

    sim = CitySimulator(
        small_site(),
        bind="free",
        start_time=EVENING,
        manual_clock=True,
        control_port=0,
        options=CityOptions(random_faults=False),
    )
    await sim.start()
    assert sim.control_url is not None
    session = aiohttp.ClientSession(base_url=sim.control_url)
    try:
        yield sim, session
    finally:
        await session.close()
        await sim.stop()


async def test_status_and_endpoints(controlled) -> None:
    sim, http = controlled
    async with http.get("/status") as response:
        status = await response.json()
    assert response.status == 200
    assert status["devices"] == {"cabinets": 3, "lamps": 60, "controllers": 2, "signs": 2, "parking": 1, "sensors": 50}
    assert status["listeners"] == 8 and status["faults"] == []
    async with http.get("/endpoints") as response:
        endpoints = await response.json()
    assert endpoints["TLC-001"] == {
        "host": "127.0.0.1",
        "port": sim.endpoints["TLC-001"].port,
        "unit": 1,
        "listening": True,
    }


async def test_faults_through_http(controlled) -> None:
    sim, http = controlled
    async with http.post("/faults", json={"device": "CAB-0002", "fault": "mains", "on": True}) as response:
        assert response.status == 200 and (await response.json())["ok"]
    assert sim.device("CAB-0002").flag("mains")
    async with http.post("/faults", json={"device": "TLC-002", "fault": "manual", "plan": 6}) as response:
        assert response.status == 200
    async with http.get("/devices/TLC-002") as response:
        state = await response.json()
    assert state["plan"] == 6 and state["mode"] == 2
    async with http.post("/faults", json={"device": "VMS-02", "fault": "offline", "on": True}) as response:
        assert response.status == 200
    assert not sim.listening("VMS-02")
    async with http.get("/status") as response:
        faults = (await response.json())["faults"]
    assert {"device": "CAB-0002", "fault": "mains"} in faults and {"device": "VMS-02", "fault": "offline"} in faults
    async with http.post("/faults", json={"device": "VMS-02", "fault": "offline", "on": False}) as response:
        assert response.status == 200
    assert sim.listening("VMS-02")
    async with http.get("/events") as response:
        events = [event["event"] for event in await response.json()]
    assert "mains on" in events and "offline" in events and "online" in events


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"device": "CAB-0001", "fault": "meltdown"}, 400),
        ({"device": "CAB-9999", "fault": "mains"}, 404),
        ({"device": "VMS-01", "fault": "conflict"}, 400),  # not a sign fault
        ({"device": "TLC-001", "fault": "detector", "detector": 9}, 400),
        ({"device": "CAB-0001", "fault": "lamp_failure"}, 400),  # which lamp?
        ({"device": "CAB-0001", "fault": "mains", "on": "yes"}, 400),
        ({"fault": "mains"}, 400),
    ],
)
async def test_bad_fault_requests(controlled, body: dict, status: int) -> None:
    _, http = controlled
    async with http.post("/faults", json=body) as response:
        assert response.status == status
        assert not (await response.json())["ok"]


async def test_invalid_json_is_400(controlled) -> None:
    _, http = controlled
    async with http.post("/faults", data=b"{nope", headers={"Content-Type": "application/json"}) as response:
        assert response.status == 400


async def test_presence_occupancy_speed_and_advance(controlled) -> None:
    sim, http = controlled
    cabinet, index = sim.lamp("L-000005")
    before = cabinet.lamp_state(index)["presence_count"]
    async with http.post("/presence", json={"lamp": "L-000005"}) as response:
        assert response.status == 200
    async with http.get("/devices/L-000005") as response:
        lamp = await response.json()
    assert lamp["presence_count"] == (before + 1) & 0xFFFF and lamp["presence_now"]
    async with http.post("/occupancy", json={"site": "PK-01", "occupied": 12}) as response:
        assert response.status == 200
    async with http.get("/devices/PK-01") as response:
        assert (await response.json())["occupied"] == 12
    async with http.post("/occupancy", json={"site": "PK-01", "occupied": 500}) as response:
        assert response.status == 400
    async with http.get("/devices/PS-01-0001") as response:
        assert set(await response.json()) == {"id", "bay", "occupied", "fault"}
    start = sim.sync()
    async with http.post("/advance", json={"seconds": 3600}) as response:
        assert response.status == 200
    assert sim.sync() - start == pytest.approx(3600)
    async with http.post("/speed", json={"speed": 30}) as response:
        assert (await response.json())["speed"] == 30
    async with http.post("/speed", json={"speed": -1}) as response:
        assert response.status == 400
    async with http.get("/devices/NOPE") as response:
        assert response.status == 404
    async with http.get("/faults") as response:
        assert "conflict" in await response.json()
