"""The site loader rejects every kind of configuration error with an exact, located message, all at once."""

from __future__ import annotations

from pathlib import Path

import pytest
from sitecases import (
    BASE_LAMPS,
    BASE_SENSORS,
    BASE_YAML,
    LAMPS,
    SENSORS,
    MakeSite,
    Y,
    issues_of,
    replace_once,
)

from scada.model import ConfigError, ConfigIssue
from scada.site.loader import load_site
from scada.site.model import Endpoint

I = ConfigIssue  # noqa: E741 - short name keeps the expectation tables readable

ID_RULE = "use letters, digits, '-', '_' and '.', starting with a letter or digit (at most 64 characters)"


def y(old: str, new: str) -> dict[str, str]:
    """Arguments of make_site with one change in site.yaml."""
    return {"yaml": replace_once(BASE_YAML, old, new)}


def lamps(old: str, new: str) -> dict[str, str]:
    """Arguments of make_site with one change in lamps.csv."""
    return {"lamps": replace_once(BASE_LAMPS, old, new)}


def sensors(old: str, new: str) -> dict[str, str]:
    """Arguments of make_site with one change in sensors.csv."""
    return {"sensors": replace_once(BASE_SENSORS, old, new)}


CAB = "  - {id: C1, name: Cab, district: d1, lat: 47.3, lon: 5.0, port: 21001}"
CTL = "  - {id: T1, name: Ctl, district: d1, lat: 47.3, lon: 5.0, port: 21002}"
SIGN = "  - {id: V1, name: Sign, district: d1, lat: 47.3, lon: 5.0, port: 21003, bearing_deg: 90}"
PARK = "capacity: 10, port: 21004}"

