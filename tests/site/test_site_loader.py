"""Loading the small site: exact content, the three source forms (inline YAML, CSV, GeoJSON), endpoint rebinding."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest
import yaml
from sitecases import BASE_LAMPS, LAMPS, MakeSite, issues_of

from scada.catalog import Kind
from scada.model import ConfigIssue
from scada.site.loader import load_site, rebind_endpoints, site_summary
from scada.site.model import Endpoint, Lamp, Site


@pytest.fixture(scope="module")
def small(small_site_dir: Path) -> Site:
    """The small site, loaded once."""
    return load_site(small_site_dir)


def test_small_site_counts(small: Site) -> None:
    """3 cabinets of 8, 6 and 4 lamps, 1 controller, 1 sign, 1 car park with 20 sensors, 2 districts, 3 streets."""
    assert small.counts() == {
        Kind.LAMP: 18,
        Kind.CABINET: 3,
        Kind.CONTROLLER: 1,
        Kind.SIGN: 1,
        Kind.PARKING_SITE: 1,
        Kind.PARKING_SENSOR: 20,
    }
    assert [len(c.lamps) for c in small.cabinets.values()] == [8, 6, 4]
    assert list(small.districts) == ["centre-ville", "montchapet"]
    assert list(small.streets) == ["ST-01", "ST-02", "ST-03"]
    assert (small.name, small.timezone, small.lat, small.lon) == ("small", "Europe/Paris", 47.3220, 5.0415)


def test_small_site_endpoints_are_sequential(small: Site) -> None:
    """Every field device on 127.0.0.1, ports 21001.. in order, unit 1 and the poll period of its kind."""
    endpoints = [device.endpoint for device in small.field_devices()]
    assert [e.port for e in endpoints] == list(range(21001, 21007))
    assert {(e.protocol, e.host, e.unit) for e in endpoints} == {("modbus", "127.0.0.1", 1)}
    assert [e.poll_ms for e in endpoints] == [5000, 5000, 5000, 1000, 5000, 2000]


def test_lamps_sorted_by_index_and_sensors_by_bay(small: Site) -> None:
    """The CSV lists cabinet CAB-0002's lamps out of order: the cabinet holds them by index."""
    cabinet = small.cabinets["CAB-0002"]
    assert [lamp.index for lamp in cabinet.lamps] == list(range(6))
    assert [lamp.id for lamp in cabinet.lamps] == [f"L-{k:06d}" for k in range(9, 15)]
    assert [s.index for s in small.parking["PK-01"].sensors] == list(range(20))
    lamp = small.device("L-000009")
    assert isinstance(lamp, Lamp) and lamp.path == "Lighting/CAB-0002/L-000009"
    assert (lamp.street_id, lamp.seq, lamp.rated_w, lamp.legacy_w) == ("ST-01", 9, 40.0, 100.0)


def test_follow_me_street_crosses_cabinets(small: Site) -> None:
    """Rue de la Liberté runs through CAB-0001 then CAB-0002, in seq order."""
    on_street = sorted((lamp for lamp in small.lamps() if lamp.street_id == "ST-01"), key=lambda lamp: lamp.seq)
    assert [lamp.seq for lamp in on_street] == list(range(1, 11))
    assert [lamp.cabinet_id for lamp in on_street] == ["CAB-0001"] * 8 + ["CAB-0002"] * 2
    lons = [lamp.lon for lamp in on_street]
    assert lons == sorted(lons)  # the street runs west to east


def test_other_sections_go_to_settings(small: Site) -> None:
    """Top-level sections the loader does not know are kept untouched."""
    assert small.settings["historian"] == {"url": "sqlite:///var/small/history.sqlite"}
    assert "cabinets" not in small.settings and "site" not in small.settings


def test_site_summary(small: Site) -> None:
    """One line with counts per kind."""
    assert site_summary(small) == (
        "small (Dijon, quartier Liberté (petit site d'essai)): 2 districts, 3 streets, 3 cabinets, 18 lamps, "
        "1 traffic controller, 1 message sign, 1 parking site, 20 parking sensors"
    )


def _write_csv(path: Path, header: list[str], rows: list[list[object]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)


def _points(path: Path, rows: list[dict[str, object]]) -> None:
    features = [
        {
            "type": "Feature",
            "geometry": {"type": "Point", "coordinates": [row.pop("lon"), row.pop("lat")]},
            "properties": row,
        }
        for row in rows
    ]
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}, indent=1), encoding="utf-8")


