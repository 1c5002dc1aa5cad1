"""Synthetic sites built in code (a Dijon-size city or a small one) for the simulator's tests, bench and demo.

Streets are straight lines of lamps 30 m apart; lamps are given to cabinets in street order, so a street's lamps
cross cabinet boundaries as in a real network. Every field device gets host 127.0.0.1 and its own port from
`port_base` (port_base 0: every port 0, for bind="free").
"""

from __future__ import annotations

import math
import random
from pathlib import Path

from scada.site.model import (
    Cabinet,
    District,
    Endpoint,
    Lamp,
    ParkingSensor,
    ParkingSite,
    Sign,
    Site,
    Street,
    TrafficController,
)

CENTRE = (47.3220, 5.0415)  # Dijon
SPACING_M = 30.0


def synthetic_site(
    name: str = "synthetic",
    *,
    cabinets: int = 340,
    lamps_per_cabinet: int = 100,
    controllers: int = 113,
    signs: int = 40,
    parking_sites: int = 10,
    bays_per_site: int = 300,
    port_base: int = 15020,
    seed: int = 7,
    timezone: str = "Europe/Paris",
) -> Site:
    """A whole site of the given size, deterministic for a seed."""
    rng = random.Random(f"synthetic:{seed}")
    lat0, lon0 = CENTRE
    districts = {f"D{k}": District(id=f"D{k}", name=f"District {k}") for k in range(1, 7)}
    site = Site(name=name, title=f"{name} (synthetic)", lat=lat0, lon=lon0, timezone=timezone, folder=Path("."))
    site.districts = districts
    ports = iter(range(port_base, port_base + 100_000)) if port_base else None

    def endpoint() -> Endpoint:
        return Endpoint(protocol="modbus", host="127.0.0.1", port=next(ports) if ports else 0, unit=1, poll_ms=2000)

    def point(radius_m: float) -> tuple[float, float]:
        r = radius_m * math.sqrt(rng.random())
        a = rng.uniform(0, 2 * math.pi)
        return lat0 + r * math.cos(a) / 110_540.0, lon0 + r * math.sin(a) / (111_320.0 * math.cos(math.radians(lat0)))

    total = cabinets * lamps_per_cabinet
    lamps: list[Lamp] = []
    street_no = 0
    while len(lamps) < total:
        street_no += 1
        street_id = f"ST-{street_no:04d}"
        length = min(rng.randint(15, 70), total - len(lamps))
        lat, lon = point(4000)
        bearing = rng.uniform(0, 2 * math.pi)
        dlat = SPACING_M * math.cos(bearing) / 110_540.0
        dlon = SPACING_M * math.sin(bearing) / (111_320.0 * math.cos(math.radians(lat)))
        district = f"D{1 + street_no % len(districts)}"
        for seq in range(length):
            k = len(lamps)
            lamps.append(
                Lamp(
                    id=f"L-{k + 1:06d}",
                    cabinet_id=f"CAB-{k // lamps_per_cabinet + 1:04d}",
                    index=k % lamps_per_cabinet,
                    lat=lat + seq * dlat,
                    lon=lon + seq * dlon,
                    rated_w=rng.choice((36.0, 54.0, 72.0, 96.0)),
                    legacy_w=rng.choice((100.0, 150.0, 250.0)),
                    street_id=street_id,
                    seq=seq,
                )
            )
        site.streets[street_id] = Street(
            id=street_id,
            name=f"Rue {street_no}",
            district=district,
            points=[(lon, lat), (lon + (length - 1) * dlon, lat + (length - 1) * dlat)],
        )
    for c in range(cabinets):
        own = lamps[c * lamps_per_cabinet : (c + 1) * lamps_per_cabinet]
        cabinet_id = f"CAB-{c + 1:04d}"
        site.cabinets[cabinet_id] = Cabinet(
            id=cabinet_id,
            name=f"Cabinet {c + 1}",
            district=f"D{1 + c % len(districts)}",
            lat=own[0].lat,
            lon=own[0].lon,
            endpoint=endpoint(),
            lamps=own,
        )
    for t in range(controllers):
        lat, lon = point(3000)
        controller_id = f"TLC-{t + 1:03d}"
        site.controllers[controller_id] = TrafficController(
            id=controller_id, name=f"Crossing {t + 1}", district=f"D{1 + t % 6}", lat=lat, lon=lon, endpoint=endpoint()
        )
    for s in range(signs):
        lat, lon = point(5000)
        sign_id = f"VMS-{s + 1:02d}"
        site.signs[sign_id] = Sign(
            id=sign_id,
            name=f"Sign {s + 1}",
            district=f"D{1 + s % 6}",
            lat=lat,
            lon=lon,
            endpoint=endpoint(),
            road=f"D{900 + s}",
            bearing_deg=rng.choice((0.0, 90.0, 180.0, 270.0)),
        )
    for p in range(parking_sites):
        lat, lon = point(2500)
        site_id = f"PK-{p + 1:02d}"
        sensors = [
            ParkingSensor(id=f"PS-{p + 1:02d}-{i + 1:04d}", site_id=site_id, index=i, lat=lat + i * 2e-5, lon=lon)
            for i in range(bays_per_site)
        ]
        site.parking[site_id] = ParkingSite(
            id=site_id,
            name=f"Parking {p + 1}",
            district=f"D{1 + p % 6}",
            site_type="carpark" if p % 2 == 0 else "onstreet",
            lat=lat,
            lon=lon,
            capacity=bays_per_site,
            endpoint=endpoint(),
            sensors=sensors,
        )
    return site


def dijon_site(port_base: int = 0) -> Site:
    """A Dijon-size site: 340 cabinets × 100 lamps, 113 controllers, 40 signs, 10 parking sites × 300 bays."""
    return synthetic_site("dijon-synthetic", port_base=port_base)


def small_site(port_base: int = 0) -> Site:
    """A small site: 3 cabinets × 20 lamps, 2 controllers, 2 signs, 1 parking site of 50 bays."""
    return synthetic_site(
        "small-synthetic",
        cabinets=3,
        lamps_per_cabinet=20,
        controllers=2,
        signs=2,
        parking_sites=1,
        bays_per_site=50,
        port_base=port_base,
    )
