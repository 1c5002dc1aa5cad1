"""Live state of the parking sites for the public feed, fed by the tag router; no HTTP here (it can run anywhere).

The feed keeps, per site, the last value, quality and source time of Capacity, Occupied, Free, Full, DisplayMode,
FaultySensors and CommunicationOk, and a version number that changes only when one of them changes. Numbers are
only published while they are Good and the gateway answers: a Bad or Uncertain count, a lost gateway or a site
not heard from yet gives the status "unknown" and no counts (never stale numbers shown as fresh).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from scada.model import ValueRecord, is_good
from scada.site.model import ParkingSite, Site

FEED_VARS = ("Capacity", "Occupied", "Free", "Full", "DisplayMode", "FaultySensors", "CommunicationOk")
"""The parking site variables the feed listens to (tags "Parking/<SiteId>/<Var>")."""

DISPLAY_AUTO, DISPLAY_FULL, DISPLAY_CLOSED = 0, 1, 2
ALMOST_FULL_RATIO = 0.1  # "almostFull" when at most 10 % of the places are free


@dataclass(frozen=True, slots=True)
class SiteInfo:
    """The static description of a parking site (from the site configuration)."""

    id: str
    name: str
    district: str  # the district's display name
    site_type: str  # "carpark" or "onstreet"
    lat: float
    lon: float
    capacity: int


@dataclass(frozen=True, slots=True)
class SiteState:
    """What the public may see of one site now: counts only when fresh, a status, and when it last changed."""

    info: SiteInfo
    total: int  # live Capacity when Good, else the configured capacity
    free: int | None  # None: unknown
    occupied: int | None
    status: tuple[str, ...]  # DATEX II / FIWARE status values, or ("unknown",)
    counts_modified: datetime | None  # source time of the counts shown
    modified: datetime | None  # latest source time of anything the site reported

    @property
    def known(self) -> bool:
        """True when live counts are shown."""
        return self.free is not None


@dataclass(slots=True)
class _Value:
    value: Any
    quality: int
    ts: datetime


class ParkingFeed:
    """A router sink keeping the public state of every parking site; `version` changes with what it shows."""

    def __init__(self, sites: Iterable[ParkingSite], districts: Mapping[str, str] | None = None) -> None:
        districts = districts or {}
        self._info: dict[str, SiteInfo] = {}
        self._tags: dict[str, tuple[str, str]] = {}
        for site in sites:
            self._info[site.id] = SiteInfo(
                id=site.id,
                name=site.name,
                district=districts.get(site.district, site.district),
                site_type=site.site_type,
                lat=site.lat,
                lon=site.lon,
                capacity=site.capacity,
            )
            for var in FEED_VARS:
                self._tags[f"{site.path}/{var}"] = (site.id, var)
        self._values: dict[str, dict[str, _Value]] = {site_id: {} for site_id in self._info}
        self._states: dict[str, SiteState] = {}
        self.version = 0
        self.changed_at = time.time()  # wall-clock time of the last version change (HTTP Last-Modified)
        self.records = 0

    @classmethod
    def from_site(cls, site: Site) -> ParkingFeed:
        """The feed of every parking site of a site configuration."""
        return cls(site.parking.values(), {d.id: d.name for d in site.districts.values()})

    def __call__(self, records: Sequence[ValueRecord]) -> None:
        """The router sink: keep the records of the feed's tags, ignore the others (one dict lookup each)."""
        tags = self._tags
        changed: set[str] = set()
        for record in records:
            key = tags.get(record.tag)
            if key is None:
                continue
            site_id, var = key
            values = self._values[site_id]
            old = values.get(var)
            if old is not None and old.value == record.value and old.quality == record.quality:
                continue  # dateModified is the time of the last change
            values[var] = _Value(record.value, int(record.quality), record.source_ts)
            changed.add(site_id)
            self.records += 1
        if changed:
            for site_id in changed:
                self._states.pop(site_id, None)
            self.version += 1
            self.changed_at = time.time()

    def ids(self) -> list[str]:
        """The ids of the feed's sites, in configuration order."""
        return list(self._info)

    def info(self, site_id: str) -> SiteInfo | None:
        """The static description of a site, or None."""
        return self._info.get(site_id)

    def state(self, site_id: str) -> SiteState | None:
        """The public state of one site (None for an unknown id)."""
        state = self._states.get(site_id)
        if state is None:
            info = self._info.get(site_id)
            if info is None:
                return None
            state = self._states[site_id] = derive_state(info, self._values[site_id])
        return state

    def states(self) -> list[SiteState]:
        """The public state of every site, in configuration order."""
        return [self.state(site_id) for site_id in self._info]  # type: ignore[misc]


def _good(values: Mapping[str, _Value], var: str) -> _Value | None:
    value = values.get(var)
    return value if value is not None and is_good(value.quality) else None


def _good_int(values: Mapping[str, _Value], var: str) -> tuple[int, datetime] | None:
    """A Good whole number (a value of another type counts as missing: never shown, never a crash)."""
    value = _good(values, var)
    if value is None or isinstance(value.value, bool):
        return None
    if isinstance(value.value, int):
        return value.value, value.ts
    if isinstance(value.value, float) and value.value.is_integer():
        return int(value.value), value.ts
    return None


def derive_state(info: SiteInfo, values: Mapping[str, _Value], almost_full: float = ALMOST_FULL_RATIO) -> SiteState:
    """The public state of a site from its latest values (pure: tested without a router)."""
    modified = max((v.ts for v in values.values()), default=None)
    capacity = _good_int(values, "Capacity")
    total = capacity[0] if capacity is not None and capacity[0] > 0 else info.capacity
    comm = values.get("CommunicationOk")
    free = _good_int(values, "Free")
    occupied = _good_int(values, "Occupied")
    gateway_lost = comm is not None and (not is_good(comm.quality) or comm.value is not True)
    if gateway_lost or free is None or occupied is None:
        return SiteState(info, total, None, None, ("unknown",), None, modified)
    free_n = max(0, min(free[0], total))
    occupied_n = max(0, min(occupied[0], total))
    mode = _good_int(values, "DisplayMode")
    full = _good(values, "Full")
    if mode is not None and mode[0] == DISPLAY_CLOSED:
        status: tuple[str, ...] = ("closed",)
    elif (mode is not None and mode[0] == DISPLAY_FULL) or free_n == 0 or (full is not None and full.value is True):
        status = ("full",)
    elif free_n <= total * almost_full:
        status = ("open", "almostFull")
    else:
        status = ("open", "spacesAvailable")
    counts_ts = max(free[1], occupied[1])
    return SiteState(info, total, free_n, occupied_n, status, counts_ts, modified)
