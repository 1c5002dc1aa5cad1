"""Kind 3 simulator: a traffic light controller running its plans, obeying the centre and its watchdog.

Everything is evaluated when read, from sim time: the plan in effect (priority: mains lost -> dark, conflict ->
flashing amber, manual panel, central request, local time-of-day table), the stage and second within the cycle
(cycles are referenced to a per-controller offset, as coordinated controllers are), and the detector counts
(per detector and per hour a seeded Poisson number of vehicles, spread evenly over the hour). A central request
(HR0 1-10) holds while HR0 is rewritten within the HR1 watchdog time (default 120 s); when it lapses HR0 reads 0
again. A faulty detector's count freezes. The watchdog counts sim seconds.
"""

from __future__ import annotations

import bisect
import random
from typing import Any

from drivers.modbus.registers import (
    DETECTORS,
    FAULT_CONFLICT,
    FAULT_DETECTOR,
    FAULT_MANUAL_PANEL,
    FAULT_SIGNAL_LAMP,
    KIND_TRAFFIC,
    MODE_CENTRAL,
    MODE_FAULT,
    MODE_LOCAL,
    MODE_MANUAL,
    PLAN_DARK,
    PLAN_FLASHING_AMBER,
    STATUS_DOOR_OPEN,
    STATUS_FAULT,
    STATUS_LOCAL_CONTROL,
    STATUS_MAINS_FAILURE,
    TRAF_HR_PLAN,
    TRAF_HR_WATCHDOG,
    TRAF_IR_CYCLE_SECOND,
    TRAF_IR_DETECTOR_BASE,
    TRAF_IR_FAULTS,
    TRAF_IR_MODE,
    TRAF_IR_PLAN,
    TRAF_IR_STAGE,
    traffic_map,
)
from drivers.sim import profiles
from drivers.sim.base import SimDevice
from drivers.sim.env import SimEnv
from drivers.sim.errors import FaultError
from scada.site.model import TrafficController

DEFAULT_WATCHDOG_S = 120


