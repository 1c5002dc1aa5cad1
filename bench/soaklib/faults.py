"""The soak's faults: the schedule, the simulators' control channel, and taking the historian's database away.

Each injected fault names the alarm conditions it must raise (and clear once undone); the simulators run
without random faults so that every alarm raised is either expected or reported as unexpected.

The database outage: SQLite — another connection holds an exclusive lock on the file (every write of the
historian fails with 'database is locked' after its 5 s busy timeout, as tests/historian does); PostgreSQL —
`ALTER DATABASE ... ALLOW_CONNECTIONS false` then `pg_terminate_backend` of every session on it (the server's
connections die mid-use and new ones are refused), undone with ALLOW_CONNECTIONS true.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import urllib.request
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.engine import make_url

from scada.site.model import Site


@dataclass
class Fault:
    """One scheduled fault: what, on what, when (s from the start), for how long, and the alarms it must raise."""

    at_s: float
    kind: str  # "kill" | "mains" | "db" | "client"
    target: str = ""  # device id (kill, mains)
    path: str = ""  # the device's NodeId path
    duration_s: float = 0.0
    expects: list[str] = field(default_factory=list)  # condition names raised (and cleared) on `path`
    started: float | None = None  # wall time it was applied
    ended: float | None = None
    note: str = ""


def schedule(site: Site, minutes: float) -> list[Fault]:
    """The faults of a run: a 9-minute cycle repeated while it fits (compressed for runs under 11.5 minutes).

    Cycle (offsets from its start): +0 a traffic controller killed 60 s; +90 a cabinet loses mains 90 s;
    +210 the database away 60 s; +330 a client killed abruptly; +390 a cabinet killed 60 s; +480 a sign killed
    45 s. The first cycle starts after a 60 s warm-up; nothing starts in the last 90 s (settling time).
    """
    total = minutes * 60.0
    warmup, settle, cycle = 60.0, 90.0, 540.0
    scale = min(1.0, max(0.1, (total - warmup - settle) / 540.0))
    controllers = sorted(site.controllers.values(), key=lambda d: d.id)
    cabinets = sorted(site.cabinets.values(), key=lambda d: d.id)
    signs = sorted(site.signs.values(), key=lambda d: d.id)
    faults: list[Fault] = []
    start, n = warmup, 0
    while start + 540.0 * scale <= total - settle or n == 0:

        def at(offset: float, start: float = start) -> float:
            return start + offset * scale

        def lasting(seconds: float) -> float:
            return max(20.0, seconds * scale)

        if controllers:
            tlc = controllers[(2 * n) % len(controllers)]
            faults.append(Fault(at(0), "kill", tlc.id, tlc.path, lasting(60), ["CommunicationLost"]))
        if cabinets:
            cab = cabinets[(3 * n + 1) % len(cabinets)]
            faults.append(Fault(at(90), "mains", cab.id, cab.path, lasting(90), ["MainsFailure"]))
        faults.append(Fault(at(210), "db", duration_s=lasting(60)))
        faults.append(Fault(at(330), "client"))
        if len(cabinets) > 1:
            cab = cabinets[(3 * n + 2) % len(cabinets)]
            faults.append(Fault(at(390), "kill", cab.id, cab.path, lasting(60), ["CommunicationLost"]))
        if signs:
            vms = signs[n % len(signs)]
            faults.append(Fault(at(480), "kill", vms.id, vms.path, lasting(45), ["CommunicationLost"]))
        n += 1
        start += cycle
    return faults


def sim_fault(control_url: str, device: str, fault: str, on: bool) -> dict[str, Any]:
    """Inject or clear a fault through the simulators' HTTP control channel (blocking: run it in a thread)."""
    body = json.dumps({"device": device, "fault": fault, "on": on}).encode()
    request = urllib.request.Request(f"{control_url}/faults", body, {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as answer:
        return json.loads(answer.read())  # type: ignore[no-any-return]


class DatabaseOutage:
    """Takes the historian's database away and gives it back (SQLite file lock or PostgreSQL refusal)."""

    def __init__(self, url: str) -> None:
        self.url = make_url(url)
        self.backend = self.url.get_backend_name()
        self._lock: sqlite3.Connection | None = None

    def _admin(self) -> Any:
        import psycopg

        admin = self.url.set(drivername="postgresql", database="postgres")
        return psycopg.connect(admin.render_as_string(hide_password=False), autocommit=True, connect_timeout=5)

    def _cut(self) -> None:
        if self.backend == "sqlite":
            self._lock = sqlite3.connect(str(self.url.database), isolation_level=None, timeout=30)
            self._lock.execute("BEGIN EXCLUSIVE")
            return
        name = self.url.database
        with self._admin() as admin:
            admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
                (name,),
            )

    def _restore(self) -> None:
        if self.backend == "sqlite":
            if self._lock is not None:
                self._lock.execute("COMMIT")
                self._lock.close()
                self._lock = None
            return
        with self._admin() as admin:
            admin.execute(f'ALTER DATABASE "{self.url.database}" ALLOW_CONNECTIONS true')

    async def cut(self) -> None:
        """Make the database unusable for the historian."""
        await asyncio.to_thread(self._cut)

    async def restore(self) -> None:
        """Give the database back."""
        await asyncio.to_thread(self._restore)


def create_pg_database(url: str) -> None:
    """Create the (scratch) PostgreSQL database the URL names."""
    outage = DatabaseOutage(url)
    with outage._admin() as admin:
        admin.execute(f'CREATE DATABASE "{outage.url.database}"')


def drop_pg_database(url: str) -> None:
    """Drop the scratch PostgreSQL database (forcefully)."""
    outage = DatabaseOutage(url)
    with outage._admin() as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{outage.url.database}" WITH (FORCE)')
