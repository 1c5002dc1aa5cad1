"""Device panels against a real control post: opened from the map, live values, commands reach the simulators."""

from __future__ import annotations

from pathlib import Path

import pytest
from hmikit import Post, running_post, wait_for
from PyQt6.QtCore import QPointF, Qt
from PyQt6.QtTest import QTest
from PyQt6.QtWidgets import QPushButton

from drivers.modbus.registers import LAMP_HR_BASE, LIGHT_HR_COMMAND, PARK_HR_DISPLAY, TRAF_HR_PLAN
from hmi.model import DeviceRef
from hmi.panels import CabinetPanel, ControllerPanel, DevicePanel, LampPanel, ParkingPanel, SignPanel
from scada.catalog import Kind

pytestmark = pytest.mark.qt


def ref_of(post: Post, device_id: str) -> DeviceRef:
    assert post.console.model is not None
    ref = post.console.model.ref(device_id)
    assert ref is not None
    return ref


def click_on_map(post: Post, ref: DeviceRef) -> None:
    """A real left click on the device's dot."""
    cmap = post.console.window.map
    assert post.console.model is not None
    cmap.center_on(ref, 300.0)
    x, y = post.console.model.position(ref)
    scene_point = cmap.view.mapViewToScene(QPointF(x, y))
    widget_point = cmap.plot.mapFromScene(scene_point)
    QTest.mouseClick(cmap.plot.viewport(), Qt.MouseButton.LeftButton, pos=widget_point)


async def opened(post: Post, ref: DeviceRef) -> DevicePanel:
    """The panel of a device once it watches its variables and shows a first value."""
    assert post.console.panels is not None
    panel = post.console.panels.panel(ref.id)
    assert panel is not None, f"no panel for {ref.id}"
    await wait_for(lambda: ref.id not in post.console.panels.opening, what="the panel's watch")  # type: ignore[union-attr]
    await wait_for(lambda: panel.values, what=f"first values in the panel of {ref.id}")
    return panel


async def test_click_on_a_lamp_opens_its_panel_and_set_level_reaches_the_device(tmp_path: Path, free_port: int) -> None:
    async with running_post(tmp_path, free_port) as post:
        lamp = post.stack.site.cabinets["CAB-0001"].lamps[2]
        ref = ref_of(post, lamp.id)
        click_on_map(post, ref)
        panel = await opened(post, ref)
        assert isinstance(panel, LampPanel)
        assert post.console.window.map.selected == ref
        await wait_for(lambda: not panel.is_stale("Level"), what="a Good level")
        panel.level.setValue(35)
        panel.set_level.click()
        await wait_for(lambda: panel.last_answer is not None, what="the device's answer")
        assert panel.last_answer is not None and panel.last_answer.ok, panel.answer.text()
        assert "SetLevel: Good" in panel.answer.text()
        assert post.stack.sim.device(lamp.cabinet_id).hr[LAMP_HR_BASE + lamp.index] == 35
        await wait_for(lambda: panel.values.get("LevelSetpoint") == 35.0, what="the setpoint read back")
        assert panel.value_labels["LevelSetpoint"].text() == "35.0 %"


async def test_sign_panel_sends_a_message_that_the_sign_displays(tmp_path: Path, free_port: int) -> None:
    async with running_post(tmp_path, free_port) as post:
        ref = ref_of(post, "VMS-01")
        post.console.window.map.find_device("vms-01")
        panel = await opened(post, ref)
        assert isinstance(panel, SignPanel)
        panel.set_message("ACCIDENT A 500 M\nSERREZ A DROITE\nRALENTIR", pictogram=1, flashing=True)
        assert panel.preview.lines == ["ACCIDENT A 500 M", "SERREZ A DROITE", "RALENTIR"]
        assert panel.preview.pictogram == 1 and panel.preview.flashing
        send = panel.findChild(QPushButton, "signSend")
        assert send is not None and send.isEnabled()
        send.click()
        await wait_for(lambda: panel.last_answer is not None, what="the sign's answer")
        assert panel.last_answer is not None and panel.last_answer.ok, panel.answer.text()
        sim = post.stack.sim.device("VMS-01")
        assert sim.message() == "ACCIDENT A 500 M\nSERREZ A DROITE\nRALENTIR"
        assert sim.pictogram == 1 and sim.flashing == 1
        assert "Display: Good" in panel.answer.text()
        await wait_for(
            lambda: panel.current.lines == ["ACCIDENT A 500 M", "SERREZ A DROITE", "RALENTIR"],
            what="the displayed message read back into the panel",
        )
        # the line editors take at most 18 printable characters: the sign's format
        panel.line_edits[0].setText("Y" * 25)
        assert panel.line_edits[0].text() == "Y" * 18
        second = await panel.display("X" * 18)
        assert second.ok and sim.message() == "X" * 18 and sim.pictogram == 0
        blanked = await panel.call("Blank")
        assert blanked.ok and sim.blank()


