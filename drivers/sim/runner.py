"""CitySimulator: every field device of a site behind its own Modbus TCP listener, in one process.

Used by `cityscada simulate` and by tests:

    sim = CitySimulator(site, seed=1, speed=60, bind="free", control_port=0)
    await sim.start()
    sim.endpoints["CAB-0001"]        # Endpoint with the real host/port (and the site's unit id)
    await sim.set_fault("CAB-0001", "mains", True)
    await sim.stop()

Time: everything a device does runs on sim time (drivers.sim.clock.SimClock: start + speed × real elapsed, or a
manual clock moved by advance()): heartbeat (+1 per sim second), presence hold, traffic watchdog (HR1, so at
speed 60 a 60 s watchdog lapses after one real second), energy, burning hours, profiles by local time of day.
State is event-driven: city events sit in one heap (drivers.sim.scheduler) and run in time order, from a 100 ms
ticker and before every Modbus request, so a read always sees every event due by its sim time.

Cost (config/dijon, 503 devices, 34,000 lamps, shared 2-core machine): start < 2.5 s from process spawn, ~75 MB
RSS, ~0.2 s of CPU per full sweep of every register (3,759 reads); the city alone at speed 1 takes ~0.2 % of a
core. Movers cost ~10-20 µs per detection: a Dijon evening (~70-150 events per sim second) stays under half a core
up to a speed of ~200; for faster replays lower CityOptions.movers.

Unit ids: a request for a unit the endpoint does not serve is answered with exception 0x0B.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import resource
from dataclasses import replace
from datetime import datetime
from typing import Any, Literal

from drivers.sim import faults
from drivers.sim.base import SimDevice
from drivers.sim.city import City, CityOptions
from drivers.sim.clock import SimClock
from drivers.sim.env import SimEnv
from drivers.sim.errors import BindError, FaultError, UnknownSimDeviceError
from drivers.sim.lighting import CabinetSim
from drivers.sim.server import Listener
from scada.site.model import Endpoint, Site

log = logging.getLogger(__name__)

TICK_S = 0.1  # real seconds between two runs of the due events (reads run them too)


class CitySimulator:
    """The whole simulated city: devices, listeners, city processes, optional HTTP control channel."""

    def __init__(
        self,
        site: Site,
        *,
        seed: int = 1,
        speed: float = 1.0,
        bind: Literal["site", "free"] = "site",
        start_time: datetime | None = None,
        control_port: int | None = None,
        control_host: str = "127.0.0.1",
        options: CityOptions | None = None,
        manual_clock: bool = False,
        trace: bool = False,
    ) -> None:
        if bind not in ("site", "free"):
            raise ValueError(f"bind must be 'site' or 'free', not {bind!r}")
        self.site = site
        self.seed = seed
        self.bind = bind
        self.clock = SimClock(start_time, speed=speed, manual=manual_clock)
        self.env = SimEnv(self.clock, timezone=site.timezone, seed=seed, trace=trace)
        self.city = City(site, self.env, options)
        self.endpoints: dict[str, Endpoint] = {}
        self.skipped: list[str] = []  # field devices without a Modbus endpoint (not simulated)
        self.control_port = control_port
        self.control_host = control_host
        self.control_url: str | None = None
        self._listeners: list[Listener] = []
        self._listener_of: dict[str, Listener] = {}
        self._ticker: asyncio.Task[None] | None = None
        self._control: Any = None
        self._started = False

    # ---- life cycle ---------------------------------------------------------------------------------------------

    async def start(self) -> None:
        """Start the city and bind every listener (rolls back and raises BindError if one cannot bind)."""
        if self._started:
            return
        _raise_file_limit(4 * len(self.city.devices) + 256)
        self.city.start(self.env.sync())
        self._plan_listeners()
        failures: list[str] = []
        for listener in self._listeners:
            try:
                await listener.start()
            except OSError as error:
                failures.append(
                    f"{listener.host}:{listener.port} ({', '.join(d.id for d in listener.units.values())}): {error}"
                )
        if failures:
            await self._stop_listeners()
            raise BindError(f"{len(failures)} listener(s) could not bind: " + "; ".join(failures[:10]))
        self._publish_endpoints()
        self._started = True
        if not self.clock.manual:
            self._ticker = asyncio.create_task(self._tick(), name="city-simulator-tick")
        if self.control_port is not None:
            from drivers.sim.control import ControlServer

            self._control = ControlServer(self, self.control_host, self.control_port)
            try:
                await self._control.start()
            except BaseException:
                await self.stop()
                raise
            self.control_url = self._control.url
        log.info(
            "simulating %d field devices of %s (seed %d, speed %g)",
            len(self.endpoints),
            self.site.name,
            self.seed,
            self.clock.speed,
        )

    async def stop(self) -> None:
        """Stop the control channel, the ticker and every listener (idempotent)."""
        if self._control is not None:
            control, self._control = self._control, None
            await control.stop()
        if self._ticker is not None:
            ticker, self._ticker = self._ticker, None
            ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await ticker
        await self._stop_listeners()
        self._started = False

    async def __aenter__(self) -> CitySimulator:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def _plan_listeners(self) -> None:
        self._listeners.clear()
        self._listener_of.clear()
        self.skipped.clear()
        groups: dict[tuple[str, int, str], dict[int, SimDevice]] = {}
        for field_device in self.site.field_devices():
            device = self.city.devices.get(field_device.id)
            endpoint = field_device.endpoint
            if device is None or endpoint.protocol != "modbus":
                self.skipped.append(field_device.id)
                continue
            key = ("127.0.0.1", 0, field_device.id) if self.bind == "free" else (endpoint.host, endpoint.port, "")
            units = groups.setdefault(key, {})
            if endpoint.unit in units:
                raise BindError(
                    f"{field_device.id} and {units[endpoint.unit].id} share {endpoint.host}:{endpoint.port} unit {endpoint.unit}"
                )
            units[endpoint.unit] = device
        for key, units in groups.items():
            listener = Listener(key[0], key[1], units)
            self._listeners.append(listener)
            for device in units.values():
                self._listener_of[device.id] = listener

    def _publish_endpoints(self) -> None:
        self.endpoints.clear()
        for field_device in self.site.field_devices():
            listener = self._listener_of.get(field_device.id)
            if listener is not None:
                self.endpoints[field_device.id] = replace(field_device.endpoint, host=listener.host, port=listener.port)

    async def _stop_listeners(self) -> None:
        await asyncio.gather(*(listener.stop() for listener in self._listeners), return_exceptions=True)

    async def _tick(self) -> None:
        while True:
            self.env.sync()
            await asyncio.sleep(TICK_S)

    # ---- access -------------------------------------------------------------------------------------------------

    def device(self, device_id: str) -> SimDevice:
        """The simulated field device (CabinetSim, ControllerSim, SignSim, ParkingSim) with that id."""
        device = self.city.devices.get(device_id)
        if device is None:
            raise UnknownSimDeviceError(f"no simulated device {device_id!r}")
        return device

    def lamp(self, lamp_id: str) -> tuple[CabinetSim, int]:
        """The cabinet that drives a lamp and the lamp's index."""
        found = self.city.lamps.get(lamp_id)
        if found is None:
            raise UnknownSimDeviceError(f"no lamp {lamp_id!r}")
        return found

    def listening(self, device_id: str) -> bool:
        """True while the device's listener accepts connections."""
        listener = self._listener_of.get(device_id)
        return listener is not None and listener.listening

    def now(self) -> datetime:
        """The current sim time (UTC)."""
        return self.clock.datetime()

    def sync(self) -> float:
        """Run the due events; returns the sim time (POSIX seconds)."""
        return self.env.sync()

    # ---- control ------------------------------------------------------------------------------------------------

    def set_speed(self, speed: float) -> None:
        """Change the speed factor (sim time stays continuous)."""
        self.env.sync()
        self.clock.set_speed(speed)

    def advance(self, seconds: float) -> None:
        """Jump sim time forward, running every event on the way (the way a manual clock moves)."""
        self.env.sync()
        self.clock.advance(seconds)
        self.env.sync()

    async def kill(self, device_id: str) -> None:
        """Stop the device's listener (every unit on that endpoint) and drop its connections."""
        listener = self._listener_of.get(device_id)
        if listener is None:
            raise UnknownSimDeviceError(f"no listener for {device_id!r}")
        await listener.stop()
        self.env.record(self.env.sync(), device_id, "offline")

    async def restart(self, device_id: str) -> None:
        """Listen again on the same port."""
        listener = self._listener_of.get(device_id)
        if listener is None:
            raise UnknownSimDeviceError(f"no listener for {device_id!r}")
        try:
            await listener.start()
        except OSError as error:
            raise BindError(f"{device_id}: cannot listen again on {listener.host}:{listener.port}: {error}") from error
        self.env.record(self.env.sync(), device_id, "online")

    async def set_fault(self, device_id: str, fault: str, on: bool = True, **params: Any) -> None:
        """Inject (on) or clear a fault; see drivers.sim.faults.FAULTS for the names and parameters."""
        if fault == "offline":
            await (self.kill(device_id) if on else self.restart(device_id))
            return
        faults.inject(self.city, device_id, fault, on, params, self.env.sync())

    def fire_presence(self, lamp_id: str) -> None:
        """Fire a lamp's presence detector now."""
        faults.fire_presence(self.city, lamp_id, self.env.sync())

    def set_occupancy(self, site_id: str, occupied: int) -> None:
        """Make a parking site report exactly `occupied` bays."""
        faults.set_occupancy(self.city, site_id, occupied, self.env.sync())

    def status(self) -> dict[str, Any]:
        """A summary of the simulator (GET /status)."""
        now = self.env.sync()
        active: list[dict[str, str]] = []
        for device in self.city.devices.values():
            active.extend({"device": device.id, "fault": name} for name in device.active_faults())
            if isinstance(device, CabinetSim):
                for i, lamp_id in enumerate(device.lamp_ids):
                    if device.lamp_failed(i):
                        active.append({"device": lamp_id, "fault": "lamp_failure"})
        active.extend(
            {"device": device_id, "fault": "offline"}
            for device_id, listener in self._listener_of.items()
            if not listener.listening
        )
        counts = {
            "cabinets": len(self.city.cabinets),
            "lamps": len(self.city.lamps),
            "controllers": len(self.city.controllers),
            "signs": len(self.city.signs),
            "parking": len(self.city.parking),
            "sensors": len(self.city.sensors),
        }
        return {
            "site": self.site.name,
            "seed": self.seed,
            "speed": self.clock.speed,
            "manual_clock": self.clock.manual,
            "sim_time": self.clock.datetime().isoformat(),
            "sim_posix": now,
            "running": self._started,
            "devices": counts,
            "listeners": sum(1 for listener in self._listeners if listener.listening),
            "events_processed": self.env.scheduler.processed,
            "events_pending": len(self.env.scheduler),
            "walkers_started": self.city.walkers_started,
            "faults": active,
        }


def _raise_file_limit(wanted: int) -> None:
    """Raise the soft open-files limit towards `wanted` (one socket per listener and per connection)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


__all__ = ["CityOptions", "CitySimulator", "FaultError"]
