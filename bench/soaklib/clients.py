"""The soak's OPC UA clients: consoles' worth of subscriptions (with notification latency) and a third-party client.

A console watches what hmi.model.WATCHED names: every cabinet's LampStates array (34,000 lamps in 340 arrays on
Dijon) and the state variables of every cabinet, controller, sign and car park; plus, as the console's device
panels do, every non-lamp device variable of the catalog. Latency is the client's receipt time minus the value's
SourceTimestamp (the driver stamps it when the Modbus answer arrives), same machine clock.

The third-party client reads a batch of values, calls methods (SetLevel, SetMode, SelectPlan, Display,
SetDisplayMode) and reads raw history, each in turn every few seconds; it counts successes and failures by kind
(failures are expected while a device it commands is killed or the database is away).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from asyncua import Client, ua

from scada.catalog import NAMESPACE_URI, VARIABLES, Kind
from scada.site.model import Site

log = logging.getLogger(__name__)

CONSOLE_WATCHED: dict[Kind, tuple[str, ...]] = {
    Kind.CABINET: ("CommunicationOk", "Mode", "Fault", "MainsFailure", "DoorOpen", "LampStates"),
    Kind.CONTROLLER: ("CommunicationOk", "ControlMode", "Fault", "SignalLampFailure", "DetectorFault"),
    Kind.SIGN: ("CommunicationOk", "Fault", "Message"),
    Kind.PARKING_SITE: ("CommunicationOk", "Full", "Free"),
}
"""The map's watches, as hmi.model.WATCHED (copied: the soak must not need Qt)."""


def console_paths(site: Site) -> list[str]:
    """Every path a console subscribes to: the map's watches, then every other catalog variable of the devices."""
    paths: dict[str, None] = {}
    groups = (
        (Kind.CABINET, site.cabinets.values()),
        (Kind.CONTROLLER, site.controllers.values()),
        (Kind.SIGN, site.signs.values()),
        (Kind.PARKING_SITE, site.parking.values()),
    )
    for kind, devices in groups:
        for device in devices:
            for name in CONSOLE_WATCHED[kind]:
                paths[f"{device.path}/{name}"] = None
            for spec in VARIABLES[kind]:
                paths[f"{device.path}/{spec.name}"] = None
    return list(paths)


@dataclass
class Console:
    """One console's subscription; keeps every notification's latency (seconds)."""

    name: str
    url: str
    paths: list[str]
    publishing_ms: int = 500
    latencies: list[float] = field(default_factory=list)
    notifications: int = 0
    bad: int = 0
    client: Client | None = None

    def datachange_notification(self, node: Any, val: Any, data: Any) -> None:
        """asyncua's per-item callback: latency from the source timestamp."""
        received = time.time()
        self.notifications += 1
        value = data.monitored_item.Value
        if value.StatusCode is not None and not value.StatusCode.is_good():
            self.bad += 1  # its SourceTimestamp is the last good value's: no latency to measure
            return
        source = value.SourceTimestamp
        if source is not None:
            self.latencies.append(received - source.replace(tzinfo=UTC).timestamp())

    def status_change_notification(self, status: Any) -> None:
        """The subscription's status changed (logged only)."""
        log.warning("%s: subscription status %s", self.name, status)

    async def start(self) -> float:
        """Connect and subscribe; returns the seconds it took to create every monitored item."""
        client = self.client = Client(self.url, timeout=60, watchdog_intervall=60)
        await client.connect()
        ns = await client.get_namespace_index(NAMESPACE_URI)
        nodes = [client.get_node(ua.NodeId(path, ns)) for path in self.paths]
        started = time.perf_counter()
        subscription = await client.create_subscription(self.publishing_ms, self)
        for i in range(0, len(nodes), 1000):
            await subscription.subscribe_data_change(nodes[i : i + 1000], queuesize=1)
        return time.perf_counter() - started

    def reset(self) -> None:
        """Forget the latencies so far (the start-up burst is not steady state)."""
        self.latencies.clear()

    async def stop(self) -> None:
        """Close the session."""
        if self.client is not None:
            with contextlib.suppress(Exception):
                await self.client.disconnect()


