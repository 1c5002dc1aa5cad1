"""Playbook configuration: the shipped sites load, and every mistake is reported with its line and field."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from scada.incidents.planner import ActionKind, plan_response
from scada.incidents.playbook import NOTIFY_PLACEHOLDERS, SIGN_PLACEHOLDERS, Template, TemplateError, load_playbooks
from scada.model import ConfigError
from scada.site.loader import load_site
from tests.incidents.incident_stack import AT_TLC, ROOT


def site_with(tmp_path: Path, playbooks: str) -> Path:
    """A copy of the small site whose playbooks section is replaced by `playbooks`."""
    folder = tmp_path / "small"
    shutil.copytree(ROOT / "config" / "small", folder)
    text = (folder / "site.yaml").read_text()
    start = text.index("playbooks:")
    end = text.index("\n# Parking guidance")
    (folder / "site.yaml").write_text(text[:start] + playbooks.strip() + "\n" + text[end:])
    return folder


def line_of(folder: Path, needle: str) -> int:
    lines = (folder / "site.yaml").read_text().splitlines()
    return next(number for number, line in enumerate(lines, start=1) if needle in line)


def test_the_shipped_playbooks_load() -> None:
    for name in ("small", "dijon"):
        playbooks = load_playbooks(load_site(ROOT / "config" / name))
        assert sorted(playbooks.by_kind) == ["accident", "congestion", "hazard", "roadworks"]
        accident = playbooks.for_kind("accident")
        assert accident.auto_execute and accident.signs is not None and accident.traffic is not None
        assert accident.traffic.duration_s > 0  # a plan is never selected without a duration
        assert not playbooks.for_kind("roadworks").auto_execute


def test_every_issue_is_reported_with_line_and_field(tmp_path: Path) -> None:
    folder = site_with(
        tmp_path,
        """
playbooks:
  accident:
    auto_execute: yes-please
    signs: {within_m: 3000, text: "ACCIDENT\\n{route} A {distance_km} KM", pictogram: 9}
    traffic: {within_m: 400, plan: 11, duration_s: 5}
    parking: {within_m: 800, display_mode: 4}
    notify: {severity: 800, message: "at {where}"}
    sirens: true
  fire: {}
