"""Read plans and command plans, pure: group reads inside the map, register writes per action."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from modbus_helpers import make_cabinet, make_controller, make_parking, make_sign

from drivers.modbus import registers as reg
from drivers.modbus.commands import RegisterWrite, check_writes, plan_command, plan_lamp_levels
from drivers.modbus.poller import DI, HR, IR, build_plan, device_map, poll_ranges
from scada.model import InvalidArgumentError, OutOfRangeError
from scada.site.model import Cabinet, Lamp


def map_ranges(dmap: reg.DeviceMap, table: str) -> tuple[range, ...]:
    return {IR: dmap.input_registers, HR: dmap.holding_registers, DI: dmap.discrete_inputs}[table]


def assert_plan_inside_map(device: Cabinet | object) -> None:
    """Every read lies within ONE range of the map (a gap is never bridged) and respects the Modbus limits."""
    plan = build_plan(device)  # type: ignore[arg-type]
    dmap = device_map(device)  # type: ignore[arg-type]
    for table, reads, limit in (
        (IR, plan.input_registers, 125),
        (HR, plan.holding_registers, 125),
        (DI, plan.discrete_inputs, 2000),
    ):
        for start, count in reads:
            assert 1 <= count <= limit
            assert any(start in r and start + count - 1 in r for r in map_ranges(dmap, table)), (table, start, count)
        covered = {a for start, count in reads for a in range(start, start + count)}
        wanted = {a for r in poll_ranges(device)[table] for a in r}  # type: ignore[arg-type]
        assert covered == wanted


def test_full_cabinet_reads() -> None:
    plan = build_plan(make_cabinet(502, 128))
    assert plan.input_registers == (
        (0, 10),
        (100, 125),
        (225, 125),
        (350, 125),
        (475, 125),
        (600, 125),
        (725, 125),
        (850, 125),
        (975, 125),
        (1100, 24),
    )
    assert plan.holding_registers == ((0, 3), (100, 125), (225, 3))
    assert plan.discrete_inputs == ()
    assert plan.reads == 13
    assert plan.size(IR) == 1124 and plan.size(HR) == 228


def test_small_cabinet_reads() -> None:
    plan = build_plan(make_cabinet(502, 4))
    assert plan.input_registers == ((0, 10), (100, 32))
    assert plan.holding_registers == ((0, 3), (100, 4))


def test_cabinet_reads_up_to_the_highest_configured_lamp() -> None:
    cabinet = make_cabinet(502, 0)
    cabinet.lamps = [
        Lamp(id=f"L{i}", cabinet_id=cabinet.id, index=i, lat=0, lon=0, rated_w=1, legacy_w=1) for i in (0, 5)
    ]
    plan = build_plan(cabinet)
    assert plan.input_registers == ((0, 10), (100, 48))
    assert plan.holding_registers == ((0, 3), (100, 6))


def test_cabinet_without_lamps_reads_only_its_own_block() -> None:
    plan = build_plan(make_cabinet(502, 0))
    assert plan.input_registers == ((0, 10),)
    assert plan.holding_registers == ((0, 3),)


def test_other_kinds_reads() -> None:
    assert build_plan(make_controller(502)).input_registers == ((0, 18),)
    assert build_plan(make_controller(502)).holding_registers == ((0, 2),)
    sign = build_plan(make_sign(502))
    assert sign.input_registers == ((0, 37),)
    assert sign.holding_registers == ((0, 4),)  # the HR text is not needed: Message is what IR 10-36 displays
    parking = build_plan(make_parking(502, 2000))
    assert parking.input_registers == ((0, 10),)
    assert parking.holding_registers == ((0, 1),)
    assert parking.discrete_inputs == ((0, 2000), (4096, 2000))


@given(st.integers(0, 128))
def test_cabinet_plans_stay_inside_the_map(lamps: int) -> None:
    assert_plan_inside_map(make_cabinet(502, lamps))


@given(st.integers(0, 2000))
def test_parking_plans_stay_inside_the_map(bays: int) -> None:
    assert_plan_inside_map(make_parking(502, bays))


def test_fixed_kinds_stay_inside_the_map() -> None:
    assert_plan_inside_map(make_controller(502))
    assert_plan_inside_map(make_sign(502))


# -- command plans ------------------------------------------------------------------------------------------


def test_set_level_of_one_lamp_is_one_fc06() -> None:
    cabinet = make_cabinet(502, 8)
    plan = plan_command(cabinet, "set_level", {"Level": 42.6}, lamp=cabinet.lamps[5])
    assert plan.writes == (RegisterWrite(105, (43,)),)
    assert plan.writes[0].function == 0x06
    assert plan.readback == ((HR, 105, 1),)
    assert plan.result_tags == (f"{cabinet.lamps[5].path}/LevelSetpoint",)


def test_set_all_levels_of_128_lamps_is_fc16_in_two_requests() -> None:
    cabinet = make_cabinet(502, 128)
    plan = plan_command(cabinet, "set_all_levels", {"Level": 70})
    assert [(w.address, len(w.values), w.function) for w in plan.writes] == [(100, 123, 0x10), (223, 5, 0x10)]
    assert all(value == 70 for w in plan.writes for value in w.values)
    assert len(plan.result_tags) == 128


def test_group_levels_are_written_as_contiguous_runs() -> None:
    cabinet = make_cabinet(502, 16)
    plan = plan_lamp_levels(cabinet, {0: 10, 1: 11, 2: 12, 7: 70, 9: 90, 10: 100})
    assert plan.writes == (
        RegisterWrite(100, (10, 11, 12)),
        RegisterWrite(107, (70,)),
        RegisterWrite(109, (90, 100)),
    )
    assert [w.function for w in plan.writes] == [0x10, 0x06, 0x10]


def test_group_levels_reject_unknown_lamps_and_values() -> None:
    cabinet = make_cabinet(502, 4)
    with pytest.raises(InvalidArgumentError, match="no lamp with index"):
        plan_lamp_levels(cabinet, {4: 10})
    with pytest.raises(OutOfRangeError):
        plan_lamp_levels(cabinet, {1: 101})
    with pytest.raises(InvalidArgumentError):
        plan_lamp_levels(cabinet, {})


def test_cabinet_settings() -> None:
    cabinet = make_cabinet(502, 4)
    assert plan_command(cabinet, "set_mode", {"Mode": 2}).writes == (RegisterWrite(0, (2,)),)
    assert plan_command(cabinet, "set_presence_boost", {"Level": 80}).writes == (RegisterWrite(1, (80,)),)
    assert plan_command(cabinet, "set_presence_hold", {"Seconds": 90}).writes == (RegisterWrite(2, (90,)),)
    both = plan_command(cabinet, "set_presence", {"BoostLevel": 60, "HoldSeconds": 45})
    assert both.writes == (RegisterWrite(1, (60, 45)),)
    assert both.writes[0].function == 0x10


@pytest.mark.parametrize(
    ("action", "args", "error"),
    [
        ("set_mode", {"Mode": 3}, OutOfRangeError),
        ("set_mode", {"Mode": 1.5}, InvalidArgumentError),
        ("set_mode", {"Mode": True}, InvalidArgumentError),
        ("set_mode", {}, InvalidArgumentError),
        ("set_presence_hold", {"Seconds": 0}, OutOfRangeError),
        ("set_presence_hold", {"Seconds": 3601}, OutOfRangeError),
        ("set_presence_boost", {"Level": float("nan")}, InvalidArgumentError),
        ("set_all_levels", {"Level": "50"}, InvalidArgumentError),
        ("open_door", {}, InvalidArgumentError),
    ],
)
def test_cabinet_argument_errors(action: str, args: dict[str, object], error: type[Exception]) -> None:
    with pytest.raises(error):
        plan_command(make_cabinet(502, 4), action, args)


def test_select_plan_writes_watchdog_then_plan() -> None:
    controller = make_controller(502)
    plan = plan_command(controller, "select_plan", {"Plan": 4, "DurationSeconds": 600}, watchdog_s=45)
    assert plan.writes == (RegisterWrite(1, (45,)), RegisterWrite(0, (4,)))
    assert plan.hold is not None and plan.hold.plan == 4 and plan.hold.duration_s == 600
    release = plan_command(controller, "release_plan", {})
    assert release.writes == (RegisterWrite(0, (0,)),) and release.release


def test_select_plan_checks_the_watchdog_against_the_map() -> None:
    with pytest.raises(OutOfRangeError, match="HR 1"):
        plan_command(make_controller(502), "select_plan", {"Plan": 4, "DurationSeconds": 600}, watchdog_s=5)
    with pytest.raises(OutOfRangeError):
        plan_command(make_controller(502), "select_plan", {"Plan": 11, "DurationSeconds": 600})


def test_display_is_one_fc16_over_hr_0_to_36() -> None:
    sign = make_sign(502)
    plan = plan_command(sign, "display", {"Text": "BOUCHON\nA 2 KM", "Pictogram": 3, "Flashing": True}, message_id=9)
    assert len(plan.writes) == 1
    write = plan.writes[0]
    assert write.address == 0 and len(write.values) == 37 and write.function == 0x10
    assert write.values[0:4] == (9, 3, 1, 0)
    assert write.values[10] == ord("B") << 8 | ord("O")
    assert plan.message_id == 9


def test_blank_commits_id_zero_and_empty_text() -> None:
    plan = plan_command(make_sign(502), "blank", {})
    assert plan.writes == (RegisterWrite(0, (0,) * 37),)
    assert plan.message_id == 0


@pytest.mark.parametrize(
    ("args", "error"),
    [
        ({"Text": "X" * 19}, InvalidArgumentError),
        ({"Text": "A\nB\nC\nD"}, InvalidArgumentError),
        ({"Text": "NOËL"}, InvalidArgumentError),
        ({"Text": 42}, InvalidArgumentError),
        ({}, InvalidArgumentError),
        ({"Text": "OK", "Pictogram": 8}, OutOfRangeError),
        ({"Text": "OK", "Flashing": "yes"}, InvalidArgumentError),
    ],
)
def test_display_argument_errors(args: dict[str, object], error: type[Exception]) -> None:
    with pytest.raises(error):
        plan_command(make_sign(502), "display", args, message_id=1)


def test_parking_display_mode() -> None:
    site = make_parking(502, 3)
    assert plan_command(site, "set_display_mode", {"Mode": 1}).writes == (RegisterWrite(0, (1,)),)
    with pytest.raises(OutOfRangeError):
        plan_command(site, "set_display_mode", {"Mode": 5})


def test_check_writes_uses_the_device_map() -> None:
    cabinet = make_cabinet(502, 4)
    with pytest.raises(InvalidArgumentError, match="HR 3 "):
        check_writes(cabinet, (RegisterWrite(3, (1,)),))
    with pytest.raises(InvalidArgumentError, match="HR 104"):
        check_writes(cabinet, (RegisterWrite(104, (1,)),))  # lamp slot 4 is not in a 4-lamp map
    with pytest.raises(OutOfRangeError):
        check_writes(cabinet, (RegisterWrite(100, (101,)),))
    sign = make_sign(502)
    with pytest.raises(InvalidArgumentError, match="HR 5"):
        check_writes(sign, (RegisterWrite(5, (0,)),))  # HR 4-9 only inside the whole commit block
    bad_text = [0] * 37
    bad_text[12] = 0x4101
    with pytest.raises(InvalidArgumentError, match="sign text"):
        check_writes(sign, (RegisterWrite(0, tuple(bad_text)),))
