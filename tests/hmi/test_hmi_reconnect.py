"""Connection loss: a banner, stale values greyed out, reconnection with every watch restored."""

from __future__ import annotations

from pathlib import Path

import pytest
from hmikit import running_post, wait_for

from hmi import theme
from hmi.client import ConnectionState
from hmi.model import MapState
from hmi.panels import ParkingPanel
from scada.model import Quality

pytestmark = pytest.mark.qt


async def test_server_loss_shows_the_banner_and_restart_recovers(tmp_path: Path, free_port: int) -> None:
    async with running_post(tmp_path, free_port) as post:
        console = post.console
        model = console.model
        assert model is not None and console.panels is not None
        banner = console.window.banner
        assert not banner.showing
        park = model.ref("PK-01")
        lamp = model.ref(post.stack.site.cabinets["CAB-0001"].lamps[0].id)
        assert park is not None and lamp is not None
        panel = console.panels.open(park)
        assert isinstance(panel, ParkingPanel)
        await wait_for(lambda: panel.values.get("Free") is not None and not panel.is_stale("Free"), what="Free")
        await wait_for(lambda: model.state(lamp) is not MapState.UNKNOWN, what="a lamp state")
        await wait_for(
            lambda: console.window.map.brush_colour(lamp) == theme.STATE_COLOURS[model.state(lamp)],
            what="the lamp's live colour",
        )
        live_colour = console.window.map.brush_colour(lamp)

        await post.stack.stop_server()
        await wait_for(lambda: banner.showing, timeout=10, what="the connection banner")
        assert console.client.state is ConnectionState.LOST
        assert "CONNECTION LOST" in banner.label.text()
        assert "CONNECTION LOST" in console.window.connection_label.text()
        # values greyed out, not blanked: the last value stays, marked stale
        assert model.stale
        await wait_for(
            lambda: console.window.map.brush_colour(lamp) == theme.STALE_COLOURS[model.state(lamp)],
            what="greyed dots",
        )
        assert console.window.map.brush_colour(lamp) != live_colour
        assert panel.is_stale("Free") and panel.values.get("Free") is not None
        assert panel.value_labels["Free"].property("stale") == "true"
        assert panel.value_labels["Free"].text() != "—"
        refused = await panel.call("SetDisplayMode", *display_auto())
        assert refused.status == Quality.BAD_NOT_CONNECTED and "BadNotConnected" in panel.answer.text()

        await post.stack.start_server()  # a new server process would do the same: same port, same NodeIds
        await wait_for(lambda: console.client.state is ConnectionState.CONNECTED, timeout=15, what="reconnection")
        assert not banner.showing and not model.stale
        assert console.client.sessions == 2
        assert "reconnected" in console.window.connection_label.text()
        # the restored watches deliver again: the panel's values and the map's dots follow the city
        post.stack.sim.set_occupancy("PK-01", 13)
        await wait_for(lambda: panel.values.get("Occupied") == 13 and not panel.is_stale("Occupied"), what="13")
        assert panel.value_labels["Free"].property("stale") == "false"
        await post.stack.sim.set_fault(lamp.id, "lamp_failure")
        failed = theme.STATE_COLOURS[MapState.FAILED]
        await wait_for(lambda: console.window.map.brush_colour(lamp) == failed, what="the red dot after recovery")


def display_auto() -> list:  # type: ignore[type-arg]
    from asyncua import ua

    return [ua.Variant(0, ua.VariantType.Int32)]
