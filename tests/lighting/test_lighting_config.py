"""The lighting section: the shipped sites are valid, every mistake is reported together with file, line and field."""

from __future__ import annotations

import re
import shutil
from datetime import time, timedelta
from pathlib import Path

import pytest

from scada.lighting.config import DEFAULT_SECTION, load_lighting_config
from scada.model import ConfigError, ConfigIssue
from scada.site.loader import load_site


def small_copy(tmp_path: Path, lighting: str | None) -> Path:
    """The small site in tmp_path with its lighting section replaced (None: removed)."""
    folder = tmp_path / "small"
    folder.mkdir(parents=True)
    source = Path(__file__).resolve().parents[2] / "config" / "small"
    shutil.copy(source / "lamps.csv", folder / "lamps.csv")
    for name in ("users.yaml",):
        if (source / name).exists():
            shutil.copy(source / name, folder / name)
    text = (source / "site.yaml").read_text(encoding="utf-8")
    text = re.sub(r"\nlighting:\n(  .*\n)+", "\n", text)
    if lighting is not None:
        text += "\n" + lighting
    (folder / "site.yaml").write_text(text, encoding="utf-8")
    return folder


def line_of(folder: Path, needle: str) -> int:
    """The 1-based line of site.yaml holding `needle`."""
    for number, line in enumerate((folder / "site.yaml").read_text(encoding="utf-8").splitlines(), start=1):
        if needle in line:
            return number
    raise AssertionError(f"{needle!r} not in site.yaml")


def issues_of(folder: Path) -> list[ConfigIssue]:
    """The issues load_lighting_config reports for a site folder."""
    site = load_site(folder)
    with pytest.raises(ConfigError) as caught:
        load_lighting_config(site)
    return caught.value.issues


def test_shipped_sites_are_valid(small_site_dir: Path, dijon_site_dir: Path) -> None:
    small = load_lighting_config(load_site(small_site_dir))
    assert small.districts == {"centre-ville": "main-roads", "montchapet": "residential"}
    assert (small.on.event, small.on.offset) == ("sunset", timedelta(minutes=10))
    assert (small.off.event, small.off.offset) == ("sunrise", timedelta(minutes=-10))
    assert [s.level for s in small.profiles["residential"].steps] == [100, 30, 70]
    assert small.presence.boost_level == 100 and small.presence.hold_seconds == 90
    assert small.presence.follow_me.lamps_ahead == 3 and small.presence.follow_me.hold_seconds == 60
    assert small.max_override_minutes == 480


@pytest.mark.slow
def test_dijon_section_is_valid(dijon_site_dir: Path) -> None:
    dijon = load_lighting_config(load_site(dijon_site_dir))
    assert set(dijon.districts) == {
        "centre-ville", "maladiere", "faubourg-raines", "victor-hugo", "montchapet", "toison-dor", "gresilles",
        "universite", "chevreul-parc", "bourroches-port-du-canal", "fontaine-douche", "mirande",
    }  # fmt: skip
    assert dijon.districts["centre-ville"] == "main-roads" and dijon.districts["mirande"] == "residential"


def test_every_mistake_is_reported_with_its_line(tmp_path: Path) -> None:
    folder = small_copy(
        tmp_path,
        """lighting:
  switch: {"on": "sunrise+10min", "off": "dusk", depression: twilight}
  profiles:
    residential: [{from: "on", level: 100}, {from: "25:00", level: 30}, {from: "05:30", level: 170}]
    main-roads:
      - {from: "23:00", level: 50}
  districts: {centre-ville: main-road, nowhere: residential}
  presence: {boost_level: 100, hold_seconds: 0, follow_me: {lamps_ahead: 3, speed: 2}}
  overrides: {max_minutes: 10000}
  colour: warm
""",
    )
    issues = issues_of(folder)
    found = {(issue.field, issue.line): issue.message for issue in issues}
    switch_line = line_of(folder, "sunrise+10min")
    residential_line = line_of(folder, "residential: [")
    expected = {
        ("lighting.switch.on", switch_line): "unknown time 'sunrise+10min' (sunrise is a morning event)",
        ("lighting.switch.off", switch_line): "unknown time 'dusk' (dusk is an evening event)",
        ("lighting.switch.depression", switch_line): "unknown depression 'twilight'",
        ("lighting.profiles.residential[1].from", residential_line): "unknown time '25:00'",
        ("lighting.profiles.residential[2].level", residential_line): "170 is outside 0..100",
        ("lighting.profiles.main-roads", line_of(folder, '- {from: "23:00"')): "no step starts at the switch-on",
        ("lighting.districts.centre-ville", line_of(folder, "main-road,")): "unknown profile 'main-road'",
        ("lighting.districts.nowhere", line_of(folder, "main-road,")): "unknown district 'nowhere'",
        ("lighting.presence.hold_seconds", line_of(folder, "hold_seconds: 0")): "0 is outside 1..3600",
        ("lighting.presence.follow_me.speed", line_of(folder, "speed: 2")): "unknown field",
        ("lighting.overrides.max_minutes", line_of(folder, "max_minutes: 10000")): "10000 is outside 1..1440",
        ("lighting.colour", line_of(folder, "colour: warm")): "unknown field",
    }  # fmt: skip
    for key, message in expected.items():
        assert key in found, f"{key} not reported; got {sorted(found)}"
        assert found[key].startswith(message), (key, found[key])
    assert len(issues) == len(expected)
    assert all(issue.file == "small/site.yaml" for issue in issues)
    assert "12 errors in the site configuration" in str(ConfigError(issues))


