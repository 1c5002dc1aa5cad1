"""Property-based fuzzing of the public API over real HTTP: any method, path, query, header and feed input.

Invariants: never a server error (5xx); every 200 of a documented GET matches the OpenAPI schema whatever the
field sent (wrong types, Bad qualities, absurd numbers); every problem body is RFC 9457; no write ever succeeds.
The server runs in its own thread and event loop; the client is the standard library's http.client.
"""

from __future__ import annotations

import asyncio
import gzip
import http.client
import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from public_helpers import parking_sites, problem_validator, template_of, validator

from scada.model import Quality, ValueRecord
from scada.public.api import PublicApi, PublicApiOptions
from scada.public.feed import FEED_VARS, ParkingFeed
from scada.public.ratelimit import RateLimit


class ThreadedApi:
    """The API and its feed in a background event loop; records are applied inside that loop."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.feed = ParkingFeed(parking_sites(), {"centre-ville": "Centre-Ville"})
        self.api = PublicApi(
            self.feed, PublicApiOptions(host="127.0.0.1", port=0, rate_limit=RateLimit(rate=1e6, burst=1e6))
        )
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def __enter__(self) -> ThreadedApi:
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self.api.start(), self.loop).result(10)
        return self

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self.api.stop(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()

    def publish(self, records: list[ValueRecord]) -> None:
        async def apply() -> None:
            self.feed(records)

        asyncio.run_coroutine_threadsafe(apply(), self.loop).result(10)


@pytest.fixture(scope="module")
def server() -> Iterator[ThreadedApi]:
    with ThreadedApi() as running:
        yield running


PATH_CHARS = st.characters(min_codepoint=0x21, max_codepoint=0x7E, exclude_characters="?#%")
SEGMENT = st.one_of(
    st.sampled_from(["v1", "parking", "PK-01", "ZN-01", "openapi.json", "healthz", "..", ".", "", "admin"]),
    st.sampled_from(["urn:ngsi-ld:OffStreetParking:PK-01", "urn:ngsi-ld:OnStreetParking:ZN-01", "urn:x:y:z"]),
    st.text(PATH_CHARS, max_size=30),
    st.binary(max_size=12).map(lambda raw: quote(raw, safe="")),
)
PATH = st.one_of(
    st.sampled_from(["/v1/parking", "/v1/parking/PK-01", "/v1/parking/ZN-01", "/openapi.json", "/healthz", "/"]),
    st.lists(SEGMENT, min_size=1, max_size=5).map(lambda parts: "/" + "/".join(parts)),
    SEGMENT.map(lambda s: "/v1/parking/" + s),
)
QUERY_TEXT = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x2FF), max_size=20).map(
    lambda s: quote(s, safe="")
)
QUERY = st.one_of(
    st.just(""),
    st.sampled_from(
        ["?type=OffStreetParking", "?type=OnStreetParking", "?type=", "?type=x&type=y", "?options=keyValues"]
    ),
    st.lists(st.tuples(QUERY_TEXT, QUERY_TEXT), max_size=4).map(lambda kv: "?" + "&".join(f"{k}={v}" for k, v in kv)),
)
METHOD = st.one_of(
    st.sampled_from(["GET", "GET", "GET", "HEAD", "OPTIONS", "POST", "PUT", "PATCH", "DELETE", "TRACE"]),
    st.from_regex(r"\A[A-Z]{1,12}\Z"),
)
HEADER_VALUE = st.text(st.characters(min_codepoint=0x20, max_codepoint=0xFF, exclude_characters="\x7f"), max_size=60)
HEADER_NAMES = [
    "If-None-Match",
    "If-Modified-Since",
    "Accept-Encoding",
    "Accept",
    "Origin",
    "X-Forwarded-For",
    "Range",
    "Access-Control-Request-Method",
    "Content-Type",
    "Cookie",
    "Authorization",
]
HEADERS = st.dictionaries(
    st.one_of(st.sampled_from(HEADER_NAMES), st.from_regex(r"\AX-[A-Za-z0-9-]{1,20}\Z")),
    st.one_of(
        HEADER_VALUE,
        st.sampled_from(
            ['"abc"', "*", 'W/"x", "y"', "gzip;q=0", "gzip;q=nan", "*;q=0.5", "Thu, 01 Jan 1970 00:00:00 GMT"]
        ),
    ),
    max_size=5,
)
VALUE = st.one_of(
    st.integers(min_value=-(2**40), max_value=2**40),
    st.booleans(),
    st.none(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=5),
)
RECORD = st.builds(
    lambda site, var, value, quality, age: ValueRecord(
        f"Parking/{site}/{var}", value, quality, datetime(2026, 11, 25, tzinfo=UTC) + timedelta(seconds=age)
    ),
    st.sampled_from(["PK-01", "ZN-01", "XX-99"]),
    st.sampled_from([*FEED_VARS, "OccupancyPercent", "PS-01-0001/Occupied"]),
    VALUE,
    st.sampled_from([Quality.GOOD, Quality.UNCERTAIN_LAST_USABLE, Quality.BAD_COMM, Quality.BAD_NO_COMMUNICATION]),
    st.integers(min_value=0, max_value=10**6),
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    records=st.lists(RECORD, max_size=6),
    method=METHOD,
    path=PATH,
    query=QUERY,
    headers=HEADERS,
    body=st.one_of(st.none(), st.binary(max_size=64)),
)
def test_no_server_error_and_documented_answers(
    server: ThreadedApi, records, method, path, query, headers, body
) -> None:
    if records:
        server.publish(records)
    connection = http.client.HTTPConnection("127.0.0.1", server.api.port, timeout=10)
    try:
        connection.request(method, path + query, body=body, headers=headers)
        response = connection.getresponse()
        raw = response.read()
    finally:
        connection.close()
    status = response.status
    assert status < 500, (method, path + query, headers, raw[:300])
    if method not in ("GET", "HEAD", "OPTIONS"):
        assert status in (400, 405), status  # never a write (400: the HTTP parser refused the request line)
    media = (response.getheader("Content-Type") or "").split(";")[0]
    if response.getheader("Content-Encoding") == "gzip":
        raw = gzip.decompress(raw)
    if media == "application/problem+json" and method != "HEAD":
        problem = json.loads(raw)
        problem_validator().validate(problem)
        assert problem["status"] == status
    template = template_of(path)
    if method == "GET" and status == 200 and template is not None:
        assert media == "application/json"
        validator(template, 200, media).validate(json.loads(raw))
