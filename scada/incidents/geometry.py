"""Distances and directions on the WGS84 sphere, and which devices a located incident concerns.

A sign is *upstream* of a location when the location lies ahead of it for the traffic that reads it: the bearing
from the sign to the location is within a cone (±60° by default) around Sign.bearing_deg, the direction of travel
of that traffic, and the location is within the distance. Distances are great-circle (haversine) distances on a
sphere of the mean Earth radius: within a city the error against the ellipsoid is well under 0.5 %.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

EARTH_RADIUS_M = 6_371_008.8  # mean Earth radius (IUGG)


class Located(Protocol):
    """Anything with a WGS84 position (every device of the site model)."""

    @property
    def lat(self) -> float: ...

    @property
    def lon(self) -> float: ...


T = TypeVar("T", bound=Located)


def distance_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance in metres between two WGS84 points (haversine)."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp = p2 - p1
    dl = math.radians(lon2 - lon1)
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(h)))


def bearing_deg(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Initial bearing from point 1 to point 2, degrees clockwise from north in [0, 360)."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dl = math.radians(lon2 - lon1)
    y = math.sin(dl) * math.cos(p2)
    x = math.cos(p1) * math.sin(p2) - math.sin(p1) * math.cos(p2) * math.cos(dl)
    return math.degrees(math.atan2(y, x)) % 360.0


def angle_between(a: float, b: float) -> float:
    """The smaller angle between two bearings, degrees in [0, 180]."""
    diff = abs(a - b) % 360.0
    return 360.0 - diff if diff > 180.0 else diff


def is_ahead(
    from_lat: float, from_lon: float, heading_deg: float, to_lat: float, to_lon: float, cone_deg: float
) -> bool:
    """True when (to_lat, to_lon) lies within ±cone_deg of `heading_deg` seen from (from_lat, from_lon).

    A point at the very same position is ahead (an incident at the foot of a sign concerns its readers).
    """
    if distance_m(from_lat, from_lon, to_lat, to_lon) < 1.0:
        return True
    return angle_between(bearing_deg(from_lat, from_lon, to_lat, to_lon), heading_deg) <= cone_deg


@dataclass(frozen=True, slots=True)
class Near(Generic[T]):
    """A device and its distance to a location, in metres."""

    device: T
    distance_m: float


def within(devices: Iterable[T], lat: float, lon: float, radius_m: float) -> list[Near[T]]:
    """The devices within `radius_m` of a location, nearest first (ties by id order of the input)."""
    found = [Near(d, distance_m(d.lat, d.lon, lat, lon)) for d in devices]
    return sorted((n for n in found if n.distance_m <= radius_m), key=lambda n: n.distance_m)


def upstream_signs(signs: Iterable[T], lat: float, lon: float, radius_m: float, cone_deg: float) -> Iterator[Near[T]]:
    """Signs within `radius_m` whose readers drive towards the location (see the module docstring), nearest first."""
    for near in within(signs, lat, lon, radius_m):
        sign = near.device
        heading = float(getattr(sign, "bearing_deg", 0.0))
        if is_ahead(sign.lat, sign.lon, heading, lat, lon, cone_deg):
            yield near