""",
    )
    with pytest.raises(ConfigError) as caught:
        load_playbooks(load_site(folder))
    issues = {issue.field: issue for issue in caught.value.issues}
    assert set(issues) == {
        "playbooks.fire",
        "playbooks.accident.auto_execute",
        "playbooks.accident.signs.text",
        "playbooks.accident.signs.pictogram",
        "playbooks.accident.traffic.plan",
        "playbooks.accident.traffic.duration_s",
        "playbooks.accident.parking.display_mode",
        "playbooks.accident.notify.message",
        "playbooks.accident.sirens",
    }
    assert "unknown placeholder {route}" in issues["playbooks.accident.signs.text"].message
    assert "{distance_km}" in issues["playbooks.accident.signs.text"].message  # the message lists what is allowed
    assert "unknown placeholder {where}" in issues["playbooks.accident.notify.message"].message
    assert issues["playbooks.accident.signs.pictogram"].message == "9 is outside 0..7"
    assert issues["playbooks.accident.traffic.plan"].message == "11 is outside 1..10"
    assert issues["playbooks.accident.traffic.duration_s"].message == "5 is outside 10..86400"
    assert issues["playbooks.accident.parking.display_mode"].message == "4 is outside 0..2"
    assert "expected true or false" in issues["playbooks.accident.auto_execute"].message
    assert "unknown field" in issues["playbooks.fire"].message
    assert issues["playbooks.accident.auto_execute"].line == line_of(folder, "yes-please")
    assert issues["playbooks.accident.traffic.plan"].line == line_of(folder, "plan: 11")
    assert issues["playbooks.fire"].line == line_of(folder, "fire:")
    assert all(issue.file == "small/site.yaml" for issue in caught.value.issues)
    assert "small/site.yaml:" in str(caught.value)


@pytest.mark.parametrize(
    ("text", "within", "expected"),
    [
        ("ACCIDENT SUR LA ROUTE {road}", 3000, "line 1 has 26 characters"),
        ("{road} A {distance_m} METRES", 50000, "line 1 has 19 characters"),  # fits at 0 km, not at 50 km
        ("A\\nB\\nC\\nD", 3000, "the message has 4"),
        ("ÉCOLE\\nRALENTIR", 3000, "is not printable ASCII"),
    ],
)
def test_texts_must_fit_every_sign_at_every_distance(tmp_path: Path, text: str, within: int, expected: str) -> None:
    folder = site_with(tmp_path, f'playbooks:\n  hazard:\n    signs: {{within_m: {within}, text: "{text}"}}\n')
    with pytest.raises(ConfigError) as caught:
        load_playbooks(load_site(folder))
    [issue] = caught.value.issues
    assert issue.field == "playbooks.hazard.signs.text"
    assert expected in issue.message and "VMS-01" in issue.message
    assert issue.line == line_of(folder, "    signs: {within_m")


def test_the_longest_text_that_fits_is_accepted(tmp_path: Path) -> None:
    folder = site_with(
        tmp_path, 'playbooks:\n  hazard:\n    signs: {within_m: 3000, text: "{road} A {distance_m} METRES"}\n'
    )
    rule = load_playbooks(load_site(folder)).for_kind("hazard").signs
    assert rule is not None and rule.render("D971", 2960.0, "hazard") == "D971 A 3000 METRES"


def test_templates_render_and_fold_to_ascii() -> None:
    template = Template.parse("{road} A {distance_km} KM", SIGN_PLACEHOLDERS)
    assert template.render({"road": "Route de Chenôve", "distance_km": 1.26}) == "Route de Chenove A 1.3 KM"
    assert Template.parse("{distance_km:.0f}", SIGN_PLACEHOLDERS).render({"distance_km": 2.6}) == "3"
    for bad in ("{road.upper}", "{road[0]}", "{road!r}", "{}", "{road"):
        with pytest.raises(TemplateError):
            Template.parse(bad, SIGN_PLACEHOLDERS)
    note = Template.parse("{kind} at {lat:.3f},{lon:.3f}: {description}", NOTIFY_PLACEHOLDERS)
    assert (
        note.render({"kind": "hazard", "lat": 47.1234, "lon": 5.0, "description": "oil"})
        == "hazard at 47.123,5.000: oil"
    )


def test_a_site_without_playbooks_proposes_nothing(tmp_path: Path) -> None:
    folder = site_with(tmp_path, "")
    playbooks = load_playbooks(load_site(folder))
    assert playbooks.by_kind == {}
    assert plan_response(playbooks.for_kind("accident"), load_site(folder), "INC-1", *AT_TLC) == []


def test_the_plan_of_an_accident_on_the_small_site() -> None:
    site = load_site(ROOT / "config" / "small")
    actions = plan_response(load_playbooks(site).for_kind("accident"), site, "INC-1", *AT_TLC, "two cars")
    assert [(a.kind, a.device_id) for a in actions] == [
        (ActionKind.SIGN, "VMS-01"),
        (ActionKind.TRAFFIC, "TLC-001"),
        (ActionKind.NOTIFY, None),
    ]
    sign, traffic, notify = actions
    assert sign.command is not None and sign.command.args == {
        "Text": "ACCIDENT\nD971 A 1.0 KM\nRALENTIR",
        "Pictogram": 1,
        "Flashing": True,
    }
    assert traffic.command is not None and traffic.command.args == {"Plan": 9, "DurationSeconds": 1800}
    assert notify.severity == 800 and notify.message == "Accident reported at 47.32220,5.04130: two cars"
    # a hazard also closes the car park entrance within 300 m (PK-01 is 125 m away)
    hazard = plan_response(load_playbooks(site).for_kind("hazard"), site, "INC-2", *AT_TLC)
    assert [(a.kind, a.device_id) for a in hazard if a.kind is ActionKind.PARKING] == [(ActionKind.PARKING, "PK-01")]
