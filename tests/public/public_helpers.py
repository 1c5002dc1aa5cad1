"""Helpers of the public feed tests: parking sites, router records, OpenAPI response schemas as validators."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator

from scada.model import Quality, ValueRecord, utcnow
from scada.public.feed import ParkingFeed
from scada.public.openapi import openapi_document
from scada.site.loader import load_site
from scada.site.model import Endpoint, ParkingSite

SPEC = openapi_document()
FORMATS = Draft202012Validator.FORMAT_CHECKER


def template_of(path: str) -> str | None:
    """The OpenAPI path template a concrete path (without query) falls under, or None."""
    path = path.split("?", 1)[0]
    if path.startswith("/v1/parking/") and path.count("/") == 3 and len(path) > len("/v1/parking/"):
        return "/v1/parking/{id}"
    return path if path in SPEC["paths"] else None


def validator(template: str, status: int, media: str) -> Draft202012Validator:
    """A JSON Schema validator for the documented response (the spec's own components resolve the $refs)."""
    response = SPEC["paths"][template]["get"]["responses"][str(status)]
    schema = response["content"][media]["schema"]
    return Draft202012Validator({**schema, "components": SPEC["components"]}, format_checker=FORMATS)


def problem_validator() -> Draft202012Validator:
    """A validator of RFC 9457 problem bodies."""
    return Draft202012Validator({"$ref": "#/components/schemas/Problem", "components": SPEC["components"]})


ROOT = Path(__file__).resolve().parents[2]


def parking_sites() -> list[ParkingSite]:
    """The small site's car park PK-01 (24 places) and an on-street zone ZN-01 (40 places)."""
    site = load_site(ROOT / "config" / "small")
    zone = ParkingSite(
        id="ZN-01", name="Zone Wilson", district="centre-ville", site_type="onstreet",
        lat=47.316064, lon=5.044278, capacity=40, endpoint=Endpoint("modbus", port=21099),
    )  # fmt: skip
    return [site.parking["PK-01"], zone]


def records(site_id: str, ts: datetime | None = None, quality: int = Quality.GOOD, **values: Any) -> list[ValueRecord]:
    """Router records of one parking site's variables (CommunicationOk is always Good quality)."""
    ts = ts or utcnow()
    return [
        ValueRecord(f"Parking/{site_id}/{name}", value, Quality.GOOD if name == "CommunicationOk" else quality, ts)
        for name, value in values.items()
    ]


def live(feed: ParkingFeed, site_id: str, free: int, occupied: int, **more: Any) -> Sequence[ValueRecord]:
    """Publish a healthy reading of a site to the feed."""
    batch = records(site_id, Free=free, Occupied=occupied, CommunicationOk=True, **more)
    feed(batch)
    return batch
