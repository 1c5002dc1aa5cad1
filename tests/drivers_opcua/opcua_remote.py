"""Test helpers of the OPC UA client driver: a real remote asyncua server, a record collector, a freezable proxy."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from asyncua import Server, ua

from scada.model import ValueRecord, utcnow
from scada.site.model import Endpoint, ParkingSite, TrafficController

UTC_URI = "urn:vendor:utc"
CONTROLLERS = ("TLC-001", "TLC-002")
PARKING = "PK-01"

# Remote variables of a controller: suffix -> (variant type, initial value).
CONTROLLER_VARS: dict[str, tuple[ua.VariantType, Any]] = {
    "Plan.Active": (ua.VariantType.UInt16, 2),
    "Stage": (ua.VariantType.UInt16, 1),
    "Mode": (ua.VariantType.Int32, 0),
    "Fault": (ua.VariantType.Boolean, False),
    "Vehicles": (ua.VariantType.UInt32, 1000),
}

UTC_MAPPING: dict[str, Any] = {
    "namespace": UTC_URI,
    "variables": {
        "ActivePlan": "s={id}.Plan.Active",
        "Stage": "s={id}.Stage",
        "ControlMode": "s={id}.Mode",
        "Fault": "s={id}.Fault",
        "VehicleCount": "s={id}.Vehicles",
    },
    "actions": {
        "select_plan": {"method": "s={id}.SelectPlan", "object": "s={id}"},
        "release_plan": {"method": "s={id}.ReleasePlan", "object": "s={id}"},
    },
    "publishing_interval_ms": 100,
}

PARKING_MAPPING: dict[str, Any] = {
    "namespace": UTC_URI,
    "variables": {"Occupied": "s={id}.Occupied", "DisplayMode": "s={id}.DisplayMode"},
    "actions": {"set_display_mode": {"write": "s={id}.DisplayMode"}},
    "sensor_variables": {"Occupied": "s={parent}.Bay{index}"},
}

SOURCES: dict[str, Any] = {"utc-north": UTC_MAPPING, "parking-north": PARKING_MAPPING}

# Short timings so loss, backoff and stop are measured in tenths of a second.
FAST: dict[str, float] = {
    "request_timeout_s": 1.0,
    "watchdog_s": 0.5,
    "keepalive_s": 0.5,
    "backoff_initial_s": 0.1,
    "backoff_max_s": 0.4,
    "close_timeout_s": 0.3,
}


class RemoteUtc:
    """The neighbouring urban traffic control system: a real asyncua server with two controllers and a car park."""

    def __init__(self, port: int, *, extra_namespaces: Sequence[str] = ()) -> None:
        self.port = port
        self.url = f"opc.tcp://127.0.0.1:{port}/utc"
        self.extra_namespaces = tuple(extra_namespaces)
        self.server = Server()
        self.idx = -1
        self.calls: list[tuple[str, str, list[ua.Variant]]] = []

    async def start(self) -> None:
        """Build the address space and listen on the fixed port."""
        await self.build()
        await self.listen()

    async def listen(self) -> None:
        """Start listening (the address space is built)."""
        await self.server.start()

    async def reset(self) -> None:
        """Every remote value back to its initial value; the call log emptied."""
        for cid in CONTROLLERS:
            for suffix, (_, initial) in CONTROLLER_VARS.items():
                await self.set(cid, suffix, initial)
        await self.set(PARKING, "DisplayMode", 0)
        self.calls.clear()

    async def build(self) -> None:
        """Initialise the server and build its address space (slow: asyncua loads the standard nodes)."""
        server = self.server
        await server.init()
        server.set_endpoint(self.url)
        server.set_security_policy([ua.SecurityPolicyType.NoSecurity])
        for uri in self.extra_namespaces:
            await server.register_namespace(uri)
        self.idx = await server.register_namespace(UTC_URI)
        objects = server.nodes.objects
        for cid in CONTROLLERS:
            obj = await objects.add_object(self.node(cid), cid)
            for suffix, (vtype, initial) in CONTROLLER_VARS.items():
                await obj.add_variable(self.node(f"{cid}.{suffix}"), suffix, ua.Variant(initial, vtype))
            await obj.add_method(
                self.node(f"{cid}.SelectPlan"),
                "SelectPlan",
                self._method(cid, "SelectPlan"),
                [ua.VariantType.UInt16, ua.VariantType.UInt32],
                [],
            )
            await obj.add_method(
                self.node(f"{cid}.ReleasePlan"), "ReleasePlan", self._method(cid, "ReleasePlan"), [], []
            )
        park = await objects.add_object(self.node(PARKING), PARKING)
        await park.add_variable(self.node(f"{PARKING}.Occupied"), "Occupied", ua.Variant(12, ua.VariantType.UInt32))
        display = await park.add_variable(
            self.node(f"{PARKING}.DisplayMode"), "DisplayMode", ua.Variant(0, ua.VariantType.Int32)
        )
        await display.set_writable()
        for bay in range(2):
            await park.add_variable(
                self.node(f"{PARKING}.Bay{bay}"), f"Bay{bay}", ua.Variant(bay == 1, ua.VariantType.Boolean)
            )

    def node(self, name: str) -> ua.NodeId:
        """The remote node id of a name in the vendor namespace."""
        return ua.NodeId(name, self.idx)

    def _method(self, cid: str, name: str) -> Callable[..., Any]:
        async def method(parent: ua.NodeId, *args: ua.Variant) -> list[ua.Variant] | ua.StatusCode:
            self.calls.append((cid, name, list(args)))
            if name == "SelectPlan" and args[0].Value == 11:
                return ua.StatusCode(ua.StatusCodes.BadOutOfRange)
            if name == "SelectPlan":
                await self.set(cid, "Plan.Active", args[0].Value)
            return []

        return method

    async def set(self, cid: str, suffix: str, value: Any, source_ts: datetime | None = None) -> None:
        """Change a remote value (as the remote system's own process would), optionally with its source time."""
        vtype = CONTROLLER_VARS[suffix][0] if suffix in CONTROLLER_VARS else ua.VariantType.Int32
        now = utcnow()
        dv = ua.DataValue(ua.Variant(value, vtype), SourceTimestamp=source_ts or now, ServerTimestamp=now)
        await self.server.write_attribute_value(self.node(f"{cid}.{suffix}"), dv)

    async def read(self, name: str) -> Any:
        """A remote value, read server-side."""
        return await self.server.get_node(self.node(name)).read_value()

    async def stop(self) -> None:
        """Stop listening and drop every client connection."""
        await self.server.stop()


class Collector:
    """The driver's publish callback: keeps every batch and the latest record per tag; tests wait on it."""

    def __init__(self) -> None:
        self.batches: list[list[ValueRecord]] = []
        self.latest: dict[str, ValueRecord] = {}
        self._changed = asyncio.Event()

    def __call__(self, records: Sequence[ValueRecord]) -> None:
        self.batches.append(list(records))
        for record in records:
            self.latest[record.tag] = record
        self._changed.set()

    @property
    def records(self) -> list[ValueRecord]:
        """Every record received, in order."""
        return [record for batch in self.batches for record in batch]

    async def wait_for(self, predicate: Callable[[], bool], within: float = 5.0) -> float:
        """Wait until `predicate()` holds after some batch; returns the seconds it took, fails on timeout."""
        started = time.monotonic()
        deadline = started + within
        while not predicate():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"condition not met within {within} s; latest: {self.latest}")
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), remaining)
        return time.monotonic() - started


