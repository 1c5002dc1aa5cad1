"""Lighting cabinets: levels, presence boost and hold, failures, power, energy, burning hours, mains, door."""

from __future__ import annotations

import pytest

from drivers.modbus.codec import u32
from drivers.sim import profiles
from drivers.sim.lighting import CabinetSim
from drivers.sim.runner import CitySimulator


def _cab(sim: CitySimulator, device_id: str = "CAB-0001") -> CabinetSim:
    cabinet = sim.device(device_id)
    assert isinstance(cabinet, CabinetSim)
    return cabinet


def _ir(cabinet: CabinetSim, address: int, count: int) -> list[int]:
    raw = cabinet.read_input_registers(address, count)
    return [int.from_bytes(raw[k : k + 2], "big") for k in range(0, len(raw), 2)]


def _lamp(cabinet: CabinetSim, i: int) -> list[int]:
    return _ir(cabinet, 100 + 8 * i, 8)


def test_presence_boost_and_hold(sim: CitySimulator) -> None:
    cabinet = _cab(sim)
    cabinet.write_holding(0, [0, 80, 30])  # automatic, boost 80 %, hold 30 s
    cabinet.write_holding(100, [20, 20])
    assert _lamp(cabinet, 0)[0] == 20
    count = _lamp(cabinet, 0)[5]
    sim.fire_presence(cabinet.lamp_ids[0])
    lamp = _lamp(cabinet, 0)
    assert lamp[0] == 80 and lamp[1] & 0b1001 == 0b1001  # on + presence now
    assert lamp[5] == (count + 1) & 0xFFFF
    assert _lamp(cabinet, 1)[0] == 20  # only its own detector
    sim.advance(29.5)
    assert _lamp(cabinet, 0)[0] == 80
    sim.fire_presence(cabinet.lamp_ids[0])  # retriggers the hold
    sim.advance(29.5)
    assert _lamp(cabinet, 0)[0] == 80
    sim.advance(1.0)
    lamp = _lamp(cabinet, 0)
    assert lamp[0] == 20 and not lamp[1] & 0b1000
    assert lamp[5] == (count + 2) & 0xFFFF


def test_boost_below_setpoint_and_disabled_boost(sim: CitySimulator) -> None:
    cabinet = _cab(sim)
    cabinet.write_holding(0, [0, 50, 60])
    cabinet.write_holding(100, [70])
    sim.fire_presence(cabinet.lamp_ids[0])
    assert _lamp(cabinet, 0)[0] == 70  # raised to the boost level, never lowered
    cabinet.write_holding(1, [0])  # boost 0 disables the local response
    cabinet.write_holding(101, [0])
    sim.fire_presence(cabinet.lamp_ids[1])
    lamp = _lamp(cabinet, 1)
    assert lamp[0] == 0 and lamp[1] & 0b1000  # detected, not lit
    assert lamp[2] == round(profiles.STANDBY_W * 10)


def test_shorter_hold_takes_effect_for_the_next_detection(sim: CitySimulator) -> None:
    cabinet = _cab(sim)
    cabinet.write_holding(0, [0, 60, 600])
    sim.fire_presence(cabinet.lamp_ids[3])
    cabinet.write_holding(2, [10])
    sim.advance(100)
    sim.fire_presence(cabinet.lamp_ids[3])
    sim.fire_presence(cabinet.lamp_ids[4])
    sim.advance(9.9)
    assert _lamp(cabinet, 4)[0] == 60
    sim.advance(0.2)
    assert _lamp(cabinet, 4)[0] == 0  # the new 10 s hold
    assert _lamp(cabinet, 3)[0] == 60  # the first detection's 600 s hold still runs
    sim.advance(490)
    assert _lamp(cabinet, 3)[0] == 0


