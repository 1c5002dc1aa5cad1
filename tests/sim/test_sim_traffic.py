"""Traffic controllers: local time-of-day plans, stages, central requests and watchdog, faults, manual panel."""

from __future__ import annotations

import itertools

from drivers.sim import profiles
from drivers.sim.runner import CitySimulator
from drivers.sim.traffic import ControllerSim


def _tlc(sim: CitySimulator, device_id: str = "TLC-001") -> ControllerSim:
    controller = sim.device(device_id)
    assert isinstance(controller, ControllerSim)
    return controller


def _ir(controller: ControllerSim) -> list[int]:
    raw = controller.read_input_registers(0, 18)
    return [int.from_bytes(raw[k : k + 2], "big") for k in range(0, len(raw), 2)]


def _hr(controller: ControllerSim) -> list[int]:
    raw = controller.read_holding_registers(0, 2)
    return [int.from_bytes(raw[k : k + 2], "big") for k in range(0, len(raw), 2)]


def test_local_time_of_day_plan(sim: CitySimulator) -> None:
    controller = _tlc(sim)
    ir = _ir(controller)
    assert ir[4] == 4 and ir[8] == 0  # 18:00 local: evening peak plan, local mode
    sim.advance(5 * 3600)  # 23:00 local
    ir = _ir(controller)
    assert ir[4] == 1 and ir[8] == 0
    sim.advance(3 * 3600)  # 02:00 local
    assert _ir(controller)[4] == (10 if controller.night_flash else 1)


def test_stages_and_cycle_seconds_run(sim: CitySimulator) -> None:
    controller = _tlc(sim)
    cycle, ends = controller.plans[4]
    seen: list[tuple[int, int]] = []
    for _ in range(cycle + 1):
        ir = _ir(controller)
        seen.append((ir[5], ir[6]))
        sim.advance(1)
    seconds = [second for _, second in seen]
    assert all((b - a) % cycle == 1 for a, b in itertools.pairwise(seconds))
    stages = [stage for stage, _ in seen]
    assert set(stages) == set(range(1, len(ends) + 1))
    changes = sum(1 for a, b in itertools.pairwise(stages) if a != b)
    assert changes == len(ends)  # each stage once per cycle (plus the wrap back to stage 1)


def test_central_request_and_watchdog_lapse(sim: CitySimulator) -> None:
    controller = _tlc(sim)
    controller.write_holding(0, [7, 30])  # plan 7, watchdog 30 s
    ir = _ir(controller)
    assert ir[4] == 7 and ir[8] == 1
    sim.advance(29)
    assert _ir(controller)[4] == 7
    controller.write_holding(0, [7])  # refreshed within the watchdog
    sim.advance(29)
    assert _ir(controller)[4] == 7 and _hr(controller) == [7, 30]
    sim.advance(1.5)
    ir = _ir(controller)
    assert ir[4] == controller.local_plan(sim.sync()) == 4 and ir[8] == 0
    assert _hr(controller) == [0, 30]  # the request lapsed
    controller.write_holding(0, [9])
    assert _ir(controller)[4] == 9  # all red on request
    controller.write_holding(0, [0])
    assert _ir(controller)[8] == 0


def test_conflict_forces_flashing_amber_whatever_is_requested(sim: CitySimulator) -> None:
    controller = _tlc(sim)
    controller.write_holding(0, [3, 3600])
    controller.set_flag("conflict", True, 2, sim.sync())
    ir = _ir(controller)
    assert (ir[4], ir[5], ir[6], ir[8]) == (10, 0, 0, 3)
    assert ir[7] & 0b10 and ir[3] & 1
    controller.write_holding(0, [5])
    assert _ir(controller)[4] == 10
    controller.set_manual(True, 2, sim.sync(), plan=6)
    assert _ir(controller)[4] == 10  # the conflict wins over the manual panel too
    controller.set_flag("conflict", False, 2, sim.sync())
    assert _ir(controller)[4] == 6
    controller.set_manual(False, 2, sim.sync())
    ir = _ir(controller)
    assert ir[4] == 5 and ir[8] == 1 and ir[7] == 0 and ir[3] == 0


async def test_manual_panel_wins_over_the_centre(sim: CitySimulator) -> None:
    controller = _tlc(sim, "TLC-002")
    controller.write_holding(0, [3])
    await sim.set_fault("TLC-002", "manual", True, plan=8)
    ir = _ir(controller)
    assert (ir[4], ir[8]) == (8, 2)
    assert ir[7] & 0b1000 and ir[3] & 0b1000
    controller.write_holding(0, [2])
    assert _ir(controller)[4] == 8
    await sim.set_fault("TLC-002", "manual", False)
    assert _ir(controller)[4] == 2 and _ir(controller)[8] == 1
    await sim.set_fault("TLC-002", "manual", True)  # no plan: keeps the local plan
    assert _ir(controller)[4] == controller.local_plan(sim.sync())


async def test_signal_lamp_failure_keeps_running(sim: CitySimulator) -> None:
    controller = _tlc(sim)
    await sim.set_fault("TLC-001", "signal_lamp", True)
    ir = _ir(controller)
    assert ir[7] == 1 and ir[3] & 1 and ir[4] == 4 and ir[8] == 0


async def test_mains_failure_goes_dark(sim: CitySimulator) -> None:
    controller = _tlc(sim)
    await sim.set_fault("TLC-001", "mains", True)
    ir = _ir(controller)
    assert (ir[4], ir[5], ir[8]) == (0, 0, 3) and ir[3] & 0b101 == 0b101


async def test_detector_counts_follow_traffic_freeze_on_fault_and_wrap(sim: CitySimulator) -> None:
    controller = _tlc(sim)
    first = _ir(controller)[10:18]
    sim.advance(3600)
    second = _ir(controller)[10:18]
    deltas = [(b - a) % 0x10000 for a, b in zip(first, second, strict=False)]
    used = controller.detectors
    peak = max(profiles.VEHICLES_PER_DETECTOR_HOUR[18], profiles.VEHICLES_PER_DETECTOR_HOUR[19])
    assert all(0 < d < 2 * peak for d in deltas[:used])
    await sim.set_fault("TLC-001", "detector", True, detector=2)
    frozen = _ir(controller)
    assert frozen[7] & 0b100 and frozen[3] & 1
    sim.advance(1800)
    assert _ir(controller)[12] == frozen[12]
    await sim.set_fault("TLC-001", "detector", False, detector=2)
    assert _ir(controller)[12] == frozen[12]  # resumes from where it stopped
    sim.advance(600)
    assert _ir(controller)[12] != frozen[12]
    controller._adjust[0] += 0x10000 - 3 - controller.detector_count(0, sim.sync())
    sim.advance(600)
    assert _ir(controller)[10] < 1000  # wrapped past 65535


def test_night_is_quieter_than_the_evening(sim: CitySimulator) -> None:
    controller = _tlc(sim)
    evening = _ir(controller)[10]
    sim.advance(3600)
    evening = (_ir(controller)[10] - evening) % 0x10000
    sim.advance(8 * 3600)  # 03:00 local
    night = _ir(controller)[10]
    sim.advance(3600)
    night = (_ir(controller)[10] - night) % 0x10000
    assert night < evening / 5
