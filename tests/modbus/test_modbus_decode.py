"""Pure decoding and encoding of register blocks, per kind (no I/O); addresses restated from field-devices.md."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from drivers.modbus.codec import sign_message
from drivers.modbus.decode import (
    CABINET_FIELDS,
    CONTROLLER_FIELDS,
    LAMP_FIELDS,
    PARKING_SITE_FIELDS,
    SENSOR_FIELDS,
    SIGN_COMMIT_COUNT,
    SIGN_FIELDS,
    IdentityError,
    check_identity,
    decode_cabinet,
    decode_controller,
    decode_lamp,
    decode_parking_site,
    decode_sensor,
    decode_sign,
    next_message_id,
    percent_register,
    sign_commit_block,
    vehicle_total,
)
from scada.catalog import VARIABLES, Kind

PY_TYPES = {"Boolean": bool, "UInt16": int, "UInt32": int, "Int32": int, "Double": float, "String": str}


def as_dict(fields: tuple[str, ...], values: tuple[object, ...]) -> dict[str, object]:
    return dict(zip(fields, values, strict=True))


@pytest.mark.parametrize(
    ("kind", "fields"),
    [
        (Kind.LAMP, LAMP_FIELDS),
        (Kind.CABINET, CABINET_FIELDS),
        (Kind.CONTROLLER, CONTROLLER_FIELDS),
        (Kind.SIGN, SIGN_FIELDS),
        (Kind.PARKING_SITE, PARKING_SITE_FIELDS),
        (Kind.PARKING_SENSOR, SENSOR_FIELDS),
    ],
)
def test_fields_are_the_catalog_variables(kind: Kind, fields: tuple[str, ...]) -> None:
    names = [spec.name for spec in VARIABLES[kind] if spec.name != "CommunicationOk"]
    assert sorted(fields) == sorted(names)
    assert len(set(fields)) == len(fields)


def sample_values() -> dict[Kind, dict[str, object]]:
    """One decode per kind, from non-trivial registers."""
    ir = [0] * 40
    ir[2:8] = [7, 0b1111, 3, 1, 2, 2301]
    lamp = as_dict(LAMP_FIELDS, decode_lamp([55, 0b1111, 312, 1, 2, 9, 1234, 0], 60))
    cabinet = as_dict(CABINET_FIELDS, decode_cabinet(ir[:10], [1, 80, 30]))
    tl = [0] * 18
    tl[4:9] = [3, 2, 41, 0b1111, 1]
    controller = as_dict(CONTROLLER_FIELDS, decode_controller(tl, [3, 30], 12))
    sg = [0] * 37
    sg[4:7] = [5, 1, 30]
    sign = as_dict(SIGN_FIELDS, decode_sign(sg, [5, 2, 1, 0]))
    pk = [0] * 10
    pk[4:7] = [100, 40, 10]
    site = as_dict(PARKING_SITE_FIELDS, decode_parking_site(pk, [1]))
    sensor = as_dict(SENSOR_FIELDS, decode_sensor(True, False))
    return {
        Kind.LAMP: lamp,
        Kind.CABINET: cabinet,
        Kind.CONTROLLER: controller,
        Kind.SIGN: sign,
        Kind.PARKING_SITE: site,
        Kind.PARKING_SENSOR: sensor,
    }


@pytest.mark.parametrize("kind", [k for k in Kind])
def test_python_types_follow_the_catalog_dtype(kind: Kind) -> None:
    values = sample_values()[kind]
    for spec in VARIABLES[kind]:
        if spec.name == "CommunicationOk":
            continue
        assert type(values[spec.name]) is PY_TYPES[spec.dtype], spec.name


def test_lamp_every_variable() -> None:
    # IR 100+8i: level, status, power W x10, energy Wh hi/lo, presence counter, burning hours, reserved
    energy_wh = 0x0001_86A5  # 100005 Wh: needs both words
    values = as_dict(
        LAMP_FIELDS, decode_lamp([73, 0b0001, 425, energy_wh >> 16, energy_wh & 0xFFFF, 65535, 40000, 0], 80)
    )
    assert values == {
        "Level": 73.0,
        "LevelSetpoint": 80.0,
        "On": True,
        "LampFailure": False,
        "NodeFault": False,
        "PresenceDetected": False,
        "PowerW": 42.5,
        "EnergyKWh": 100.005,
        "PresenceCount": 65535,
        "BurningHours": 40000,
    }


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (0b0001, {"On": True, "LampFailure": False, "NodeFault": False, "PresenceDetected": False}),
        (0b0010, {"On": False, "LampFailure": True, "NodeFault": False, "PresenceDetected": False}),
        (0b0100, {"On": False, "LampFailure": False, "NodeFault": True, "PresenceDetected": False}),
        (0b1000, {"On": False, "LampFailure": False, "NodeFault": False, "PresenceDetected": True}),
        (0xFFF0, {"On": False, "LampFailure": False, "NodeFault": False, "PresenceDetected": False}),
    ],
)
def test_lamp_status_bits(status: int, expected: dict[str, bool]) -> None:
    values = as_dict(LAMP_FIELDS, decode_lamp([0, status, 0, 0, 0, 0, 0, 0], 0))
    assert {name: values[name] for name in expected} == expected


def test_lamp_energy_is_high_word_first() -> None:
    assert as_dict(LAMP_FIELDS, decode_lamp([0, 0, 0, 1, 0, 0, 0, 0], 0))["EnergyKWh"] == 65.536
    assert as_dict(LAMP_FIELDS, decode_lamp([0, 0, 0, 0, 1, 0, 0, 0], 0))["EnergyKWh"] == 0.001
    top = as_dict(LAMP_FIELDS, decode_lamp([0, 0, 0, 0xFFFF, 0xFFFF, 0, 0, 0], 0))["EnergyKWh"]
    assert top == pytest.approx(4294967.295)


def test_cabinet_every_variable() -> None:
    ident = [1, 1, 4242, 0, 96, 0x0002, 0x0003, 2318, 0, 0]  # kind, version, heartbeat, status, N, Wh hi/lo, V x10
    values = as_dict(CABINET_FIELDS, decode_cabinet(ident, [2, 35, 120]))
    assert values == {
        "Mode": 2,
        "PresenceBoostLevel": 35.0,
        "PresenceHoldSeconds": 120,
        "Heartbeat": 4242,
        "LampCount": 96,
        "EnergyKWh": (2 * 65536 + 3) / 1000,
        "MainsVoltage": 231.8,
        "Fault": False,
        "DoorOpen": False,
        "MainsFailure": False,
        "LocalControl": False,
    }


@pytest.mark.parametrize(("bit", "name"), [(0, "Fault"), (1, "DoorOpen"), (2, "MainsFailure"), (3, "LocalControl")])
def test_cabinet_status_bits(bit: int, name: str) -> None:
    ident = [1, 1, 0, 1 << bit, 1, 0, 0, 0, 0, 0]
    values = as_dict(CABINET_FIELDS, decode_cabinet(ident, [0, 0, 1]))
    flags = {key: values[key] for key in ("Fault", "DoorOpen", "MainsFailure", "LocalControl")}
    assert flags == {key: key == name for key in flags}


def test_controller_every_variable() -> None:
    ir = [3, 1, 10, 0, 10, 4, 57, 0b0010, 3, 0] + [5] * 8
    values = as_dict(CONTROLLER_FIELDS, decode_controller(ir, [7, 45], 1000))
    assert values == {
        "ActivePlan": 10,
        "Stage": 4,
        "CycleSecond": 57,
        "ControlMode": 3,
        "Fault": True,  # bit1: conflict
        "SignalLampFailure": False,
        "DetectorFault": False,
        "ManualPanel": False,
        "VehicleCount": 1000,
        "RequestedPlan": 7,
        "WatchdogSeconds": 45,
    }


@pytest.mark.parametrize(
    ("bit", "name"), [(0, "SignalLampFailure"), (1, "Fault"), (2, "DetectorFault"), (3, "ManualPanel")]
)
def test_controller_fault_bits(bit: int, name: str) -> None:
    ir = [3, 1, 0, 0, 1, 1, 0, 1 << bit, 0, 0] + [0] * 8
    values = as_dict(CONTROLLER_FIELDS, decode_controller(ir, [0, 30], 0))
    flags = {key: values[key] for key in ("SignalLampFailure", "Fault", "DetectorFault", "ManualPanel")}
    assert flags == {key: key == name for key in flags}


def test_vehicle_total_starts_at_the_sum_then_adds_deltas() -> None:
    first = [10, 20, 0, 0, 0, 0, 0, 5]
    total = vehicle_total(None, None, first)
    assert total == 35
    second = [12, 20, 1, 0, 0, 0, 0, 5]
    assert vehicle_total(total, first, second) == 38


def test_vehicle_total_survives_counter_wrap() -> None:
    before = [65530, 0, 0, 0, 0, 0, 0, 0]
    after = [4, 0, 0, 0, 0, 0, 0, 0]  # wrapped: 65530 -> 65535 -> 0 -> 4 is 10 vehicles
    assert vehicle_total(100, before, after) == 110


def test_vehicle_total_is_a_uint32() -> None:
    assert vehicle_total(0xFFFFFFFF, [0], [2]) == 1


@given(
    st.lists(st.integers(0, 65535), min_size=8, max_size=8),
    st.lists(st.integers(0, 3000), min_size=8, max_size=8),
)
def test_vehicle_total_counts_every_increment_below_one_wrap(start: list[int], increments: list[int]) -> None:
    after = [(value + step) % 65536 for value, step in zip(start, increments, strict=True)]
    assert vehicle_total(1000, start, after) == 1000 + sum(increments)


def sign_ir(text_registers: list[int], message_id: int = 0, faults: int = 0, luminance: int = 0) -> list[int]:
    ir = [4, 1, 0, 0, message_id, faults, luminance, 0, 0, 0, *text_registers]
    assert len(ir) == 37
    return ir


def text_registers(*lines: str) -> list[int]:
    """IR 10-36 written by hand: 9 registers per line, two characters each, high byte first, 0x00 padding."""
    words: list[int] = []
    for index in range(3):
        raw = (lines[index] if index < len(lines) else "").encode("ascii").ljust(18, b"\x00")
        words += [raw[i] << 8 | raw[i + 1] for i in range(0, 18, 2)]
    return words


def test_sign_every_variable() -> None:
    ir = sign_ir(text_registers("ACCIDENT", "A 500 M", "RALENTIR"), message_id=17, faults=0, luminance=321)
    values = as_dict(SIGN_FIELDS, decode_sign(ir, [17, 1, 1, 0]))
    assert values == {
        "Message": "ACCIDENT\nA 500 M\nRALENTIR",
        "MessageId": 17,
        "Pictogram": 1,
        "Flashing": True,
        "Brightness": 0,
        "Luminance": 3210.0,
        "Fault": False,
        "PixelFailure": False,
        "PowerFault": False,
        "DoorOpen": False,
        "OverTemperature": False,
    }


def test_sign_blank_and_short_messages() -> None:
    assert as_dict(SIGN_FIELDS, decode_sign(sign_ir(text_registers()), [0, 0, 0, 0]))["Message"] == ""
    one_line = decode_sign(sign_ir(text_registers("BOUCHON")), [0, 0, 0, 0])
    assert as_dict(SIGN_FIELDS, one_line)["Message"] == "BOUCHON"
    middle = decode_sign(sign_ir(text_registers("", "X")), [0, 0, 2, 55])
    values = as_dict(SIGN_FIELDS, middle)
    assert values["Message"] == "\nX"
    assert values["Flashing"] is True  # HR 2 != 0
    assert values["Brightness"] == 55


@pytest.mark.parametrize(
    ("bit", "name"), [(0, "PixelFailure"), (1, "PowerFault"), (2, "DoorOpen"), (3, "OverTemperature")]
)
def test_sign_fault_bits_and_summary(bit: int, name: str) -> None:
    values = as_dict(SIGN_FIELDS, decode_sign(sign_ir(text_registers(), faults=1 << bit), [0, 0, 0, 0]))
    flags = {key: values[key] for key in ("PixelFailure", "PowerFault", "DoorOpen", "OverTemperature")}
    assert flags == {key: key == name for key in flags}
    assert values["Fault"] is True


def park(capacity: int, occupied: int, faulty: int, mode: int = 0) -> dict[str, object]:
    return as_dict(PARKING_SITE_FIELDS, decode_parking_site([2, 1, 0, 0, capacity, occupied, faulty, 0, 0, 0], [mode]))


def test_parking_site_every_variable() -> None:
    assert park(200, 150, 10, 1) == {
        "Capacity": 200,
        "Occupied": 150,
        "FaultySensors": 10,
        "Free": 40,
        "Full": False,
        "DisplayMode": 1,
        "OccupancyPercent": 100 * 150 / 190,
    }


def test_parking_full_agrees_with_percent() -> None:
    full = park(100, 95, 5)
    assert full["Free"] == 0 and full["Full"] is True and full["OccupancyPercent"] == 100.0
    over = park(100, 99, 5)  # more occupied than known bays: clamped
    assert over["Free"] == 0 and over["Full"] is True and over["OccupancyPercent"] == 100.0
    blind = park(50, 0, 50)  # every sensor faulty: nothing known free
    assert blind["Free"] == 0 and blind["Full"] is True and blind["OccupancyPercent"] == 100.0
    empty = park(50, 0, 0)
    assert empty["Free"] == 50 and empty["Full"] is False and empty["OccupancyPercent"] == 0.0


def test_sensor() -> None:
    assert decode_sensor(True, False) == (True, False)
    assert decode_sensor(False, True) == (False, True)


def test_identity_check() -> None:
    check_identity([1, 1, 0, 0, 0, 0, 0, 0, 0, 0], 1)
    with pytest.raises(IdentityError, match="kind 3"):
        check_identity([3, 1, 0, 0, 0, 0, 0, 0, 0, 0], 1)
    with pytest.raises(IdentityError, match="map version 2"):
        check_identity([1, 2, 0, 0, 0, 0, 0, 0, 0, 0], 1)


@pytest.mark.parametrize(("level", "register"), [(0, 0), (0.4, 0), (49.5, 50), (50.49, 50), (99.6, 100), (100, 100)])
def test_percent_register_rounds_half_up(level: float, register: int) -> None:
    assert percent_register(level) == register


@pytest.mark.parametrize("bad", [-0.1, 100.01, math.nan, math.inf, True, "50", None])
def test_percent_register_rejects(bad: object) -> None:
    with pytest.raises(ValueError):
        percent_register(bad)  # type: ignore[arg-type]


def test_message_ids_increment_and_wrap_skipping_zero() -> None:
    assert next_message_id(0) == 1
    assert next_message_id(1) == 2
    assert next_message_id(65534) == 65535
    assert next_message_id(65535) == 1


def test_sign_commit_block_layout() -> None:
    block = sign_commit_block(300, "AB\nC", 5, True)
    assert len(block) == SIGN_COMMIT_COUNT == 37
    assert block[0:4] == [300, 5, 1, 0]  # id, pictogram, flashing, brightness automatic
    assert block[4:10] == [0] * 6
    assert block[10] == 0x4142  # "AB", first character in the high byte
    assert block[11:19] == [0] * 8
    assert block[19] == 0x4300  # "C" then padding
    assert sign_message(block[10:]) == "AB\nC"


def test_sign_commit_block_rejects_bad_text() -> None:
    with pytest.raises(ValueError, match="not printable"):
        sign_commit_block(1, "CAFÉ", 0, False)
    with pytest.raises(ValueError, match="19 characters"):
        sign_commit_block(1, "X" * 19, 0, False)
    with pytest.raises(ValueError, match="4"):
        sign_commit_block(1, "A\nB\nC\nD", 0, False)
    with pytest.raises(ValueError, match="pictogram"):
        sign_commit_block(1, "A", 8, False)
