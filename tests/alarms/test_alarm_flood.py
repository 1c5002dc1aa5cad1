"""Alarm floods (ISA-18.2): a cabinet's communication loss or mains failure suppresses its lamps' alarms, counted."""

from __future__ import annotations

from dataclasses import replace

from alarmkit import alarm, lamp, rig

from scada.alarms import AlarmsConfig, FloodConfig
from scada.model import Quality

CAB = "Lighting/CAB-0001"
COMM = alarm(CAB, "CommunicationLost")
MAINS = alarm(CAB, "MainsFailure")
LAMPS = [lamp(1, i) for i in range(4)]
FAIL = [alarm(path, "LampFailure") for path in LAMPS]


def flood_rig(delay: float = 10.0, parents: frozenset[str] = frozenset({"comm_lost", "mains_failure"})):  # type: ignore[no-untyped-def]
    return rig(replace(AlarmsConfig(), flood=FloodConfig(suppress_children_on=parents, release_delay_s=delay)))


def test_lamp_alarms_during_a_communication_loss_are_suppressed_and_counted() -> None:
    r = flood_rig()
    r.feed((f"{LAMPS[0]}/LampFailure", True))  # a lamp failed before: shown
    assert r.cond(FAIL[0]).retain
    r.feed((f"{CAB}/CommunicationOk", False), *((f"{path}/LampFailure", None, Quality.BAD_COMM) for path in LAMPS))
    comm = r.cond(COMM)
    assert comm.active and comm.retain and comm.severity == 700
    first = r.cond(FAIL[0])
    assert (first.active, first.suppressed, first.retain, first.quality) == (True, True, False, Quality.BAD_COMM)
    assert comm.message.endswith("(+1 lamp alarm suppressed)")
    assert r.transitions("L-100000") == ["raised", "suppressed"]
    assert r.journal[-1].detail == "comm_lost on cabinet CAB-0001"
    # while the cabinet is lost, lamp alarms that arrive (e.g. last values before the loss) are suppressed at birth
    r.feed((f"{LAMPS[1]}/LampFailure", True), (f"{LAMPS[2]}/LampFailure", True))
    for path in FAIL[1:3]:
        cond = r.cond(path)
        assert (cond.active, cond.suppressed, cond.retain) == (True, True, False)
    assert comm.message == "Communication lost: cabinet CAB-0001 (Cabinet 1) (+3 lamp alarms suppressed)"
    assert r.engine.suppressed_count("CAB-0001") == 3
    raised = [t for t in r.journal if t.transition == "raised" and t.source in ("L-100001", "L-100002")]
    assert [(t.suppressed, t.detail != "") for t in raised] == [(True, True), (True, True)]
    summary = r.engine.summary()
    assert summary.by_kind["lamp_failure"].suppressed == 3 and summary.by_kind["lamp_failure"].retained == 0
    assert summary.by_kind["comm_lost"].active == 1 and summary.by_district["north"].active == 4


def test_release_after_the_delay_reevaluates_the_children_from_their_latest_values() -> None:
    r = flood_rig(delay=10.0)
    r.feed((f"{CAB}/MainsFailure", True), *((f"{path}/LampFailure", True) for path in LAMPS))
    assert all(r.cond(path).suppressed for path in FAIL)
    assert r.cond(MAINS).message.endswith("(+4 lamp alarms suppressed)")
    # mains back: lamps 0-2 come back, lamp 3 really failed; the cabinet's alarm clears first
    r.feed((f"{CAB}/MainsFailure", False))
    assert r.cond(MAINS).active is False
    assert all(r.cond(path).suppressed for path in FAIL)  # still suppressed during the release delay
    r.clock.advance(3)
    r.feed(*((f"{path}/LampFailure", False) for path in LAMPS[:3]))
    for path in FAIL[:3]:
        cond = r.cond(path)
        # back to normal while suppressed: nobody saw it, nothing to acknowledge
        assert (cond.active, cond.acked, cond.confirmed, cond.retain) == (False, True, True, False)
    r.changes.clear()
    r.clock.advance(7)
    r.engine.tick()
    for path in FAIL[:3]:
        assert not r.cond(path).suppressed and not r.cond(path).retain
    last = r.cond(FAIL[3])
    assert (last.active, last.suppressed, last.acked, last.retain) == (True, False, False, True)
    assert FAIL[3] in r.changes  # now shown, as a new unacknowledged alarm
    assert r.engine.suppressed_count("CAB-0001") == 0
    assert r.cond(MAINS).message == "Mains restored: cabinet CAB-0001 (Cabinet 1)"
    assert r.transitions("L-100003") == ["raised", "unsuppressed"]


def test_a_parent_raised_again_during_the_release_delay_keeps_the_suppression() -> None:
    r = flood_rig(delay=10.0)
    r.feed((f"{CAB}/CommunicationOk", False), (f"{LAMPS[0]}/LampFailure", True))
    r.feed((f"{CAB}/CommunicationOk", True))
    r.clock.advance(5)
    r.feed((f"{CAB}/CommunicationOk", False))
    r.clock.advance(6)
    r.engine.tick()  # the first release is void: the cabinet is lost again
    assert r.cond(FAIL[0]).suppressed


def test_two_parents_clear_one_at_a_time() -> None:
    r = flood_rig(delay=0.0)
    r.feed((f"{CAB}/CommunicationOk", False), (f"{CAB}/MainsFailure", True), (f"{LAMPS[0]}/LampFailure", True))
    assert r.cond(COMM).message.endswith("(+1 lamp alarm suppressed)")
    assert r.cond(MAINS).message.endswith("(+1 lamp alarm suppressed)")
    r.feed((f"{CAB}/CommunicationOk", True))
    assert r.cond(FAIL[0]).suppressed  # mains still failed
    r.feed((f"{CAB}/MainsFailure", False))  # no delay: released at the end of the batch
    cond = r.cond(FAIL[0])
    assert (cond.suppressed, cond.active, cond.retain) == (False, True, True)


def test_other_cabinets_and_other_alarms_are_not_suppressed() -> None:
    r = flood_rig()
    r.feed((f"{CAB}/CommunicationOk", False))
    r.feed((f"{lamp(2, 0)}/LampFailure", True), ("Traffic/TLC-001/Fault", True), (f"{CAB}/DoorOpen", True))
    assert r.cond(alarm(lamp(2, 0), "LampFailure")).retain
    assert r.cond(alarm("Traffic/TLC-001", "ControllerFault")).retain
    assert r.cond(alarm(CAB, "DoorOpen")).retain  # the cabinet's own alarms are not its children


def test_flood_suppression_can_be_switched_off() -> None:
    r = flood_rig(parents=frozenset())
    r.feed((f"{CAB}/MainsFailure", True), *((f"{path}/LampFailure", True) for path in LAMPS))
    assert all(r.cond(path).retain and not r.cond(path).suppressed for path in FAIL)
    assert r.cond(MAINS).message == "Mains failure: cabinet CAB-0001 (Cabinet 1)"


def test_disabling_the_parent_releases_the_children() -> None:
    r = flood_rig(delay=0.0)
    r.feed((f"{CAB}/MainsFailure", True), (f"{LAMPS[1]}/LampFailure", True))
    r.engine.disable(MAINS, "alice")
    assert not r.cond(FAIL[1]).suppressed and r.cond(FAIL[1]).retain