class ControllerSim(SimDevice):
    """A signalised intersection's controller, answering the kind-3 map."""

    kind = KIND_TRAFFIC
    faults = frozenset({"door", "mains", "silent", "refuse", "conflict", "signal_lamp", "detector", "manual"})

    def __init__(self, controller: TrafficController, env: SimEnv) -> None:
        super().__init__(controller.id, traffic_map(), env)
        self.controller = controller
        self.detectors = max(0, min(DETECTORS, controller.detectors))
        rng = env.rng(controller.id, "plans")
        stages = rng.randint(2, 4)
        self.plans: dict[int, tuple[int, list[int]]] = {}
        for plan, cycle in profiles.PLAN_CYCLES.items():
            weights = [rng.uniform(1.0, 2.0) for _ in range(stages)]
            free = cycle - 10 * stages
            ends: list[int] = []
            acc = 0.0
            for weight in weights:
                acc += 10 + free * weight / sum(weights)
                ends.append(round(acc))
            ends[-1] = cycle
            self.plans[plan] = (cycle, ends)
        self.offset = rng.uniform(0, 3600)
        self.night_flash = rng.random() < profiles.NIGHT_FLASH_SHARE
        self.hr[TRAF_HR_WATCHDOG] = DEFAULT_WATCHDOG_S
        self._t_request = self._t0
        self._manual_plan: int | None = None
        self._det_fault = [0] * DETECTORS  # source masks
        self._det_weight = [rng.uniform(0.3, 1.5) for _ in range(DETECTORS)]
        self._slot = int(self._t0 // 3600)
        self._cum = [0] * DETECTORS  # vehicles in the slots before self._slot
        self._in_slot = [self._draw(k, self._slot) for k in range(DETECTORS)]
        self._adjust = [
            (rng.randrange(0x10000) if k < self.detectors else 0) - self._raw(k, self._t0) for k in range(DETECTORS)
        ]
        self._frozen = [0] * DETECTORS

    # ---- detectors ----------------------------------------------------------------------------------------

    def _draw(self, k: int, slot: int) -> int:
        if k >= self.detectors:
            return 0
        mean = profiles.VEHICLES_PER_DETECTOR_HOUR[self.env.local.hour(slot * 3600.0)] * self._det_weight[k]
        return profiles.poisson(random.Random(f"{self.env.seed}:{self.id}:det:{k}:{slot}"), mean)

    def _raw(self, k: int, t: float) -> int:
        slot = int(t // 3600)
        while slot > self._slot:
            for j in range(DETECTORS):
                self._cum[j] += self._in_slot[j]
            self._slot += 1
            self._in_slot = [self._draw(j, self._slot) for j in range(DETECTORS)]
        fraction = max(0.0, min(1.0, (t - self._slot * 3600.0) / 3600.0))
        return self._cum[k] + int(self._in_slot[k] * fraction)

    def detector_count(self, k: int, now: float) -> int:
        """IR10+k: vehicles counted by detector k (wraps at 65536; frozen while the detector is faulty)."""
        if self._det_fault[k]:
            return self._frozen[k]
        return (self._raw(k, now) + self._adjust[k]) & 0xFFFF

    def set_detector_fault(self, k: int, on: bool, source: int, t: float) -> bool:
        """Raise or clear the fault of detector k for one source; True if it changed."""
        if not 0 <= k < DETECTORS:
            raise FaultError(f"detector {k} is outside 0-{DETECTORS - 1}")
        old = self._det_fault[k]
        new = (old | source) if on else (old & ~source)
        if bool(old) == bool(new):
            self._det_fault[k] = new
            return False
        if new:
            self._frozen[k] = self.detector_count(k, t)
        else:
            self._adjust[k] = self._frozen[k] - self._raw(k, t)
        self._det_fault[k] = new
        self.env.record(t, self.id, f"detector {k} fault {'on' if new else 'off'}")
        return True

    # ---- plans --------------------------------------------------------------------------------------------

    def set_manual(self, on: bool, source: int, t: float, plan: int | None = None) -> bool:
        """Put the manual panel in use (running `plan`, default the local plan) or release it."""
        if plan is not None and not 1 <= plan <= PLAN_FLASHING_AMBER:
            raise FaultError(f"manual plan {plan} is outside 1-{PLAN_FLASHING_AMBER}")
        if on:
            self._manual_plan = plan
        return self.set_flag("manual", on, source, t)

    def _lapse(self, now: float) -> None:
        hr = self.hr
        if hr[TRAF_HR_PLAN] and now - self._t_request >= hr[TRAF_HR_WATCHDOG]:
            hr[TRAF_HR_PLAN] = 0
            self.env.record(self._t_request + hr[TRAF_HR_WATCHDOG], self.id, "central request lapsed")

    def local_plan(self, now: float) -> int:
        """The plan of the local time-of-day table now."""
        return profiles.local_plan(int(self.env.local.seconds_of_day(now) // 60), self.night_flash)

    def plan_and_mode(self, now: float) -> tuple[int, int]:
        """(IR4 plan running, IR8 control mode) now."""
        self._lapse(now)
        if self.flag("mains"):
            return PLAN_DARK, MODE_FAULT
        if self.flag("conflict"):
            return PLAN_FLASHING_AMBER, MODE_FAULT
        if self.flag("manual"):
            return (self._manual_plan or self.local_plan(now)), MODE_MANUAL
        requested = self.hr[TRAF_HR_PLAN]
        if requested:
            return requested, MODE_CENTRAL
        return self.local_plan(now), MODE_LOCAL

    def stage_and_second(self, plan: int, now: float) -> tuple[int, int]:
        """(IR5 stage, IR6 second within the cycle) of a plan now; 0, 0 outside timing plans 1-8."""
        timing = self.plans.get(plan)
        if timing is None:
            return 0, 0
        cycle, ends = timing
        second = int((now + self.offset) % cycle)
        return bisect.bisect_right(ends, second) + 1, second

    def fault_bits(self) -> int:
        """IR7: signal lamp, conflict, detector, manual panel."""
        bits = 0
        if self.flag("signal_lamp"):
            bits |= FAULT_SIGNAL_LAMP
        if self.flag("conflict"):
            bits |= FAULT_CONFLICT
        if any(self._det_fault):
            bits |= FAULT_DETECTOR
        if self.flag("manual"):
            bits |= FAULT_MANUAL_PANEL
        return bits

    def status_bits(self, now: float) -> int:
        """IR3 of a controller."""
        faults = self.fault_bits()
        bits = 0
        if faults & (FAULT_SIGNAL_LAMP | FAULT_CONFLICT | FAULT_DETECTOR) or self.flag("mains"):
            bits |= STATUS_FAULT
        if self.flag("door"):
            bits |= STATUS_DOOR_OPEN
        if self.flag("mains"):
            bits |= STATUS_MAINS_FAILURE
        if faults & FAULT_MANUAL_PANEL:
            bits |= STATUS_LOCAL_CONTROL
        return bits

    # ---- registers ----------------------------------------------------------------------------------------

    def refresh_inputs(self, start: int, stop: int, now: float) -> None:
        """Evaluate plan, stage, cycle second, faults, mode and detector counts."""
        ir = self.ir
        plan, mode = self.plan_and_mode(now)
        stage, second = self.stage_and_second(plan, now)
        ir[TRAF_IR_PLAN] = plan
        ir[TRAF_IR_STAGE] = stage
        ir[TRAF_IR_CYCLE_SECOND] = second
        ir[TRAF_IR_FAULTS] = self.fault_bits()
        ir[TRAF_IR_MODE] = mode
        if stop > TRAF_IR_DETECTOR_BASE:
            for k in range(DETECTORS):
                ir[TRAF_IR_DETECTOR_BASE + k] = self.detector_count(k, now)

    def refresh_holding(self, now: float) -> None:
        """A lapsed central request reads 0."""
        self._lapse(now)

    def on_write(self, start: int, stop: int, now: float) -> None:
        """Writing HR0 (any value, 0 releases) restarts the watchdog."""
        if start <= TRAF_HR_PLAN < stop:
            self._t_request = now
            self.env.record(now, self.id, f"central request {self.hr[TRAF_HR_PLAN]}", notable=False)

    def snapshot(self) -> dict[str, Any]:
        """The controller as JSON-able data."""
        data = super().snapshot()
        now = self.env.clock.now()
        plan, mode = self.plan_and_mode(now)
        stage, second = self.stage_and_second(plan, now)
        data.update(
            plan=plan,
            mode=mode,
            stage=stage,
            cycle_second=second,
            requested=self.hr[TRAF_HR_PLAN],
            watchdog_s=self.hr[TRAF_HR_WATCHDOG],
            fault_bits=self.fault_bits(),
            detectors=[self.detector_count(k, now) for k in range(DETECTORS)],
        )
        return data
