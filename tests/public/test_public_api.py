"""The public API through a real HTTP client: responses against the OpenAPI description, caching, CORS, limits."""

from __future__ import annotations

import gzip
import json
import math
from email.utils import formatdate
from typing import Any

import aiohttp
import pytest
from jsonschema import Draft202012Validator
from public_helpers import SPEC, live, records, template_of, validator

from scada.public.api import PublicApi, PublicApiOptions
from scada.public.feed import ParkingFeed
from scada.public.ratelimit import RateLimit
from scada.router import TagRouter


async def fetch(
    http: aiohttp.ClientSession, api: PublicApi, path: str, **kw: Any
) -> tuple[aiohttp.ClientResponse, Any]:
    """GET a path; the parsed JSON body (gunzipped if needed), or None when there is no body."""
    async with http.get(api.url + path, **kw) as response:
        raw = await response.read()
    if response.headers.get("Content-Encoding") == "gzip":
        raw = gzip.decompress(raw)
    return response, (json.loads(raw) if raw else None)


async def check_documented(http: aiohttp.ClientSession, api: PublicApi, path: str, status: int) -> Any:
    """GET a path, expect `status`, and validate the body against the OpenAPI response schema."""
    response, body = await fetch(http, api, path)
    assert response.status == status, (path, body)
    media = response.content_type
    template = template_of(path)
    assert template is not None, path
    validator(template, status, media).validate(body)
    return body


def test_openapi_document_is_a_valid_3_1_description() -> None:
    assert SPEC["openapi"] == "3.1.0"
    for schema in SPEC["components"]["schemas"].values():
        Draft202012Validator.check_schema(schema)
    text = json.dumps(SPEC)
    for ref in {part.split('"')[0] for part in text.split('"$ref": "')[1:]}:
        assert ref.startswith("#/components/schemas/") and ref.rsplit("/", 1)[1] in SPEC["components"]["schemas"], ref
    for path, item in SPEC["paths"].items():
        operation = item["get"]
        assert operation["operationId"] and "200" in operation["responses"] and "429" in operation["responses"], path


async def test_real_responses_match_the_openapi_description(api: PublicApi, feed: ParkingFeed, http) -> None:
    live(feed, "PK-01", free=10, occupied=14, Capacity=24, DisplayMode=0, Full=False)  # ZN-01 stays unknown
    listing = await check_documented(http, api, "/v1/parking", 200)
    assert [e["id"] for e in listing] == ["urn:ngsi-ld:OffStreetParking:PK-01", "urn:ngsi-ld:OnStreetParking:ZN-01"]
    assert listing[0]["availableSpotNumber"] == 10 and listing[1]["status"] == ["unknown"]
    assert await check_documented(http, api, "/v1/parking?type=OnStreetParking", 200) == [listing[1]]
    assert await check_documented(http, api, "/v1/parking/PK-01", 200) == listing[0]
    assert await check_documented(http, api, "/v1/parking/urn:ngsi-ld:OffStreetParking:PK-01", 200) == listing[0]
    assert await check_documented(http, api, "/v1/parking/ZN-01", 200) == listing[1]
    await check_documented(http, api, "/v1/parking/urn:ngsi-ld:OnStreetParking:PK-01", 404)  # wrong type
    await check_documented(http, api, "/v1/parking/PK-99", 404)
    problem = await check_documented(http, api, "/v1/parking?type=Garage", 400)
    assert problem["status"] == 400 and "OffStreetParking" in problem["detail"]
    health = await check_documented(http, api, "/healthz", 200)
    assert health == {"status": "ok", "sites": 2, "sitesWithLiveData": 1}
    assert await check_documented(http, api, "/openapi.json", 200) == SPEC


async def test_schema_rejects_stale_numbers_and_extra_fields() -> None:
    check = validator("/v1/parking/{id}", 200, "application/json")
    entity = {
        "id": "urn:ngsi-ld:OffStreetParking:PK-01",
        "type": "OffStreetParking",
        "name": "P",
        "location": {"type": "Point", "coordinates": [5.0, 47.0]},
        "address": {"district": "C"},
        "totalSpotNumber": 10,
        "status": ["unknown"],
    }
    check.validate(entity)
    assert not check.is_valid({**entity, "availableSpotNumber": 3})  # unknown with a number: never
    assert not check.is_valid({**entity, "status": ["open"]})  # known without numbers
    assert not check.is_valid({**entity, "reporterContact": "x"})  # nothing undocumented can leak