@dataclass
class ThirdParty:
    """The third-party client: reads, method calls and history reads in turn."""

    url: str
    site: Site
    period_s: float = 1.0  # between two operations
    ok: Counter[str] = field(default_factory=Counter)
    failed: Counter[str] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)
    history_values: int = 0
    client: Client | None = None
    _task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Connect and start the loop."""
        self.client = Client(self.url, timeout=30, watchdog_intervall=60)
        await self.client.connect()
        self.ns = await self.client.get_namespace_index(NAMESPACE_URI)
        self._task = asyncio.create_task(self._run(), name="soak-third-party")

    async def stop(self) -> None:
        """Stop the loop and close the session."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self.client is not None:
            with contextlib.suppress(Exception):
                await self.client.disconnect()

    def _node(self, path: str) -> Any:
        assert self.client is not None
        return self.client.get_node(ua.NodeId(path, self.ns))

    def _actions(self) -> list[tuple[str, Any]]:
        """The round of operations, as (kind, coroutine factory)."""
        site = self.site
        cabinets = sorted(site.cabinets.values(), key=lambda c: c.id)
        lamps = [lamp for cabinet in cabinets[:4] for lamp in cabinet.lamps][:8]
        controllers = sorted(site.controllers.values(), key=lambda c: c.id)
        signs = sorted(site.signs.values(), key=lambda s: s.id)
        parks = sorted(site.parking.values(), key=lambda p: p.id)
        reads = [f"{c.path}/MainsVoltage" for c in cabinets[:50]] + [f"{c.path}/Stage" for c in controllers[:50]]
        double, uint16, uint32, int32 = (
            ua.VariantType.Double,
            ua.VariantType.UInt16,
            ua.VariantType.UInt32,
            ua.VariantType.Int32,
        )
        ns = self.ns
        actions: list[tuple[str, Any]] = [("read", lambda: self.client.read_values([self._node(p) for p in reads]))]  # type: ignore[union-attr]
        for i, lamp in enumerate(lamps):
            level = 40.0 + 10 * (i % 5)
            actions.append(("SetLevel", lambda lamp=lamp, level=level: self._node(lamp.path).call_method(
                f"{ns}:SetLevel", ua.Variant(level, double))))  # fmt: skip
        if controllers:
            tlc = controllers[-1]
            actions.append(("SelectPlan", lambda: self._node(tlc.path).call_method(
                f"{ns}:SelectPlan", ua.Variant(3, uint16), ua.Variant(120, uint32))))  # fmt: skip
        if signs:
            vms = signs[-1]
            actions.append(("Display", lambda: self._node(vms.path).call_method(
                f"{ns}:Display", ua.Variant("SOAK\nTEST", ua.VariantType.String), ua.Variant(0, uint16),
                ua.Variant(False, ua.VariantType.Boolean))))  # fmt: skip
        if parks:
            park = parks[-1]
            actions.append(("SetDisplayMode", lambda: self._node(park.path).call_method(
                f"{ns}:SetDisplayMode", ua.Variant(0, int32))))  # fmt: skip
        if cabinets:
            cab = cabinets[-1]
            actions.append(("SetMode", lambda: self._node(cab.path).call_method(f"{ns}:SetMode", ua.Variant(0, int32))))
        history = [f"{c.path}/MainsVoltage" for c in cabinets[:3]] + [f"{c.path}/VehicleCount" for c in controllers[:3]]
        for path in history:
            actions.append(("HistoryRead", lambda path=path: self._history(path)))
        return actions

    async def _history(self, path: str) -> None:
        end = datetime.now(UTC)
        values = await self._node(path).read_raw_history(end - timedelta(minutes=10), end, numvalues=1000)
        self.history_values += len(values)

    async def _run(self) -> None:
        actions = self._actions()
        turn = 0
        while True:
            started = time.monotonic()
            kind, action = actions[turn % len(actions)]
            turn += 1
            try:
                await asyncio.wait_for(action(), 30)
                self.ok[kind] += 1
            except (ua.UaError, TimeoutError, OSError, ConnectionError) as exc:
                self.failed[kind] += 1
                if len(self.failures) < 50:
                    self.failures.append(f"{datetime.now(UTC):%H:%M:%S} {kind}: {exc!r}"[:300])
            await asyncio.sleep(max(0.0, self.period_s - (time.monotonic() - started)))
