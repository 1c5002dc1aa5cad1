"""Incidents from the console against a real control post: a map click in report mode places an accident, the
playbook runs on the simulated devices, an action cancelled from the console is cancelled on the server (its
device restored), and closing the incident restores the rest."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from hmikit import Stack, close_console, open_console, wait_for
from PyQt6.QtCore import QPoint, QPointF, Qt

from drivers.modbus.registers import TRAF_HR_PLAN
from hmi.console import Console
from hmi.incidents import INCIDENTS_DOCK, IncidentsView, parse_kinds

pytestmark = pytest.mark.qt

# TLC-001's crossing: VMS-01 is 1.03 km away, upstream of it (tests/incidents use the same place)
AT_TLC = (47.322200, 5.041300)
SIGN = "VMS-01"
CONTROLLER = "TLC-001"


def test_kinds_are_read_from_the_argument_description() -> None:
    assert parse_kinds("accident, roadworks, congestion or hazard") == ["accident", "roadworks", "congestion", "hazard"]
    assert parse_kinds("what happened") == []


def sign_message(stack: Stack) -> str:
    device: Any = stack.sim.device(SIGN)
    return str(device.message())


def requested_plan(stack: Stack) -> int:
    device: Any = stack.sim.device(CONTROLLER)
    return int(device.hr[TRAF_HR_PLAN])


def click_map_at(console: Console, qtbot: Any, lat: float, lon: float) -> None:
    """A real left click on the map's viewport where (lat, lon) is drawn."""
    model = console.model
    assert model is not None
    the_map = console.window.map
    x, y = model.projection.to_xy(lat, lon)
    scene = the_map.view.mapViewToScene(QPointF(float(x), float(y)))
    point = the_map.plot.mapFromScene(scene)
    viewport = the_map.plot.viewport()
    qtbot.mouseClick(viewport, Qt.MouseButton.LeftButton, pos=QPoint(point.x(), point.y()))


async def test_report_from_the_map_runs_the_playbook_cancel_and_close(
    tmp_path: Path, free_port: int, qtbot: Any
) -> None:
    stack = Stack(free_port, tmp_path)
    await stack.start()
    try:
        # a supervisor: the accident playbook also selects a plan, which operators may not (controller.*)
        console = await open_console(stack, tmp_path / "supervisor", "supervisor")
        try:
            await check_incident(console, stack, qtbot)
        finally:
            await close_console(console)
    finally:
        await stack.stop()
        await asyncio.sleep(0.1)


