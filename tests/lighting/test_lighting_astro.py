"""The astronomical clock: Dijon's switching times against astral, sane bounds, windows, DST wall times, polar cases."""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from astral import Observer
from astral import sun as astral_sun

from scada.lighting.astro import FIXED, AstroClock, SwitchTime, local_to_utc

PARIS = ZoneInfo("Europe/Paris")
DIJON = Observer(latitude=47.3220, longitude=5.0415)
ON = SwitchTime("sunset", timedelta(minutes=10), text="sunset+10min")
OFF = SwitchTime("sunrise", timedelta(minutes=-10), text="sunrise-10min")


@pytest.fixture
def dijon() -> AstroClock:
    """The clock of the small and Dijon sites."""
    return AstroClock(47.3220, 5.0415, "Europe/Paris")


@pytest.mark.parametrize("day", [date(2026, 1, 15), date(2026, 6, 21), date(2026, 10, 24), date(2026, 12, 21)])
def test_switch_times_are_astral_sunset_and_sunrise_with_offsets(dijon: AstroClock, day: date) -> None:
    night = dijon.night(day, ON, OFF)
    assert night.on == astral_sun.sunset(DIJON, day, PARIS).astimezone(UTC) + timedelta(minutes=10)
    next_day = day + timedelta(days=1)
    assert night.off == astral_sun.sunrise(DIJON, next_day, PARIS).astimezone(UTC) - timedelta(minutes=10)
    assert night.polar is None and night.lit


def test_dusk_and_dawn_use_the_configured_depression() -> None:
    day = date(2026, 3, 10)
    for name, degrees in (("civil", 6.0), ("nautical", 12.0)):
        clock = AstroClock(47.3220, 5.0415, "Europe/Paris", depression=degrees)
        night = clock.night(day, SwitchTime("dusk"), SwitchTime("dawn"))
        assert night.on == astral_sun.dusk(DIJON, day, degrees, PARIS).astimezone(UTC), name
        assert night.off == astral_sun.dawn(DIJON, day + timedelta(days=1), degrees, PARIS).astimezone(UTC), name
    civil = AstroClock(47.3220, 5.0415, "Europe/Paris", depression=6.0).night(day, SwitchTime("dusk"), OFF)
    nautical = AstroClock(47.3220, 5.0415, "Europe/Paris", depression=12.0).night(day, SwitchTime("dusk"), OFF)
    assert nautical.on is not None and civil.on is not None
    assert timedelta(minutes=20) < nautical.on - civil.on < timedelta(minutes=50)


def test_dijon_times_are_within_sane_bounds(dijon: AstroClock) -> None:
    winter = dijon.night(date(2026, 12, 21), ON, OFF)
    summer = dijon.night(date(2026, 6, 21), ON, OFF)
    assert winter.on is not None and winter.off is not None and summer.on is not None and summer.off is not None
    assert time(16, 55) <= winter.on.astimezone(PARIS).time() <= time(17, 15)  # sunset ~16:51 CET
    assert time(8, 5) <= winter.off.astimezone(PARIS).time() <= time(8, 25)  # sunrise ~08:25 CET
    assert time(21, 40) <= summer.on.astimezone(PARIS).time() <= time(22, 0)  # sunset ~21:40 CEST
    assert time(5, 25) <= summer.off.astimezone(PARIS).time() <= time(5, 45)
    assert timedelta(hours=15) < winter.off - winter.on < timedelta(hours=15, minutes=30)  # 15 h 33 min - 20 min
    assert timedelta(hours=7, minutes=20) < summer.off - summer.on < timedelta(hours=8)


def test_fixed_switch_times_are_local_wall_times(dijon: AstroClock) -> None:
    on = SwitchTime(FIXED, fixed=time(19, 0), text="19:00")
    off = SwitchTime(FIXED, timedelta(minutes=-15), fixed=time(6, 30), text="06:30-15min")
    night = dijon.night(date(2026, 10, 24), on, off)  # the clocks go back during this night
    assert night.on == datetime(2026, 10, 24, 17, 0, tzinfo=UTC)  # 19:00 CEST
    assert night.off == datetime(2026, 10, 25, 5, 15, tzinfo=UTC)  # 06:15 CET
    assert night.off - night.on == timedelta(hours=12, minutes=15)  # one hour longer than the wall clock says


