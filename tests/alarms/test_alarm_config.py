"""The alarms section of site.yaml: defaults, the shipped sites, and every error located by line and field."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from alarmkit import make_site

from scada.alarms import AlarmsConfig, load_alarms_config, parse_alarms
from scada.model import ConfigError
from scada.site.loader import load_site

EXAMPLE = """\
site: {name: t}
alarms:
  severities: {lamp_failure: 300, comm_lost: 700, door_open: 500, mains_failure: 800, controller_fault: 900,
               signal_lamp_failure: 600, sign_fault: 400, car_park_full: 200}
  car_park_full: {full_at_free: 0, clear_at_free: 5}
  flood: {suppress_children_on: [comm_lost, mains_failure]}
"""

BROKEN = """\
site: {name: t}
alarms:
  severities:
    lamp_failure: 0
    comm_lost: high
    tsunami: 900
  car_park_full: {full_at_free: 5, clear_at_free: 5, site_types: [carpark, garage]}
  flood:
    suppress_children_on: [comm_lost, lamp_failure, comm_lost]
    release_delay_s: -1
  shelving: {max_hours: 0}
  confirm: "yes"
  disabled: [sign_fault, volcano]
  colour: red
"""


def load_from(tmp_path: Path, text: str) -> AlarmsConfig:
    """The alarms section of a site.yaml written in tmp_path, as the application loads it."""
    (tmp_path / "site.yaml").write_text(text, encoding="utf-8")
    site = make_site()
    site.folder = tmp_path
    site.settings = {"alarms": yaml.safe_load(text)["alarms"]}
    return load_alarms_config(site)


def test_defaults_without_a_section() -> None:
    config = parse_alarms(None)
    assert config == AlarmsConfig()
    assert config.severity("controller_fault") == 900 and config.severity("car_park_full") == 200
    assert config.flood.suppress_children_on == {"comm_lost", "mains_failure"}
    assert (config.car_park_full.full_at_free, config.car_park_full.clear_at_free) == (0, 5)


def test_the_example_section(tmp_path: Path) -> None:
    config = load_from(tmp_path, EXAMPLE)
    assert config.severities["mains_failure"] == 800 and config.severities["sign_fault"] == 400
    assert config.flood.release_delay_s == 10.0 and config.confirm is True


def test_every_error_is_reported_with_its_line_and_field(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_from(tmp_path, BROKEN)
    found = [(issue.line, issue.field, issue.message) for issue in caught.value.issues]
    expected = {
        (
            "alarms.colour",
            14,
            "unknown field (expected one of severities, car_park_full, flood, shelving, confirm, disabled, events)",
        ),
        (
            "alarms.severities.tsunami",
            6,
            "unknown field (expected one of lamp_failure, comm_lost, door_open, mains_failure, controller_fault, signal_lamp_failure, sign_fault, car_park_full)",
        ),
        ("alarms.severities.lamp_failure", 4, "0 is outside 1..1000"),
        ("alarms.severities.comm_lost", 5, "expected an integer, got 'high'"),
        (
            "alarms.car_park_full.clear_at_free",
            7,
            "clear_at_free (5) must be greater than full_at_free (5) for the hysteresis",
        ),
        (
            "alarms.car_park_full.site_types[1]",
            7,
            "'garage' is not a parking site type (expected one of carpark, onstreet)",
        ),
        (
            "alarms.flood.suppress_children_on[1]",
            9,
            "'lamp_failure' is not a cabinet alarm (expected one of comm_lost, door_open, mains_failure)",
        ),
        ("alarms.flood.suppress_children_on[2]", 9, "'comm_lost' is listed twice"),
        ("alarms.flood.release_delay_s", 10, "-1 is outside 0..3600"),
        ("alarms.shelving.max_hours", 11, "0 is outside 0.001..168"),
        ("alarms.confirm", 12, "expected true or false, got 'yes'"),
        (
            "alarms.disabled[1]",
            13,
            "'volcano' is not an alarm kind (expected one of lamp_failure, comm_lost, door_open, mains_failure, controller_fault, signal_lamp_failure, sign_fault, car_park_full)",
        ),
    }
    assert {(field, line, message) for line, field, message in found} == expected
    assert len(found) == len(expected)
    assert "12 errors in the site configuration" in str(caught.value)
    assert all(issue.file == f"{tmp_path.name}/site.yaml" for issue in caught.value.issues)


def test_a_section_that_is_not_a_mapping() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_alarms(["lamp_failure"])
    assert [(i.field, i.message) for i in caught.value.issues] == [("alarms", "expected a mapping, got a list")]


def test_the_small_site_section() -> None:
    root = Path(__file__).resolve().parents[2]
    config = load_alarms_config(load_site(root / "config" / "small"))
    assert config.severities["lamp_failure"] == 300 and config.flood.release_delay_s == 10.0


@pytest.mark.slow
def test_the_dijon_site_section() -> None:
    root = Path(__file__).resolve().parents[2]
    config = load_alarms_config(load_site(root / "config" / "dijon"))
    assert config.severities["controller_fault"] == 900 and config.max_shelve_s == 8 * 3600