class FreezableProxy:
    """A TCP relay between client and server that can stop forwarding while keeping both sockets open."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.frozen = False
        self.port = 0
        self._server: asyncio.Server | None = None
        self._writers: list[asyncio.StreamWriter] = []

    async def start(self) -> None:
        """Listen on a free loopback port."""
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        self._writers += [writer, up_writer]

        async def pump(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(ConnectionError, OSError):
                while data := await src.read(65536):
                    if not self.frozen:
                        dst.write(data)
                        await dst.drain()
            dst.close()

        await asyncio.gather(pump(reader, up_writer), pump(up_reader, writer))

    async def stop(self) -> None:
        """Close the listener and every relayed connection."""
        for writer in self._writers:
            writer.close()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()


def find_free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def controllers(url: str, poll_ms: int = 200) -> list[TrafficController]:
    """The two remote controllers as site devices fed over OPC UA."""
    return [
        TrafficController(
            id=cid,
            name=f"Carrefour {n}",
            district="centre",
            lat=47.32 + n / 1000,
            lon=5.04,
            endpoint=Endpoint("opcua", url=url, mapping="utc-north", poll_ms=poll_ms),
        )
        for n, cid in enumerate(CONTROLLERS, start=1)
    ]


def parking_site(url: str) -> ParkingSite:
    """The remote car park (two bays) as a site device fed over OPC UA."""
    from scada.site.model import ParkingSensor

    site = ParkingSite(
        id=PARKING,
        name="Parking Nord",
        district="centre",
        site_type="carpark",
        lat=47.33,
        lon=5.05,
        capacity=2,
        endpoint=Endpoint("opcua", url=url, mapping="parking-north", poll_ms=200),
    )
    site.sensors = [ParkingSensor(id=f"PS-01-{i:04d}", site_id=PARKING, index=i, lat=47.33, lon=5.05) for i in range(2)]
    return site