CASES = [
    # -- files and syntax ---------------------------------------------------------------------------------------
    pytest.param(
        y("latitude: 47.3", "latitude: [47.3"),
        [I(Y, 5, "(file)", "YAML syntax error: did not find expected ',' or ']'")],
        id="yaml-syntax",
    ),
    pytest.param(
        y("  title: Test site", "  title: Test: site"),
        [I(Y, 3, "(file)", "YAML syntax error: mapping values are not allowed in this context")],
        id="yaml-syntax-colon",
    ),
    pytest.param({"lamps": None}, [I(Y, 15, "lamps", "file 'lamps.csv' not found")], id="missing-file"),
    pytest.param(
        y("lamps: lamps.csv", "lamps: lamps.xlsx"),
        [I(Y, 15, "lamps", "unsupported file type '.xlsx': use .csv or .geojson")],
        id="file-type",
    ),
    pytest.param(
        y("parking_sensors: sensors.csv", "parking_sensors: 12"),
        [
            I(
                Y,
                22,
                "parking_sensors",
                "expected a list of parking_sensors or a file name (.csv or .geojson), got the number 12",
            )
        ],
        id="section-type",
    ),
    pytest.param(
        y("  name: t\n", "  name: t\n  name: u\n"),
        [I(Y, 3, "site.name", "duplicate key")],
        id="duplicate-yaml-key",
    ),
    pytest.param({"lamps": ""}, [I(LAMPS, None, "(file)", "file is empty (expected a header line)")], id="empty-csv"),
    pytest.param(
        lamps("L2,C1,1,47.3,5.0005,30,70,S1,2", "L2,C1,1,47.3,5.0005,30,70,S1"),
        [I(LAMPS, 3, "(row)", "row has 8 values, the header has 9 columns")],
        id="ragged-csv-row",
    ),
    pytest.param(
        y(CTL, "  - just a name"),
        [I(Y, 17, "controllers[0]", "expected a mapping of fields, got 'just a name'")],
        id="row-not-a-mapping",
    ),
    pytest.param(
        {"lamps": BASE_LAMPS.replace("seq\n", "seq,index\n").replace(",1\n", ",1,0\n").replace(",2\n", ",2,1\n")},
        [I(LAMPS, 1, "index", "duplicate column")],
        id="duplicate-csv-column",
    ),
    pytest.param(
        {"lamps": BASE_LAMPS.replace("\nL2", "\n\n\nL2").replace("L2,C1,1,", "L2,C1,x,")},
        [I(LAMPS, 5, "index", "expected an integer, got 'x'")],
        id="blank-csv-lines",
    ),
    # -- missing ------------------------------------------------------------------------------------------------
    pytest.param(
        y(CAB, CAB.replace("lat: 47.3, ", "")),
        [I(Y, 14, "cabinets[0].lat", "missing required field")],
        id="missing-yaml-field",
    ),
    pytest.param(
        y(CTL, CTL.replace("name: Ctl", "name: null")),
        [I(Y, 17, "controllers[0].name", "missing required value")],
        id="null-yaml-value",
    ),
    pytest.param(
        y("  timezone: Europe/Paris\n", ""),
        [I(Y, 2, "site.timezone", "missing required field")],
        id="missing-site-field",
    ),
    pytest.param(
        lamps("L1,C1,0,47.3,5.0,30,70", "L1,C1,0,47.3,5.0,,70"),
        [I(LAMPS, 2, "rated_w", "missing required value")],
        id="empty-csv-cell",
    ),
    pytest.param(
        {"lamps": "id,cabinet,index,lat,lon,rated_w\nL1,C1,0,47.3,5.0,30\n"},
        [I(LAMPS, 1, "legacy_w", "missing required column")],
        id="missing-csv-column",
    ),
    pytest.param(
        y("  modbus: {host: 127.0.0.1, unit: 1}", "  modbus: {unit: 1}"),
        [
            I(Y, 14, "cabinets[0].host", "missing host (and no defaults.modbus.host)"),
            I(Y, 17, "controllers[0].host", "missing host (and no defaults.modbus.host)"),
            I(Y, 19, "signs[0].host", "missing host (and no defaults.modbus.host)"),
            I(Y, 21, "parking[0].host", "missing host (and no defaults.modbus.host)"),
        ],
        id="missing-host",
    ),
    # -- types --------------------------------------------------------------------------------------------------
    pytest.param(
        y(CAB, CAB.replace("lat: 47.3", "lat: here")),
        [I(Y, 14, "cabinets[0].lat", "expected a number, got 'here'")],
        id="text-for-number",
    ),
    pytest.param(
        y(CTL, CTL.replace("name: Ctl", "name: 12")),
        [I(Y, 17, "controllers[0].name", "expected text, got the number 12 (put it in quotes)")],
        id="number-for-text",
    ),
    pytest.param(
        y(CTL, CTL.replace("port: 21002", "port: 21002.0")),
        [
            I(
                Y,
                17,
                "controllers[0].port",
                "expected an integer, got the number 21002.0 (write it without a decimal point)",
            )
        ],
        id="float-for-int",
    ),
    pytest.param(
        y(SIGN, SIGN.replace("bearing_deg: 90", "bearing_deg: yes")),
        [I(Y, 19, "signs[0].bearing_deg", "expected a number, got true")],
        id="bool-for-number",
    ),
    pytest.param(
        y(CAB, CAB.replace("district: d1", "district: [d1]")),
        [I(Y, 14, "cabinets[0].district", "expected text, got a list")],
        id="list-for-text",
    ),
    pytest.param(
        lamps("L2,C1,1,", "L2,C1,1.5,"),
        [I(LAMPS, 3, "index", "expected an integer, got '1.5'")],
        id="csv-int",
    ),
    pytest.param(
        lamps("L2,C1,1,47.3,", "L2,C1,1,nan,"),
        [I(LAMPS, 3, "lat", "expected a number, got 'nan'")],
        id="csv-nan",
    ),
    pytest.param(
        y(SIGN, SIGN.replace("id: V1", "id: V/1")),
        [I(Y, 19, "signs[0].id", f"invalid id 'V/1': {ID_RULE}")],
        id="invalid-id",
    ),
    pytest.param(
        y("points: [[5.0, 47.3], [5.001, 47.3]]", "points: [[5.0, 47.3]]"),
        [I(Y, 12, "streets[0].points", "a line needs at least 2 points, got 1")],
        id="street-one-point",
    ),
    pytest.param(
        y("points: [[5.0, 47.3], [5.001, 47.3]]", "points: [[5.0, 47.3], [5.001, 95]]"),
        [I(Y, 12, "streets[0].points", "point 1 [5.001, 95] is outside longitude -180..180 or latitude -90..90")],
        id="street-point-range",
    ),
    pytest.param(
        y("points: [[5.0, 47.3], [5.001, 47.3]]", "points: [[5.0], [5.001, 47.3]]"),
        [I(Y, 12, "streets[0].points", "point 0 is not [longitude, latitude]: [5.0]")],
        id="street-point-shape",
    ),
    pytest.param(
        y("points: [[5.0, 47.3], [5.001, 47.3]]", "points: [[5.0, 47.3], [5.001, .nan]]"),
        [I(Y, 12, "streets[0].points", "point 1 [5.001, nan] is outside longitude -180..180 or latitude -90..90")],
        id="street-point-nan",
    ),
    pytest.param(
        y(CAB, CAB.replace("lat: 47.3", "lat: .inf")),
        [I(Y, 14, "cabinets[0].lat", "expected a number, got the number inf")],
        id="infinite-number",
    ),
    pytest.param(
        y("timezone: Europe/Paris", "timezone: Europe/Dijon"),
        [I(Y, 6, "site.timezone", "unknown time zone 'Europe/Dijon'")],
        id="time-zone",
    ),
    # -- duplicate ids ------------------------------------------------------------------------------------------
    pytest.param(
        lamps("L2,C1,1,", "C1,C1,1,"),
        [I(LAMPS, 3, "id", "duplicate id 'C1', already defined at site/site.yaml:14")],
        id="duplicate-id-across-kinds",
    ),
    pytest.param(
        sensors("B1,P1,0", "L1,P1,0"),
        [I(SENSORS, 2, "id", "duplicate id 'L1', already defined at site/lamps.csv:2")],
        id="duplicate-id-across-files",
    ),
    pytest.param(
        y("districts:\n  - {id: d1, name: One}", "districts: [{id: d1, name: One},\n  {id: d1, name: Two}]"),
        [I(Y, 10, "districts[1].id", "duplicate id 'd1', already defined at site/site.yaml:9")],
        id="duplicate-district",
    ),
    # -- references ---------------------------------------------------------------------------------------------
    pytest.param(lamps("L2,C1,", "L2,C9,"), [I(LAMPS, 3, "cabinet", "unknown cabinet 'C9'")], id="unknown-cabinet"),
    pytest.param(lamps("S1,2", "S9,2"), [I(LAMPS, 3, "street", "unknown street 'S9'")], id="unknown-street"),
    pytest.param(
        sensors("B2,P1", "B2,P9"), [I(SENSORS, 3, "site", "unknown parking site 'P9'")], id="unknown-parking-site"
    ),
    pytest.param(
        y(CTL, CTL.replace("district: d1", "district: d9")),
        [I(Y, 17, "controllers[0].district", "unknown district 'd9'")],
        id="unknown-district",
    ),
    # -- overlaps -----------------------------------------------------------------------------------------------
    pytest.param(
        y(CTL, CTL.replace("port: 21002", "port: 21001")),
        [
            I(
                Y,
                17,
                "controllers[0].port",
                "Modbus address 127.0.0.1:21001 unit 1 is already used by C1 (site/site.yaml:14)",
            )
        ],
        id="same-address",
    ),
    pytest.param(
        lamps("L2,C1,1,", "L2,C1,0,"),
        [I(LAMPS, 3, "index", "index 0 of cabinet C1 is already used by lamp L1 (site/lamps.csv:2)")],
        id="same-lamp-index",
    ),
    pytest.param(
        sensors("B2,P1,1", "B2,P1,0"),
        [I(SENSORS, 3, "index", "index 0 of parking site P1 is already used by sensor B1 (site/sensors.csv:2)")],
        id="same-bay-index",
    ),
    # -- ranges -------------------------------------------------------------------------------------------------
    pytest.param(
        y("latitude: 47.3", "latitude: 95.5"), [I(Y, 4, "site.latitude", "95.5 is outside -90..90")], id="site-lat"
    ),
    pytest.param(
        y("longitude: 5.0", "longitude: -181"),
        [I(Y, 5, "site.longitude", "-181 is outside -180..180")],
        id="site-lon",
    ),
    pytest.param(
        y(CAB, CAB.replace("lat: 47.3", "lat: 91")), [I(Y, 14, "cabinets[0].lat", "91 is outside -90..90")], id="lat"
    ),
    pytest.param(
        y(CAB, CAB.replace("lon: 5.0", "lon: 180.5")),
        [I(Y, 14, "cabinets[0].lon", "180.5 is outside -180..180")],
        id="lon",
    ),
    pytest.param(
        y(CAB, CAB.replace("port: 21001", "port: 0")),
        [I(Y, 14, "cabinets[0].port", "0 is outside 1..65535")],
        id="port-0",
    ),
    pytest.param(
        y(CAB, CAB.replace("port: 21001", "port: 65536")),
        [I(Y, 14, "cabinets[0].port", "65536 is outside 1..65535")],
        id="port-65536",
    ),
    pytest.param(
        y(CTL, CTL.replace("port: 21002", "port: 21002, unit: 248")),
        [I(Y, 17, "controllers[0].unit", "248 is outside 0..247")],
        id="unit",
    ),
    pytest.param(
        y(CTL, CTL.replace("port: 21002", "port: 21002, poll_ms: 99")),
        [I(Y, 17, "controllers[0].poll_ms", "99 is outside 100..3600000")],
        id="poll-low",
    ),
    pytest.param(
        y(CTL, CTL.replace("port: 21002", "port: 21002, poll_ms: 3600001")),
        [I(Y, 17, "controllers[0].poll_ms", "3600001 is outside 100..3600000")],
        id="poll-high",
    ),
    pytest.param(
        y("{host: 127.0.0.1, unit: 1}", "{host: 127.0.0.1, unit: 1, port: 0}"),
        [I(Y, 8, "defaults.modbus.port", "0 is outside 1..65535")],
        id="default-port",
    ),
    pytest.param(lamps("L2,C1,1,", "L2,C1,128,"), [I(LAMPS, 3, "index", "128 is outside 0..127")], id="lamp-index"),
    pytest.param(lamps("5.0,30,70", "5.0,0,70"), [I(LAMPS, 2, "rated_w", "0 is outside 1..1000")], id="rated-low"),
    pytest.param(
        lamps("5.0,30,70", "5.0,1000.5,1500"), [I(LAMPS, 2, "rated_w", "1000.5 is outside 1..1000")], id="rated-high"
    ),
    pytest.param(
        lamps("5.0,30,70", "5.0,30,2001"), [I(LAMPS, 2, "legacy_w", "2001 is outside 1..2000")], id="legacy-high"
    ),
    pytest.param(lamps("S1,1", "S1,-1"), [I(LAMPS, 2, "seq", "-1 is outside 0..10000000")], id="seq"),
    pytest.param(sensors("B2,P1,1", "B2,P1,2000"), [I(SENSORS, 3, "index", "2000 is outside 0..1999")], id="bay-index"),
    pytest.param(
        y(PARK, PARK.replace("capacity: 10", "capacity: 0")),
        [I(Y, 21, "parking[0].capacity", "0 is outside 1..2000")],
        id="capacity-0",
    ),
    pytest.param(
        y(PARK, PARK.replace("capacity: 10", "capacity: 2001")),
        [I(Y, 21, "parking[0].capacity", "2001 is outside 1..2000")],
        id="capacity-2001",
    ),
    pytest.param(
        y(PARK, PARK.replace("capacity: 10", "capacity: 1")),
        [I(Y, 21, "parking[0].capacity", "capacity 1 is less than the 2 sensors of the site")],
        id="capacity-below-sensors",
    ),
    pytest.param(
        y(SIGN, SIGN.replace("bearing_deg: 90", "bearing_deg: 360.5")),
        [I(Y, 19, "signs[0].bearing_deg", "360.5 is outside 0..360")],
        id="bearing",
    ),
    pytest.param(
        y(CTL, CTL.replace("port: 21002", "port: 21002, detectors: 9")),
        [I(Y, 17, "controllers[0].detectors", "9 is outside 1..8")],
        id="detectors-9",
    ),
    pytest.param(
        y(CTL, CTL.replace("port: 21002", "port: 21002, detectors: 0")),
        [I(Y, 17, "controllers[0].detectors", "0 is outside 1..8")],
        id="detectors-0",
    ),
    pytest.param(
        {"lamps": BASE_LAMPS.splitlines()[0] + "\n"},
        [I(Y, 14, "cabinets[0].id", "cabinet C1 has no lamps (it must have 1..128)")],
        id="cabinet-without-lamps",
    ),
    pytest.param(
        {"sensors": BASE_SENSORS.splitlines()[0] + "\n"},
        [I(Y, 21, "parking[0].id", "parking site P1 has no sensors (it must have 1..2000)")],
        id="site-without-sensors",
    ),
    # -- protocols ----------------------------------------------------------------------------------------------
    pytest.param(
        y(SIGN, SIGN.replace("port: 21003", "protocol: bacnet, port: 21003")),
        [I(Y, 19, "signs[0].protocol", "unknown protocol 'bacnet', expected modbus or opcua")],
        id="unknown-protocol",
    ),
    pytest.param(
        y(SIGN, SIGN.replace("port: 21003", "protocol: opcua, url: 'http://h:4840', port: 21003")),
        [
            I(Y, 19, "signs[0].port", "not used with protocol opcua"),
            I(Y, 19, "signs[0].url", "expected an opc.tcp:// URL, got 'http://h:4840'"),
            I(Y, 19, "signs[0].mapping", "missing required value"),
        ],
        id="opcua-fields",
    ),
    pytest.param(
        y(SIGN, SIGN.replace("port: 21003", "port: 21003, mapping: m1")),
        [I(Y, 19, "signs[0].mapping", "not used with protocol modbus")],
        id="modbus-with-mapping",
    ),
    # -- unknown fields -----------------------------------------------------------------------------------------
    pytest.param(
        y(CAB, CAB.replace("name: Cab", "name: Cab, colour: red")),
        [I(Y, 14, "cabinets[0].colour", "unknown field")],
        id="unknown-yaml-field",
    ),
    pytest.param(
        {"lamps": "id,cabinet,index,lat,lon,rated_w,legacy_w,street,seq,colour\nL1,C1,0,47.3,5.0,30,70,S1,1,red\n"},
        [I(LAMPS, 1, "colour", "unknown column")],
        id="unknown-csv-column",
    ),
    pytest.param(
        y("  title: Test site", "  mayor: X"), [I(Y, 3, "site.mayor", "unknown field")], id="unknown-site-field"
    ),
    pytest.param(
        y("{host: 127.0.0.1, unit: 1}", "{host: 127.0.0.1, unit: 1, speed: 9600}"),
        [I(Y, 8, "defaults.modbus.speed", "unknown field")],
        id="unknown-defaults-field",
    ),
]


