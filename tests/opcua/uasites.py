"""Sites built in code for the OPC UA tests and, until config/dijon exists, a Dijon-sized synthetic city."""

from __future__ import annotations

from pathlib import Path

from scada.site.model import (
    Cabinet,
    Endpoint,
    Lamp,
    ParkingSensor,
    ParkingSite,
    Sign,
    Site,
    TrafficController,
)

LAT0, LON0 = 47.3220, 5.0415


def make_site(
    *,
    cabinets: int = 2,
    lamps_per_cabinet: int = 3,
    controllers: int = 2,
    signs: int = 2,
    parking_sites: int = 1,
    sensors_per_site: int = 4,
    name: str = "testcity",
) -> Site:
    """A small, fully specified site: every id, coordinate and poll period is deterministic."""
    site = Site(name=name, title="Test city", lat=LAT0, lon=LON0, timezone="Europe/Paris", folder=Path("."))
    port = 20000
    for c in range(cabinets):
        cab_id = f"CAB-{c + 1:04d}"
        port += 1
        cabinet = Cabinet(
            id=cab_id,
            name=f"Cabinet {c + 1}",
            district="centre",
            lat=LAT0 + c * 0.001,
            lon=LON0 + c * 0.001,
            endpoint=Endpoint("modbus", port=port, poll_ms=1000 + 500 * (c % 2)),
        )
        for i in range(lamps_per_cabinet):
            cabinet.lamps.append(
                Lamp(
                    id=f"L-{c * 1000 + i + 1:06d}",
                    cabinet_id=cab_id,
                    index=i,
                    lat=LAT0 + c * 0.001 + i * 0.0001,
                    lon=LON0 + c * 0.001 - i * 0.0001,
                    rated_w=60.0,
                    legacy_w=150.0,
                )
            )
        site.cabinets[cab_id] = cabinet
    for t in range(controllers):
        port += 1
        ctl = TrafficController(
            id=f"TLC-{t + 1:03d}",
            name=f"Crossing {t + 1}",
            district="centre",
            lat=LAT0 - t * 0.002,
            lon=LON0 + t * 0.002,
            endpoint=Endpoint("modbus", port=port, poll_ms=500),
        )
        site.controllers[ctl.id] = ctl
    for s in range(signs):
        port += 1
        sign = Sign(
            id=f"VMS-{s + 1:02d}",
            name=f"Sign {s + 1}",
            district="centre",
            lat=LAT0 + s * 0.003,
            lon=LON0 - s * 0.003,
            endpoint=Endpoint("modbus", port=port, poll_ms=2000),
        )
        site.signs[sign.id] = sign
    for p in range(parking_sites):
        port += 1
        site_id = f"PK-{p + 1:02d}"
        parking = ParkingSite(
            id=site_id,
            name=f"Car park {p + 1}",
            district="centre",
            site_type="carpark",
            lat=LAT0 + p * 0.004,
            lon=LON0 + p * 0.004,
            capacity=sensors_per_site,
            endpoint=Endpoint("modbus", port=port, poll_ms=3000),
        )
        for i in range(sensors_per_site):
            parking.sensors.append(
                ParkingSensor(
                    id=f"PS-{p + 1:02d}-{i + 1:04d}",
                    site_id=site_id,
                    index=i,
                    lat=LAT0 + p * 0.004 + i * 0.00001,
                    lon=LON0 + p * 0.004,
                )
            )
        site.parking[site_id] = parking
    return site


def synthetic_dijon() -> Site:
    """Dijon's sizes (34,000 lamps in 340 cabinets, 113 controllers, 40 signs, 3,000 sensors in 10 sites)."""
    return make_site(
        cabinets=340,
        lamps_per_cabinet=100,
        controllers=113,
        signs=40,
        parking_sites=10,
        sensors_per_site=300,
        name="dijon-synthetic",
    )
