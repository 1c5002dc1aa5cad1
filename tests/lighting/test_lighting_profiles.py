"""Night profiles and the schedule: parsing, step selection across midnight and DST changes, clamping, changes."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from scada.lighting.astro import FIXED, AstroClock, Night, SwitchTime
from scada.lighting.config import load_lighting_config
from scada.lighting.profiles import (
    CLOCK,
    OFF,
    ON,
    Profile,
    Step,
    StepTime,
    local_boost,
    parse_offset,
    plan_night,
)
from scada.lighting.schedule import LightingSchedule
from scada.site.loader import load_site

PARIS = ZoneInfo("Europe/Paris")
RESIDENTIAL = Profile(
    "residential",
    (Step(StepTime.parse("on"), 100), Step(StepTime.parse("23:00"), 30), Step(StepTime.parse("05:30"), 70)),
)
MAIN_ROADS = Profile(
    "main-roads",
    (Step(StepTime.parse("on"), 100), Step(StepTime.parse("00:30"), 50), Step(StepTime.parse("05:00"), 100)),
)


def paris(*args: int) -> datetime:
    """A Europe/Paris wall-clock time, aware."""
    return datetime(*args, tzinfo=PARIS)  # type: ignore[arg-type,misc]


def night(day: date, on: datetime, off: datetime) -> Night:
    """A night with given switching instants (window from local noon to local noon)."""
    clock = AstroClock(47.322, 5.0415, "Europe/Paris")
    return Night(day, clock.noon(day), clock.noon(day + timedelta(days=1)), on.astimezone(UTC), off.astimezone(UTC))


def test_offsets_and_step_times_parse() -> None:
    assert parse_offset("+10min") == timedelta(minutes=10)
    assert parse_offset("-1h30min") == timedelta(minutes=-90)
    assert parse_offset("+90s") == timedelta(seconds=90)
    assert parse_offset("") == timedelta(0)
    for bad in ("10min", "+", "+10 days", "+1x"):
        with pytest.raises(ValueError):
            parse_offset(bad)
    assert StepTime.parse("on") == StepTime(ON, timedelta(0), None, "on")
    assert StepTime.parse("off-45min") == StepTime(OFF, timedelta(minutes=-45), None, "off-45min")
    assert StepTime.parse("05:30") == StepTime(CLOCK, timedelta(0), time(5, 30), "05:30")
    for bad in ("25:00", "dusk", "5h30", ""):
        with pytest.raises(ValueError, match="unknown time"):
            StepTime.parse(bad)


def test_step_selection_across_midnight() -> None:
    n = night(date(2026, 1, 15), paris(2026, 1, 15, 17, 25), paris(2026, 1, 16, 8, 0))
    plan = plan_night(RESIDENTIAL, n, PARIS, 100.0)
    expect = [
        (paris(2026, 1, 15, 13, 0), False, 0, "day"),
        (paris(2026, 1, 15, 17, 24, 59), False, 0, "day"),
        (paris(2026, 1, 15, 17, 25), True, 100, "on"),
        (paris(2026, 1, 15, 22, 59, 59), True, 100, "on"),
        (paris(2026, 1, 15, 23, 0), True, 30, "23:00"),
        (paris(2026, 1, 16, 0, 0), True, 30, "23:00"),  # past midnight: still the 23:00 step
        (paris(2026, 1, 16, 5, 29), True, 30, "23:00"),
        (paris(2026, 1, 16, 5, 30), True, 70, "05:30"),
        (paris(2026, 1, 16, 7, 59, 59), True, 70, "05:30"),
        (paris(2026, 1, 16, 8, 0), False, 0, "day"),
    ]
    for t, lit, level, step in expect:
        state = plan.state_at(t.astimezone(UTC))
        assert (state.lit, state.level, state.step) == (lit, level, step), t
    state = plan.state_at(paris(2026, 1, 16, 1, 0).astimezone(UTC))
    assert state.since == paris(2026, 1, 15, 23, 0) and state.until == paris(2026, 1, 16, 5, 30)
    assert state.boost == 100  # the local boost raises a 30 % lamp
    assert plan.state_at(paris(2026, 1, 15, 20, 0).astimezone(UTC)).boost == 0  # not a 100 % one


def test_steps_on_the_night_the_clocks_go_back() -> None:
    # 25 October 2026: 03:00 CEST becomes 02:00 CET; the night is an hour longer in UTC.
    n = night(date(2026, 10, 24), paris(2026, 10, 24, 18, 46), paris(2026, 10, 25, 7, 0))
    plan = plan_night(MAIN_ROADS, n, PARIS, 100.0)
    assert [s.at for s in plan.steps] == [
        datetime(2026, 10, 24, 16, 46, tzinfo=UTC),
        datetime(2026, 10, 24, 22, 30, tzinfo=UTC),  # 00:30 CEST
        datetime(2026, 10, 25, 4, 0, tzinfo=UTC),  # 05:00 CET
    ]
    assert plan.steps[2].at - plan.steps[1].at == timedelta(hours=5, minutes=30)  # 4 h 30 on the wall clock
    state = plan.state_at(datetime(2026, 10, 25, 1, 30, tzinfo=UTC))  # 02:30 CET, the second one
    assert (state.level, state.step) == (50, "00:30")
    ambiguous = Profile("p", (Step(StepTime.parse("on"), 100), Step(StepTime.parse("02:30"), 20)))
    step = plan_night(ambiguous, n, PARIS, 100.0).steps[1]
    assert step.at == datetime(2026, 10, 25, 0, 30, tzinfo=UTC)  # the first 02:30 (CEST)


def test_steps_on_the_night_the_clocks_go_forward() -> None:
    # 29 March 2026: 02:00 CET becomes 03:00 CEST.
    n = night(date(2026, 3, 28), paris(2026, 3, 28, 19, 13), paris(2026, 3, 29, 7, 15))
    skipped = Profile(
        "p", (Step(StepTime.parse("on"), 100), Step(StepTime.parse("02:30"), 20), Step(StepTime.parse("05:00"), 80))
    )
    plan = plan_night(skipped, n, PARIS, 100.0)
    assert [s.at for s in plan.steps[1:]] == [
        datetime(2026, 3, 29, 1, 0, tzinfo=UTC),  # 02:30 never shows: the step starts with the jump
        datetime(2026, 3, 29, 3, 0, tzinfo=UTC),  # 05:00 CEST
    ]
    assert plan.state_at(datetime(2026, 3, 29, 0, 59, tzinfo=UTC)).level == 100
    assert plan.state_at(datetime(2026, 3, 29, 1, 0, tzinfo=UTC)).level == 20


def test_steps_before_switch_on_start_with_it_and_those_after_switch_off_never_happen() -> None:
    # A June night in Dijon: switch-on after 22:00, switch-off before 05:40.
    profile = Profile(
        "summer",
        (
            Step(StepTime.parse("on"), 100),
            Step(StepTime.parse("21:00"), 60, boost=90),
            Step(StepTime.parse("05:30"), 70),
            Step(StepTime.parse("05:45"), 90),
            Step(StepTime.parse("off-1h"), 80),
        ),
    )
    n = night(date(2026, 6, 21), paris(2026, 6, 21, 21, 50), paris(2026, 6, 22, 5, 35))
    plan = plan_night(profile, n, PARIS, 100.0)
    assert [(s.at.astimezone(PARIS).time(), s.level, s.label) for s in plan.steps] == [
        (time(21, 50), 60, "21:00"),  # started before the switch-on: listed after "on", it wins at the switch-on
        (time(4, 35), 80, "off-1h"),
        (time(5, 30), 70, "05:30"),
    ]  # 05:45 is after the switch-off
    assert plan.steps[0].boost == 90  # the step's own boost
    assert plan.changes()[-1] == n.off


def test_no_night_means_day_all_window() -> None:
    clock = AstroClock(47.322, 5.0415, "Europe/Paris")
    day = date(2026, 6, 21)
    dark = Night(day, clock.noon(day), clock.noon(day + timedelta(days=1)), None, None, "polar day")
    plan = plan_night(RESIDENTIAL, dark, PARIS, 100.0)
    state = plan.state_at(paris(2026, 6, 22, 1, 0).astimezone(UTC))
    assert (state.lit, state.level, state.step) == (False, 0, "day")
    assert plan.changes() == []


def test_local_boost_only_when_it_raises() -> None:
    assert local_boost(30, 100) == 100
    assert local_boost(100, 100) == 0
    assert local_boost(80, 60) == 0


def test_schedule_of_the_small_site(small_site_dir: Path) -> None:
    site = load_site(small_site_dir)
    schedule = LightingSchedule(load_lighting_config(site), AstroClock(site.lat, site.lon, site.timezone))
    t = paris(2026, 1, 16, 0, 45).astimezone(UTC)
    states = schedule.district_states(t)
    assert (states["centre-ville"].profile, states["centre-ville"].level, states["centre-ville"].step) == (
        "main-roads",
        50,
        "00:30",
    )
    assert (states["montchapet"].profile, states["montchapet"].level) == ("residential", 30)
    changes = schedule.changes(date(2026, 1, 15))
    night_ = schedule.night(date(2026, 1, 15))
    local_times = [c.astimezone(PARIS).time() for c in changes]
    assert changes[0] == night_.on and changes[-1] == night_.off
    assert time(23, 0) in local_times and time(0, 30) in local_times and time(5, 0) in local_times
    assert time(5, 30) in local_times and changes == sorted(set(changes))
    next_on, next_off = schedule.next_switch(t)
    assert next_off == night_.off and next_on == schedule.night(date(2026, 1, 16)).on
    assert schedule.window_end(t) == paris(2026, 1, 16, 12, 0)


def test_fixed_switching_schedule() -> None:
    on = SwitchTime(FIXED, fixed=time(20, 0), text="20:00")
    off = SwitchTime(FIXED, fixed=time(6, 0), text="06:00")
    clock = AstroClock(47.322, 5.0415, "Europe/Paris")
    n = clock.night(date(2026, 2, 1), on, off)
    plan = plan_night(MAIN_ROADS, n, PARIS, 100.0)
    assert plan.state_at(paris(2026, 2, 1, 19, 59).astimezone(UTC)).lit is False
    assert plan.state_at(paris(2026, 2, 1, 20, 0).astimezone(UTC)).level == 100
    assert plan.state_at(paris(2026, 2, 2, 5, 59).astimezone(UTC)).level == 100
    assert plan.state_at(paris(2026, 2, 2, 6, 0).astimezone(UTC)).lit is False