def test_failed_lamp_reads_zero_whatever_its_setpoint(sim: CitySimulator) -> None:
    cabinet = _cab(sim)
    cabinet.write_holding(104, [100])
    energy_before = u32(*_lamp(cabinet, 4)[3:5])
    sim.city.lamps[cabinet.lamp_ids[4]][0].set_lamp_fault(4, "lamp_failure", True, 2, sim.sync())
    for command in (0, 1):
        cabinet.write_holding(0, [command])
        lamp = _lamp(cabinet, 4)
        assert lamp[0] == 0 and lamp[2] == 0 and lamp[1] & 0b10 and not lamp[1] & 1
    sim.advance(7200)
    assert u32(*_lamp(cabinet, 4)[3:5]) == energy_before  # no power, no energy
    assert _ir(cabinet, 3, 1)[0] & 1  # fault summary
    assert _lamp(cabinet, 5)[0] == 100  # the others obey the force


async def test_injected_lamp_failure_by_lamp_id_and_repair(sim: CitySimulator) -> None:
    cabinet = _cab(sim, "CAB-0002")
    cabinet.write_holding(100, [60] * 20)
    lamp_id = cabinet.lamp_ids[7]
    await sim.set_fault(lamp_id, "lamp_failure", True)
    assert _lamp(cabinet, 7)[0] == 0
    await sim.set_fault("CAB-0002", "node_fault", True, lamp=8)
    assert _lamp(cabinet, 8)[1] & 0b100 and _lamp(cabinet, 8)[0] == 60
    await sim.set_fault(lamp_id, "lamp_failure", False)
    lamp = _lamp(cabinet, 7)
    assert lamp[0] == 60 and not lamp[1] & 0b10


def test_energy_integrates_power_and_burning_hours_count(sim: CitySimulator) -> None:
    cabinet = _cab(sim)
    cabinet.write_holding(100, [100, 0])
    rated = cabinet._rated[0]
    start = _lamp(cabinet, 0)
    off_start = _lamp(cabinet, 1)
    hours = cabinet.lamp_state(0)["burning_hours"]
    sim.advance(3 * 3600)
    end = _lamp(cabinet, 0)
    off_end = _lamp(cabinet, 1)
    assert u32(*end[3:5]) - u32(*start[3:5]) == pytest.approx(3 * rated, abs=1.01)
    assert cabinet.lamp_state(0)["burning_hours"] == pytest.approx(hours + 3)
    assert end[6] == int(hours + 3) & 0xFFFF
    assert u32(*off_end[3:5]) - u32(*off_start[3:5]) == pytest.approx(3 * profiles.STANDBY_W, abs=1.01)
    assert off_end[6] == off_start[6]  # off: no burning hours
    burn = cabinet.lamp_state(0)["burning_hours"]
    sim.advance(1800)
    assert cabinet.lamp_state(0)["burning_hours"] == pytest.approx(burn + 0.5)


def test_cabinet_meter_is_lamps_plus_losses(sim: CitySimulator) -> None:
    cabinet = _cab(sim)
    cabinet.write_holding(100, [100] * 10 + [40] * 10)
    lamps_w = sum(_lamp(cabinet, i)[2] for i in range(cabinet.count)) / 10.0
    assert cabinet.snapshot()["power_w"] == pytest.approx(profiles.cabinet_power(lamps_w), abs=0.2)
    before = _ir(cabinet, 0, 10)
    sim.advance(3600)
    after = _ir(cabinet, 0, 10)
    assert u32(after[5], after[6]) - u32(before[5], before[6]) == pytest.approx(
        profiles.cabinet_power(lamps_w), abs=1.5
    )
    assert 2200 <= after[7] <= 2400  # ~230 V × 10


def test_force_all_on_and_all_off(sim: CitySimulator) -> None:
    cabinet = _cab(sim)
    cabinet.write_holding(0, [1])
    assert all(_lamp(cabinet, i)[0] == 100 for i in range(cabinet.count))
    cabinet.write_holding(0, [2, 100, 60])
    sim.fire_presence(cabinet.lamp_ids[0])
    assert all(_lamp(cabinet, i)[0] == 0 for i in range(cabinet.count))  # presence ignored when forced off
    cabinet.write_holding(0, [0])
    assert _lamp(cabinet, 0)[0] == 100  # back to automatic: the boost of the running hold


