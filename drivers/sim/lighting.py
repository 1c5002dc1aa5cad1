"""Kind 1 simulator: a lighting segment controller (street cabinet) and its luminaires, event-driven.

Lamp state changes only on events (a setpoint or mode write, a presence detection, the end of a presence hold,
a lamp or mains fault). Energy and burning hours are integrated exactly between events and evaluated when read:
E(now) = E(t_last) + P · (now − t_last). Defaults at power-up: HR0 0 (automatic), HR1 0 (presence response
disabled until the centre sets a boost level), HR2 60 s, every setpoint 0. IR3 bit0 (fault summary) is set
while any lamp has failed or has a node fault, or the mains is lost; bit3 by the "local" fault only.
Lamp status bit3 "presence detected now" stays set for the hold time (HR2) after the last detection, whatever
the boost level. On mains failure every lamp reads level 0, power 0 and bit2 (node unreachable).
"""

from __future__ import annotations

import math
from typing import Any

from drivers.modbus.codec import u32_words
from drivers.modbus.registers import (
    IDENT_COUNT,
    KIND_LIGHTING,
    LAMP_BIT_FAILURE,
    LAMP_BIT_NODE_FAULT,
    LAMP_BIT_ON,
    LAMP_BIT_PRESENCE,
    LAMP_HR_BASE,
    LAMP_IR_BASE,
    LAMP_IR_STRIDE,
    LIGHT_HR_BOOST,
    LIGHT_HR_COMMAND,
    LIGHT_HR_HOLD,
    LIGHT_IR_ENERGY_WH,
    LIGHT_IR_LAMP_COUNT,
    LIGHT_IR_MAINS_DV,
    MAX_LAMPS,
    STATUS_DOOR_OPEN,
    STATUS_FAULT,
    STATUS_LOCAL_CONTROL,
    STATUS_MAINS_FAILURE,
    lighting_map,
)
from drivers.sim import profiles
from drivers.sim.base import SimDevice
from drivers.sim.env import SimEnv
from drivers.sim.errors import SimulatorError
from scada.site.model import Cabinet

DEFAULT_HOLD_S = 60
_NEVER = float("inf")
_MARGIN_S = 1e-6  # re-evaluate a hair early rather than late (float rounding)
UNNAMED_LAMP_W = 50.0


