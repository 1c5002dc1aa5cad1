"""The living city: builds every simulated device of a site and runs the movers and random faults between them.

Movers walk along streets (lamps in `seq` order, across cabinet boundaries) and fire each lamp's presence
detector; cars come and go in the car parks; lamps, cabinets, controllers, signs and bay sensors fail now and
then. Rates and profiles are documented in drivers.sim.profiles. Every random draw comes from a stream seeded by
(seed, device or purpose), consumed in event order, so a seed gives the same event sequence at any speed.
"""

from __future__ import annotations

import bisect
import itertools
import math
from collections.abc import Iterator
from dataclasses import dataclass

from drivers.sim import profiles
from drivers.sim.base import RANDOM, SimDevice
from drivers.sim.clock import next_hour
from drivers.sim.env import SimEnv
from drivers.sim.lighting import CabinetSim
from drivers.sim.parking import ParkingSim
from drivers.sim.signs import SignSim
from drivers.sim.traffic import ControllerSim
from scada.site.model import Lamp, Site


@dataclass(slots=True)
class CityOptions:
    """What moves in the city: scale of the movers, cars, random faults."""

    movers: float = 1.0  # multiplies PASSES_PER_LAMP_HOUR (0: no pedestrians/vehicles)
    cars: bool = True  # parking arrivals and departures
    random_faults: bool = True  # lamp failures, mains losses, doors, controller/sign/sensor faults
    lamp_failure_per_hour: float = profiles.LAMP_FAILURE_PER_HOUR


@dataclass(slots=True)
class _Street:
    stops: list[tuple[CabinetSim, int]]
    gaps: list[float]  # metres between stop k and k+1


def _distance_m(a: Lamp, b: Lamp) -> float:
    dy = (b.lat - a.lat) * 110_540.0
    dx = (b.lon - a.lon) * 111_320.0 * math.cos(math.radians((a.lat + b.lat) / 2.0))
    metres = math.hypot(dx, dy)
    if metres == 0.0 or math.isnan(metres):
        return profiles.DEFAULT_SPACING_M
    low, high = profiles.LAMP_SPACING_M
    return min(high, max(low, metres))


