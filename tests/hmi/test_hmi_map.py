"""The map against a real control post: every device drawn where it is, coloured by its live state."""

from __future__ import annotations

from pathlib import Path

import pytest
from hmikit import Stack, running_post, wait_for

from hmi import theme
from hmi.console import Console
from hmi.model import MAP_KINDS, MapState
from scada.catalog import Kind

pytestmark = pytest.mark.qt


async def test_map_shows_every_device_of_the_site(tmp_path: Path, free_port: int) -> None:
    async with running_post(tmp_path, free_port) as post:
        check_every_device_drawn(post.console, post.stack)


def check_every_device_drawn(console: Console, stack: Stack) -> None:
    site_counts = stack.site.counts()
    scatters = console.window.map.scatters
    assert {kind: len(scatters[kind].data) for kind in MAP_KINDS} == {kind: site_counts[kind] for kind in MAP_KINDS}
    model = console.model
    assert model is not None
    # every point sits at its device's projected position
    for lamp in stack.site.lamps():
        ref = model.ref(lamp.id)
        assert ref is not None and ref.path == lamp.path
        x, y = model.projection.to_xy(lamp.lat, lamp.lon)
        assert abs(scatters[Kind.LAMP].data["x"][ref.row] - x) < 0.01
        assert abs(scatters[Kind.LAMP].data["y"][ref.row] - y) < 0.01
    assert len(model.streets) == len(stack.site.streets)


async def test_injected_lamp_failure_turns_its_dot_red(tmp_path: Path, free_port: int) -> None:
    async with running_post(tmp_path, free_port) as post:
        await check_lamp_failure(post.console, post.stack)


async def check_lamp_failure(console: Console, stack: Stack) -> None:
    model = console.model
    assert model is not None
    lamp = stack.site.cabinets["CAB-0002"].lamps[1]
    ref = model.ref(lamp.id)
    assert ref is not None
    failed = theme.STATE_COLOURS[MapState.FAILED]
    await wait_for(lambda: model.state(ref) is not MapState.UNKNOWN, what="a first lamp state")
    assert console.window.map.brush_colour(ref) != failed
    await stack.sim.set_fault(lamp.id, "lamp_failure")
    await wait_for(lambda: console.window.map.brush_colour(ref) == failed, what="the failed lamp's red dot")
    assert model.state(ref) is MapState.FAILED
    # only that lamp: its neighbours are not red
    for other in stack.site.cabinets["CAB-0002"].lamps:
        if other.id != lamp.id:
            assert console.window.map.brush_colour(model.ref(other.id)) != failed  # type: ignore[arg-type]
    await stack.sim.set_fault(lamp.id, "lamp_failure", on=False)
    await wait_for(lambda: console.window.map.brush_colour(ref) != failed, what="the repaired lamp's colour")
