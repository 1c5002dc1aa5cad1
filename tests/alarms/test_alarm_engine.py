"""The engine's alarm kinds: which value raises what, car-park hysteresis, severities, summary, journal adapter."""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

import pytest
from alarmkit import T0, alarm, lamp, rig

from scada.alarms import KINDS_BY_KEY, AlarmEngine, AlarmsConfig, CarParkFullConfig, historian_journal
from scada.model import Quality, ValueRecord


@pytest.mark.parametrize(
    ("tag", "abnormal", "normal", "condition", "kind", "event_type"),
    [
        (f"{lamp(1, 2)}/LampFailure", True, False, "LampFailure", "lamp_failure", "OffNormalAlarmType"),
        (
            "Lighting/CAB-0002/CommunicationOk",
            False,
            True,
            "CommunicationLost",
            "comm_lost",
            "SystemOffNormalAlarmType",
        ),
        ("Traffic/TLC-001/CommunicationOk", False, True, "CommunicationLost", "comm_lost", "SystemOffNormalAlarmType"),
        ("Signs/VMS-01/CommunicationOk", False, True, "CommunicationLost", "comm_lost", "SystemOffNormalAlarmType"),
        ("Parking/PK-02/CommunicationOk", False, True, "CommunicationLost", "comm_lost", "SystemOffNormalAlarmType"),
        ("Lighting/CAB-0001/DoorOpen", True, False, "DoorOpen", "door_open", "OffNormalAlarmType"),
        ("Lighting/CAB-0001/MainsFailure", True, False, "MainsFailure", "mains_failure", "OffNormalAlarmType"),
        ("Traffic/TLC-001/Fault", True, False, "ControllerFault", "controller_fault", "OffNormalAlarmType"),
        (
            "Traffic/TLC-001/SignalLampFailure",
            True,
            False,
            "SignalLampFailure",
            "signal_lamp_failure",
            "OffNormalAlarmType",
        ),
        ("Signs/VMS-01/Fault", True, False, "SignFault", "sign_fault", "OffNormalAlarmType"),
    ],
)
def test_each_alarm_kind_follows_its_variable(
    tag: str, abnormal: Any, normal: Any, condition: str, kind: str, event_type: str
) -> None:
    severities = {key: 100 + index for index, key in enumerate(KINDS_BY_KEY)}
    r = rig(replace(AlarmsConfig(), severities=severities))
    device_path = tag.rsplit("/", 1)[0]
    path = alarm(device_path, condition)
    r.feed((tag, normal))
    assert r.engine.find(path) is None
    r.feed((tag, abnormal))
    cond = r.cond(path)
    assert (cond.active, cond.kind.key, cond.kind.event_type, cond.severity) == (
        True,
        kind,
        event_type,
        severities[kind],
    )
    assert cond.source_path == device_path and cond.input_tag == tag
    assert r.journal[-1].transition == "raised" and r.journal[-1].path == device_path
    r.feed((tag, normal))
    assert not cond.active and r.journal[-1].transition == "cleared"


def test_messages_name_the_device_and_its_street() -> None:
    r = rig()
    r.feed((f"{lamp(1, 0)}/LampFailure", True), ("Traffic/TLC-001/Fault", True))
    assert r.cond(alarm(lamp(1, 0), "LampFailure")).message == (
        "Lamp failure: lamp L-100000 (cabinet CAB-0001, Rue de la Gare)"
    )
    assert r.cond(alarm("Traffic/TLC-001", "ControllerFault")).message == (
        "Conflict fault, flashing amber: controller TLC-001 (Gare / Liberté)"
    )
    r.feed((f"{lamp(1, 0)}/LampFailure", False))
    assert r.cond(alarm(lamp(1, 0), "LampFailure")).message.startswith("Lamp back in service: lamp L-100000")


def test_car_park_full_has_hysteresis() -> None:
    config = replace(AlarmsConfig(), car_park_full=CarParkFullConfig(full_at_free=2, clear_at_free=6))
    r = rig(config)
    path = alarm("Parking/PK-01", "CarParkFull")
    for free in (20, 5, 3):
        r.feed(("Parking/PK-01/Free", free))
    assert r.engine.find(path) is None
    r.feed(("Parking/PK-01/Free", 2))
    cond = r.cond(path)
    assert cond.active and cond.message == "Car park full: car park PK-01 (Parking PK-01) (2 free)"
    for free in (0, 3, 5):  # between the limits: still full
        r.feed(("Parking/PK-01/Free", free))
        assert cond.active
    r.feed(("Parking/PK-01/Free", 6))
    assert not cond.active
    r.feed(("Parking/PK-01/Free", 4))  # between the limits again: stays clear
    assert not cond.active
    assert r.transitions() == ["raised", "cleared"]


