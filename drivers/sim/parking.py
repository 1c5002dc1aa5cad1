"""Kind 2 simulator: a parking gateway reporting one bay sensor per discrete input.

Each bay alternates free/occupied: a free bay gets a car at a rate chosen so that the site tends to the target
occupancy of its type and hour (profiles), a car stays an exponential time of the mean stay of its arrival hour.
A faulty sensor reads free (DI i = 0) and sets DI 4096+i; IR5 counts the DI bits set, IR6 the faulty bays.
"""

from __future__ import annotations

from typing import Any

from drivers.modbus.registers import (
    KIND_PARKING,
    MAX_BAYS,
    PARK_DI_FAULT_BASE,
    PARK_HR_DISPLAY,
    PARK_IR_BAYS,
    PARK_IR_FAULTY,
    PARK_IR_OCCUPIED,
    STATUS_DOOR_OPEN,
    STATUS_FAULT,
    STATUS_MAINS_FAILURE,
    parking_map,
)
from drivers.sim import profiles
from drivers.sim.base import RANDOM, SimDevice
from drivers.sim.clock import next_hour
from drivers.sim.env import SimEnv
from drivers.sim.errors import FaultError, SimulatorError
from scada.site.model import ParkingSite


class ParkingSim(SimDevice):
    """A car park or on-street zone gateway, answering the kind-2 map."""

    kind = KIND_PARKING
    faults = frozenset({"door", "mains", "silent", "refuse", "sensor"})

    def __init__(self, site: ParkingSite, env: SimEnv) -> None:
        bays = max(site.capacity, 1 + max((s.index for s in site.sensors), default=-1))
        if not 1 <= bays <= MAX_BAYS:
            raise SimulatorError(f"parking site {site.id} has {bays} bays; a gateway reports 1-{MAX_BAYS}")
        super().__init__(site.id, parking_map(bays), env)
        self.site = site
        self.bays = bays  # IR4 = the site's capacity; bays without a configured sensor are simulated too
        self.sensor_ids = [f"{site.id}/bay-{i}" for i in range(bays)]
        for sensor in site.sensors:
            self.sensor_ids[sensor.index] = sensor.id
        self._rng = env.rng(site.id, "bays")
        self._control = env.rng(site.id, "control")
        self._occ = 0  # true occupancy bitset
        self._fault = [0, 0]  # fault bitsets per source (RANDOM, INJECTED)
        self._gen = [0] * bays  # generation per bay: older pending events are stale
        self._cars = False
        target = profiles.occupancy_target(site.site_type, env.local.hour(self._t0))
        for i in range(bays):
            if self._rng.random() < target:
                self._occ |= 1 << i
        self.ir[PARK_IR_BAYS] = bays

    # ---- cars ---------------------------------------------------------------------------------------------

    def start_cars(self, t: float) -> None:
        """Start the arrivals and departures of every bay."""
        if self._cars:
            return
        self._cars = True
        for i in range(self.bays):
            self._schedule(i, t)

    def _schedule(self, i: int, t: float) -> None:
        rng = self._rng
        hour = self.env.local.hour(t)
        stay = profiles.mean_stay_s(self.site.site_type, hour)
        if self._occ >> i & 1:
            self.env.scheduler.at(t + rng.expovariate(1.0 / stay), self._bay, (i, self._gen[i], True))
            return
        target = min(0.97, profiles.occupancy_target(self.site.site_type, hour))
        rate = target / ((1.0 - target) * stay)
        when = t + rng.expovariate(rate)
        boundary = next_hour(t)
        if when > boundary:  # rates change on the hour: draw again then (memoryless)
            self.env.scheduler.at(boundary, self._bay, (i, self._gen[i], False))
        else:
            self.env.scheduler.at(when, self._bay, (i, self._gen[i], True))

    def _bay(self, t: float, arg: tuple[int, int, bool]) -> None:
        i, gen, toggle = arg
        if gen != self._gen[i]:
            return
        if toggle:
            self._occ ^= 1 << i
            if self.env.trace is not None:
                self.env.record(t, self.id, f"bay {i} {'arrive' if self._occ >> i & 1 else 'leave'}", notable=False)
        self._schedule(i, t)

    def _restart(self, i: int, t: float) -> None:
        self._gen[i] += 1
        if self._cars:
            self._schedule(i, t)

    # ---- state --------------------------------------------------------------------------------------------

    @property
    def faulty(self) -> int:
        """Bitset of the bays whose sensor is faulty."""
        return self._fault[0] | self._fault[1]

    def reported(self) -> int:
        """Bitset of the bays reported occupied (DI 0..N-1): faulty sensors read free."""
        return self._occ & ~self.faulty

    def occupied_count(self) -> int:
        """IR5: bays reported occupied."""
        return self.reported().bit_count()

    def set_occupancy(self, occupied: int, t: float) -> None:
        """Make exactly `occupied` bays with a working sensor read occupied (cars arrive or leave at once)."""
        working = [i for i in range(self.bays) if not self.faulty >> i & 1]
        if not 0 <= occupied <= len(working):
            raise FaultError(f"{self.id}: occupancy {occupied} is outside 0-{len(working)} (working sensors)")
        taken = [i for i in working if self._occ >> i & 1]
        free = [i for i in working if not self._occ >> i & 1]
        if occupied > len(taken):
            change = self._control.sample(free, occupied - len(taken))
        else:
            change = self._control.sample(taken, len(taken) - occupied)
        for i in change:
            self._occ ^= 1 << i
            self._restart(i, t)
        self.env.record(t, self.id, f"occupancy set to {occupied}")

    def set_sensor_fault(self, i: int, on: bool, source: int, t: float) -> bool:
        """Raise or clear the sensor fault of bay i for one source; True if it changed."""
        if not 0 <= i < self.bays:
            raise FaultError(f"{self.id}: bay {i} is outside 0-{self.bays - 1}")
        before = self.faulty >> i & 1
        slot = 0 if source == RANDOM else 1
        if on:
            self._fault[slot] |= 1 << i
        else:
            self._fault[slot] &= ~(1 << i)
        if before == self.faulty >> i & 1:
            return False
        self.env.record(t, self.sensor_ids[i], f"sensor fault {'on' if on else 'off'}")
        return True

    # ---- registers ----------------------------------------------------------------------------------------

    def status_bits(self, now: float) -> int:
        """IR3 of a gateway (a faulty sensor is reported in IR6, not as a device fault)."""
        bits = 0
        if self.flag("mains"):
            bits |= STATUS_FAULT | STATUS_MAINS_FAILURE
        if self.flag("door"):
            bits |= STATUS_DOOR_OPEN
        return bits

    def refresh_inputs(self, start: int, stop: int, now: float) -> None:
        """IR5 and IR6 from the bits."""
        self.ir[PARK_IR_OCCUPIED] = self.occupied_count()
        self.ir[PARK_IR_FAULTY] = self.faulty.bit_count()

    def read_discrete_inputs(self, address: int, count: int) -> bytes:
        """DI 0..N-1 occupied, DI 4096+i sensor fault, packed LSB first."""
        self.env.sync()
        bits = (
            self.faulty >> (address - PARK_DI_FAULT_BASE)
            if address >= PARK_DI_FAULT_BASE
            else self.reported() >> address
        )
        bits &= (1 << count) - 1
        return bits.to_bytes((count + 7) // 8, "little")

    def snapshot(self) -> dict[str, Any]:
        """The gateway as JSON-able data."""
        data = super().snapshot()
        data.update(
            bays=self.bays,
            occupied=self.occupied_count(),
            faulty=self.faulty.bit_count(),
            display_mode=self.hr[PARK_HR_DISPLAY],
        )
        return data