def test_window_runs_from_local_noon_to_local_noon(dijon: AstroClock) -> None:
    assert dijon.window_day(datetime(2026, 1, 15, 11, 0, tzinfo=UTC)) == date(2026, 1, 15)  # 12:00 CET
    assert dijon.window_day(datetime(2026, 1, 15, 10, 59, 59, tzinfo=UTC)) == date(2026, 1, 14)
    assert dijon.window_day(datetime(2026, 1, 16, 3, 0, tzinfo=UTC)) == date(2026, 1, 15)
    assert dijon.noon(date(2026, 7, 1)) == datetime(2026, 7, 1, 10, 0, tzinfo=UTC)  # CEST


def test_local_to_utc_across_dst_changes() -> None:
    # Ambiguous 02:30 on the night the clocks go back: its first occurrence (still CEST).
    assert local_to_utc(date(2026, 10, 25), time(2, 30), PARIS) == datetime(2026, 10, 25, 0, 30, tzinfo=UTC)
    assert local_to_utc(date(2026, 10, 25), time(3, 30), PARIS) == datetime(2026, 10, 25, 2, 30, tzinfo=UTC)
    # Skipped 02:30 on the night the clocks go forward: the transition itself (03:00 CEST = 01:00 UTC).
    assert local_to_utc(date(2026, 3, 29), time(2, 30), PARIS) == datetime(2026, 3, 29, 1, 0, tzinfo=UTC)
    assert local_to_utc(date(2026, 3, 29), time(2, 0), PARIS) == datetime(2026, 3, 29, 1, 0, tzinfo=UTC)
    assert local_to_utc(date(2026, 3, 29), time(1, 59), PARIS) == datetime(2026, 3, 29, 0, 59, tzinfo=UTC)
    assert local_to_utc(date(2026, 3, 29), time(3, 0), PARIS) == datetime(2026, 3, 29, 1, 0, tzinfo=UTC)


def test_polar_day_means_no_night_and_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    tromso = AstroClock(69.65, 18.96, "Europe/Oslo")
    with pytest.raises(ValueError):
        astral_sun.sunset(tromso.observer, date(2026, 6, 21), ZoneInfo("Europe/Oslo"))  # what the fallback covers
    with caplog.at_level(logging.WARNING, logger="scada.lighting.astro"):
        night = tromso.night(date(2026, 6, 21), ON, OFF)
    assert not night.lit and night.on is None and night.off is None
    assert night.polar == "polar day"
    assert any("always off" in record.getMessage() for record in caplog.records)


def test_polar_night_means_on_all_window(caplog: pytest.LogCaptureFixture) -> None:
    tromso = AstroClock(69.65, 18.96, "Europe/Oslo")
    with caplog.at_level(logging.WARNING, logger="scada.lighting.astro"):
        night = tromso.night(date(2026, 12, 21), ON, OFF)
    assert night.polar == "polar night"
    assert night.on == night.start and night.off == night.end  # lit from noon to noon
    assert any("always on" in record.getMessage() for record in caplog.records)
    # Civil dusk still happens there in December (the sun climbs to about -3°): no fallback for it.
    dusk = tromso.night(date(2026, 12, 21), SwitchTime("dusk"), SwitchTime("dawn"))
    assert dusk.polar is None and dusk.on is not None and dusk.on > dusk.start


def test_warning_is_logged_once_per_day(caplog: pytest.LogCaptureFixture) -> None:
    tromso = AstroClock(69.65, 18.96, "Europe/Oslo")
    other_off = SwitchTime("sunrise", timedelta(minutes=-5), text="sunrise-5min")
    with caplog.at_level(logging.WARNING, logger="scada.lighting.astro"):
        tromso.night(date(2026, 6, 21), ON, OFF)
        tromso.night(date(2026, 6, 21), ON, other_off)  # a different night, same day and event
    assert sum("no sunset on 2026-06-21" in r.getMessage() for r in caplog.records) == 1
