"""Personal data: who may read a reporter's contact, the audit of every attempt, and the purge after retention.

The incident service keeps only the contact's ciphertext (scada.incidents.vault), in memory and in the
historian's `incidents.contact` column. `PersonalData.read_contact` decrypts it for a user holding the
`see_personal_data` permission; every attempt, allowed or refused, is a security event (who, when, which
incident, from where, the outcome: never the contact itself), journaled by the historian. A contact older than
the retention period (`security.personal_data_retention_days`, 30 by default) is never answered, even before
the purge job has run.

The purge (an APScheduler job, hourly by default, and once at start) sets the contact to NULL in memory and in
the database for incidents reported before now - retention; the incident row (kind, place, description,
timeline, status) stays. Order matters: the in-memory records are cleared first, then the historian's queue is
flushed, then the rows are updated, so that no queued upsert can write a ciphertext back.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import Engine, text

from scada.incidents.vault import Vault, VaultError
from scada.model import AccessDeniedError, CommandError, Quality, utcnow
from scada.security.policy import Policy
from scada.security.roles import Permission

log = logging.getLogger(__name__)

BAD_NO_DATA = 0x809B0000
PURGE_JOB = "personal-data-purge"
READ = "personal_data_read"
REFUSED = "personal_data_refused"
PURGED = "personal_data_purged"


class IncidentNotFoundError(CommandError):
    """No incident has that id."""

    status = Quality.BAD_NOT_FOUND


class NoContactError(CommandError):
    """The incident has no contact: none was given, or it was purged after the retention period."""

    status = BAD_NO_DATA


class IncidentLike(Protocol):
    """What the purge and the reads need of an incident record (scada.incidents.records.IncidentRecord)."""

    id: str
    reported_at: datetime
    contact: bytes | None


class IncidentSource(Protocol):
    """The incident service's public queries (scada.incidents.service.IncidentService)."""

    def get(self, incident_id: str) -> Any:
        """An open or recently closed incident; raises (NotFoundError) otherwise."""
        ...

    def open_incidents(self) -> list[Any]:
        """The open incidents."""
        ...


EventHook = Callable[[str, Mapping[str, Any]], None]


@dataclass(frozen=True, slots=True)
class PurgeReport:
    """What one purge did."""

    cutoff: datetime
    in_memory: int  # records whose ciphertext was dropped from memory
    rows: int  # database rows whose contact was set to NULL
    seconds: float