@pytest.mark.parametrize(("change", "expected"), CASES)
def test_each_error_has_its_exact_message(
    make_site: MakeSite, change: dict[str, str], expected: list[ConfigIssue]
) -> None:
    """One broken thing gives exactly the expected issue (file, line, field, message), and nothing else."""
    assert issues_of(make_site(**change)) == expected


def test_base_site_is_valid(make_site: MakeSite) -> None:
    """The base of the cases above loads: every failure above comes from its one change."""
    site = load_site(make_site())
    assert [lamp.id for lamp in site.lamps()] == ["L1", "L2"]
    assert [sensor.id for sensor in site.sensors()] == ["B1", "B2"]


def test_missing_site_yaml(tmp_path: Path) -> None:
    """A folder without site.yaml is one issue, not a crash."""
    folder = tmp_path / "site"
    folder.mkdir()
    assert issues_of(folder) == [I(Y, None, "(file)", "file not found")]


def test_one_unit_per_device_on_a_shared_port_is_fine(make_site: MakeSite) -> None:
    """Two devices behind one gateway (same host and port, different unit ids) do not overlap."""
    site = load_site(make_site(**y(CTL, CTL.replace("port: 21002", "port: 21001, unit: 2"))))
    assert site.controllers["T1"].endpoint == Endpoint("modbus", "127.0.0.1", 21001, 2, 1000)