async def check_incident(console: Console, stack: Stack, qtbot: Any) -> None:
    view = console.incidents
    assert isinstance(view, IncidentsView) and console.window.docks[INCIDENTS_DOCK].widget() is view
    assert set(view.kinds) >= {"accident", "roadworks", "congestion", "hazard"}  # as the server documents them
    assert not view.incidents and "ACCIDENT" not in sign_message(stack)
    service = stack.server.incidents  # type: ignore[union-attr]

    # report mode: the next click on the map gives the place; the dialog chooses the kind
    assert view.report_button.isEnabled()
    view.report_button.click()
    assert view.report_button.isChecked()
    console.window.map.plot.viewport().repaint()  # type: ignore[union-attr]
    click_map_at(console, qtbot, *AT_TLC)
    await wait_for(lambda: view.report_dialog is not None and view.report_dialog.isVisible(), what="the dialog")
    dialog = view.report_dialog
    assert dialog is not None and not view.report_button.isChecked()
    assert abs(dialog.lat - AT_TLC[0]) < 2e-4 and abs(dialog.lon - AT_TLC[1]) < 2e-4  # a few pixels of the map
    dialog.kind_box.setCurrentText("accident")
    dialog.description_edit.setText("two cars, lane blocked")
    dialog.contact_edit.setText("jane.doe@example.org")
    dialog.ok_button.click()
    await wait_for(lambda: view.selected is not None and bool(view.selected.actions), what="the incident's actions")
    incident = view.selected
    assert incident is not None
    assert view.answers[-1][1].ok and incident.id in view.answers[-1][0]
    assert incident.values.get("Kind") == "accident"

    # the accident playbook executes at once: the sign shows its message, the controller runs plan 9
    await wait_for(lambda: "ACCIDENT" in sign_message(stack), timeout=15.0, what="the playbook's sign message")
    await wait_for(lambda: requested_plan(stack) == 9, timeout=15.0, what="the playbook's traffic plan")
    by_device = {a.get("device"): a for a in incident.actions}
    assert {SIGN, CONTROLLER} <= set(by_device)
    sign_action = by_device[SIGN]
    assert "ACCIDENT" in (sign_action.get("command") or {}).get("args", {}).get("Text", "")
    await wait_for(lambda: view.ringed.get(SIGN) == "confirmed", what="the sign's ring, confirmed")
    assert CONTROLLER in view.ringed  # the proposed actions are drawn on the map
    assert view.action_table.rowCount() == len(incident.actions)
    assert view.timeline.count() >= 1

    # cancel the sign action from the console: cancelled on the server, the sign restored
    view.select_action(str(sign_action["id"]))
    assert view.cancel_button.isEnabled()
    before = len(view.answers)
    view.cancel_button.click()
    await wait_for(lambda: len(view.answers) > before, what="the answer to CancelAction")
    what, answer = view.answers[-1]
    assert answer.ok and "(cancelled)" in what, (what, answer.text)
    assert service.get(incident.id).actions[sign_action["id"]].state.value == "cancelled"
    await wait_for(lambda: "ACCIDENT" not in sign_message(stack), timeout=15.0, what="the sign restored")
    await wait_for(lambda: incident.action(str(sign_action["id"]))["state"] == "cancelled", what="live actions")  # type: ignore[index]
    assert requested_plan(stack) == 9  # the other action stays

    # close: the incident leaves the list and the controller is restored
    view.select_incident(incident.id)
    assert view.close_button.isEnabled()
    view.close_button.click()
    await wait_for(lambda: incident.id not in view.incidents, what="the closed incident leaving the list")
    assert view.answers[-1][1].ok
    assert service.get(incident.id).status == "closed"
    await wait_for(lambda: requested_plan(stack) != 9, timeout=15.0, what="the controller restored")

    # roadworks only proposes: change the sign's text from the console, then confirm it
    answer = await view.report("roadworks", *AT_TLC, "lane closed", "")
    assert answer.ok, answer.text
    works = view.selected
    assert works is not None and works.id != incident.id
    await wait_for(lambda: any(a.get("device") == SIGN for a in works.actions), what="the roadworks actions")
    sign_action = next(a for a in works.actions if a.get("device") == SIGN)
    assert sign_action["state"] == "proposed" and "TRAVAUX" not in sign_message(stack)
    view.select_action(str(sign_action["id"]))
    change = view.open_change_dialog()
    assert change is not None and "TRAVAUX" in change.text_edit.toPlainText()
    change.text_edit.setPlainText("TRAVAUX\nVOIE FERMEE\nPRUDENCE")
    change.buttons.accepted.emit()
    await wait_for(
        lambda: (
            "VOIE FERMEE"
            in (works.action(str(sign_action["id"])) or {}).get("command", {}).get("args", {}).get("Text", "")
        ),
        what="the changed action",
    )
    assert "VOIE FERMEE" not in sign_message(stack)  # changed, still only proposed
    view.select_action(str(sign_action["id"]))
    assert view.confirm_button.isEnabled()
    view.confirm_button.click()
    await wait_for(lambda: "VOIE FERMEE" in sign_message(stack), timeout=15.0, what="the confirmed message on the sign")
    answer = await view.close_incident(works.id)
    assert answer.ok and works.id not in view.incidents
    await wait_for(lambda: "VOIE FERMEE" not in sign_message(stack), timeout=15.0, what="the sign restored")


async def test_a_viewer_may_not_report(tmp_path: Path, free_port: int, qtbot: Any) -> None:
    """The server refuses an observer's report: the answer says so and the report button is disabled."""
    stack = Stack(free_port, tmp_path)
    await stack.start()
    try:
        console = await open_console(stack, tmp_path / "observer", "observer")
        try:
            view = console.incidents
            assert view is not None
            answer = await view.report("hazard", *AT_TLC, "oil on the road", "")
            assert answer.text == "BadUserAccessDenied" and not view.incidents
            assert not view.report_button.isEnabled()
            assert "BadUserAccessDenied" in view.answer.text()
        finally:
            await close_console(console)
    finally:
        await stack.stop()
        await asyncio.sleep(0.1)