async def test_mains_failure_and_door(sim: CitySimulator) -> None:
    cabinet = _cab(sim)
    cabinet.write_holding(100, [80] * 20)
    await sim.set_fault("CAB-0001", "mains", True)
    ident = _ir(cabinet, 0, 10)
    assert ident[3] & 0b101 == 0b101 and ident[7] == 0
    lamp = _lamp(cabinet, 0)
    assert lamp[0] == 0 and lamp[2] == 0 and lamp[1] & 0b100
    energy = u32(ident[5], ident[6])
    sim.advance(3600)
    assert u32(*_ir(cabinet, 5, 2)) == energy  # no mains, meter stands still
    await sim.set_fault("CAB-0001", "mains", False)
    await sim.set_fault("CAB-0001", "door", True)
    ident = _ir(cabinet, 0, 10)
    assert ident[3] == 0b10 and ident[7] > 2000
    assert _lamp(cabinet, 0)[0] == 80


def test_presence_counter_wraps(sim: CitySimulator) -> None:
    cabinet = _cab(sim)
    cabinet._count[2] = 0xFFFF  # white-box: 65535 detections would take a while
    sim.fire_presence(cabinet.lamp_ids[2])
    assert _lamp(cabinet, 2)[5] == 0


def test_energy_counter_wraps_at_32_bits(sim: CitySimulator) -> None:
    cabinet = _cab(sim)
    cabinet.write_holding(100, [100])
    cabinet._energy[0] = 0xFFFFFFFF - 10.0  # white-box: 490 years at 1 kW otherwise
    cabinet._t[0] = sim.sync()
    cabinet._valid[0] = 0.0
    sim.advance(3600)
    assert u32(*_lamp(cabinet, 0)[3:5]) == pytest.approx(cabinet._rated[0] - 11, abs=1.01)


@pytest.mark.parametrize("seed", range(6))
async def test_cached_lamp_registers_never_go_stale(sim: CitySimulator, seed: int) -> None:
    """Random writes, detections, faults and time steps: every read equals an uncached evaluation."""
    import random

    rng = random.Random(seed)
    cabinet = _cab(sim, "CAB-0003")
    for _ in range(300):
        action = rng.random()
        if action < 0.15:
            cabinet.write_holding(100 + rng.randrange(20), [rng.choice((0, 10, 50, 100))])
        elif action < 0.2:
            cabinet.write_holding(0, [rng.choice((0, 0, 0, 1, 2)), rng.choice((0, 30, 80)), rng.choice((1, 5, 60))])
        elif action < 0.45:
            sim.fire_presence(cabinet.lamp_ids[rng.randrange(20)])
        elif action < 0.5:
            await sim.set_fault(
                cabinet.lamp_ids[rng.randrange(20)], rng.choice(("lamp_failure", "node_fault")), rng.random() < 0.6
            )
        elif action < 0.53:
            await sim.set_fault("CAB-0003", "mains", rng.random() < 0.3)
        else:
            sim.advance(rng.choice((0.3, 1.0, 7.0, 45.0, 600.0, 3600.0)))
        words = _ir(cabinet, 100, 8 * 20)
        for i in range(20):
            state = cabinet.lamp_state(i)
            status = (
                (1 if state["level"] else 0)
                | (2 if state["failed"] else 0)
                | (4 if state["node_fault"] or cabinet._mains else 0)
                | (8 if state["presence_now"] else 0)
            )
            energy = int(state["energy_wh"]) & 0xFFFFFFFF
            expected = [
                state["level"],
                status,
                int(state["power_w"] * 10 + 0.5),
                energy >> 16,
                energy & 0xFFFF,
                state["presence_count"],
                int(state["burning_hours"]) & 0xFFFF,
                0,
            ]
            assert words[8 * i : 8 * i + 8] == expected, (i, state)
