"""The feed's sites as FIWARE Smart Data Models entities (dataModel.Parking), in the NGSI-LD keyValues form.

Car parks are `OffStreetParking`, on-street zones `OnStreetParking`; ids are URNs
"urn:ngsi-ld:<type>:<site id>". Field names are the models' own: totalSpotNumber, availableSpotNumber,
occupiedSpotNumber, occupancy (0..1), occupancyModified, status (DATEX II values: open, spacesAvailable,
almostFull, full, closed), dateModified, location (GeoJSON Point [lon, lat]), address.district. When the live
counts are not trustworthy the entity has status ["unknown"] (an application-specific value the models allow)
and no availableSpotNumber, occupiedSpotNumber, occupancy or occupancyModified.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from scada.public.feed import SiteInfo, SiteState

ENTITY_TYPES = {"carpark": "OffStreetParking", "onstreet": "OnStreetParking"}
STATUS_VALUES = ("open", "spacesAvailable", "almostFull", "full", "closed", "unknown")


def entity_type(info: SiteInfo) -> str:
    """The Smart Data Models type of a site."""
    return ENTITY_TYPES.get(info.site_type, "OffStreetParking")


def entity_id(info: SiteInfo) -> str:
    """The NGSI-LD URN of a site, e.g. "urn:ngsi-ld:OffStreetParking:PK-01"."""
    return f"urn:ngsi-ld:{entity_type(info)}:{info.id}"


def iso_time(ts: datetime) -> str:
    """An ISO 8601 UTC timestamp with milliseconds and a Z ("2026-11-25T17:02:03.250Z")."""
    return ts.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def to_entity(state: SiteState) -> dict[str, Any]:
    """The keyValues entity of one site (only public data: no sensors, no operator state)."""
    info = state.info
    entity: dict[str, Any] = {
        "id": entity_id(info),
        "type": entity_type(info),
        "name": info.name,
        "location": {"type": "Point", "coordinates": [round(info.lon, 6), round(info.lat, 6)]},
        "address": {"district": info.district},
        "totalSpotNumber": state.total,
        "status": list(state.status),
    }
    if state.free is not None and state.occupied is not None:
        entity["availableSpotNumber"] = state.free
        entity["occupiedSpotNumber"] = state.occupied
        entity["occupancy"] = round(state.occupied / state.total, 4) if state.total else 0.0
        if state.counts_modified is not None:
            entity["occupancyModified"] = iso_time(state.counts_modified)
    if state.modified is not None:
        entity["dateModified"] = iso_time(state.modified)
    return entity