def test_opcua_endpoint(make_site: MakeSite) -> None:
    """protocol opcua takes url and mapping (and the poll period as sampling interval)."""
    change = SIGN.replace("port: 21003", "protocol: opcua, url: 'opc.tcp://10.0.0.5:4840', mapping: vms-x")
    site = load_site(make_site(**y(SIGN, change)))
    assert site.signs["V1"].endpoint == Endpoint("opcua", url="opc.tcp://10.0.0.5:4840", mapping="vms-x", poll_ms=5000)


def test_too_many_lamps_for_one_cabinet(make_site: MakeSite) -> None:
    """The 129th lamp of a cabinet is reported (with the index it necessarily repeats)."""
    rows = [f"L{k},C1,{k},47.3,5.0,30,70,S1,{k}" for k in range(128)] + ["L128,C1,5,47.3,5.0,30,70,S1,128"]
    text = BASE_LAMPS.splitlines()[0] + "\n" + "\n".join(rows) + "\n"
    assert issues_of(make_site(lamps=text)) == [
        I(LAMPS, 130, "cabinet", "cabinet C1 has more than 128 lamps"),
        I(LAMPS, 130, "index", "index 5 of cabinet C1 is already used by lamp L5 (site/lamps.csv:7)"),
    ]


def test_too_many_sensors_for_one_site(make_site: MakeSite) -> None:
    """The 2001st sensor of a site is reported, and so is the capacity below the sensor count."""
    rows = [f"B{k},P1,{k},47.3,5.0" for k in range(2000)] + ["B2000,P1,7,47.3,5.0"]
    text = BASE_SENSORS.splitlines()[0] + "\n" + "\n".join(rows) + "\n"
    folder = make_site(sensors=text, **y(PARK, PARK.replace("capacity: 10", "capacity: 2000")))
    assert issues_of(folder) == [
        I(Y, 21, "parking[0].capacity", "capacity 2000 is less than the 2001 sensors of the site"),
        I(SENSORS, 2002, "site", "parking site P1 has more than 2000 sensors"),
        I(SENSORS, 2002, "index", "index 7 of parking site P1 is already used by sensor B7 (site/sensors.csv:9)"),
    ]