def test_csv_geojson_and_inline_forms_load_the_same(small: Site, small_site_dir: Path, tmp_path: Path) -> None:
    """The small site rewritten with every list in another form (CSV, GeoJSON points and lines) is the same site."""
    folder = tmp_path / "small"
    folder.mkdir()
    doc = yaml.safe_load((small_site_dir / "site.yaml").read_text(encoding="utf-8"))
    ep = ["host", "port", "unit", "poll_ms"]
    _write_csv(
        folder / "cabinets.csv",
        ["id", "name", "district", "lat", "lon", *ep],
        [[c.id, c.name, c.district, c.lat, c.lon, "", c.endpoint.port, "", ""] for c in small.cabinets.values()],
    )
    _points(
        folder / "lamps.geojson",
        [
            {
                "id": x.id,
                "cabinet": x.cabinet_id,
                "index": x.index,
                "lat": x.lat,
                "lon": x.lon,
                "rated_w": x.rated_w,
                "legacy_w": x.legacy_w,
                "street": x.street_id,
                "seq": x.seq,
            }
            for x in small.lamps()
        ],
    )
    _points(
        folder / "controllers.geojson",
        [
            {"id": t.id, "name": t.name, "district": t.district, "lat": t.lat, "lon": t.lon, "port": t.endpoint.port}
            | {"detectors": t.detectors}
            for t in small.controllers.values()
        ],
    )
    _write_csv(
        folder / "signs.csv",
        ["id", "name", "district", "lat", "lon", "road", "bearing_deg", "port"],
        [
            [s.id, s.name, s.district, s.lat, s.lon, s.road, s.bearing_deg, s.endpoint.port]
            for s in small.signs.values()
        ],
    )
    _write_csv(
        folder / "parking.csv",
        ["id", "name", "district", "type", "lat", "lon", "capacity", *ep],
        [
            [p.id, p.name, p.district, p.site_type, p.lat, p.lon, p.capacity, "127.0.0.1", p.endpoint.port, 1, 2000]
            for p in small.parking.values()
        ],
    )
    _write_csv(
        folder / "parking_sensors.csv",
        ["id", "site", "index", "lat", "lon"],
        [[s.id, s.site_id, s.index, s.lat, s.lon] for s in small.sensors()],
    )
    lines = [
        {
            "type": "Feature",
            "properties": {"id": s.id, "name": s.name, "district": s.district},
            "geometry": {"type": "LineString", "coordinates": [list(p) for p in s.points]},
        }
        for s in small.streets.values()
    ]
    (folder / "streets.geojson").write_text(json.dumps({"type": "FeatureCollection", "features": lines}))
    doc.update(
        streets="streets.geojson",
        cabinets="cabinets.csv",
        lamps="lamps.geojson",
        controllers="controllers.geojson",
        signs="signs.csv",
        parking="parking.csv",
        parking_sensors="parking_sensors.csv",
    )
    (folder / "site.yaml").write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    other = load_site(folder)
    for name in ("districts", "streets", "cabinets", "controllers", "signs", "parking", "settings"):
        assert getattr(other, name) == getattr(small, name), name
    assert (other.name, other.title, other.lat, other.lon, other.timezone) == (
        small.name,
        small.title,
        small.lat,
        small.lon,
        small.timezone,
    )


def test_csv_with_bom_crlf_and_quoted_newlines(make_site: MakeSite) -> None:
    """Excel-style CSV (BOM, CRLF) loads; a quoted value spanning lines keeps the next rows' line numbers right."""
    text = "\ufeff" + BASE_LAMPS.replace("\n", "\r\n")
    site = load_site(make_site(lamps=text))
    assert [lamp.id for lamp in site.lamps()] == ["L1", "L2"]
    broken = 'id,cabinet,index,lat,lon,rated_w,legacy_w,street,seq\n"L\n1",C1,0,47.3,5.0,30,70,S1,1\nL2,C1,1,47.3,x,30,70,S1,2\n'
    assert issues_of(make_site(lamps=broken)) == [
        ConfigIssue(
            LAMPS,
            2,
            "id",
            "invalid id 'L\\n1': use letters, digits, '-', '_' and '.', starting with a letter or digit"
            " (at most 64 characters)",
        ),
        ConfigIssue(LAMPS, 4, "lon", "expected a number, got 'x'"),
    ]


def test_site_folder_may_be_given_as_str(small_site_dir: Path, tmp_path: Path) -> None:
    """load_site takes a str as well as a Path, and records the resolved folder."""
    copy = tmp_path / "copy"
    shutil.copytree(small_site_dir, copy)
    site = load_site(str(copy))
    assert site.folder == copy.resolve()


def test_rebind_endpoints(small_site_dir: Path) -> None:
    """Field devices get new endpoints in place; a non-field or unknown id changes nothing and raises."""
    site = load_site(small_site_dir)
    new = {
        "CAB-0001": Endpoint("modbus", "127.0.0.1", 40001, 1, 200),
        "PK-01": Endpoint("modbus", "127.0.0.1", 40002, 3, 200),
    }
    rebind_endpoints(site, new)
    assert site.cabinets["CAB-0001"].endpoint == new["CAB-0001"]
    assert site.parking["PK-01"].endpoint == new["PK-01"]
    assert site.cabinets["CAB-0002"].endpoint.port == 21002
    before = {d.id: d.endpoint for d in site.field_devices()}
    with pytest.raises(KeyError, match="a lamp"):
        rebind_endpoints(site, {"CAB-0002": Endpoint("modbus", port=1), "L-000001": Endpoint("modbus", port=2)})
    with pytest.raises(KeyError, match="no device"):
        rebind_endpoints(site, {"CAB-0002": Endpoint("modbus", port=1), "NOPE": Endpoint("modbus", port=2)})
    assert {d.id: d.endpoint for d in site.field_devices()} == before
