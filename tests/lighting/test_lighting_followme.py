"""Follow-me logic without I/O: street order across cabinets, presence edges, direction, holds, overlaps, release."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from scada.lighting.clock import SiteClock
from scada.lighting.config import FollowMeConfig, PresenceConfig
from scada.lighting.followme import FollowMe, PresenceEdges, StreetIndex
from scada.model import Quality, ValueRecord
from scada.site.loader import load_site
from scada.site.model import Lamp, Site

T0 = datetime(2026, 1, 16, 0, 0, tzinfo=UTC)


class Clock:
    """A clock that moves only when told."""

    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def site(small_site_dir: Path) -> Site:
    """The small site: ST-01 runs L-000001..L-000008 (CAB-0001) then L-000009..L-000010 (CAB-0002)."""
    return load_site(small_site_dir)


class Rig:
    """A FollowMe with recorded lamp wishes and adjustable base levels."""

    def __init__(self, site: Site, follow: FollowMeConfig | None = None, boost: float = 100.0) -> None:
        self.clock = Clock()
        self.wishes: dict[str, float] = {}
        self.calls: list[tuple[str, float | None]] = []
        self.base: dict[str, float | None] = {}
        config = PresenceConfig(boost, 90, follow or FollowMeConfig(lamps_ahead=3, hold_seconds=60, track_seconds=120))
        self.fm = FollowMe(site, config, SiteClock(self.clock), raise_lamp=self.raise_lamp, base_level=self.base_of)

    def raise_lamp(self, lamp: Lamp, level: float | None) -> None:
        self.calls.append((lamp.id, level))
        if level is None:
            self.wishes.pop(lamp.id, None)
        else:
            self.wishes[lamp.id] = level

    def base_of(self, lamp: Lamp) -> float | None:
        return self.base.get(lamp.id, 50.0)

    def at(self, seconds: float) -> datetime:
        self.clock.now = T0 + timedelta(seconds=seconds)
        return self.clock.now


def lamps(*numbers: int) -> set[str]:
    """Lamp ids from their numbers."""
    return {f"L-{n:06d}" for n in numbers}


def test_street_order_runs_across_cabinets(site: Site) -> None:
    index = StreetIndex(site)
    assert [lamp.id for lamp in index.streets["ST-01"]] == sorted(lamps(*range(1, 11)))
    assert {lamp.cabinet_id for lamp in index.streets["ST-01"]} == {"CAB-0001", "CAB-0002"}
    assert [lamp.id for lamp in index.neighbours("L-000007", 1, 3)] == ["L-000008", "L-000009", "L-000010"]
    assert [lamp.id for lamp in index.neighbours("L-000002", -1, 3)] == ["L-000001"]
    assert {lamp.id for lamp in index.neighbours("L-000005", None, 2)} == lamps(3, 4, 6, 7)
    assert index.neighbours("L-000011", 1, 3)[0].street_id == "ST-02"  # another street, its own order


def test_edges_rise_count_and_forget_on_bad_quality(site: Site) -> None:
    edges = PresenceEdges(site)
    tag = "Lighting/CAB-0001/L-000003/PresenceDetected"
    count = "Lighting/CAB-0001/L-000003/PresenceCount"

    def rec(t: str, value: object, quality: int = Quality.GOOD) -> ValueRecord:
        return ValueRecord(t, value, quality, T0)

    def detections(*records: ValueRecord) -> list[str]:
        return edges.feed(records).detections

    assert detections(rec(tag, True), rec(count, 7)) == []  # first values: a baseline, not a detection
    assert detections(rec(tag, False)) == []
    assert detections(rec(tag, True), rec(count, 8)) == ["L-000003"]  # rise and count together: one detection
    assert detections(rec(count, 9)) == ["L-000003"]  # a new detection while the flag is still held
    assert detections(rec(tag, True)) == []  # a level, not an edge
    assert detections(rec(tag, True, Quality.BAD_COMM), rec(count, 9, Quality.BAD_COMM)) == []
    assert detections(rec(tag, True), rec(count, 12)) == []  # after a loss: a new baseline
    assert detections(rec("Lighting/CAB-0001/L-000003/Level", 100.0)) == []


def test_edges_report_cabinets_that_answer_again(site: Site) -> None:
    edges = PresenceEdges(site)
    comm = "Lighting/CAB-0002/CommunicationOk"
    assert edges.feed([ValueRecord(comm, True, Quality.GOOD, T0)]).recovered == []  # first value
    assert edges.feed([ValueRecord(comm, False, Quality.GOOD, T0)]).recovered == []
    assert edges.feed([ValueRecord(comm, True, Quality.GOOD, T0)]).recovered == ["CAB-0002"]
    assert edges.feed([ValueRecord(comm, True, Quality.GOOD, T0)]).recovered == []


def test_first_detection_raises_both_ways_then_the_walking_direction(site: Site) -> None:
    rig = Rig(site)
    assert set(rig.fm.detect("L-000006", rig.at(0))) == lamps(3, 4, 5, 7, 8, 9)
    assert set(rig.fm.detect("L-000007", rig.at(20))) == lamps(8, 9, 10)  # walking up the street, into CAB-0002
    assert rig.fm.direction("L-000006", rig.at(40)) == -1  # a detection back at 6 after 7 means walking down
    assert rig.wishes == dict.fromkeys(lamps(3, 4, 5, 7, 8, 9, 10), 100.0)


def test_direction_needs_a_recent_and_near_detection(site: Site) -> None:
    rig = Rig(site, FollowMeConfig(lamps_ahead=2, hold_seconds=30, track_seconds=60))
    rig.fm.detect("L-000001", rig.at(0))
    assert rig.fm.direction("L-000002", rig.at(30)) == 1
    assert rig.fm.direction("L-000002", rig.at(61)) is None  # too old
    assert rig.fm.direction("L-000005", rig.at(30)) is None  # too far: someone else
    assert rig.fm.direction("L-000004", rig.at(30)) == 1  # within lamps_ahead + 1
    assert rig.fm.direction("L-000011", rig.at(30)) is None  # another street


def test_holds_extend_on_retrigger_and_fall_back_when_they_end(site: Site) -> None:
    rig = Rig(site)
    rig.fm.detect("L-000001", rig.at(0))  # raises 2, 3, 4 until 60
    rig.fm.detect("L-000002", rig.at(30))  # walking up: raises 3, 4, 5 until 90
    assert rig.fm.next_expiry() == T0 + timedelta(seconds=60)
    assert rig.fm.expire(rig.at(59.9)) == []
    assert rig.fm.expire(rig.at(60)) == ["L-000002"]  # the only lamp not extended
    assert set(rig.wishes) == lamps(3, 4, 5)
    assert rig.fm.expire(rig.at(89.9)) == []
    assert set(rig.fm.expire(rig.at(90))) == lamps(3, 4, 5)
    assert rig.wishes == {} and rig.fm.next_expiry() is None


def test_two_pedestrians_overlap(site: Site) -> None:
    rig = Rig(site, FollowMeConfig(lamps_ahead=2, hold_seconds=60, track_seconds=120))
    rig.fm.detect("L-000001", rig.at(0))  # A appears: 2, 3 until 60
    rig.fm.detect("L-000002", rig.at(10))  # A walks up: 3, 4 until 70
    rig.fm.detect("L-000010", rig.at(12))  # B appears at the end of the street: 9, 8 until 72
    rig.fm.detect("L-000009", rig.at(20))  # B walks down: 8, 7 until 80
    rig.fm.detect("L-000006", rig.at(50))  # B further down (8 and 7 passed): 5, 4 until 110
    holds = {hold.lamp.id: hold.until for hold in rig.fm.holds()}
    assert holds[f"L-{4:06d}"] == T0 + timedelta(seconds=110)  # shared by both, held for the later one
    assert holds[f"L-{3:06d}"] == T0 + timedelta(seconds=70)
    released = rig.fm.expire(rig.at(75))
    assert set(released) == lamps(2, 3, 9)  # A's lamps, and the one B passed, not re-raised since
    assert set(rig.wishes) == lamps(4, 5, 7, 8)


def test_lamps_already_bright_or_left_alone_are_not_raised(site: Site) -> None:
    rig = Rig(site)
    rig.base["L-000008"] = 100.0  # already at the follow-me level
    rig.base["L-000009"] = None  # overridden cabinet or dark district
    rig.fm.detect("L-000006", rig.at(0))
    assert set(rig.fm.detect("L-000007", rig.at(5))) == lamps(10)
    assert "L-000008" not in rig.wishes and "L-000009" not in rig.wishes


def test_release_ends_holds_at_once(site: Site) -> None:
    rig = Rig(site)
    rig.fm.detect("L-000005", rig.at(0))
    assert rig.fm.release(["L-000004", "L-000099"]) == ["L-000004"]
    assert ("L-000004", None) in rig.calls
    assert set(rig.fm.release()) == lamps(2, 3, 6, 7, 8)
    assert rig.wishes == {} and rig.fm.holds() == [] and rig.fm.next_expiry() is None


def test_disabled_follow_me_still_tracks_direction(site: Site) -> None:
    rig = Rig(site, FollowMeConfig(enabled=False))
    assert rig.fm.detect("L-000001", rig.at(0)) == []
    assert rig.fm.direction("L-000002", rig.at(5)) == 1
    assert rig.calls == []