def test_geojson_errors_are_located(make_site: MakeSite) -> None:
    """Device lists as GeoJSON: issues name the feature, its line and the property."""
    features = (
        '{"type": "FeatureCollection", "features": [\n'
        '{"type": "Feature", "geometry": {"type": "Point", "coordinates": [5.0, 47.3]},'
        ' "properties": {"id": "L1", "cabinet": "C1", "index": 0, "rated_w": 30, "legacy_w": 70}},\n'
        '{"type": "Feature", "geometry": {"type": "LineString", "coordinates": [[5.0, 47.3], [5.1, 47.3]]},'
        ' "properties": {"id": "L2", "cabinet": "C1", "index": "x", "rated_w": 30, "legacy_w": 70, "lat": 3}}\n'
        "]}\n"
    )
    folder = make_site(lamps=None, lamps__geojson=features, **y("lamps: lamps.csv", "lamps: lamps.geojson"))
    geo = "site/lamps.geojson"
    assert issues_of(folder) == [
        I(geo, 3, "features[1].geometry", "expected a Point geometry, got 'LineString'"),
        I(geo, 3, "features[1].properties.lat", "unknown field (the position comes from the geometry)"),
        I(geo, 3, "features[1].properties.index", "expected an integer, got 'x'"),
    ]


def test_json_syntax_error_has_its_line(make_site: MakeSite) -> None:
    """A GeoJSON syntax error names its line."""
    broken = (
        '{"type": "FeatureCollection", "features": [\n{"type": "Feature",\n "geometry": {"type": "Point" "x": 1}}]}'
    )
    folder = make_site(lamps=None, lamps__geojson=broken, **y("lamps: lamps.csv", "lamps: lamps.geojson"))
    assert issues_of(folder) == [I("site/lamps.geojson", 3, "(file)", "JSON syntax error: Expecting ',' delimiter")]