class City:
    """Every simulated device of a site, indexed by id, and the processes that make the city live."""

    def __init__(self, site: Site, env: SimEnv, options: CityOptions | None = None) -> None:
        self.site = site
        self.env = env
        self.options = options or CityOptions()
        self.cabinets = {c.id: CabinetSim(c, env) for c in site.cabinets.values()}
        self.controllers = {c.id: ControllerSim(c, env) for c in site.controllers.values()}
        self.signs = {s.id: SignSim(s, env) for s in site.signs.values()}
        self.parking = {p.id: ParkingSim(p, env) for p in site.parking.values()}
        self.devices: dict[str, SimDevice] = {**self.cabinets, **self.controllers, **self.signs, **self.parking}
        self.lamps: dict[str, tuple[CabinetSim, int]] = {}
        for cabinet in self.cabinets.values():
            for i, lamp_id in enumerate(cabinet.lamp_ids):
                self.lamps[lamp_id] = (cabinet, i)
        self.sensors: dict[str, tuple[ParkingSim, int]] = {}
        for gateway in self.parking.values():
            for sensor in gateway.site.sensors:
                self.sensors[sensor.id] = (gateway, sensor.index)
        self.streets = self._streets()
        self._street_weights: list[int] = []
        total = 0
        for street in self.streets:
            total += len(street.stops)
            self._street_weights.append(total)
        self._movers = env.rng("city", "movers")
        self.walkers_started = 0
        self._started = False

    def _streets(self) -> list[_Street]:
        groups: dict[str, list[Lamp]] = {}
        for lamp in self.site.lamps():
            key = lamp.street_id or f"@{lamp.cabinet_id}"
            groups.setdefault(key, []).append(lamp)
        streets = []
        for key in sorted(groups):
            lamps = sorted(
                groups[key], key=lambda lamp: (lamp.seq, lamp.id) if lamp.street_id else (lamp.index, lamp.id)
            )
            stops = [self.lamps[lamp.id] for lamp in lamps]
            gaps = [_distance_m(a, b) for a, b in itertools.pairwise(lamps)]
            streets.append(_Street(stops, gaps))
        return streets

    def all_devices(self) -> Iterator[SimDevice]:
        """Every simulated field device."""
        yield from self.devices.values()

    # ---- start ------------------------------------------------------------------------------------------------

    def start(self, t: float) -> None:
        """Schedule every process from sim time t (once)."""
        if self._started:
            return
        self._started = True
        options = self.options
        if options.movers > 0 and self.streets:
            self._spawn(t, False)
        if options.cars:
            for gateway in self.parking.values():
                gateway.start_cars(t)
        if options.random_faults:
            self._start_faults(t)

    # ---- movers -----------------------------------------------------------------------------------------------

    def _spawn(self, t: float, fire: bool) -> None:
        if fire:
            self._new_walker(t)
        lamps = self._street_weights[-1]
        per_hour = profiles.PASSES_PER_LAMP_HOUR[self.env.local.hour(t)] * self.options.movers * lamps
        rate = per_hour / profiles.MEAN_WALK_LAMPS / 3600.0
        boundary = next_hour(t)
        when = t + self._movers.expovariate(rate) if rate > 0 else math.inf
        if when > boundary:
            self.env.scheduler.at(boundary, self._spawn, False)
        else:
            self.env.scheduler.at(when, self._spawn, True)

    def _new_walker(self, t: float) -> None:
        rng = self._movers
        index = bisect.bisect_right(self._street_weights, rng.random() * self._street_weights[-1])
        index = min(index, len(self.streets) - 1)
        street = self.streets[index]
        position = rng.randrange(len(street.stops))
        direction = 1 if rng.random() < 0.5 else -1
        draw = rng.random()
        speed = profiles.MOVERS[-1][2]
        for _name, share, mover_speed in profiles.MOVERS:
            if draw < share:
                speed = mover_speed
                break
            draw -= share
        speed *= rng.uniform(0.8, 1.2)
        length = 1 + int(rng.expovariate(1.0 / (profiles.MEAN_WALK_LAMPS - 1.0)))
        self.walkers_started += 1
        self._step(t, [street, position, direction, length, speed])

    def _step(self, t: float, walker: list) -> None:
        street, position, direction, remaining, speed = walker
        cabinet, lamp = street.stops[position]
        cabinet.fire_presence(lamp, t)
        nxt = position + direction
        if remaining > 1 and 0 <= nxt < len(street.stops):
            walker[1] = nxt
            walker[3] = remaining - 1
            self.env.scheduler.at(t + street.gaps[position if direction > 0 else nxt] / speed, self._step, walker)

    def fire_presence(self, lamp_id: str, t: float) -> None:
        """Fire one lamp's presence detector now."""
        cabinet, i = self.lamps[lamp_id]
        cabinet.fire_presence(i, t)

    # ---- random faults ------------------------------------------------------------------------------------------

    def _start_faults(self, t: float) -> None:
        groups: list[tuple[str, dict[str, SimDevice]]] = [
            ("cabinet", dict(self.cabinets)),
            ("controller", dict(self.controllers)),
            ("sign", dict(self.signs)),
            ("parking", dict(self.parking)),
        ]
        for group, devices in groups:
            for device in devices.values():
                for fault, mean_days, durations in profiles.RANDOM_FAULTS[group]:
                    rng = self.env.rng(device.id, "fault", fault)
                    self._next_fault(t, (device, fault, 1.0 / (mean_days * profiles.DAY), durations, rng))
        rate = self.options.lamp_failure_per_hour / 3600.0
        if rate > 0:
            for cabinet in self.cabinets.values():
                self._next_lamp_failure(t, (cabinet, rate * cabinet.count, self.env.rng(cabinet.id, "lamp-failures")))
        for gateway in self.parking.values():
            rng = self.env.rng(gateway.id, "sensor-faults")
            self._next_sensor_fault(t, (gateway, gateway.bays * profiles.BAY_FAULT_PER_HOUR / 3600.0, rng))

    def _next_fault(self, t: float, process: tuple) -> None:
        _device, _fault, rate, _durations, rng = process
        self.env.scheduler.at(t + rng.expovariate(rate), self._fault_on, process)

    def _fault_on(self, t: float, process: tuple) -> None:
        device, fault, _rate, durations, rng = process
        detector = -1
        if fault == "detector":
            assert isinstance(device, ControllerSim)
            if device.detectors == 0:
                self._next_fault(t, process)
                return
            detector = rng.randrange(device.detectors)
            device.set_detector_fault(detector, True, RANDOM, t)
        else:
            device.set_flag(fault, True, RANDOM, t)
        self.env.scheduler.at(t + rng.uniform(*durations), self._fault_off, (process, detector))

    def _fault_off(self, t: float, arg: tuple) -> None:
        process, detector = arg
        device, fault = process[0], process[1]
        if fault == "detector":
            device.set_detector_fault(detector, False, RANDOM, t)
        else:
            device.set_flag(fault, False, RANDOM, t)
        self._next_fault(t, process)

    def _next_lamp_failure(self, t: float, process: tuple) -> None:
        _cabinet, rate, rng = process
        self.env.scheduler.at(t + rng.expovariate(rate), self._lamp_failure, process)

    def _lamp_failure(self, t: float, process: tuple) -> None:
        cabinet, _rate, rng = process
        i = rng.randrange(cabinet.count)
        if cabinet.lamp_lit(i) and cabinet.set_lamp_fault(i, "lamp_failure", True, RANDOM, t):  # per burning hour
            self.env.scheduler.at(t + rng.uniform(*profiles.LAMP_REPAIR_S), self._lamp_repair, (cabinet, i))
        self._next_lamp_failure(t, process)

    def _lamp_repair(self, t: float, arg: tuple[CabinetSim, int]) -> None:
        cabinet, i = arg
        cabinet.set_lamp_fault(i, "lamp_failure", False, RANDOM, t)

    def _next_sensor_fault(self, t: float, process: tuple) -> None:
        _gateway, rate, rng = process
        self.env.scheduler.at(t + rng.expovariate(rate), self._sensor_fault, process)

    def _sensor_fault(self, t: float, process: tuple) -> None:
        gateway, _rate, rng = process
        i = rng.randrange(gateway.bays)
        if gateway.set_sensor_fault(i, True, RANDOM, t):
            self.env.scheduler.at(t + rng.uniform(*profiles.BAY_REPAIR_S), self._sensor_repair, (gateway, i))
        self._next_sensor_fault(t, process)

    def _sensor_repair(self, t: float, arg: tuple[ParkingSim, int]) -> None:
        gateway, i = arg
        gateway.set_sensor_fault(i, False, RANDOM, t)
