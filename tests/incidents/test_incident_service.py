"""Incident response over real Modbus TCP: the simulators' registers show the playbook, and close restores them."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest

from drivers.modbus.registers import PARK_HR_DISPLAY
from scada.incidents.records import ActionState
from scada.model import InvalidArgumentError, OutOfRangeError, Quality
from scada.opcua.incidents import NotFoundError
from tests.incidents.incident_stack import AT_TLC, Stack, eventually

ACCIDENT_TEXT = "ACCIDENT\nD971 A 1.0 KM\nRALENTIR"


async def settle(stack: Stack, incident_id: str) -> Any:
    async with asyncio.timeout(10):
        return await stack.service.wait_settled(incident_id)


async def test_an_accident_drives_the_devices_and_close_restores_them(stack: Stack) -> None:
    await stack.execute("VMS-01", "display", Text="BONJOUR\nDIJON", Pictogram=0, Flashing=False)
    assert stack.plan() == (0, 2, 0)  # local plan 2, nothing requested by the centre
    incident_id = await stack.service.report(stack.report())
    record = await settle(stack, incident_id)

    # the simulated field devices show the playbook
    assert stack.sign() == (ACCIDENT_TEXT, 1, 1)
    assert stack.plan() == (9, 9, 1)  # HR0 all red requested, all red running, central control
    assert stack.sim.device("TLC-001").hr[1] == stack.driver.watchdog_s  # the watchdog is armed
    # each action with its timing; the response time covers every device
    sign, traffic, notify = record.actions.values()
    assert (sign.device_id, traffic.device_id, notify.device_id) == ("VMS-01", "TLC-001", None)
    for action in (sign, traffic):
        assert action.state is ActionState.CONFIRMED and action.status == Quality.GOOD
        assert record.reported_at <= action.proposed_at <= action.sent_at <= action.confirmed_at
    assert sign.before == {"message": "BONJOUR\nDIJON", "pictogram": 0, "flashing": False, "known": True}
    assert traffic.before == {"requested_plan": 0, "known": True}
    assert record.response_seconds == pytest.approx(
        (max(sign.confirmed_at, traffic.confirmed_at) - record.reported_at).total_seconds(), abs=0.002
    )
    assert 0 < record.response_seconds < 3
    # the commands went through the one command path, as the reporting user, origin "incident"
    incident_audits = [a for a in stack.audits if a.origin == "incident"]
    assert {(a.device_id, a.action, a.user) for a in incident_audits} == {
        ("VMS-01", "display", "operator"),
        ("TLC-001", "select_plan", "operator"),
    }

    await stack.service.close(incident_id, "supervisor")
    assert stack.sign() == ("BONJOUR\nDIJON", 0, 0)
    assert stack.plan() == (0, 2, 0)  # released: back to the local time-of-day plan
    assert stack.driver.held_plans() == {}  # the driver no longer refreshes the request
    steps = [entry["step"] for entry in record.timeline]
    assert steps[:2] == ["reported", "proposed"]
    for step in ("notified", "sent", "confirmed", "responded", "closing", "restored", "closed"):
        assert step in steps
    assert steps.count("restored") == 2 and steps[-1] == "closed"
    assert all(entry["t"] >= 0 for entry in record.timeline)
    # the journal holds the same steps, and the incident row is closed with its timeline
    assert stack.journal.steps(incident_id) == steps
    row = stack.journal.rows[incident_id]
    assert row["status"] == "closed" and row["closed"] == record.closed_at and len(row["timeline"]) == len(steps)
    with pytest.raises(NotFoundError):
        await stack.service.close(incident_id, "supervisor")


async def test_a_proposed_only_playbook_waits_for_the_operator(stack: Stack) -> None:
    commits = stack.sim.device("VMS-01").commits
    incident_id = await stack.service.report(stack.report("roadworks"))
    record = await settle(stack, incident_id)
    [sign, _notify] = record.actions.values()
    assert sign.state is ActionState.PROPOSED and sign.sent_at is None
    await asyncio.sleep(0.3)
    assert stack.sim.device("VMS-01").commits == commits  # nothing was sent
    assert record.response_seconds is None

    confirmed = await stack.service.confirm_action(incident_id, sign.id, "operator")
    assert confirmed.state is ActionState.CONFIRMED
    assert stack.sign() == ("TRAVAUX\nD971 A 1.0 KM\nPRUDENCE", 2, 0)
    assert record.response_seconds is not None and record.response_seconds >= 0.3

    cancelled = await stack.service.cancel_action(incident_id, sign.id, "operator")
    assert cancelled.state is ActionState.CANCELLED and cancelled.restore is not None
    assert stack.sign() == ("", 0, 0)  # it was blank before
    steps = [entry["step"] for entry in record.timeline]
    assert steps[-6:] == ["confirm", "sent", "confirmed", "responded", "restored", "cancelled"]
    await stack.service.close(incident_id, "operator")
    assert stack.sign() == ("", 0, 0)


async def test_actions_can_be_changed(stack: Stack) -> None:
    incident_id = await stack.service.report(stack.report())
    record = await settle(stack, incident_id)
    sign, traffic, _ = record.actions.values()
    await stack.service.change_action(incident_id, sign.id, "operator", text="ACCIDENT\nDEVIATION", pictogram=4)
    assert stack.sign() == ("ACCIDENT\nDEVIATION", 4, 1)
    await stack.service.change_action(incident_id, traffic.id, "operator", plan=10)
    assert stack.plan() == (10, 10, 1)
    with pytest.raises(OutOfRangeError):
        await stack.service.change_action(incident_id, sign.id, "operator", text="X" * 19)
    with pytest.raises(InvalidArgumentError):
        await stack.service.change_action(incident_id, traffic.id, "operator", text="NO")
    assert "changed" in [entry["step"] for entry in record.timeline]
    await stack.service.close(incident_id, "operator")
    assert stack.sign() == ("", 0, 0) and stack.plan() == (0, 2, 0)


async def test_an_unreachable_sign_fails_visibly_and_the_rest_responds(stack: Stack) -> None:
    await stack.sim.kill("VMS-01")
    incident_id = await stack.service.report(stack.report())
    record = await settle(stack, incident_id)
    sign, traffic, _ = record.actions.values()
    assert sign.state is ActionState.FAILED and sign.status == Quality.BAD_COMM and sign.failed_at is not None
    assert traffic.state is ActionState.CONFIRMED
    assert record.response_seconds is None  # not every device confirmed
    assert any(e["step"] == "failed" and e["device"] == "VMS-01" for e in record.timeline)
    # the sign comes back: the operator retries the action
    await stack.sim.restart("VMS-01")
    await stack.service.confirm_action(incident_id, sign.id, "operator")
    assert sign.state is ActionState.CONFIRMED and stack.sign()[0] == ACCIDENT_TEXT
    assert record.response_seconds is not None
    await stack.service.close(incident_id, "operator")
    assert stack.sign() == ("", 0, 0)


async def test_two_incidents_on_one_sign_restore_in_order(stack: Stack) -> None:
    first = await stack.service.report(stack.report("accident"))
    await settle(stack, first)
    second = await stack.service.report(stack.report("hazard", at=(AT_TLC[0] + 0.0005, AT_TLC[1])))
    await settle(stack, second)
    assert stack.sign()[0].startswith("DANGER")
    assert stack.sim.device("PK-01").hr[PARK_HR_DISPLAY] == 2  # the hazard closed the car park entrance
    assert stack.holds.owners("VMS-01") == [first, second]
    # the older incident leaves first: the sign keeps the newer one's message
    await stack.service.close(first, "operator")
    assert stack.sign()[0].startswith("DANGER")
    assert stack.plan() == (0, 2, 0)  # only the accident ran a plan: released
    await stack.service.close(second, "operator")
    assert stack.sign() == ("", 0, 0)
    assert stack.sim.device("PK-01").hr[PARK_HR_DISPLAY] == 0


async def test_closing_the_newer_incident_gives_the_sign_back_to_the_older(stack: Stack) -> None:
    first = await stack.service.report(stack.report("accident"))
    await settle(stack, first)
    second = await stack.service.report(stack.report("hazard"))
    await settle(stack, second)
    await stack.service.close(second, "operator")
    assert stack.sign() == (ACCIDENT_TEXT, 1, 1)
    await stack.service.close(first, "operator")
    assert stack.sign() == ("", 0, 0)


async def test_a_central_plan_running_before_is_selected_again(stack: Stack) -> None:
    await stack.execute("TLC-001", "select_plan", Plan=3, DurationSeconds=600)
    await eventually(lambda: stack.cache.value("Traffic/TLC-001/RequestedPlan") == 3, what="plan 3 seen")
    incident_id = await stack.service.report(stack.report())
    record = await settle(stack, incident_id)
    assert stack.plan() == (9, 9, 1)
    await stack.service.close(incident_id, "operator")
    assert stack.plan() == (3, 3, 1)
    restore = record.actions["A2"].restore
    assert restore["command"] == {"action": "select_plan", "args": {"Plan": 3, "DurationSeconds": 1800}}


async def test_a_failed_restore_is_retried_until_the_device_is_back(stack: Stack) -> None:
    incident_id = await stack.service.report(stack.report())
    await settle(stack, incident_id)
    await stack.sim.kill("VMS-01")
    await stack.service.close(incident_id, "operator")
    record = stack.service.get(incident_id)
    assert record.status == "closed"
    assert any(e["step"] == "restore-failed" and e["device"] == "VMS-01" for e in record.timeline)
    assert stack.holds.dirty() == ["VMS-01"]
    assert stack.sign()[0] == ACCIDENT_TEXT
    await stack.sim.restart("VMS-01")
    await eventually(lambda: stack.sign() == ("", 0, 0), timeout=15, what="sign restored on retry")
    assert stack.holds.dirty() == []


async def test_reports_are_checked_again(stack: Stack) -> None:
    report = stack.report()
    with pytest.raises(InvalidArgumentError):
        await stack.service.report(replace(report, kind="fire"))
    with pytest.raises(OutOfRangeError):
        await stack.service.report(replace(report, latitude=91.0))
    with pytest.raises(OutOfRangeError):
        await stack.service.report(replace(report, description="x" * 1001))
    assert stack.service.open_incidents() == []


async def test_incident_ids_count_the_local_day(stack: Stack) -> None:
    report = stack.report("roadworks")
    first = await stack.service.report(report)
    second = await stack.service.report(report)
    assert first.rsplit("-", 1)[0] == second.rsplit("-", 1)[0]
    assert int(second.rsplit("-", 1)[1]) == int(first.rsplit("-", 1)[1]) + 1
    third = await stack.service.report(replace(report, reported_at=report.reported_at + timedelta(days=1)))
    assert third.endswith("-0001") and third != first
    for incident_id in (first, second, third):
        await stack.service.close(incident_id, "operator")


async def test_a_lost_control_post_never_leaves_a_plan_forced(stack: Stack) -> None:
    incident_id = await stack.service.report(stack.report())
    await settle(stack, incident_id)
    assert stack.plan() == (9, 9, 1)
    await stack.driver.stop()  # the post is lost: nobody refreshes the request any more
    stack.sim.advance(stack.driver.watchdog_s - 5)
    assert stack.plan() == (9, 9, 1)  # still within the controller's watchdog
    stack.sim.advance(10)
    assert stack.plan() == (0, 2, 0)  # lapsed to the local time-of-day plan


async def test_a_newer_plan_gives_way_to_the_older_for_the_rest_of_its_duration(stack: Stack) -> None:
    accident = await stack.service.report(stack.report("accident"))
    await settle(stack, accident)
    congestion = await stack.service.report(stack.report("congestion"))
    record = await settle(stack, congestion)
    traffic = next(a for a in record.actions.values() if a.device_id == "TLC-001")
    await stack.service.confirm_action(congestion, traffic.id, "operator")
    assert stack.plan() == (4, 4, 1)
    assert traffic.before is not None and traffic.before["requested_plan"] == 9
    await stack.service.close(congestion, "operator")
    assert stack.plan() == (9, 9, 1)  # the accident's all red again
    restore = traffic.restore
    assert restore is not None and restore["command"]["args"]["Plan"] == 9
    assert 1790 <= restore["command"]["args"]["DurationSeconds"] <= 1800  # what is left of the accident's 1800 s
    await stack.service.close(accident, "operator")
    assert stack.plan() == (0, 2, 0)