def test_streets_need_geometry(make_site: MakeSite) -> None:
    """Streets cannot come from CSV (no line geometry)."""
    line = "  - {id: S1, name: Main, district: d1, points: [[5.0, 47.3], [5.001, 47.3]]}"
    folder = make_site(**y(line, "  - {id: S1, name: Main, district: d1, points: streets.csv}"))
    # the inline list stays valid YAML: this checks the points type; the file form is checked below
    assert issues_of(folder) == [
        I(Y, 12, "streets[0].points", "expected a list of [longitude, latitude] points, got 'streets.csv'")
    ]
    text = replace_once(BASE_YAML, "streets:\n" + line, "streets: streets.csv\n# (no inline streets)")
    assert issues_of(make_site(yaml=text, streets__csv="id,name\n")) == [
        I(Y, 11, "streets", "streets need their line geometry: use a .geojson file or an inline list with points")
    ]


def test_every_error_comes_together(make_site: MakeSite) -> None:
    """Errors in several files and sections all come in one ConfigError, sorted by file and line."""
    text = replace_once(BASE_YAML, "latitude: 47.3", "latitude: 95")
    text = replace_once(text, CTL, CTL.replace("port: 21002", "port: 21001"))
    text = replace_once(text, SIGN, SIGN.replace("bearing_deg: 90", "bearing_deg: 400"))
    bad_lamps = replace_once(BASE_LAMPS, "L2,C1,1,47.3,5.0005,30,70,S1", "L2,C9,1,47.3,5.0005,abc,70,S9")
    bad_sensors = replace_once(BASE_SENSORS, "B2,P1,1", "B1,P1,0")
    with pytest.raises(ConfigError) as caught:
        load_site(make_site(yaml=text, lamps=bad_lamps, sensors=bad_sensors))
    expected = [
        I(Y, 4, "site.latitude", "95 is outside -90..90"),
        I(
            Y,
            17,
            "controllers[0].port",
            "Modbus address 127.0.0.1:21001 unit 1 is already used by C1 (site/site.yaml:14)",
        ),
        I(Y, 19, "signs[0].bearing_deg", "400 is outside 0..360"),
        I(LAMPS, 3, "rated_w", "expected a number, got 'abc'"),
        I(LAMPS, 3, "cabinet", "unknown cabinet 'C9'"),
        I(LAMPS, 3, "street", "unknown street 'S9'"),
        I(SENSORS, 3, "id", "duplicate id 'B1', already defined at site/sensors.csv:2"),
        I(SENSORS, 3, "index", "index 0 of parking site P1 is already used by sensor B1 (site/sensors.csv:2)"),
    ]
    assert caught.value.issues == expected
    text = str(caught.value)
    assert text.startswith("8 errors in the site configuration:\n")
    assert "  site/lamps.csv:3: cabinet: unknown cabinet 'C9'" in text.splitlines()
