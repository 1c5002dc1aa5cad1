"""The feed state: counts only while fresh and Good, DATEX II status, versions, router integration."""

from __future__ import annotations

from datetime import timedelta

from public_helpers import live, records

from scada.model import Quality, ValueRecord, utcnow
from scada.public.feed import ParkingFeed
from scada.public.ngsi import iso_time, to_entity
from scada.router import TagRouter


def test_no_data_yet_is_unknown_with_the_configured_capacity(feed: ParkingFeed) -> None:
    state = feed.state("PK-01")
    assert state is not None
    assert (state.status, state.free, state.total, state.modified) == (("unknown",), None, 24, None)
    entity = to_entity(state)
    assert "availableSpotNumber" not in entity and "dateModified" not in entity
    assert entity["id"] == "urn:ngsi-ld:OffStreetParking:PK-01" and entity["type"] == "OffStreetParking"
    assert entity["location"] == {"type": "Point", "coordinates": [5.04015, 47.32305]}
    assert entity["address"] == {"district": "Centre-Ville"}
    assert to_entity(feed.state("ZN-01"))["type"] == "OnStreetParking"  # type: ignore[arg-type]


def test_good_counts_are_published_with_their_time(feed: ParkingFeed) -> None:
    batch = live(feed, "PK-01", free=10, occupied=13, Capacity=24, DisplayMode=0, Full=False, FaultySensors=1)
    entity = to_entity(feed.state("PK-01"))  # type: ignore[arg-type]
    assert entity["status"] == ["open", "spacesAvailable"]
    assert (entity["availableSpotNumber"], entity["occupiedSpotNumber"], entity["totalSpotNumber"]) == (10, 13, 24)
    assert entity["occupancy"] == round(13 / 24, 4)
    assert entity["occupancyModified"] == entity["dateModified"] == iso_time(batch[0].source_ts)
    assert entity["occupancyModified"].endswith("Z")


def test_status_rules(feed: ParkingFeed) -> None:
    def status() -> list[str]:
        return to_entity(feed.state("ZN-01"))["status"]  # type: ignore[arg-type]

    live(feed, "ZN-01", free=4, occupied=36, Capacity=40, DisplayMode=0, Full=False)
    assert status() == ["open", "almostFull"]  # 10 % free
    live(feed, "ZN-01", free=0, occupied=40, Full=True)
    assert status() == ["full"]
    live(feed, "ZN-01", free=12, occupied=28, Full=False, DisplayMode=1)
    assert status() == ["full"]  # the operator forces the entrance display to full
    live(feed, "ZN-01", free=12, occupied=28, DisplayMode=2)
    assert status() == ["closed"]
    live(feed, "ZN-01", free=12, occupied=28, DisplayMode=0)
    assert status() == ["open", "spacesAvailable"]


def test_lost_gateway_or_bad_counts_hide_the_numbers(feed: ParkingFeed) -> None:
    live(feed, "PK-01", free=10, occupied=14)
    assert feed.state("PK-01").known  # type: ignore[union-attr]
    feed(records("PK-01", CommunicationOk=False))
    state = feed.state("PK-01")
    assert state is not None and state.status == ("unknown",) and state.free is None and state.occupied is None
    live(feed, "PK-01", free=10, occupied=14)
    assert feed.state("PK-01").known  # type: ignore[union-attr]
    last_good = utcnow() - timedelta(seconds=30)
    feed(records("PK-01", ts=last_good, quality=Quality.UNCERTAIN_LAST_USABLE, Free=10))
    assert feed.state("PK-01").status == ("unknown",)  # type: ignore[union-attr]  # stale is not fresh
    feed(records("PK-01", ts=last_good, quality=Quality.BAD_COMM, Free=10))
    assert feed.state("PK-01").free is None  # type: ignore[union-attr]


def test_counts_are_clamped_to_the_capacity(feed: ParkingFeed) -> None:
    live(feed, "PK-01", free=99, occupied=-3, Capacity=24)
    state = feed.state("PK-01")
    assert state is not None and (state.free, state.occupied) == (24, 0)


def test_version_changes_only_with_what_the_feed_shows(feed: ParkingFeed) -> None:
    version = feed.version
    ts = utcnow()
    feed(records("PK-01", ts=ts, Free=5, Occupied=19))
    assert feed.version == version + 1
    feed(records("PK-01", ts=ts + timedelta(seconds=2), Free=5, Occupied=19))  # same values: nothing new to show
    assert feed.version == version + 1
    feed(records("PK-01", Free=6))
    assert feed.version == version + 2
    feed(records("PK-01", quality=Quality.BAD_COMM, Free=6))  # quality alone is a change
    assert feed.version == version + 3


def test_fed_by_the_router_ignoring_every_other_tag(feed: ParkingFeed) -> None:
    router = TagRouter()
    router.add_sink("public-feed", feed)
    before = feed.version
    ts = utcnow()
    router.publish(
        [
            ValueRecord("Lighting/CAB-0001/L-000001/Level", 80.0, Quality.GOOD, ts),
            ValueRecord("Parking/PK-01/PS-01-0001/Occupied", True, Quality.GOOD, ts),  # a bay: not public
            ValueRecord("Parking/PK-99/Free", 3, Quality.GOOD, ts),  # not a site of the feed
        ]
    )
    assert feed.version == before and feed.records == 0
    router.publish(records("PK-01", Free=7, Occupied=17, CommunicationOk=True))
    assert feed.state("PK-01").free == 7  # type: ignore[union-attr]
