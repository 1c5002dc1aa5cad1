"""Distances, bearings and the upstream test against known values and the small site's sign."""

from __future__ import annotations

import itertools
import math

import pytest

from scada.incidents.geometry import angle_between, bearing_deg, distance_m, is_ahead, upstream_signs, within
from tests.incidents.incident_stack import AT_TLC, small_site


def test_distance_matches_known_values() -> None:
    # one degree of latitude is 111.19 km on the mean-radius sphere
    assert distance_m(47.0, 5.0, 48.0, 5.0) == pytest.approx(111_195, rel=1e-4)
    # Dijon (Darcy) to Paris (Notre-Dame): 262 km as the crow flies
    assert distance_m(47.3225, 5.0341, 48.8530, 2.3499) == pytest.approx(262_500, rel=0.01)
    assert distance_m(47.3, 5.0, 47.3, 5.0) == 0.0


@pytest.mark.parametrize(
    ("to", "expected"),
    [((47.31, 5.0), 0.0), ((47.3, 5.01), 90.0), ((47.29, 5.0), 180.0), ((47.3, 4.99), 270.0)],
)
def test_bearings_point_the_right_way(to: tuple[float, float], expected: float) -> None:
    assert bearing_deg(47.3, 5.0, *to) == pytest.approx(expected, abs=0.01)


def test_angle_between_wraps_around_north() -> None:
    assert angle_between(350.0, 10.0) == pytest.approx(20.0)
    assert angle_between(10.0, 350.0) == pytest.approx(20.0)
    assert angle_between(90.0, 270.0) == pytest.approx(180.0)
    assert angle_between(0.0, 720.0) == pytest.approx(0.0)


def test_a_location_ahead_of_the_readers_is_upstream() -> None:
    site = small_site()
    sign = site.signs["VMS-01"]  # bearing 135: its readers drive south-east
    heading = bearing_deg(sign.lat, sign.lon, *AT_TLC)
    assert 120.0 < heading < 130.0
    found = [near.device.id for near in upstream_signs(site.signs.values(), *AT_TLC, 3000.0, 60.0)]
    assert found == ["VMS-01"]
    # the same distance behind the sign (north-west) is downstream: its readers have passed it
    behind = (2 * sign.lat - AT_TLC[0], 2 * sign.lon - AT_TLC[1])
    assert list(upstream_signs(site.signs.values(), *behind, 3000.0, 60.0)) == []
    assert [n.device.id for n in within(site.signs.values(), *behind, 3000.0)] == ["VMS-01"]
    # the cone is configurable: 9.4 degrees off the sign's bearing is inside 10 and outside 5
    assert is_ahead(sign.lat, sign.lon, sign.bearing_deg, *AT_TLC, 10.0)
    assert not is_ahead(sign.lat, sign.lon, sign.bearing_deg, *AT_TLC, 5.0)
    # and the distance limits it
    assert list(upstream_signs(site.signs.values(), *AT_TLC, 1000.0, 60.0)) == []


def test_within_sorts_nearest_first() -> None:
    site = small_site()
    near = within(site.cabinets.values(), *AT_TLC, 5000.0)
    assert next(n.device.id for n in near) == "CAB-0002"
    assert all(a.distance_m <= b.distance_m for a, b in itertools.pairwise(near))
    assert all(math.isfinite(n.distance_m) for n in near)
