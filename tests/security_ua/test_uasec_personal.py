"""Personal data end to end: the reporter's contact is encrypted at rest, role-gated, audited and purged on time."""

from __future__ import annotations

import io
import json
import logging
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from asyncua import ua
from uasec_kit import LAMP, SIGN, Clock, SecureCity, cheap_store, city_ns, eventually, start_city

from historian.export import export_csv
from historian.service import Historian
from scada.commands import CommandService
from scada.incidents import IncidentService, TagCache, load_playbooks
from scada.model import Quality, ValueRecord, utcnow
from scada.public.api import Documents
from scada.public.feed import ParkingFeed
from scada.security.setup import SecuritySetup
from scada.site.model import Site

CONTACT = "Jeanne Martin +33 6 98 76 54 32 jeanne.martin@example.fr"
ARGS = ("accident", 47.3222, 5.0413, "two cars, lane blocked", CONTACT)


@dataclass
class Stack:
    """A secure server with the incident service, the historian (SQLite) and a settable clock."""

    city: SecureCity
    historian: Historian
    incidents: IncidentService
    clock: Clock
    db: Path

    def rows(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        with sqlite3.connect(self.db) as conn:
            return conn.execute(sql, params).fetchall()

    def security_events(self, kind: str) -> list[dict[str, Any]]:
        rows = self.rows(
            "SELECT user, message, data FROM events WHERE event_type = 'SecurityEvent' AND state = ?", kind
        )
        return [{"user": u, "message": m, **json.loads(d or "{}")} for u, m, d in rows]


@asynccontextmanager
async def open_stack(tmp_path: Path, port: int, **kwargs: Any) -> AsyncIterator[Stack]:
    """Start the historian, then the secure server with the incident service (stopped in reverse)."""
    clock = Clock()
    db = tmp_path / "history.db"
    historian = Historian(f"sqlite:///{db}", journal_dir=tmp_path / "journal", flush_interval_s=0.05)
    await historian.start()
    made: list[IncidentService] = []

    def incidents_of(site: Site, commands: CommandService, security: SecuritySetup) -> IncidentService:
        service = IncidentService(
            site,
            commands,
            playbooks=load_playbooks(site),
            values=TagCache.for_site(site).value,
            journal=historian,
            vault=security.vault,
        )
        made.append(service)
        return service

    try:
        city = await start_city(
            tmp_path / "data",
            port,
            store=cheap_store(tmp_path / "u"),
            clock=clock,
            incident_factory=incidents_of,
            **kwargs,
        )
    except BaseException:
        await historian.stop()
        raise
    [incidents] = made
    await incidents.start()
    city.security.attach(historian=historian, incidents=incidents)
    city.commands.add_audit_sink(historian.record_command)
    try:
        yield Stack(city, historian, incidents, clock, db)
    finally:
        await city.stop()
        await incidents.stop()
        await city.security.personal.stop()
        await historian.stop()


async def report(stack: Stack) -> str:
    async with await stack.city.client("operator") as client:
        ns = await city_ns(client)
        incident_id = await client.get_node(ua.NodeId("Incidents", ns)).call_method(f"{ns}:ReportIncident", *ARGS)
    await stack.historian.flush()
    return str(incident_id)


async def get_contact(stack: Stack, user: str, incident_id: str, **kwargs: Any) -> str:
    async with await stack.city.client(user, **kwargs) as client:
        ns = await city_ns(client)
        method = f"{ns}:GetReporterContact"
        return str(await client.get_node(ua.NodeId("Incidents", ns)).call_method(method, incident_id))


async def test_the_contact_is_encrypted_at_rest_and_only_a_supervisor_reads_it(tmp_path: Path, free_port: int) -> None:
    async with open_stack(tmp_path, free_port) as stack:
        incident_id = await report(stack)
        [(stored,)] = stack.rows("SELECT contact FROM incidents WHERE id = ?", incident_id)
        assert stored is not None and CONTACT.encode() not in stored
        assert stack.city.security.vault.decrypt(stored) == CONTACT  # it is the contact, encrypted
        raw = b"".join(p.read_bytes() for p in sorted(tmp_path.glob("history.db*")))  # noqa: ASYNC240 (test)
        assert CONTACT.encode() not in raw and b"Jeanne" not in raw

        with pytest.raises(ua.uaerrors.BadUserAccessDenied):
            await get_contact(stack, "operator", incident_id)
        with pytest.raises(ua.uaerrors.BadSecurityModeInsufficient):
            await get_contact(stack, "supervisor", incident_id, mode=SIGN)  # signed only: it would cross in clear
        assert await get_contact(stack, "supervisor", incident_id) == CONTACT
        with pytest.raises(ua.uaerrors.BadNotFound):
            await get_contact(stack, "supervisor", "INC-19700101-0001")
        await stack.historian.flush()

        refused = stack.security_events("personal_data_refused")
        assert [(e["user"], e["incident"], e["client"]) for e in refused] == [
            ("operator", incident_id, "127.0.0.1"),
            ("supervisor", incident_id, "127.0.0.1"),
        ]
        assert "see_personal_data" in refused[0]["reason"] and "encrypted" in refused[1]["reason"]
        reads = stack.security_events("personal_data_read")
        assert [(e["user"], e["incident"], e["outcome"]) for e in reads] == [
            ("supervisor", incident_id, "read"),
            ("supervisor", "INC-19700101-0001", "IncidentNotFoundError"),
        ]
        assert all(CONTACT not in json.dumps(e) for e in refused + reads)


async def test_the_purge_drops_the_contact_on_time_and_keeps_the_incident(tmp_path: Path, free_port: int) -> None:
    async with open_stack(tmp_path, free_port) as stack:
        incident_id = await report(stack)
        personal = stack.city.security.personal
        record = stack.incidents.get(incident_id)

        stack.clock.offset = timedelta(days=30) - timedelta(minutes=1)
        kept = await personal.purge()
        assert (kept.in_memory, kept.rows) == (0, 0)
        assert await get_contact(stack, "supervisor", incident_id) == CONTACT

        stack.clock.offset = timedelta(days=30, minutes=1)
        with pytest.raises(ua.uaerrors.BadNoData):  # expired: never answered, even before the purge ran
            await get_contact(stack, "supervisor", incident_id)
        purged = await personal.purge()
        assert (purged.in_memory, purged.rows) == (1, 1)
        assert record.contact is None
        await stack.incidents.close(incident_id, "operator")  # a later change of the incident writes no contact back
        await stack.historian.flush()
        [(contact, kind, description, status, timeline)] = stack.rows(
            "SELECT contact, kind, description, status, timeline FROM incidents WHERE id = ?", incident_id
        )
        assert contact is None
        assert (kind, description, status) == ("accident", "two cars, lane blocked", "closed")
        assert [step["step"] for step in json.loads(timeline)][:2] == ["reported", "proposed"]
        [purge_event] = stack.security_events("personal_data_purged")
        assert (purge_event["rows"], purge_event["retention_days"]) == (1, 30)


async def test_the_scheduled_job_purges_without_being_asked(tmp_path: Path, free_port: int) -> None:
    async with open_stack(tmp_path, free_port, purge_interval_s=0.2) as stack:
        incident_id = await report(stack)
        personal = stack.city.security.personal
        await personal.start()  # purges once at start (nothing is due), then every 0.2 s
        assert stack.rows("SELECT contact IS NOT NULL FROM incidents WHERE id = ?", incident_id) == [(1,)]
        stack.clock.offset = timedelta(days=31)
        await eventually(
            lambda: stack.rows("SELECT contact IS NULL FROM incidents WHERE id = ?", incident_id) == [(1,)],
            what="the scheduled purge",
        )
        assert stack.rows("SELECT count(*) FROM incidents WHERE id = ?", incident_id) == [(1,)]
        await personal.stop()


async def test_the_contact_never_reaches_logs_exports_or_the_public_feed(
    tmp_path: Path, free_port: int, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    async with open_stack(tmp_path, free_port) as stack:
        incident_id = await report(stack)
        assert await get_contact(stack, "supervisor", incident_id) == CONTACT
        await stack.incidents.close(incident_id, "operator")
        stack.historian.submit([ValueRecord(f"{LAMP}/Level", 42.0, Quality.GOOD, utcnow())])
        await stack.historian.flush()
        exported = io.StringIO()
        assert export_csv(stack.historian.engine, "**", 0, 2**62, exported) >= 1
        with sqlite3.connect(stack.db) as conn:
            dump = "\n".join(conn.iterdump())
        feed = ParkingFeed.from_site(stack.city.site)
        public = Documents(feed).listing(None).body.decode()
        journal = b"".join(p.read_bytes() for p in (tmp_path / "journal").rglob("*") if p.is_file())
    server_logs = "\n".join(
        r.getMessage() + (r.exc_text or "") for r in caplog.records if not r.name.startswith("asyncua.client")
    )
    assert incident_id in server_logs  # the capture saw the incident's life
    assert incident_id in dump  # and the dump holds the incident
    for name, text in (("logs", server_logs), ("export", exported.getvalue()), ("dump", dump), ("feed", public)):
        assert CONTACT not in text and "Jeanne" not in text, name
    assert b"Jeanne" not in journal
