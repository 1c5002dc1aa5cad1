"""The audit in a real historian (SQLite file): incident row, timeline events, commands; the contact encrypted."""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path

import pytest
from sqlalchemy import text

from historian.service import Historian
from scada.incidents import Vault
from tests.incidents.incident_stack import CONTACT, close_stack, open_stack


async def test_every_step_is_stored_and_the_contact_only_encrypted(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    vault = Vault(tmp_path / "data")
    historian = Historian(
        f"sqlite:///{tmp_path / 'history.db'}", journal_dir=tmp_path / "journal", flush_interval_s=0.05, batch_size=500
    )
    await historian.start()
    stack = await open_stack(vault=vault, journal=historian)
    try:
        stack.commands.add_audit_sink(historian.record_command)
        incident_id = await stack.service.report(stack.report())
        async with asyncio.timeout(10):
            record = await stack.service.wait_settled(incident_id)
        await stack.service.close(incident_id, "supervisor")
    finally:
        await close_stack(stack)
    assert await historian.flush()
    engine = historian.engine
    with engine.connect() as conn:
        row = conn.execute(text("SELECT * FROM incidents WHERE id = :id"), {"id": incident_id}).mappings().one()
        events = conn.execute(
            text('SELECT state, severity, message, "user", data FROM events WHERE source = :s ORDER BY id'),
            {"s": f"Incidents/{incident_id}"},
        ).all()
        commands = conn.execute(
            text("SELECT device_id, action, \"user\", status FROM commands WHERE origin = 'incident' ORDER BY id")
        ).all()
    await historian.stop()

    # the row: closed, with the whole timeline, and the contact as ciphertext only
    assert row["status"] == "closed" and row["kind"] == "accident" and row["closed_ts"] is not None
    timeline = json.loads(row["timeline"])
    assert [entry["step"] for entry in timeline] == [entry["step"] for entry in record.timeline]
    contact = bytes(row["contact"])
    assert contact != CONTACT.encode() and b"jane" not in contact and b"+33" not in contact
    assert vault.decrypt(contact) == CONTACT
    for name, value in row.items():
        if name != "contact":
            assert "jane" not in str(value) and "12 34 56" not in str(value), name
    # the events: one per timeline step, in order, each with its time since the report
    assert [e.state for e in events] == [entry["step"] for entry in record.timeline]
    confirmed = [json.loads(e.data) for e in events if e.state == "confirmed"]
    assert {c["device"] for c in confirmed} == {"VMS-01", "TLC-001"} and all(c["t"] >= 0 for c in confirmed)
    assert any(e.state == "notified" and e.severity == 800 for e in events)
    # the device commands: every send and every restore, as the users who asked
    assert sorted(tuple(c) for c in commands) == [
        ("TLC-001", "release_plan", "supervisor", 0),
        ("TLC-001", "select_plan", "operator", 0),
        ("VMS-01", "blank", "supervisor", 0),
        ("VMS-01", "display", "operator", 0),
    ]
    # never in the logs
    assert "jane" not in caplog.text and "12 34 56" not in caplog.text
