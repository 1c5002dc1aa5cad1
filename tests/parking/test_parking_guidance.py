"""Parking guidance: configuration checks, line rendering, and signs following the simulated car park over Modbus."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from scada.model import ConfigError
from scada.parking.guidance import GuidanceLine, GuidanceRule, ParkingGuidance, load_guidance, render_line
from scada.site.loader import load_site
from tests.incidents.incident_stack import ROOT, Stack, close_stack, eventually, open_stack


def site_with(tmp_path: Path, section: str) -> Path:
    folder = tmp_path / "small"
    shutil.copytree(ROOT / "config" / "small", folder)
    text = (folder / "site.yaml").read_text()
    start = text.index("parking_guidance:")
    (folder / "site.yaml").write_text(text[:start] + section.strip() + "\n")
    return folder


def test_the_shipped_guidance_loads() -> None:
    assert load_guidance(load_site(ROOT / "config" / "small")) == [
        GuidanceRule("VMS-01", (GuidanceLine("PK-01", "DAUPHINE"),), 0, 10.0)
    ]
    assert len(load_guidance(load_site(ROOT / "config" / "dijon"))) == 4


def test_every_mistake_is_reported_with_line_and_field(tmp_path: Path) -> None:
    folder = site_with(
        tmp_path,
        """
parking_guidance:
  - sign: VMS-99
    lines: [{site: PK-07, label: "NOWHERE"}, {site: PK-01, label: "PARKING DAUPHINE"}]
  - sign: VMS-01
    lines: [{site: PK-01, label: "A"}, {site: PK-01, label: "B"}, {site: PK-01, label: "C"}, {site: PK-01, label: "D"}]
    pictogram: 8
  - sign: VMS-01
    lines: [{site: PK-01, label: "GARE\u00c9"}]
    colour: amber