async def test_controller_cabinet_and_car_park_commands(tmp_path: Path, free_port: int) -> None:
    async with running_post(tmp_path, free_port, user="supervisor") as post:  # intersections: engineer, supervisor
        cabinets = post.console.panels
        assert cabinets is not None
        # intersection: select plan 9 for 60 s, then release
        controller = cabinets.open(ref_of(post, "TLC-001"))
        assert isinstance(controller, ControllerPanel)
        await opened(post, controller.ref)
        controller.plan.setValue(9)
        controller.duration.setValue(60)
        controller.send_plan()
        await wait_for(lambda: controller.last_answer is not None, what="SelectPlan's answer")
        assert controller.last_answer is not None and controller.last_answer.ok, controller.answer.text()
        assert post.stack.sim.device("TLC-001").hr[TRAF_HR_PLAN] == 9
        await wait_for(lambda: controller.values.get("ActivePlan") == 9, what="plan 9 running")
        released = await controller.call("ReleasePlan")
        assert released.ok
        # car park: display mode "closed"
        parking = cabinets.open(ref_of(post, "PK-01"))
        assert isinstance(parking, ParkingPanel)
        await opened(post, parking.ref)
        parking.mode.setCurrentIndex(parking.mode.findData(2))
        answer = await parking.call("SetDisplayMode", *parking_mode_args(parking))
        assert answer.ok and post.stack.sim.device("PK-01").hr[PARK_HR_DISPLAY] == 2
        await wait_for(lambda: parking.values.get("DisplayMode") == 2, what="display mode read back")
        assert parking.value_labels["DisplayMode"].text() == "closed (2)"
        # cabinet: force on for 1.5 s, held by the console, then back to automatic by itself
        cabinet = cabinets.open(ref_of(post, "CAB-0003"))
        assert isinstance(cabinet, CabinetPanel)
        await opened(post, cabinet.ref)
        forced = await cabinet.force(1, 1.5)
        assert forced.ok
        cab_sim = post.stack.sim.device("CAB-0003")
        assert cab_sim.hr[LIGHT_HR_COMMAND] == 1
        assert cabinet.keeper.remaining(cabinet.ref.path) is not None
        assert (
            "back to automatic in" in cabinet.force_state.text()
            and "held by this console" in cabinet.force_state.text()
        )
        assert cabinet.server_override is False  # this server runs no lighting automation: no Override method
        await wait_for(lambda: cab_sim.hr[LIGHT_HR_COMMAND] == 0, timeout=6, what="the return to automatic")
        await wait_for(lambda: "returned to automatic: Good" in cabinet.force_state.text(), what="the panel's note")
        assert cabinet.keeper.remaining(cabinet.ref.path) is None
        assert "4 lamps" in cabinet.summary.text()
        # a refused argument: the device's answer (its status name) is shown
        refused = await cabinet.call("SetAllLevels", *out_of_range_level())
        assert not refused.ok and "BadOutOfRange" in cabinet.answer.text()


async def test_a_cabinet_is_forced_through_the_servers_override_and_cancelled(tmp_path: Path, free_port: int) -> None:
    async with running_post(tmp_path, free_port, user="operator", automation=True) as post:
        assert post.console.panels is not None and post.stack.server is not None
        lighting = post.stack.server.lighting
        assert lighting is not None
        cabinet = post.console.panels.open(ref_of(post, "CAB-0002"))
        assert isinstance(cabinet, CabinetPanel)
        await opened(post, cabinet.ref)
        cabinet.force_reason.setText("pole 12 repainted")
        forced = await cabinet.force(2, 600)
        assert forced.ok, cabinet.answer.text()
        assert cabinet.server_override is True
        cab_sim = post.stack.sim.device("CAB-0002")
        assert cab_sim.hr[LIGHT_HR_COMMAND] == 2
        [held] = lighting.overrides()
        assert (held.cabinet_id, held.mode, held.user, held.reason) == ("CAB-0002", 2, "operator", "pole 12 repainted")
        assert "held by the server" in cabinet.force_state.text() and cabinet.force_state.text().startswith(
            "all off: back to automatic in"
        )
        ended = await cabinet.end_force()
        assert ended.ok and ended.outputs == (2,)
        assert lighting.overrides() == [] and cab_sim.hr[LIGHT_HR_COMMAND] == 0


def parking_mode_args(panel: ParkingPanel) -> list:  # type: ignore[type-arg]
    from asyncua import ua

    return [ua.Variant(int(panel.mode.currentData()), ua.VariantType.Int32)]


def out_of_range_level() -> list:  # type: ignore[type-arg]
    from asyncua import ua

    return [ua.Variant(150.0, ua.VariantType.Double)]


def test_every_map_kind_has_a_panel() -> None:
    from hmi.model import MAP_KINDS
    from hmi.panels import PANELS

    assert set(PANELS) == set(MAP_KINDS)
    assert PANELS[Kind.SIGN] is SignPanel
