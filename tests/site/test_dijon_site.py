"""The generated Dijon site: city scale, load speed, geometry that follow-me lighting relies on, determinism."""

from __future__ import annotations

import math
import subprocess
import sys
import time
from collections import defaultdict
from itertools import pairwise
from pathlib import Path

import pytest

from scada.catalog import Kind
from scada.site.loader import load_site, site_summary
from scada.site.model import Site, Street

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
LAT0, LON0 = 47.3220, 5.0415
M_LAT = 111_132.92 - 559.82 * math.cos(2 * math.radians(LAT0)) + 1.175 * math.cos(4 * math.radians(LAT0))
M_LON = 111_412.84 * math.cos(math.radians(LAT0)) - 93.5 * math.cos(3 * math.radians(LAT0))


def xy(lon: float, lat: float) -> tuple[float, float]:
    """Local metres east and north of the centre."""
    return (lon - LON0) * M_LON, (lat - LAT0) * M_LAT


def project(street: Street, p: tuple[float, float]) -> tuple[float, float]:
    """Distance from p to the street line, and the position along the line of the nearest point (metres)."""
    best, along, start = math.inf, 0.0, 0.0
    pts = [xy(*q) for q in street.points]
    for a, b in pairwise(pts):
        dx, dy = b[0] - a[0], b[1] - a[1]
        seg = math.hypot(dx, dy)
        t = max(0.0, min(1.0, ((p[0] - a[0]) * dx + (p[1] - a[1]) * dy) / (seg * seg)))
        d = math.hypot(a[0] + t * dx - p[0], a[1] + t * dy - p[1])
        if d < best:
            best, along = d, start + t * seg
        start += seg
    return best, along


@pytest.fixture(scope="module")
def dijon(dijon_site_dir: Path) -> Site:
    """The Dijon site, loaded once (and timed)."""
    load_site(dijon_site_dir)  # warm the file cache: the figure below is the loader's own work
    start, cpu = time.perf_counter(), time.process_time()
    site = load_site(dijon_site_dir)
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
    print(f"\nload_site(config/dijon): {elapsed:.3f} s wall, {cpu:.3f} s CPU - {site_summary(site)}")
    assert elapsed < 5.0
    return site


def test_city_scale_counts(dijon: Site) -> None:
    """34,000 lamps in 340 cabinets, 113 intersections, 40 signs, 3,000 bay sensors in 10 parking sites."""
    assert dijon.counts() == {
        Kind.LAMP: 34_000,
        Kind.CABINET: 340,
        Kind.CONTROLLER: 113,
        Kind.SIGN: 40,
        Kind.PARKING_SITE: 10,
        Kind.PARKING_SENSOR: 3_000,
    }
    assert len(dijon.districts) == 12
    assert len(dijon.streets) == 1088
    assert {"Centre-Ville", "Toison d'Or", "Fontaine d'Ouche", "Grésilles", "Université"} <= {
        d.name for d in dijon.districts.values()
    }
    assert dijon.settings["historian"] == {"url": "sqlite:///var/dijon/history.sqlite"}


def test_cabinets_hold_about_100_lamps_never_more_than_128(dijon: Site) -> None:
    """Each cabinet drives 60..128 lamps, 100 on average, indexed 0..n-1."""
    sizes = [len(c.lamps) for c in dijon.cabinets.values()]
    assert max(sizes) <= 128 and min(sizes) >= 60
    assert sum(sizes) / len(sizes) == 100
    for cabinet in dijon.cabinets.values():
        assert [lamp.index for lamp in cabinet.lamps] == list(range(len(cabinet.lamps)))


def test_each_cabinet_serves_contiguous_runs_of_a_few_streets(dijon: Site) -> None:
    """In index order a cabinet's lamps are whole runs of 1..6 streets, each run contiguous in seq."""
    for cabinet in dijon.cabinets.values():
        changes = sum(1 for a, b in pairwise(cabinet.lamps) if a.street_id != b.street_id)
        streets = {lamp.street_id for lamp in cabinet.lamps}
        assert changes == len(streets) - 1 <= 5, cabinet.id
        for street_id in streets:
            seqs = sorted(lamp.seq for lamp in cabinet.lamps if lamp.street_id == street_id)
            assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), (cabinet.id, street_id)