class CabinetSim(SimDevice):
    """A street cabinet with up to 128 lamps, answering the kind-1 map."""

    kind = KIND_LIGHTING
    faults = frozenset({"door", "mains", "silent", "refuse", "local"})

    def __init__(self, cabinet: Cabinet, env: SimEnv) -> None:
        count = 1 + max((lamp.index for lamp in cabinet.lamps), default=-1)
        if not 1 <= count <= MAX_LAMPS:
            raise SimulatorError(
                f"cabinet {cabinet.id} drives lamps 0-{count - 1}; a segment controller has 1-{MAX_LAMPS}"
            )
        super().__init__(cabinet.id, lighting_map(count), env)
        self.cabinet = cabinet
        self.count = count  # IR4; an index missing from the site is simulated as an unnamed luminaire
        self.lamp_ids = [f"{cabinet.id}#{i}" for i in range(count)]
        rated = [UNNAMED_LAMP_W] * count
        for lamp in cabinet.lamps:
            self.lamp_ids[lamp.index] = lamp.id
            rated[lamp.index] = lamp.rated_w
        now = self._t0
        rng = env.rng(cabinet.id, "lamps")
        self._rated = [max(1.0, float(w)) for w in rated]
        self._level = [0] * count
        self._power = [profiles.STANDBY_W] * count
        self._burn = [rng.uniform(0, 25_000) * 3600.0 for _ in range(count)]  # seconds lit so far
        self._energy = [self._burn[i] / 3600.0 * self._rated[i] * 0.55 for i in range(count)]  # Wh
        self._t = [now] * count  # when energy/burn were last settled
        self._count = [rng.randrange(0x10000) for _ in range(count)]
        self._hold = [0.0] * count  # presence hold ends at
        self._pending = [0.0] * count  # time of the pending hold-expiry event (0: none)
        self._fail = bytearray(count)  # fault source masks
        self._node = bytearray(count)
        self._failed = 0
        self._node_faults = 0
        self._valid = [0.0] * count  # lamp i's registers hold until this sim time (0: evaluate on next read)
        self._mains = False
        self._p_lamps = sum(self._power)
        self._cab_power = profiles.cabinet_power(self._p_lamps)
        self._cab_energy = sum(self._energy) * 1.05 + rng.uniform(0, 5000)
        self._cab_t = now
        self._phase = rng.uniform(0, 6.283)
        self.hr[LIGHT_HR_HOLD] = DEFAULT_HOLD_S
        self.ir[LIGHT_IR_LAMP_COUNT] = count

    # ---- the lamp model ---------------------------------------------------------------------------------

    def _target(self, i: int, now: float) -> int:
        if self._fail[i] or self._mains:
            return 0
        hr = self.hr
        mode = hr[LIGHT_HR_COMMAND]
        if mode == 1:
            return 100
        if mode == 2:
            return 0
        setpoint = hr[LAMP_HR_BASE + i]
        boost = hr[LIGHT_HR_BOOST]
        if boost > setpoint and self._hold[i] > now:
            return boost
        return setpoint

    def _settle(self, i: int, now: float) -> None:
        dt = now - self._t[i]
        if dt > 0:
            self._energy[i] += self._power[i] * dt / 3600.0
            if self._level[i]:
                self._burn[i] += dt
            self._t[i] = now

    def _settle_cabinet(self, now: float) -> None:
        dt = now - self._cab_t
        if dt > 0:
            self._cab_energy += self._cab_power * dt / 3600.0
            self._cab_t = now

    def _cabinet_changed(self, now: float) -> None:
        self._settle_cabinet(now)
        self._p_lamps = sum(self._power)
        self._cab_power = 0.0 if self._mains else profiles.cabinet_power(self._p_lamps)

    def _apply(self, i: int, now: float, *, cabinet: bool = True) -> bool:
        """Recompute lamp i's level and power; True when they changed."""
        level = self._target(i, now)
        power = 0.0 if (self._fail[i] or self._mains) else profiles.lamp_power(self._rated[i], level)
        if level == self._level[i] and power == self._power[i]:
            return False
        self._settle(i, now)
        delta = power - self._power[i]
        self._level[i] = level
        self._power[i] = power
        self._valid[i] = 0.0
        if cabinet and delta:
            self._settle_cabinet(now)
            self._p_lamps += delta  # exact sums are redone by _cabinet_changed on bulk changes
            self._cab_power = 0.0 if self._mains else profiles.cabinet_power(self._p_lamps)
        if self._hold[i] > now and level > self.hr[LAMP_HR_BASE + i]:
            self._ensure_expiry(i)
        return True

    def _ensure_expiry(self, i: int) -> None:
        """A boosted lamp needs an event at the end of its hold (unboosted ones need none)."""
        hold = self._hold[i]
        pending = self._pending[i]
        if pending == 0.0 or hold < pending:
            self._pending[i] = hold
            self.env.scheduler.at(hold, self._expire, i)

    def _apply_all(self, now: float) -> None:
        self._settle_cabinet(now)
        changed = False
        for i in range(self.count):
            changed |= self._apply(i, now, cabinet=False)
        if changed:
            self._cabinet_changed(now)

    def _expire(self, t: float, i: int) -> None:
        if self._pending[i] != t:
            return  # superseded by an earlier expiry
        if self._hold[i] > t:
            self._pending[i] = self._hold[i]
            self.env.scheduler.at(self._hold[i], self._expire, i)
            return
        self._pending[i] = 0.0
        self._apply(i, t)

    # ---- events -------------------------------------------------------------------------------------------

    def fire_presence(self, i: int, t: float) -> None:
        """Lamp i's presence detector fires at sim time t."""
        self._count[i] = (self._count[i] + 1) & 0xFFFF
        self._valid[i] = 0.0
        hold = t + self.hr[LIGHT_HR_HOLD]  # each detection holds for HR2 from its own time
        if hold > self._hold[i]:
            self._hold[i] = hold
        if self.hr[LIGHT_HR_BOOST] > self._level[i]:  # otherwise the boost cannot raise the level
            self._apply(i, t)
        if self.env.trace is not None:
            self.env.record(t, self.lamp_ids[i], "presence", notable=False)

    def set_lamp_fault(self, i: int, fault: str, on: bool, source: int, t: float) -> bool:
        """Raise or clear "lamp_failure" or "node_fault" of lamp i for one source; True if it changed."""
        masks = self._fail if fault == "lamp_failure" else self._node
        old = masks[i]
        masks[i] = (old | source) if on else (old & ~source)
        if bool(old) == bool(masks[i]):
            return False
        delta = 1 if masks[i] else -1
        self._valid[i] = 0.0
        if fault == "lamp_failure":
            self._failed += delta
            self._apply(i, t)
        else:
            self._node_faults += delta
        self.env.record(t, self.lamp_ids[i], f"{fault} {'on' if on else 'off'}")
        return True

    def lamp_lit(self, i: int) -> bool:
        """True while lamp i burns (level above 0)."""
        return self._level[i] > 0

    def lamp_failed(self, i: int) -> bool:
        """True while lamp i has failed."""
        return bool(self._fail[i])

    def on_flag(self, name: str, on: bool, t: float) -> None:
        """Mains loss switches every lamp off (and back)."""
        if name == "mains":
            self._mains = on
            self._valid = [0.0] * self.count
            self._apply_all(t)
            self._cabinet_changed(t)

    def on_write(self, start: int, stop: int, now: float) -> None:
        """A command, boost or setpoint write takes effect at once."""
        if start <= LIGHT_HR_BOOST and stop > LIGHT_HR_COMMAND:
            self._apply_all(now)
            return
        first = max(start, LAMP_HR_BASE) - LAMP_HR_BASE
        last = stop - LAMP_HR_BASE
        if last > first:
            self._settle_cabinet(now)
            changed = False
            for i in range(first, last):
                changed |= self._apply(i, now, cabinet=False)
            if changed:
                self._cabinet_changed(now)

    # ---- registers ----------------------------------------------------------------------------------------

    def status_bits(self, now: float) -> int:
        """IR3 of a cabinet."""
        bits = 0
        if self._failed or self._node_faults or self._mains:
            bits |= STATUS_FAULT
        if self.flag("door"):
            bits |= STATUS_DOOR_OPEN
        if self._mains:
            bits |= STATUS_MAINS_FAILURE
        if self.flag("local"):
            bits |= STATUS_LOCAL_CONTROL
        return bits

    def mains_dv(self, now: float) -> int:
        """IR7: mains voltage × 10 (0 on mains failure)."""
        if self._mains:
            return 0
        day = self.env.local.seconds_of_day(now) / 86400.0
        swing = 25.0 * math.cos(2.0 * math.pi * (day - 0.15)) - 15.0  # lower in the evening load
        noise = 10.0 * profiles.wiggle(now // 60.0, self._phase)
        return max(0, min(0xFFFF, int(profiles.MAINS_DV + swing + noise)))

    def cabinet_energy_wh(self, now: float) -> float:
        """The cabinet meter reading (Wh, not wrapped)."""
        return self._cab_energy + self._cab_power * max(0.0, now - self._cab_t) / 3600.0

    def refresh_inputs(self, start: int, stop: int, now: float) -> None:
        """Evaluate the cabinet block and the lamps whose registers are read."""
        ir = self.ir
        if start < IDENT_COUNT:
            high, low = u32_words(int(self.cabinet_energy_wh(now)) & 0xFFFFFFFF)
            ir[LIGHT_IR_ENERGY_WH] = high
            ir[LIGHT_IR_ENERGY_WH + 1] = low
            ir[LIGHT_IR_MAINS_DV] = self.mains_dv(now)
        if stop <= LAMP_IR_BASE:
            return
        first = max(0, (start - LAMP_IR_BASE) // LAMP_IR_STRIDE)
        last = min(self.count, (stop - 1 - LAMP_IR_BASE) // LAMP_IR_STRIDE + 1)
        level, power, energy, burn, t_last = self._level, self._power, self._energy, self._burn, self._t
        fail, node, hold, count = self._fail, self._node, self._hold, self._count
        mains = self._mains
        valid = self._valid
        for i in range(first, last):
            if valid[i] > now:
                continue  # its registers cannot have changed since they were last evaluated
            base = LAMP_IR_BASE + LAMP_IR_STRIDE * i
            dt = now - t_last[i]
            lit = level[i]
            watts = power[i]
            wh_now = energy[i] + watts * dt / 3600.0
            wh = int(wh_now)
            lit_s = burn[i] + (dt if lit else 0.0)
            status = LAMP_BIT_ON if lit else 0
            if fail[i]:
                status |= LAMP_BIT_FAILURE
            if node[i] or mains:
                status |= LAMP_BIT_NODE_FAULT
            until = _NEVER
            if hold[i] > now:
                status |= LAMP_BIT_PRESENCE
                until = hold[i]
            if watts > 0.0:
                until = min(until, now + (wh + 1 - wh_now) * 3600.0 / watts)
            if lit:
                until = min(until, now + 3600.0 - lit_s % 3600.0)
            valid[i] = until - _MARGIN_S
            wh &= 0xFFFFFFFF
            ir[base] = lit
            ir[base + 1] = status
            ir[base + 2] = min(0xFFFF, int(watts * 10.0 + 0.5))
            ir[base + 3] = wh >> 16
            ir[base + 4] = wh & 0xFFFF
            ir[base + 5] = count[i]
            ir[base + 6] = int(lit_s / 3600.0) & 0xFFFF

    # ---- views --------------------------------------------------------------------------------------------

    def lamp_state(self, i: int) -> dict[str, Any]:
        """Lamp i as JSON-able data, evaluated now."""
        now = self.env.sync()
        dt = now - self._t[i]
        return {
            "id": self.lamp_ids[i],
            "index": i,
            "setpoint": self.hr[LAMP_HR_BASE + i],
            "level": self._level[i],
            "power_w": round(self._power[i], 3),
            "energy_wh": self._energy[i] + self._power[i] * dt / 3600.0,
            "burning_hours": (self._burn[i] + (dt if self._level[i] else 0.0)) / 3600.0,
            "presence_count": self._count[i],
            "presence_now": self._hold[i] > now,
            "failed": bool(self._fail[i]),
            "node_fault": bool(self._node[i]),
        }

    def snapshot(self) -> dict[str, Any]:
        """The cabinet as JSON-able data (lamps summarised)."""
        data = super().snapshot()
        now = self.env.clock.now()
        data.update(
            mode=self.hr[LIGHT_HR_COMMAND],
            boost=self.hr[LIGHT_HR_BOOST],
            hold_s=self.hr[LIGHT_HR_HOLD],
            lamps=self.count,
            lamps_lit=sum(1 for level in self._level if level),
            lamps_failed=self._failed,
            power_w=round(self._cab_power, 2),
            energy_wh=round(self.cabinet_energy_wh(now), 3),
            mains_v=self.mains_dv(now) / 10.0,
        )
        return data