def test_car_park_full_only_for_the_configured_site_types() -> None:
    r = rig()
    r.feed(("Parking/PK-02/Free", 0))
    assert r.engine.find(alarm("Parking/PK-02", "CarParkFull")) is None
    r2 = rig(replace(AlarmsConfig(), car_park_full=CarParkFullConfig(0, 5, ("carpark", "onstreet"))))
    r2.feed(("Parking/PK-02/Free", 0))
    assert r2.cond(alarm("Parking/PK-02", "CarParkFull")).active


def test_disabled_kinds_are_not_evaluated() -> None:
    r = rig(replace(AlarmsConfig(), disabled=frozenset({"door_open"})))
    r.feed(("Lighting/CAB-0001/DoorOpen", True))
    assert list(r.engine.conditions()) == []


def test_summary_counts_by_kind_and_district() -> None:
    r = rig()
    r.feed(
        (f"{lamp(1, 0)}/LampFailure", True),
        (f"{lamp(1, 1)}/LampFailure", True),
        (f"{lamp(2, 0)}/LampFailure", True),
        ("Signs/VMS-01/Fault", True),
    )
    path = alarm(lamp(1, 1), "LampFailure")
    r.engine.acknowledge(path, r.stamp(path), "", "alice")
    r.engine.timed_shelve(alarm(lamp(2, 0), "LampFailure"), 60, "alice")
    summary = r.engine.summary()
    assert (summary.total.active, summary.total.unacked, summary.total.unconfirmed, summary.total.shelved) == (
        4,
        3,
        1,
        1,
    )
    lamps = summary.by_kind["lamp_failure"]
    assert (lamps.active, lamps.unacked, lamps.retained) == (3, 2, 3)
    assert summary.by_district["north"].active == 2  # lamps of CAB-0001
    assert summary.by_district["south"].active == 2  # a lamp of CAB-0002 and the sign


def test_journal_failures_never_stop_the_engine() -> None:
    calls = []

    def broken(transition: Any) -> None:
        calls.append(transition)
        raise RuntimeError("database away")

    from alarmkit import make_site

    engine = AlarmEngine(make_site(), AlarmsConfig(), journal=broken, clock=lambda: T0)
    engine.apply([ValueRecord(f"{lamp(1, 0)}/LampFailure", True, Quality.GOOD, T0)])
    engine.apply([ValueRecord(f"{lamp(1, 1)}/LampFailure", True, Quality.GOOD, T0)])
    assert len(calls) == 2 and len(engine.retained()) == 2


def test_historian_journal_writes_one_event_row_per_transition() -> None:
    class Recorder:
        def __init__(self) -> None:
            self.rows: list[dict[str, Any]] = []

        def record_event(self, **fields: Any) -> None:
            self.rows.append(fields)

    recorder = Recorder()
    from alarmkit import make_site

    engine = AlarmEngine(make_site(), AlarmsConfig(), journal=historian_journal(recorder), clock=lambda: T0)
    engine.apply([ValueRecord(f"{lamp(1, 0)}/LampFailure", True, Quality.GOOD, T0)])
    path = alarm(lamp(1, 0), "LampFailure")
    engine.acknowledge(path, None, "crew sent", "alice")
    raised, acked = recorder.rows
    assert raised["source"] == lamp(1, 0) and raised["event_type"] == "OffNormalAlarmType"
    assert (raised["condition"], raised["state"], raised["severity"], raised["ts"]) == (
        "LampFailure",
        "raised",
        300,
        T0,
    )
    assert raised["data"] == {
        "device": "L-100000",
        "kind": "lamp_failure",
        "active": True,
        "acked": False,
        "confirmed": True,
        "shelved": False,
        "suppressed": False,
    }
    assert (acked["state"], acked["user"], acked["comment"]) == ("acknowledged", "alice", "crew sent")


def test_unrelated_records_cost_one_lookup() -> None:
    """34,000 lamps x 10 variables per poll: the records the engine does not watch must cost next to nothing."""
    from alarmkit import make_site

    engine = AlarmEngine(make_site(), AlarmsConfig())
    records = [ValueRecord(f"Lighting/CAB-0001/L-{i:06d}/Level", 50.0, Quality.GOOD, T0) for i in range(100_000)]
    normal = [ValueRecord(f"{lamp(1, i % 4)}/LampFailure", False, Quality.GOOD, T0) for i in range(100_000)]
    started = time.process_time()
    engine.apply(records)
    engine.apply(normal)
    elapsed = time.process_time() - started
    assert list(engine.conditions()) == []
    assert elapsed < 1.0, f"200,000 records took {elapsed:.2f} s of CPU"
