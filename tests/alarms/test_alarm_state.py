"""The Part 9 state machine of a condition, through the engine: transitions, Retain, EventIds and status codes."""

from __future__ import annotations

from dataclasses import replace

import pytest
from alarmkit import alarm, lamp, rig

from scada.alarms import (
    AlarmsConfig,
    AlreadyAckedError,
    AlreadyConfirmedError,
    AlreadyDisabledError,
    AlreadyEnabledError,
    ConditionDisabledError,
    EventIdUnknownError,
    UnknownConditionError,
)
from scada.model import Quality

LAMP = lamp(1, 0)
COND = alarm(LAMP, "LampFailure")
STATUS = {
    EventIdUnknownError: 0x809A0000,  # BadEventIdUnknown
    AlreadyAckedError: 0x80CF0000,  # BadConditionBranchAlreadyAcked
    AlreadyConfirmedError: 0x80D00000,  # BadConditionBranchAlreadyConfirmed
    ConditionDisabledError: 0x80990000,  # BadConditionDisabled
    AlreadyEnabledError: 0x80CC0000,  # BadConditionAlreadyEnabled
    AlreadyDisabledError: 0x80980000,  # BadConditionAlreadyDisabled
    UnknownConditionError: 0x80340000,  # BadNodeIdUnknown
}


def states(r, path=COND):  # type: ignore[no-untyped-def]
    c = r.cond(path)
    return (c.active, c.acked, c.confirmed, c.retain)


def test_status_codes_are_the_part9_ones() -> None:
    from asyncua import ua

    names = {
        EventIdUnknownError: "BadEventIdUnknown",
        AlreadyAckedError: "BadConditionBranchAlreadyAcked",
        AlreadyConfirmedError: "BadConditionBranchAlreadyConfirmed",
        ConditionDisabledError: "BadConditionDisabled",
        AlreadyEnabledError: "BadConditionAlreadyEnabled",
        AlreadyDisabledError: "BadConditionAlreadyDisabled",
        UnknownConditionError: "BadNodeIdUnknown",
    }
    for error, name in names.items():
        assert error.status == STATUS[error] == getattr(ua.StatusCodes, name)


def test_raise_acknowledge_confirm_then_clear() -> None:
    r = rig()
    r.feed((f"{LAMP}/LampFailure", False))
    assert r.engine.find(COND) is None  # a normal value creates nothing
    r.feed((f"{LAMP}/LampFailure", True))
    assert states(r) == (True, False, True, True)  # active, unacknowledged (Confirmed is True until acked)
    first = r.stamp(COND)
    r.engine.acknowledge(COND, first, "crew sent", "alice")
    cond = r.cond(COND)
    assert states(r) == (True, True, False, True)  # acknowledged, waiting for Confirm
    assert (cond.comment, cond.user) == ("crew sent", "alice")
    with pytest.raises(AlreadyAckedError) as acked:
        r.engine.acknowledge(COND, first, "again", "bob")
    assert acked.value.status == STATUS[AlreadyAckedError]
    second = r.stamp(COND)
    r.engine.confirm(COND, second, "lamp replaced", "bob")
    assert states(r) == (True, True, True, True)  # still active: retained
    with pytest.raises(AlreadyConfirmedError):
        r.engine.confirm(COND, second, None, "bob")
    r.feed((f"{LAMP}/LampFailure", False))
    assert states(r) == (False, True, True, False)  # back to normal, nothing pending: not retained
    assert r.transitions() == ["raised", "acknowledged", "confirmed", "cleared"]
    ack = r.journal[1]
    assert (ack.user, ack.comment, ack.acked, ack.confirmed, ack.severity) == ("alice", "crew sent", True, False, 300)
    assert r.journal[2].user == "bob" and r.journal[2].comment == "lamp replaced"


def test_a_cleared_unacknowledged_alarm_stays_retained_until_acknowledged_and_confirmed() -> None:
    r = rig()
    r.feed((f"{LAMP}/LampFailure", True))
    r.feed((f"{LAMP}/LampFailure", False))
    assert states(r) == (False, False, True, True)
    event = r.stamp(COND)
    r.engine.acknowledge(COND, event, "", "alice")
    assert states(r) == (False, True, False, True)
    r.engine.confirm(COND, event, "", "alice")
    assert states(r) == (False, True, True, False)


def test_confirm_before_acknowledge_is_refused() -> None:
    r = rig()
    r.feed((f"{LAMP}/LampFailure", True))
    with pytest.raises(AlreadyConfirmedError):
        r.engine.confirm(COND, r.stamp(COND), "too early", "alice")


def test_without_confirmation_an_acknowledged_alarm_is_done() -> None:
    r = rig(replace(AlarmsConfig(), confirm=False))
    r.feed((f"{LAMP}/LampFailure", True))
    r.engine.acknowledge(COND, r.stamp(COND), "", "alice")
    assert states(r) == (True, True, True, True)
    r.feed((f"{LAMP}/LampFailure", False))
    assert states(r) == (False, True, True, False)