def test_every_lamp_lies_on_its_street_in_seq_order(dijon: Site) -> None:
    """Lamps are on their street line, numbered 1..n along it, 25-35 m apart: follow-me can walk a street."""
    by_street: dict[str, list[tuple[int, float, str]]] = defaultdict(list)
    for lamp in dijon.lamps():
        street = dijon.streets[lamp.street_id]
        distance, along = project(street, xy(lamp.lon, lamp.lat))
        assert distance < 0.5, lamp.id
        by_street[lamp.street_id].append((lamp.seq, along, lamp.cabinet_id))
    assert set(by_street) == set(dijon.streets)
    for street_id, spots in by_street.items():
        spots.sort()
        assert [seq for seq, _, _ in spots] == list(range(1, len(spots) + 1)), street_id
        gaps = [b - a for (_, a, _), (_, b, _) in pairwise(spots)]
        assert all(24.5 <= gap <= 35.5 for gap in gaps), street_id
    shared = [s for s, spots in by_street.items() if len({cabinet for _, _, cabinet in spots}) > 1]
    assert len(shared) > 80  # streets pass from cabinet to cabinet: follow-me must cross cabinet boundaries
    radials = [s.id for s in dijon.streets.values() if s.name in ("Route de Gray", "Avenue Jean Jaurès")]
    assert len(radials) == 2 and set(radials) <= set(shared)


def test_lamp_power_by_street_class(dijon: Site) -> None:
    """LED 20-110 W replacing high-pressure sodium 70/100/150/250 W, always of higher power."""
    for lamp in dijon.lamps():
        assert 20 <= lamp.rated_w <= 110 and lamp.legacy_w in (70, 100, 150, 250)
        assert lamp.legacy_w > lamp.rated_w


def test_everything_lies_in_the_city_area(dijon: Site) -> None:
    """Every device within 8 km x 6 km around the centre."""
    for device in dijon.devices():
        x, y = xy(device.lon, device.lat)
        assert abs(x) <= 4000 and abs(y) <= 3000, device.id


def _near_streets(dijon: Site, p: tuple[float, float], within: float) -> set[str]:
    out = set()
    for street in dijon.streets.values():
        pts = [xy(*q) for q in street.points]
        if min(q[0] for q in pts) - within > p[0] or max(q[0] for q in pts) + within < p[0]:
            continue
        if min(q[1] for q in pts) - within > p[1] or max(q[1] for q in pts) + within < p[1]:
            continue
        if project(street, p)[0] <= within:
            out.add(street.name)
    return out


def test_controllers_stand_at_street_crossings(dijon: Site) -> None:
    """Each signalised intersection lies on the two streets it is named after."""
    for controller in dijon.controllers.values():
        first, second = controller.name.split(" / ")
        assert {first, second} <= _near_streets(dijon, xy(controller.lon, controller.lat), 1.0), controller.id
        assert 4 <= controller.detectors <= 8


def test_signs_face_inbound_traffic_on_the_entries(dijon: Site) -> None:
    """Each sign stands beside a radial road and its bearing points towards the centre."""
    for sign in dijon.signs.values():
        p = xy(sign.lon, sign.lat)
        b = math.radians(sign.bearing_deg)
        heading = (math.sin(b), math.cos(b))
        to_centre = (-p[0], -p[1])
        cos = (heading[0] * to_centre[0] + heading[1] * to_centre[1]) / math.hypot(*to_centre)
        assert cos > 0.9, sign.id
        assert math.hypot(*p) > 1500 and sign.road
        assert _near_streets(dijon, p, 12.0), sign.id


def test_parking_sites(dijon: Site) -> None:
    """Car parks and on-street zones: capacity covers the sensors, bays indexed 0..n-1."""
    names = {p.name for p in dijon.parking.values()}
    assert {"Parking Dauphine", "Parking Grangier", "Parking Darcy", "Zone Wilson"} <= names
    assert {p.site_type for p in dijon.parking.values()} == {"carpark", "onstreet"}
    for site in dijon.parking.values():
        assert site.capacity >= len(site.sensors) > 0
        assert [s.index for s in site.sensors] == list(range(len(site.sensors)))


def test_endpoints_and_poll_periods(dijon: Site) -> None:
    """127.0.0.1, unit 1, ports by kind from 20001/20501/20701/20801, the poll period of each kind."""
    for devices, first, poll in (
        (dijon.cabinets, 20001, 5000),
        (dijon.controllers, 20501, 1000),
        (dijon.signs, 20701, 5000),
        (dijon.parking, 20801, 2000),
    ):
        endpoints = [d.endpoint for d in devices.values()]
        assert [e.port for e in endpoints] == list(range(first, first + len(endpoints)))
        assert {(e.protocol, e.host, e.unit, e.poll_ms) for e in endpoints} == {("modbus", "127.0.0.1", 1, poll)}


def test_generator_is_deterministic(dijon_site_dir: Path, tmp_path: Path) -> None:
    """Regenerating writes byte-identical files (the committed folder is the generator's output)."""
    out = tmp_path / "dijon"
    subprocess.run(
        [sys.executable, str(ROOT / "tools" / "gen_dijon.py"), "--out", str(out), "--no-check"],
        check=True,
        timeout=120,
    )
    written = sorted(p.name for p in out.iterdir())
    assert written == sorted(p.name for p in dijon_site_dir.iterdir() if p.is_file())
    for name in written:
        assert (out / name).read_bytes() == (dijon_site_dir / name).read_bytes(), name