class PersonalData:
    """Role-gated, audited reads of reporters' contacts, and their purge after the retention period."""

    def __init__(
        self,
        policy: Policy,
        vault: Vault,
        *,
        engine: Engine | Callable[[], Engine] | None = None,
        incidents: IncidentSource | None = None,
        flush: Callable[[], Awaitable[Any]] | None = None,
        on_event: EventHook | None = None,
        retention_days: int | None = None,
        clock: Callable[[], datetime] = utcnow,
        purge_interval_s: float = 3600.0,
        scheduler: Any = None,
    ) -> None:
        self.policy = policy
        self.vault = vault
        self._engine = engine
        self.incidents = incidents
        self._flush = flush
        self._on_event = on_event
        days = retention_days if retention_days is not None else policy.config.personal_data_retention_days
        self.retention = timedelta(days=days)
        self.clock = clock
        self.purge_interval_s = purge_interval_s
        self._scheduler = scheduler
        self._own_scheduler = False
        self._lock = asyncio.Lock()
        self.last_purge: PurgeReport | None = None

    # -- plumbing ------------------------------------------------------------------------------------------

    def attach(
        self,
        *,
        engine: Engine | Callable[[], Engine] | None = None,
        flush: Callable[[], Awaitable[Any]] | None = None,
        incidents: IncidentSource | None = None,
    ) -> None:
        """Give the historian's engine (or a function answering it), its flush, the incident service."""
        if engine is not None:
            self._engine = engine
        if flush is not None:
            self._flush = flush
        if incidents is not None:
            self.incidents = incidents

    @property
    def engine(self) -> Engine | None:
        """The historian database engine (None: no database, memory only)."""
        if self._engine is None or isinstance(self._engine, Engine):
            return self._engine
        return self._engine()

    def _event(self, kind: str, **details: Any) -> None:
        log.info("%s: %s", kind, {k: v for k, v in details.items()})
        if self._on_event is not None:
            try:
                self._on_event(kind, details)
            except Exception:
                log.exception("personal data event hook failed on %s", kind)

    def cutoff(self, now: datetime | None = None) -> datetime:
        """Contacts of incidents reported before this moment are expired."""
        return (now or self.clock()) - self.retention

    # -- reading -------------------------------------------------------------------------------------------

    async def read_contact(self, incident_id: str, user: str | None, client: str | None = None) -> str:
        """The reporter's contact of an incident for a user allowed to see personal data; every attempt audited.

        AccessDeniedError (BadUserAccessDenied) without the permission, IncidentNotFoundError (BadNotFound) for an
        unknown incident, NoContactError (BadNoData) when no contact was given or it expired.
        """
        if not self.policy.allows(user, Permission.SEE_PERSONAL_DATA):
            self._event(REFUSED, user=user, client=client, incident=incident_id, reason="no see_personal_data")
            who = "an anonymous user" if user is None else f"user {user!r}"
            raise AccessDeniedError(f"{who} may not see personal data")
        try:
            reported_at, token = await self._ciphertext(incident_id)
            if token is None or reported_at < self.cutoff():
                raise NoContactError(f"incident {incident_id} has no contact (none given, or purged)")
            try:
                contact = self.vault.decrypt(token)
            except VaultError as exc:
                log.error("contact of incident %s cannot be decrypted: %s", incident_id, exc)
                raise CommandError("the contact cannot be decrypted") from None
        except CommandError as exc:
            self._event(READ, user=user, client=client, incident=incident_id, outcome=type(exc).__name__)
            raise
        self._event(READ, user=user, client=client, incident=incident_id, outcome="read")
        return contact

    async def _ciphertext(self, incident_id: str) -> tuple[datetime, bytes | None]:
        """(reported at, ciphertext) from the incident service's memory, else from the database."""
        if self.incidents is not None:
            try:
                record = self.incidents.get(incident_id)
            except CommandError:
                record = None
            if record is not None:
                return record.reported_at, record.contact
        engine = self.engine
        if engine is None:
            raise IncidentNotFoundError(f"no incident {incident_id!r}")
        row = await asyncio.to_thread(_select_contact, engine, incident_id)
        if row is None:
            raise IncidentNotFoundError(f"no incident {incident_id!r}")
        return row

    # -- purging -------------------------------------------------------------------------------------------

    async def purge(self, now: datetime | None = None) -> PurgeReport:
        """Drop every contact of incidents reported before now - retention (memory first, then the database)."""
        async with self._lock:
            began = asyncio.get_running_loop().time()
            cutoff = self.cutoff(now)
            cutoff_us = _to_us(cutoff)
            engine = self.engine
            ids: list[str] = []
            if engine is not None:
                ids = await asyncio.to_thread(_expired_ids, engine, cutoff_us)
            in_memory = self._forget(cutoff, ids)
            rows = 0
            if engine is not None:
                if self._flush is not None:
                    await self._flush()
                rows = await asyncio.to_thread(_null_contacts, engine, cutoff_us)
            report = PurgeReport(cutoff, in_memory, rows, asyncio.get_running_loop().time() - began)
            self.last_purge = report
            if in_memory or rows:
                self._event(
                    PURGED,
                    user=None,
                    cutoff=cutoff.isoformat(),
                    in_memory=in_memory,
                    rows=rows,
                    retention_days=self.retention.days,
                )
            return report

    def _forget(self, cutoff: datetime, ids: Iterable[str]) -> int:
        """Drop expired ciphertexts from the incident service's records; returns how many."""
        if self.incidents is None:
            return 0
        records: dict[str, Any] = {r.id: r for r in self.incidents.open_incidents()}
        for incident_id in ids:
            if incident_id not in records:
                try:
                    records[incident_id] = self.incidents.get(incident_id)
                except CommandError:
                    continue
        count = 0
        for record in records.values():
            if record.contact is not None and record.reported_at < cutoff:
                record.contact = None
                count += 1
        return count

    # -- the scheduled job ---------------------------------------------------------------------------------

    def schedule(self, scheduler: Any) -> str:
        """Add the purge job to an APScheduler AsyncIOScheduler (every purge_interval_s); returns its id."""
        from apscheduler.triggers.interval import IntervalTrigger

        scheduler.add_job(
            self._job,
            IntervalTrigger(seconds=self.purge_interval_s),
            id=PURGE_JOB,
            max_instances=1,
            coalesce=True,
            misfire_grace_time=int(max(60, self.purge_interval_s)),
            replace_existing=True,
        )
        return PURGE_JOB

    async def _job(self) -> None:
        try:
            await self.purge()
        except Exception:
            log.exception("personal data purge failed (retried at the next run)")

    async def start(self) -> None:
        """Purge once now, then every purge_interval_s (own AsyncIOScheduler unless one was given); idempotent."""
        if self._own_scheduler or (self._scheduler is not None and self._scheduler.get_job(PURGE_JOB)):
            return
        await self._job()
        if self._scheduler is None:
            from apscheduler.schedulers.asyncio import AsyncIOScheduler

            self._scheduler = AsyncIOScheduler(timezone="UTC")
            self._own_scheduler = True
            self.schedule(self._scheduler)
            self._scheduler.start()
        else:
            self.schedule(self._scheduler)

    async def stop(self) -> None:
        """Stop the job (idempotent)."""
        scheduler = self._scheduler
        if scheduler is None:
            return
        if self._own_scheduler:
            scheduler.shutdown(wait=False)
            self._scheduler = None
            self._own_scheduler = False
            await asyncio.sleep(0)  # AsyncIOScheduler shuts down in a loop callback
        elif scheduler.get_job(PURGE_JOB) is not None:
            scheduler.remove_job(PURGE_JOB)


def _to_us(moment: datetime) -> int:
    from historian.schema import to_us

    return to_us(moment)


def _select_contact(engine: Engine, incident_id: str) -> tuple[datetime, bytes | None] | None:
    from historian.schema import from_us

    with engine.connect() as conn:
        row = conn.execute(
            text("SELECT created_ts, contact FROM incidents WHERE id = :id"), {"id": incident_id}
        ).first()
    if row is None:
        return None
    return from_us(int(row[0])), (bytes(row[1]) if row[1] is not None else None)


def _expired_ids(engine: Engine, cutoff_us: int) -> list[str]:
    with engine.connect() as conn:
        rows = conn.execute(
            text("SELECT id FROM incidents WHERE contact IS NOT NULL AND created_ts < :cutoff"), {"cutoff": cutoff_us}
        )
        return [str(row[0]) for row in rows]


def _null_contacts(engine: Engine, cutoff_us: int) -> int:
    """UPDATE the expired rows' contact to NULL (SQLite: secure_delete, so the freed bytes are zeroed)."""
    with engine.begin() as conn:
        if engine.dialect.name == "sqlite":
            conn.exec_driver_sql("PRAGMA secure_delete = ON")
        result = conn.execute(
            text("UPDATE incidents SET contact = NULL WHERE contact IS NOT NULL AND created_ts < :cutoff"),
            {"cutoff": cutoff_us},
        )
        return int(result.rowcount or 0)