def test_event_ids_unknown_stale_and_of_another_condition() -> None:
    r = rig()
    other = alarm(lamp(1, 1), "LampFailure")
    r.feed((f"{LAMP}/LampFailure", True), (f"{lamp(1, 1)}/LampFailure", True))
    old = r.stamp(COND)
    with pytest.raises(EventIdUnknownError) as unknown:
        r.engine.acknowledge(COND, b"\x00" * 16, "", "alice")
    assert unknown.value.status == STATUS[EventIdUnknownError]
    with pytest.raises(EventIdUnknownError):
        r.engine.acknowledge(other, old, "", "alice")  # an EventId of another condition
    r.feed((f"{LAMP}/LampFailure", False))
    r.feed((f"{LAMP}/LampFailure", True))  # a new activation: the old EventId is stale for Acknowledge
    with pytest.raises(EventIdUnknownError):
        r.engine.acknowledge(COND, old, "", "alice")
    r.engine.add_comment(COND, old, "seen before", "alice")  # a comment may refer to any recent event
    assert r.cond(COND).comment == "seen before"
    r.engine.acknowledge(COND, r.stamp(COND), "", "alice")
    assert r.cond(COND).acked


def test_add_comment_changes_comment_and_user_and_is_journaled() -> None:
    r = rig()
    r.feed((f"{LAMP}/LampFailure", True))
    event = r.stamp(COND)
    r.clock.advance(5)
    r.engine.add_comment(COND, event, "called the contractor", "carol")
    cond = r.cond(COND)
    assert (cond.comment, cond.user, cond.comment_time) == ("called the contractor", "carol", r.clock.now)
    assert (cond.active, cond.acked) == (True, False)  # a comment acknowledges nothing
    last = r.journal[-1]
    assert (last.transition, last.user, last.comment) == ("commented", "carol", "called the contractor")


def test_disable_ignores_the_process_and_enable_evaluates_it_again() -> None:
    r = rig()
    r.feed((f"{LAMP}/LampFailure", True))
    event = r.stamp(COND)
    r.engine.disable(COND, "alice")
    assert states(r) == (False, True, True, False)
    assert not r.cond(COND).enabled
    with pytest.raises(AlreadyDisabledError):
        r.engine.disable(COND, "alice")
    with pytest.raises(ConditionDisabledError) as disabled:
        r.engine.acknowledge(COND, event, "", "alice")
    assert disabled.value.status == STATUS[ConditionDisabledError]
    with pytest.raises(ConditionDisabledError):
        r.engine.timed_shelve(COND, 60, "alice")
    r.feed((f"{LAMP}/LampFailure", False), (f"{LAMP}/LampFailure", True))  # ignored while disabled
    assert r.transitions() == ["raised", "disabled"]
    r.engine.enable(COND, "alice")
    assert states(r) == (True, False, True, True)  # the value is still True: a new activation
    with pytest.raises(AlreadyEnabledError):
        r.engine.enable(COND, "alice")
    assert r.transitions() == ["raised", "disabled", "enabled", "raised"]


def test_enable_of_a_condition_whose_value_is_normal_leaves_it_normal() -> None:
    r = rig()
    r.feed((f"{LAMP}/LampFailure", True))
    r.engine.disable(COND)
    r.feed((f"{LAMP}/LampFailure", False))
    r.engine.enable(COND)
    assert states(r) == (False, True, True, False)


def test_quality_follows_the_value_without_changing_the_state() -> None:
    r = rig()
    r.feed((f"{LAMP}/LampFailure", True))
    r.changes.clear()
    r.feed((f"{LAMP}/LampFailure", None, Quality.BAD_COMM))
    cond = r.cond(COND)
    assert (cond.active, cond.quality) == (True, Quality.BAD_COMM)
    assert r.changes == [COND]  # a quality change is a change (an event)
    r.feed((f"{LAMP}/LampFailure", True, Quality.UNCERTAIN_LAST_USABLE))
    assert (cond.active, cond.quality) == (True, Quality.UNCERTAIN_LAST_USABLE)
    r.feed((f"{LAMP}/LampFailure", False))
    assert (cond.active, cond.quality) == (False, Quality.GOOD)
    assert r.transitions() == ["raised", "cleared"]  # quality changes are not journaled transitions


def test_bad_records_of_a_never_abnormal_condition_create_nothing() -> None:
    r = rig()
    r.feed((f"{LAMP}/LampFailure", None, Quality.BAD_COMM), (f"{LAMP}/Level", 50.0), ("Nowhere/X", True))
    assert list(r.engine.conditions()) == []
    assert r.changes == []


def test_unknown_condition_and_lazy_creation_for_operator_methods() -> None:
    r = rig()
    with pytest.raises(UnknownConditionError) as unknown:
        r.engine.disable("Lighting/CAB-0001/Alarms/NoSuchAlarm")
    assert unknown.value.status == STATUS[UnknownConditionError]
    r.engine.disable(COND, "alice")  # a known slot: the operator may disable a lamp's alarm before it fires
    r.feed((f"{LAMP}/LampFailure", True))
    assert not r.cond(COND).active
