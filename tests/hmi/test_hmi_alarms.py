"""The console's alarms against a real control post: a fault injected in a simulator becomes a red dot and an alarm
row, acknowledged and shelved from the console's buttons with a comment; the server's condition and its journal
(HistoryRead of events) say so; filters, the banner, the cue and the user's rights."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hmikit import Stack, close_console, open_console, wait_for

from hmi import theme
from hmi.alarmfeed import ALARM_TARGET, AlarmRecord
from hmi.alarms import ALARMS_DOCK, AlarmsView
from hmi.console import Console
from hmi.model import MapState

pytestmark = pytest.mark.qt

LAMP_CABINET = "CAB-0002"
CONTROLLER = "TLC-001"


def alarms_of(console: Console) -> AlarmsView:
    view = console.alarms
    assert view is not None
    return view


def record(view: AlarmsView, source: str, kind: str) -> AlarmRecord | None:
    """The condition of a source and kind in the feed; the views are brought up to date first."""
    view.feed.flush()
    return next((r for r in view.feed.records.values() if r.source_name == source and r.kind == kind), None)


async def test_lamp_failure_becomes_a_red_dot_and_an_alarm_acknowledged_from_the_console(
    tmp_path: Path, free_port: int, qtbot: object
) -> None:
    stack = Stack(free_port, tmp_path, historian_url=f"sqlite:///{tmp_path / 'history.sqlite'}")
    await stack.start()
    try:
        console = await open_console(stack, tmp_path / "operator", "operator")
        try:
            await check_acknowledge(console, stack)
        finally:
            await close_console(console)
    finally:
        await stack.stop()
        await asyncio.sleep(0.1)


async def check_acknowledge(console: Console, stack: Stack) -> None:
    view = alarms_of(console)
    model = console.model
    assert model is not None and ALARMS_DOCK in console.window.docks
    await wait_for(lambda: view.feed.refreshes >= 1, what="the first ConditionRefresh")
    lamp = stack.site.cabinets[LAMP_CABINET].lamps[1]
    ref = model.ref(lamp.id)
    assert ref is not None
    assert record(view, lamp.id, "LampFailure") is None
    await stack.sim.set_fault(lamp.id, "lamp_failure")
    failed = theme.STATE_COLOURS[MapState.FAILED]
    await wait_for(lambda: console.window.map.brush_colour(ref) == failed, what="the failed lamp's red dot")
    await wait_for(
        lambda: (r := record(view, lamp.id, "LampFailure")) is not None and r.key in view.visible_keys(),
        what="the lamp's alarm row",
    )
    raised = record(view, lamp.id, "LampFailure")
    assert raised is not None and raised.active and not raised.acked and raised.severity == 300
    assert raised.district == model.info(model.ref(LAMP_CABINET)).get("district")  # type: ignore[arg-type]
    assert lamp.id in view.rings.sources  # the map rings the device while the alarm is unacknowledged
    assert view.banner.count >= 1 and any(r.key == raised.key for r in view.banner.top)
    assert view.table_model.flashing(raised.key)  # the new row is highlighted
    # an operator may acknowledge, not shelve: the server said so when asked (no side effect)
    await wait_for(lambda: (ALARM_TARGET, "Shelve") in console.permissions.denied, what="the shelve right probed")
    assert console.permissions.may_call(ALARM_TARGET, "Acknowledge")
    view.select_keys([raised.key])
    assert view.ack_button.isEnabled() and not view.shelve_button.isEnabled()

    view.comment.setText("crew sent, lamp ordered")
    answers_before = len(view.answers)
    view.ack_button.click()
    await wait_for(lambda: len(view.answers) > answers_before, what="the server's answer to Acknowledge")
    key, command, answer = view.answers[-1]
    assert (key, command, answer.ok) == (raised.key, "Acknowledge", True), answer.text
    assert view.answer_list.item(0).text().endswith(": Good")  # type: ignore[union-attr]
    # the server's next event for the condition says it is acknowledged, by whom, with the comment
    await wait_for(lambda: (r := record(view, lamp.id, "LampFailure")) is not None and r.acked, what="acked event")
    acked = record(view, lamp.id, "LampFailure")
    assert acked is not None and acked.active and acked.user == "operator"
    assert acked.comment == "crew sent, lamp ordered"
    await wait_for(
        lambda: lamp.id not in view.rings.sources and all(r.key != raised.key for r in view.banner.top),
        what="the ring and the banner entry gone once acknowledged",
    )
    # acknowledging again is refused by the server, and the answer says why
    view.select_keys([raised.key])
    again = await view.acknowledge_selected("again")
    assert [a.text for _k, a in again] == ["BadConditionBranchAlreadyAcked"]

    # the journal (HistoryRead of the lamp's events) holds the raise and the acknowledgement with its comment
    async def journal_has_ack() -> bool:
        dialog = view.open_history()
        assert dialog is not None
        rows = await dialog.load()
        return any(row["State"] == "acknowledged" and row["Comment"] == "crew sent, lamp ordered" for row in rows)

    for _attempt in range(50):
        if await journal_has_ack():
            break
        await asyncio.sleep(0.2)
    else:
        raise AssertionError("the acknowledgement never reached the journal")
    dialog = view.history_dialog
    assert dialog is not None
    states = [row["State"] for row in dialog.rows]
    assert states.index("raised") < states.index("acknowledged")
    assert all(row["ConditionName"] == "LampFailure" for row in dialog.rows)
    assert dialog.table.rowCount() == len(dialog.rows)
    dialog.close()

    # back to normal: the site asks for a Confirm before the alarm leaves the list
    await stack.sim.set_fault(lamp.id, "lamp_failure", on=False)
    await wait_for(lambda: not record(view, lamp.id, "LampFailure").active, what="the alarm back to normal")  # type: ignore[union-attr]
    cleared = record(view, lamp.id, "LampFailure")
    assert cleared is not None and cleared.acked and not cleared.confirmed
    view.filter_boxes["active_only"].setChecked(True)
    await wait_for(lambda: cleared.key not in view.visible_keys(), what="the active filter hiding the cleared row")
    view.filter_boxes["active_only"].setChecked(False)
    view.select_keys([cleared.key])
    view.comment.setText("lamp replaced")
    view.confirm_button.click()
    await wait_for(lambda: record(view, lamp.id, "LampFailure") is None, what="the confirmed alarm leaving the list")
    assert view.answers[-1][1] == "Confirm" and view.answers[-1][2].ok


async def wait_for_journal(view: AlarmsView, alarm: AlarmRecord, state: str, comment: str) -> None:
    """Wait until the alarm's journal (HistoryRead of its source's events) has that transition with that comment."""
    end = datetime.now(UTC) + timedelta(minutes=1)
    for _attempt in range(50):
        rows = await view.feed.history(alarm.source_path, end - timedelta(hours=1), end, alarm.kind)
        if any(row["State"] == state and row["Comment"] == comment for row in rows):
            return
        await asyncio.sleep(0.2)
    raise AssertionError(f"no {state!r} with {comment!r} in the journal of {alarm.key}")


async def test_shelve_filters_cue_and_a_viewer_without_rights(tmp_path: Path, free_port: int, qtbot: object) -> None:
    stack = Stack(free_port, tmp_path, historian_url=f"sqlite:///{tmp_path / 'history.sqlite'}")
    await stack.start()
    try:
        supervisor = await open_console(stack, tmp_path / "supervisor", "supervisor")
        observer = await open_console(stack, tmp_path / "observer", "observer")
        try:
            await check_shelve_and_filters(supervisor, stack)
            await check_viewer(observer)
        finally:
            await close_console(observer)
            await close_console(supervisor)
    finally:
        await stack.stop()
        await asyncio.sleep(0.1)


async def check_shelve_and_filters(console: Console, stack: Stack) -> None:
    view = alarms_of(console)
    await wait_for(lambda: view.feed.refreshes >= 1, what="the first ConditionRefresh")
    lamp = stack.site.cabinets[LAMP_CABINET].lamps[2]
    cues = view.cues
    await stack.sim.set_fault(lamp.id, "lamp_failure")
    await wait_for(lambda: record(view, lamp.id, "LampFailure") is not None, what="the lamp alarm")
    assert view.cues == cues  # severity 300: below the cue
    await stack.sim.set_fault(CONTROLLER, "signal_lamp")
    await wait_for(lambda: record(view, CONTROLLER, "SignalLampFailure") is not None, what="the controller alarm")
    assert view.cues == cues + 1 and view.banner.flashes >= 1  # severity 600: flash and beep
    lamp_alarm = record(view, lamp.id, "LampFailure")
    controller_alarm = record(view, CONTROLLER, "SignalLampFailure")
    assert lamp_alarm is not None and controller_alarm is not None
    assert view.banner.top[0].severity >= controller_alarm.severity  # most severe first
    # filters reduce the rows: by kind, by district, by state
    everything = set(view.visible_keys())
    assert {lamp_alarm.key, controller_alarm.key} <= everything
    view.kind_box.setCurrentIndex(view.kind_box.findData("LampFailure"))
    assert lamp_alarm.key in view.visible_keys() and controller_alarm.key not in view.visible_keys()
    view.kind_box.setCurrentIndex(0)
    other = next(
        view.district_box.itemData(i)
        for i in range(1, view.district_box.count())
        if view.district_box.itemData(i) != lamp_alarm.district
    )
    view.district_box.setCurrentIndex(view.district_box.findData(lamp_alarm.district))
    assert lamp_alarm.key in view.visible_keys()
    view.district_box.setCurrentIndex(view.district_box.findData(other))
    assert lamp_alarm.key not in view.visible_keys()
    view.district_box.setCurrentIndex(0)
    view.filter_boxes["shelved_only"].setChecked(True)
    assert lamp_alarm.key not in view.visible_keys()

    # shelve the lamp alarm for 30 minutes with a comment (a supervisor may)
    view.filter_boxes["shelved_only"].setChecked(False)
    view.select_keys([lamp_alarm.key])
    await wait_for(view.shelve_button.isEnabled, what="the shelve button enabled for a supervisor")
    view.shelve_minutes.setValue(30)
    view.comment.setText("known fault, crew tomorrow")
    before = len(view.answers)
    view.shelve_button.click()
    await wait_for(lambda: len(view.answers) > before, what="the server's answer to TimedShelve")
    assert view.answers[-1][1:] == ("Shelve 30 min", view.answers[-1][2]) and view.answers[-1][2].ok
    await wait_for(lambda: (r := record(view, lamp.id, "LampFailure")) is not None and r.shelved, what="shelved")
    shelved = record(view, lamp.id, "LampFailure")
    assert shelved is not None and shelved.shelving == "Timed Shelved" and 0 < shelved.unshelve_ms <= 1800_000
    # the server keeps a shelving comment in the journal (the condition's Comment is for acknowledge/confirm)
    await wait_for_journal(view, shelved, "shelved", "known fault, crew tomorrow")
    assert all(r.key != shelved.key for r in view.banner.top)  # shelved alarms leave the banner
    view.filter_boxes["shelved_only"].setChecked(True)
    assert view.visible_keys() == [shelved.key]
    view.filter_boxes["shelved_only"].setChecked(False)
    # one-shot shelve of the controller alarm, by keyboard-free call on the selection; then unshelve
    view.select_keys([controller_alarm.key])
    [(key, answer)] = await view.shelve_selected(None, "until repaired")
    assert key == controller_alarm.key and answer.ok, answer.text
    await wait_for(
        lambda: (r := record(view, CONTROLLER, "SignalLampFailure")) is not None and r.shelving == "One Shot Shelved",
        what="one-shot shelved",
    )
    view.select_keys([controller_alarm.key])
    [(_key, answer)] = await view.unshelve_selected("repaired sooner")
    assert answer.ok


async def check_viewer(console: Console) -> None:
    """An observer sees the alarms; the server refuses it acknowledge and shelve, so the buttons are disabled."""
    view = alarms_of(console)
    await wait_for(lambda: view.feed.refreshes >= 1 and bool(view.feed.records), what="the observer's alarms")
    await wait_for(lambda: (ALARM_TARGET, "Acknowledge") in console.permissions.denied, what="the rights probed")
    assert (ALARM_TARGET, "Shelve") in console.permissions.denied
    view.select_keys(view.visible_keys()[:1])
    assert view.selected_keys()
    assert not view.ack_button.isEnabled() and not view.shelve_button.isEnabled()
    assert "does not allow" in view.ack_button.toolTip()
    # the shortcut is there for those who may (F1 lists it)
    shortcuts = [a.shortcut().toString() for a in console.window.actions()]
    assert "Ctrl+Shift+A" in shortcuts
    assert console.window.docks[ALARMS_DOCK].widget() is view


async def test_alarms_are_refreshed_after_a_reconnection(tmp_path: Path, free_port: int, qtbot: object) -> None:
    """A new server (restarted): the console subscribes again and its ConditionRefresh rebuilds the list."""
    stack = Stack(free_port, tmp_path)
    await stack.start()
    try:
        console = await open_console(stack, tmp_path / "operator", "operator")
        try:
            view = alarms_of(console)
            await wait_for(lambda: view.feed.refreshes >= 1, what="the first ConditionRefresh")
            await stack.sim.set_fault(CONTROLLER, "signal_lamp")
            await wait_for(lambda: record(view, CONTROLLER, "SignalLampFailure") is not None, what="the alarm")
            await stack.stop_server()
            await wait_for(lambda: not console.client.connected, what="the loss")
            assert record(view, CONTROLLER, "SignalLampFailure") is not None  # the last known list stays
            assert not view.ack_button.isEnabled()  # nothing can be sent while disconnected
            await stack.start_server()
            await wait_for(lambda: view.feed.refreshes >= 2, timeout=20.0, what="the refresh after reconnecting")
            assert view.feed.subscription_id is not None and console.client.sessions == 2
            # the new server raises the alarm again once it has polled the controller (a live event after the
            # refresh, or within it): the row is back, active and unacknowledged
            await wait_for(
                lambda: (r := record(view, CONTROLLER, "SignalLampFailure")) is not None and r.active and not r.acked,
                timeout=15.0,
                what="the alarm of the new server",
            )
        finally:
            await close_console(console)
    finally:
        await stack.stop()
        await asyncio.sleep(0.1)