""",
    )
    with pytest.raises(ConfigError) as caught:
        load_guidance(load_site(folder))
    issues = {(issue.field, issue.message) for issue in caught.value.issues}
    assert issues == {
        ("parking_guidance[0].sign", "unknown sign 'VMS-99'"),
        ("parking_guidance[0].lines[0].site", "unknown parking site 'PK-07'"),
        ("parking_guidance[0].lines[1].label", "'PARKING DAUPHINE' has 16 characters, at most 10 fit before the count"),
        ("parking_guidance[1].lines", "a sign shows 3 lines, 4 are given"),
        ("parking_guidance[1].pictogram", "8 is outside 0..7"),
        ("parking_guidance[2].sign", "sign VMS-01 is already a guidance sign (parking_guidance[1])"),
        ("parking_guidance[2].lines[0].label", "'GAREÉ' holds characters a sign cannot show (printable ASCII only)"),
        ("parking_guidance[2].colour", "unknown field (expected sign, lines, pictogram, min_interval_s)"),
    }
    lines = (folder / "site.yaml").read_text().splitlines()
    by_field = {issue.field: issue.line for issue in caught.value.issues}
    assert lines[by_field["parking_guidance[0].sign"] - 1].strip() == "- sign: VMS-99"
    assert "pictogram: 8" in lines[by_field["parking_guidance[1].pictogram"] - 1]


def test_lines_render_free_places_full_and_closed() -> None:
    assert render_line("DAUPHINE", 123, False, 0, True) == "DAUPHINE       123"
    assert render_line("DAUPHINE", 0, True, 0, True) == "DAUPHINE   COMPLET"
    assert render_line("DAUPHINE", 50, False, 1, True) == "DAUPHINE   COMPLET"  # entrance forced to full
    assert render_line("DAUPHINE", 50, False, 2, True) == "DAUPHINE     FERME"
    assert render_line("DAUPHINE", 50, False, 0, False) == "DAUPHINE        --"
    assert render_line("CLEMENCEAU", 1999, False, 0, True) == "CLEMENCEAU    1999"
    assert all(len(render_line("X" * 10, v, False, 0, True)) == 18 for v in (0, 9, 2000))


@pytest.fixture
async def stack() -> AsyncIterator[Stack]:
    opened = await open_stack(cars=False)
    try:
        yield opened
    finally:
        await close_stack(opened)


async def start_guidance(stack: Stack, interval: float = 0.5) -> ParkingGuidance:
    rule = GuidanceRule("VMS-01", (GuidanceLine("PK-01", "DAUPHINE"),), pictogram=5, min_interval_s=interval)
    guidance = ParkingGuidance(stack.site, stack.holds, stack.cache, [rule])
    await guidance.start()
    return guidance


async def test_the_sign_follows_the_car_park(stack: Stack) -> None:
    capacity = stack.site.parking["PK-01"].capacity
    stack.sim.set_occupancy("PK-01", 10)
    await stack.driver.poll_all()
    guidance = await start_guidance(stack)
    try:
        await eventually(lambda: stack.sign() == (f"DAUPHINE   {capacity - 10:>7}", 5, 0), what="free places shown")
        stack.sim.set_occupancy("PK-01", capacity - 1)
        await eventually(lambda: stack.sign()[0] == "DAUPHINE         1", what="one place left")
        stack.sim.set_occupancy("PK-01", capacity)
        await eventually(lambda: stack.sign()[0] == "DAUPHINE   COMPLET", what="COMPLET")
        await stack.execute("PK-01", "set_display_mode", Mode=2)
        await eventually(lambda: stack.sign()[0] == "DAUPHINE     FERME", what="FERME")
        await stack.execute("PK-01", "set_display_mode", Mode=0)
        stack.sim.set_occupancy("PK-01", 0)
        await eventually(lambda: stack.sign()[0] == f"DAUPHINE   {capacity:>7}", what="empty again")
        # the car park stops answering: the count is not shown stale
        await stack.sim.kill("PK-01")
        await eventually(lambda: stack.sign()[0] == "DAUPHINE        --", timeout=15, what="unknown shown")
    finally:
        await guidance.stop()


async def test_updates_are_debounced_and_only_sent_on_change(stack: Stack) -> None:
    stack.sim.set_occupancy("PK-01", 4)
    await stack.driver.poll_all()
    guidance = await start_guidance(stack, interval=2.0)
    sign = stack.sim.device("VMS-01")
    try:
        await eventually(lambda: stack.sign()[0].endswith(" 20"), what="first text")
        commits = sign.commits
        await asyncio.sleep(1.0)  # polls keep coming: nothing changed, nothing written
        assert sign.commits == commits
        for occupied in (5, 6, 7):  # three changes within the interval: one update, with the last value
            stack.sim.set_occupancy("PK-01", occupied)
            await stack.driver.poll_all()
        await eventually(lambda: stack.sign()[0].endswith(" 17"), what="last value shown")
        assert sign.commits == commits + 1
        assert guidance.writes == 2
    finally:
        await guidance.stop()


async def test_an_incident_has_priority_and_guidance_resumes_after(stack: Stack) -> None:
    stack.sim.set_occupancy("PK-01", 4)
    await stack.driver.poll_all()
    guidance = await start_guidance(stack)
    try:
        await eventually(lambda: stack.sign()[0] == "DAUPHINE        20", what="guidance shown")
        incident_id = await stack.service.report(stack.report("accident"))
        async with asyncio.timeout(10):
            await stack.service.wait_settled(incident_id)
        assert stack.sign()[0].startswith("ACCIDENT")
        stack.sim.set_occupancy("PK-01", 24)
        await stack.driver.poll_all()
        await asyncio.sleep(1.0)  # longer than the interval: guidance would have written by now
        assert stack.sign()[0].startswith("ACCIDENT")
        assert guidance.skipped_held >= 1
        await stack.service.close(incident_id, "operator")
        # straight to the current guidance text, not to what the sign showed before the incident
        assert stack.sign() == ("DAUPHINE   COMPLET", 5, 0)
        restore = stack.service.get(incident_id).actions["A1"].restore
        assert restore is not None and "guidance" in restore["note"]
    finally:
        await guidance.stop()