async def test_live_update_through_the_router_changes_the_free_count(api: PublicApi, feed: ParkingFeed, http) -> None:
    router = TagRouter()
    router.add_sink("public-feed", feed)
    router.publish(records("PK-01", Free=10, Occupied=14, CommunicationOk=True))
    first, body = await fetch(http, api, "/v1/parking/PK-01")
    assert body["availableSpotNumber"] == 10
    router.publish(records("PK-01", Free=9, Occupied=15))
    second, body = await fetch(http, api, "/v1/parking/PK-01")
    assert body["availableSpotNumber"] == 9 and body["occupiedSpotNumber"] == 15
    assert first.headers["ETag"] != second.headers["ETag"]
    router.publish(records("PK-01", CommunicationOk=False))
    _, body = await fetch(http, api, "/v1/parking/PK-01")
    assert body["status"] == ["unknown"] and "availableSpotNumber" not in body


async def test_etag_revalidation(api: PublicApi, feed: ParkingFeed, http) -> None:
    live(feed, "PK-01", free=10, occupied=14)
    response, _ = await fetch(http, api, "/v1/parking")
    assert response.headers["Cache-Control"] == "public, max-age=5"
    assert response.headers["Vary"] == "Accept-Encoding"
    etag = response.headers["ETag"]
    again, body = await fetch(http, api, "/v1/parking", headers={"If-None-Match": etag})
    assert again.status == 304 and body is None and again.headers["ETag"] == etag
    plain, _ = await fetch(http, api, "/v1/parking", headers={"If-None-Match": f'W/{etag}, "other"'})
    assert plain.status == 304
    live(feed, "PK-01", free=9, occupied=15)
    changed, body = await fetch(http, api, "/v1/parking", headers={"If-None-Match": etag})
    assert changed.status == 200 and body[0]["availableSpotNumber"] == 9


async def test_last_modified_once_its_second_is_over(feed: ParkingFeed, http) -> None:
    wall = [0.0]
    api = PublicApi(feed, PublicApiOptions(host="127.0.0.1", port=0), wall_clock=lambda: wall[0])
    await api.start()
    try:
        live(feed, "PK-01", free=10, occupied=14)
        wall[0] = feed.changed_at  # the same instant as the change
        fresh, _ = await fetch(http, api, "/v1/parking/PK-01")
        assert "Last-Modified" not in fresh.headers  # a later change in the same second would carry the same date
        unsure, _ = await fetch(
            http, api, "/v1/parking/PK-01", headers={"If-Modified-Since": formatdate(wall[0] + 5, usegmt=True)}
        )
        assert unsure.status == 200  # not honoured while the date is not reliable
        wall[0] = math.floor(feed.changed_at) + 1  # that second is over
        dated, _ = await fetch(http, api, "/v1/parking/PK-01")
        last_modified = dated.headers["Last-Modified"]
        assert last_modified == formatdate(math.floor(feed.changed_at), usegmt=True)
        same, _ = await fetch(http, api, "/v1/parking/PK-01", headers={"If-Modified-Since": last_modified})
        assert same.status == 304 and same.headers["Last-Modified"] == last_modified
        older = formatdate(math.floor(feed.changed_at) - 60, usegmt=True)
        newer, _ = await fetch(http, api, "/v1/parking/PK-01", headers={"If-Modified-Since": older})
        assert newer.status == 200
        garbage, _ = await fetch(http, api, "/v1/parking/PK-01", headers={"If-Modified-Since": "yesterday-ish"})
        assert garbage.status == 200
        both, _ = await fetch(  # If-None-Match wins over If-Modified-Since
            http, api, "/v1/parking/PK-01", headers={"If-Modified-Since": last_modified, "If-None-Match": '"x"'}
        )
        assert both.status == 200
    finally:
        await api.stop()


