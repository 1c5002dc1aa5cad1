"""Shelving: timed (expires by itself, with an event), one-shot (ends when the alarm clears), unshelve, limits."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest
from alarmkit import T0, alarm, lamp, rig

from scada.alarms import AlarmsConfig, AlreadyShelvedError, NotShelvedError, Shelving, ShelvingTimeError
from scada.alarms.shelving import Deadlines, transition_name

LAMP = lamp(2, 3)
COND = alarm(LAMP, "LampFailure")


def raised():  # type: ignore[no-untyped-def]
    r = rig(replace(AlarmsConfig(), max_shelve_s=3600.0))
    r.feed((f"{LAMP}/LampFailure", True))
    return r


def test_timed_shelve_counts_down_and_expires_with_an_event() -> None:
    r = raised()
    r.engine.timed_shelve(COND, 600, "alice", "lamp crew on site")
    cond = r.cond(COND)
    assert (cond.shelving, cond.shelved, cond.last_transition) == (Shelving.TIMED, True, "UnshelvedToTimedShelved")
    assert cond.unshelve_in(r.clock.now) == 600_000.0
    assert r.engine.next_deadline() == cond.unshelve_at == T0 + timedelta(seconds=600)
    r.clock.advance(599)
    r.engine.tick()
    assert cond.shelving is Shelving.TIMED
    assert cond.unshelve_in(r.clock.now) == pytest.approx(1000.0)
    r.changes.clear()
    r.clock.advance(1)
    r.engine.tick()
    assert (cond.shelving, cond.unshelve_in(r.clock.now), cond.last_transition) == (
        Shelving.UNSHELVED,
        0.0,
        "TimedShelvedToUnshelved",
    )
    assert r.changes == [COND]  # the expiry is a change: an event
    shelved, expired = r.journal[-2], r.journal[-1]
    assert (shelved.transition, shelved.user, shelved.comment, shelved.detail) == (
        "shelved",
        "alice",
        "lamp crew on site",
        "timed 600 s",
    )
    assert (expired.transition, expired.user, expired.detail, expired.shelved) == (
        "unshelved",
        None,
        "shelving time expired",
        False,
    )
    assert r.engine.next_deadline() is None


def test_shelving_time_limits_and_repeated_shelving() -> None:
    r = raised()
    for seconds in (0, -5, 3600.5):
        with pytest.raises(ShelvingTimeError) as error:
            r.engine.timed_shelve(COND, seconds, "alice")
        assert error.value.status == 0x80D30000  # BadShelvingTimeOutOfRange
    with pytest.raises(NotShelvedError) as not_shelved:
        r.engine.unshelve(COND, "alice")
    assert not_shelved.value.status == 0x80D20000  # BadConditionNotShelved
    r.engine.timed_shelve(COND, 3600, "alice")
    with pytest.raises(AlreadyShelvedError) as already:
        r.engine.timed_shelve(COND, 60, "alice")
    assert already.value.status == 0x80D10000  # BadConditionAlreadyShelved
    r.engine.one_shot_shelve(COND, "alice")  # timed -> one-shot is a transition of the state machine
    assert r.cond(COND).last_transition == "TimedShelvedToOneShotShelved"
    with pytest.raises(AlreadyShelvedError):
        r.engine.one_shot_shelve(COND, "alice")
    r.engine.unshelve(COND, "bob", "enough")
    assert r.cond(COND).shelving is Shelving.UNSHELVED
    assert r.journal[-1].transition == "unshelved" and r.journal[-1].user == "bob"


def test_unshelve_cancels_the_expiry() -> None:
    r = raised()
    r.engine.timed_shelve(COND, 60, "alice")
    r.engine.unshelve(COND, "alice")
    r.engine.timed_shelve(COND, 600, "alice")
    r.clock.advance(61)
    r.engine.tick()  # the first plan was cancelled: nothing happens at 60 s
    assert r.cond(COND).shelving is Shelving.TIMED
    assert r.transitions()[-1] == "shelved"


def test_one_shot_shelve_ends_when_the_alarm_clears() -> None:
    r = raised()
    r.engine.one_shot_shelve(COND, "alice")
    cond = r.cond(COND)
    assert cond.shelving is Shelving.ONE_SHOT
    r.clock.advance(30)
    r.feed((f"{LAMP}/LampFailure", True))  # still failed: still shelved
    assert cond.shelving is Shelving.ONE_SHOT
    r.feed((f"{LAMP}/LampFailure", False))
    assert (cond.shelving, cond.last_transition) == (Shelving.UNSHELVED, "OneShotShelvedToUnshelved")
    assert r.transitions()[-3:] == ["shelved", "cleared", "unshelved"]
    assert r.journal[-1].detail == "one-shot shelving ends: back to normal"
    assert r.engine.next_deadline() is None


def test_one_shot_shelving_is_limited_by_max_time_shelved() -> None:
    r = raised()
    r.engine.one_shot_shelve(COND, "alice")
    r.clock.advance(3600)
    r.engine.tick()
    assert r.cond(COND).shelving is Shelving.UNSHELVED
    assert r.journal[-1].detail == "shelving time expired"


def test_shelving_does_not_hide_state_changes() -> None:
    r = raised()
    r.engine.timed_shelve(COND, 600, "alice")
    r.changes.clear()
    r.feed((f"{LAMP}/LampFailure", False))
    assert r.changes == [COND]
    assert r.cond(COND).shelving is Shelving.TIMED  # a timed shelve outlives the activation


def test_deadlines_replace_and_cancel() -> None:
    deadlines = Deadlines()
    deadlines.schedule(T0 + timedelta(seconds=10), "unshelve", "a")
    deadlines.schedule(T0 + timedelta(seconds=5), "unshelve", "a")  # replaces the first
    deadlines.schedule(T0 + timedelta(seconds=7), "release", "CAB-1")
    assert len(deadlines) == 2
    assert deadlines.next_due() == T0 + timedelta(seconds=5)
    assert deadlines.pop_due(T0 + timedelta(seconds=6)) == [("unshelve", "a")]
    deadlines.cancel("release", "CAB-1")
    assert deadlines.next_due() is None
    assert deadlines.pop_due(T0 + timedelta(seconds=60)) == []
    assert transition_name(Shelving.ONE_SHOT, Shelving.TIMED) == "OneShotShelvedToTimedShelved"
