"""Helpers of the alarm tests: a small site built in code, a controllable clock, record makers."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from scada.alarms import AlarmEngine, AlarmsConfig, AlarmTransition, ConditionState
from scada.model import Quality, ValueRecord
from scada.site.model import Cabinet, Endpoint, Lamp, ParkingSite, Sign, Site, Street, TrafficController

T0 = datetime(2026, 11, 20, 22, 0, tzinfo=UTC)


def make_site() -> Site:
    """Two cabinets of 4 lamps (two districts), a controller, a sign, a car park and an on-street zone."""
    site = Site(name="alarmtown", title="Alarm town", lat=47.32, lon=5.04, timezone="Europe/Paris", folder=Path("."))
    site.streets["ST-1"] = Street(id="ST-1", name="Rue de la Gare", district="north", points=[(5.04, 47.32)])
    for c, district in ((1, "north"), (2, "south")):
        cab = Cabinet(
            id=f"CAB-{c:04d}",
            name=f"Cabinet {c}",
            district=district,
            lat=47.32,
            lon=5.04,
            endpoint=Endpoint("modbus", port=20000 + c),
        )
        for i in range(4):
            cab.lamps.append(
                Lamp(
                    id=f"L-{c}{i:05d}",
                    cabinet_id=cab.id,
                    index=i,
                    lat=47.32,
                    lon=5.04,
                    rated_w=60.0,
                    legacy_w=150.0,
                    street_id="ST-1" if c == 1 else "",
                )
            )
        site.cabinets[cab.id] = cab
    site.controllers["TLC-001"] = TrafficController(
        id="TLC-001",
        name="Gare / Liberté",
        district="north",
        lat=47.32,
        lon=5.04,
        endpoint=Endpoint("modbus", port=20011),
    )
    site.signs["VMS-01"] = Sign(
        id="VMS-01", name="Entrée nord", district="south", lat=47.32, lon=5.04, endpoint=Endpoint("modbus", port=20012)
    )
    for pid, kind in (("PK-01", "carpark"), ("PK-02", "onstreet")):
        site.parking[pid] = ParkingSite(
            id=pid,
            name=f"Parking {pid}",
            district="north",
            site_type=kind,
            lat=47.32,
            lon=5.04,
            capacity=50,
            endpoint=Endpoint("modbus", port=20020 + len(site.parking)),
        )
    return site


@dataclass
class Clock:
    """A clock the test moves by hand."""

    now: datetime = T0

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> datetime:
        """Move the clock forward."""
        self.now += timedelta(seconds=seconds)
        return self.now


@dataclass
class Rig:
    """An engine with its clock, journal and listener log."""

    site: Site
    engine: AlarmEngine
    clock: Clock
    journal: list[AlarmTransition] = field(default_factory=list)
    changes: list[str] = field(default_factory=list)

    def feed(self, *items: tuple[str, Any] | tuple[str, Any, int]) -> None:
        """Apply one batch of (tag, value[, quality]) records at the clock's time."""
        self.engine.apply(
            [
                ValueRecord(item[0], item[1], item[2] if len(item) > 2 else Quality.GOOD, self.clock.now)  # type: ignore[misc]
                for item in items
            ]
        )

    def cond(self, path: str) -> ConditionState:
        """The condition with that id (must exist)."""
        found = self.engine.find(path)
        assert found is not None, f"no condition {path}"
        return found

    def stamp(self, path: str) -> bytes:
        """Report an event for the condition (as the OPC UA layer does) and return its EventId."""
        return self.engine.stamp(self.cond(path))

    def transitions(self, source: str | None = None) -> list[str]:
        """The journaled transitions (of one device)."""
        return [t.transition for t in self.journal if source is None or t.source == source]


def rig(config: AlarmsConfig | None = None) -> Rig:
    """A fresh engine on the test site."""
    site = make_site()
    clock = Clock()
    journal: list[AlarmTransition] = []
    engine = AlarmEngine(site, config or AlarmsConfig(), journal=journal.append, clock=clock)
    result = Rig(site, engine, clock, journal)
    engine.add_listener(lambda cond: result.changes.append(cond.path))
    return result


def lamp(c: int, i: int) -> str:
    """The path of lamp i of cabinet c."""
    return f"Lighting/CAB-{c:04d}/L-{c}{i:05d}"


def alarm(path: str, name: str) -> str:
    """The condition id of an alarm of a device."""
    return f"{path}/Alarms/{name}"