def test_main_roads_block_line_points_at_the_profile(tmp_path: Path) -> None:
    folder = small_copy(
        tmp_path,
        """lighting:
  profiles:
    residential: [{from: "on", level: 100}]
    main-roads:
      - {from: "23:00", level: 50}
      - {from: "23:00", level: 40}
  districts: {"*": residential}
""",
    )
    issues = issues_of(folder)
    assert [(i.field, i.line) for i in issues] == [
        ("lighting.profiles.main-roads", line_of(folder, '- {from: "23:00", level: 50}'))
    ]
    assert issues[0].message == 'no step starts at the switch-on: add {from: "on", level: ...}'


def test_every_district_needs_a_profile(tmp_path: Path) -> None:
    folder = small_copy(
        tmp_path,
        """lighting:
  profiles:
    residential: [{from: "on", level: 100}]
    main-roads: [{from: "on", level: 100}, {from: "00:30", level: 50}, {from: "00:30", level: 40}]
  districts: {centre-ville: main-roads}
""",
    )
    issues = issues_of(folder)
    assert [(i.field, i.message) for i in issues] == [
        ("lighting.profiles.main-roads", "two steps start at 00:30"),
        ("lighting.districts", 'no profile for district montchapet: name it or add a "*" entry'),
    ]
    assert issues[1].line == line_of(folder, "districts: {centre-ville")


def test_unquoted_on_and_off_are_read_as_written(tmp_path: Path) -> None:
    folder = small_copy(
        tmp_path,
        """lighting:
  switch: {on: dusk+5min, off: dawn, depression: nautical}
  profiles:
    night: [{from: on, level: 80}, {from: off-30min, level: 60}]
""",
    )
    config = load_lighting_config(load_site(folder))
    assert (config.on.event, config.on.offset, config.off.event, config.depression) == (
        "dusk",
        timedelta(minutes=5),
        "dawn",
        12.0,
    )
    assert config.districts == {"centre-ville": "night", "montchapet": "night"}  # the only profile
    assert [s.start.text for s in config.profiles["night"].steps] == ["on", "off-30min"]


def test_fixed_switch_times_must_be_in_their_half_of_the_day(tmp_path: Path) -> None:
    folder = small_copy(
        tmp_path,
        """lighting:
  switch: {"on": "06:00", "off": "19:00+4h"}
  profiles: {all: [{from: "on", level: 100}]}
""",
    )
    issues = issues_of(folder)
    assert [(i.field, i.message) for i in issues] == [
        ("lighting.switch.on", "a fixed switch-on time must be from 12:00 to 23:59, got 06:00"),
        ("lighting.switch.off", "offset +4h is more than 3 h"),
    ]
    folder2 = small_copy(tmp_path / "b", """lighting:\n  switch: {"on": "19:30", "off": "06:15-15min"}\n""")
    config = load_lighting_config(load_site(folder2))
    assert (config.on.fixed, config.off.fixed, config.off.offset) == (time(19, 30), time(6, 15), timedelta(minutes=-15))


def test_a_site_without_lighting_section_gets_the_default(tmp_path: Path) -> None:
    config = load_lighting_config(load_site(small_copy(tmp_path, None)))
    assert set(config.profiles) == set(DEFAULT_SECTION["profiles"])
    assert (config.on.event, config.off.event) == ("sunset", "sunrise")
    assert set(config.districts.values()) == {"all-night"}