async def test_gzip_only_when_accepted(api: PublicApi, feed: ParkingFeed, http) -> None:
    live(feed, "PK-01", free=10, occupied=14)
    async with http.get(api.url + "/v1/parking", headers={"Accept-Encoding": "gzip"}) as response:
        zipped = await response.read()
        assert response.headers["Content-Encoding"] == "gzip" and response.headers["ETag"].endswith('-gz"')
    async with http.get(api.url + "/v1/parking", headers={"Accept-Encoding": "gzip;q=0, identity"}) as response:
        plain = await response.read()
        assert "Content-Encoding" not in response.headers
    assert gzip.decompress(zipped) == plain and len(zipped) < len(plain)


async def test_head_options_and_cors(api: PublicApi, http) -> None:
    async with http.head(api.url + "/v1/parking") as response:
        assert response.status == 200 and await response.read() == b""
        assert response.headers["Access-Control-Allow-Origin"] == "*" and "ETag" in response.headers
    async with http.options(api.url + "/v1/parking/PK-01", headers={"Origin": "https://app.example"}) as response:
        assert response.status == 204
        assert response.headers["Access-Control-Allow-Methods"] == "GET, HEAD, OPTIONS"
        assert "If-None-Match" in response.headers["Access-Control-Allow-Headers"]
    async with http.options(api.url + "/admin") as response:
        assert response.status == 404


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE", "TRACE", "PROPFIND"])
@pytest.mark.parametrize("path", ["/v1/parking", "/v1/parking/PK-01", "/v1/anything"])
async def test_only_reads_are_allowed(api: PublicApi, http, method: str, path: str) -> None:
    async with http.request(method, api.url + path, data=b'{"availableSpotNumber": 0}') as response:
        assert response.status == 405
        assert response.headers["Allow"] == "GET, HEAD, OPTIONS"
        assert response.content_type == "application/problem+json"
        assert (await response.json(content_type=None))["status"] == 405


async def test_security_headers_on_every_response(api: PublicApi, http) -> None:
    for path in ["/v1/parking", "/nothing-here", "/openapi.json"]:
        async with http.get(api.url + path) as response:
            assert response.headers["X-Content-Type-Options"] == "nosniff"
            assert response.headers["Content-Security-Policy"] == "default-src 'none'; frame-ancestors 'none'"
            assert response.headers["Referrer-Policy"] == "no-referrer"
            assert response.headers["Server"] == "cityscada"  # no software versions


async def test_rate_limit_per_client_with_retry_after(feed: ParkingFeed, http) -> None:
    now = [0.0]
    options = PublicApiOptions(
        host="127.0.0.1", port=0, rate_limit=RateLimit(rate=1, burst=3), trusted_proxies=("127.0.0.1",)
    )
    api = PublicApi(feed, options, clock=lambda: now[0])
    await api.start()
    try:
        statuses = []
        for _ in range(4):
            response, body = await fetch(http, api, "/healthz", headers={"X-Forwarded-For": "198.51.100.7"})
            statuses.append(response.status)
        assert statuses == [200, 200, 200, 429]
        assert response.headers["Retry-After"] == "1" and body["status"] == 429
        validator("/healthz", 429, "application/problem+json").validate(body)
        other, _ = await fetch(http, api, "/healthz", headers={"X-Forwarded-For": "198.51.100.7, 203.0.113.5"})
        assert other.status == 200  # another client behind the same proxy has its own bucket
        now[0] += 1.0
        again, _ = await fetch(http, api, "/healthz", headers={"X-Forwarded-For": "198.51.100.7"})
        assert again.status == 200
    finally:
        await api.stop()


async def test_forwarded_for_is_ignored_from_untrusted_peers(feed: ParkingFeed, http) -> None:
    api = PublicApi(feed, PublicApiOptions(host="127.0.0.1", port=0, rate_limit=RateLimit(rate=0.001, burst=2)))
    await api.start()
    try:
        codes = []
        for i in range(3):  # a client cannot dodge its bucket by inventing addresses
            response, _ = await fetch(http, api, "/healthz", headers={"X-Forwarded-For": f"10.0.0.{i}"})
            codes.append(response.status)
        assert codes == [200, 200, 429]
    finally:
        await api.stop()


async def test_start_stop_are_idempotent(feed: ParkingFeed) -> None:
    api = PublicApi(feed, PublicApiOptions(host="127.0.0.1", port=0))
    await api.start()
    port = api.port
    await api.start()
    assert api.port == port > 0
    await api.stop()
    await api.stop()
    assert api.port == 0
