"""The public parking feed over HTTP (aiohttp): read-only JSON for residents' apps, cached, compressed, rate limited.

GET /v1/parking[?type=OffStreetParking|OnStreetParking], GET /v1/parking/{id}, GET /openapi.json, GET /healthz;
HEAD and OPTIONS (CORS preflight) too, every other method is 405. Documents are serialized once per feed version
and served as bytes with a strong ETag (If-None-Match -> 304), Last-Modified, Cache-Control max-age and gzip when
the client accepts it. Each client address has a token bucket (429 + Retry-After). Errors are RFC 9457 JSON.
Nothing here reads operator state: the only input is the ParkingFeed. No access log (client addresses are
personal data); addresses live in the rate limiter's memory only while their bucket refills.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import logging
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC
from email.utils import formatdate, parsedate_to_datetime
from http import HTTPStatus
from typing import Any

from aiohttp import web

from scada.public.feed import ParkingFeed
from scada.public.ngsi import ENTITY_TYPES, entity_type, to_entity
from scada.public.openapi import PROBLEM_MEDIA, openapi_document
from scada.public.ratelimit import RateLimit, RateLimiter, client_key

log = logging.getLogger(__name__)

ALLOW = "GET, HEAD, OPTIONS"
ALLOWED_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
GZIP_MIN_BYTES = 200  # below this gzip makes the body bigger
JSON_MEDIA = "application/json"
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Resource-Policy": "cross-origin",
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Expose-Headers": "ETag, Retry-After",
    "Server": "cityscada",
}
PREFLIGHT_HEADERS = {
    "Allow": ALLOW,
    "Access-Control-Allow-Methods": ALLOW,
    "Access-Control-Allow-Headers": "If-None-Match, If-Modified-Since",
    "Access-Control-Max-Age": "86400",
    "Cache-Control": "public, max-age=86400",
}
TYPES = frozenset(ENTITY_TYPES.values())


@dataclass(frozen=True, slots=True)
class PublicApiOptions:
    """Where the API listens and how it caches and limits."""

    host: str = "0.0.0.0"
    port: int = 8080  # 0: any free port (see PublicApi.port)
    max_age_s: int = 5
    rate_limit: RateLimit = field(default_factory=RateLimit)
    trusted_proxies: tuple[str, ...] = ()  # peers whose X-Forwarded-For names the client (a reverse proxy)
    keepalive_timeout_s: float = 15.0


def _dumps(document: Any) -> bytes:
    return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode()


class Representation:
    """One serialized document: body, strong ETag, gzip variant made on first use, time of the change."""

    __slots__ = ("_gzip", "body", "changed_at", "etag", "etag_gzip")

    def __init__(self, body: bytes, changed_at: float) -> None:
        self.body = body
        digest = hashlib.blake2b(body, digest_size=12).hexdigest()
        self.etag = f'"{digest}"'
        self.etag_gzip = f'"{digest}-gz"'
        self.changed_at = changed_at
        self._gzip: bytes | None = None

    @property
    def gzip_body(self) -> bytes:
        """The gzip-compressed body (deterministic: no file name, time 0)."""
        if self._gzip is None:
            self._gzip = gzip.compress(self.body, compresslevel=6, mtime=0)
        return self._gzip


class Documents:
    """The API's documents for the feed's current version, rebuilt lazily when the feed changes."""

    def __init__(self, feed: ParkingFeed) -> None:
        self.feed = feed
        self._version = -1
        self._cache: dict[str, Representation] = {}
        self.openapi = Representation(_dumps(openapi_document()), time.time())

    def _current(self) -> dict[str, Representation]:
        if self.feed.version != self._version:
            self._cache = {}
            self._version = self.feed.version
        return self._cache

    def listing(self, type_filter: str | None) -> Representation:
        """Every site (or those of one entity type), in configuration order."""
        cache = self._current()
        key = f"list:{type_filter or ''}"
        rep = cache.get(key)
        if rep is None:
            states = self.feed.states()
            if type_filter:
                states = [s for s in states if entity_type(s.info) == type_filter]
            rep = cache[key] = Representation(_dumps([to_entity(s) for s in states]), self.feed.changed_at)
        return rep

    def site(self, raw_id: str) -> Representation | None:
        """One site by site id or entity URN, or None."""
        site_id = self.resolve(raw_id)
        if site_id is None:
            return None
        cache = self._current()
        key = f"site:{site_id}"
        rep = cache.get(key)
        if rep is None:
            state = self.feed.state(site_id)
            assert state is not None
            rep = cache[key] = Representation(_dumps(to_entity(state)), self.feed.changed_at)
        return rep

    def resolve(self, raw_id: str) -> str | None:
        """The site id named by a site id or "urn:ngsi-ld:<type>:<id>", or None."""
        if self.feed.info(raw_id) is not None:
            return raw_id
        parts = raw_id.split(":")
        if len(parts) == 4 and parts[0].lower() == "urn" and parts[1] == "ngsi-ld":
            info = self.feed.info(parts[3])
            if info is not None and entity_type(info) == parts[2]:
                return info.id
        return None


def problem(status: int, detail: str = "", headers: dict[str, str] | None = None) -> web.Response:
    """An RFC 9457 problem response (never cached)."""
    document = {"type": "about:blank", "title": HTTPStatus(status).phrase, "status": status}
    if detail:
        document["detail"] = detail
    response = web.Response(status=status, body=_dumps(document), headers=headers)
    response.content_type = PROBLEM_MEDIA
    response.headers["Cache-Control"] = "no-store"
    return response


def etag_matches(header: str, rep: Representation) -> bool:
    """If-None-Match: "*" or any listed tag equal (weak comparison) to either variant of the representation."""
    if header.strip() == "*":
        return True
    for tag in header.split(","):
        tag = tag.strip()
        if tag.startswith("W/"):
            tag = tag[2:]
        if tag in (rep.etag, rep.etag_gzip):
            return True
    return False


def accepts_gzip(header: str) -> bool:
    """True when Accept-Encoding allows gzip (explicitly or through "*", with a non-zero q)."""
    explicit: float | None = None
    wildcard: float | None = None
    for part in header.split(","):
        token, _, params = part.partition(";")
        token = token.strip().lower()
        if token not in ("gzip", "x-gzip", "*"):
            continue
        q = 1.0
        for param in params.split(";"):
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
                if not math.isfinite(q):
                    q = 0.0
        if token == "*":
            wildcard = q
        else:
            explicit = q if explicit is None else max(explicit, q)
    if explicit is not None:
        return explicit > 0
    return wildcard is not None and wildcard > 0


def last_modified_second(rep: Representation, now: float) -> int | None:
    """The Last-Modified second of a representation, once that second is over (None before: not yet reliable).

    HTTP dates have a one-second resolution: a change later in the same second would carry the same date, so
    the date is only given (and If-Modified-Since only honoured) once no further change can share it.
    """
    second = math.floor(rep.changed_at)
    return second if now >= second + 1 else None


def _modified_since(header: str, second: int) -> bool:
    try:
        when = parsedate_to_datetime(header)
    except (TypeError, ValueError, IndexError, OverflowError):
        return True
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    try:
        return second > when.timestamp()
    except (OverflowError, OSError, ValueError):
        return True


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class PublicApi:
    """The HTTP service of the feed: start()/stop() (idempotent); `port` once started."""

    def __init__(
        self,
        feed: ParkingFeed,
        options: PublicApiOptions | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.feed = feed
        self._wall_clock = wall_clock
        self.options = options or PublicApiOptions()
        self.limiter = RateLimiter(self.options.rate_limit, clock)
        self.documents = Documents(feed)
        self._trusted = frozenset(self.options.trusted_proxies)
        self._cache_control = f"public, max-age={self.options.max_age_s}"
        self.app = self._build_app()
        self._runner: web.AppRunner | None = None

    # -- application ------------------------------------------------------------------------------------------

    def _build_app(self) -> web.Application:
        app = web.Application(middlewares=[self._guard], client_max_size=1024)
        app.router.add_get("/v1/parking", self._list)
        app.router.add_get("/v1/parking/{id}", self._one)
        app.router.add_get("/openapi.json", self._openapi)
        app.router.add_get("/healthz", self._health)
        app.on_response_prepare.append(self._headers)
        return app

    async def _headers(self, request: web.Request, response: web.StreamResponse) -> None:
        response.headers.update(SECURITY_HEADERS)

    def client(self, request: web.Request) -> str:
        """The client's rate-limit key: the peer address, or X-Forwarded-For's last hop behind a trusted proxy."""
        peer = request.remote
        if peer in self._trusted:
            forwarded = request.headers.get("X-Forwarded-For", "")
            hops = [hop.strip() for hop in forwarded.split(",") if hop.strip()]
            while hops and hops[-1] in self._trusted:
                hops.pop()
            if hops:
                peer = hops[-1]
        return client_key(peer)

    @web.middleware
    async def _guard(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        wait = self.limiter.take(self.client(request))
        if wait > 0:
            retry = self.limiter.retry_after_header(wait)
            return problem(429, f"rate limit exceeded: retry in {retry} s", {"Retry-After": retry})
        if request.method not in ALLOWED_METHODS:
            return problem(405, "this API is read-only: GET, HEAD and OPTIONS only", {"Allow": ALLOW})
        try:
            if request.method == "OPTIONS":
                failure = request.match_info.http_exception
                if failure is not None and failure.status == 404:
                    return problem(404, "no such resource")
                return web.Response(status=204, headers=PREFLIGHT_HEADERS)
            return await handler(request)
        except web.HTTPException as exc:
            if exc.status == 405:
                return problem(405, "GET, HEAD and OPTIONS only", {"Allow": ALLOW})
            if exc.status >= 400:
                return problem(exc.status, "no such resource" if exc.status == 404 else exc.reason)
            raise
        except Exception:
            log.exception("public API failed on %s %s", request.method, request.rel_url.path[:200])
            return problem(500, "internal error")

    def _send(self, request: web.Request, rep: Representation) -> web.Response:
        now = self._wall_clock()
        headers = {"Cache-Control": self._cache_control, "Vary": "Accept-Encoding"}
        second = last_modified_second(rep, now)
        if second is not None:
            headers["Last-Modified"] = formatdate(second, usegmt=True)
        use_gzip = len(rep.body) >= GZIP_MIN_BYTES and accepts_gzip(request.headers.get("Accept-Encoding", ""))
        headers["ETag"] = rep.etag_gzip if use_gzip else rep.etag
        if_none_match = request.headers.get("If-None-Match")
        if if_none_match is not None:
            if etag_matches(if_none_match, rep):
                return web.Response(status=304, headers=headers)
        else:
            since = request.headers.get("If-Modified-Since")
            if since and second is not None and not _modified_since(since, second):
                return web.Response(status=304, headers=headers)
        if use_gzip:
            headers["Content-Encoding"] = "gzip"
            body = rep.gzip_body
        else:
            body = rep.body
        response = web.Response(body=body, headers=headers)
        response.content_type = JSON_MEDIA
        return response

    async def _list(self, request: web.Request) -> web.StreamResponse:
        type_filter = request.query.get("type")
        if type_filter is not None and type_filter not in TYPES:
            return problem(400, f"type must be one of {', '.join(sorted(TYPES))}")
        return self._send(request, self.documents.listing(type_filter))

    async def _one(self, request: web.Request) -> web.StreamResponse:
        rep = self.documents.site(request.match_info["id"])
        if rep is None:
            return problem(404, "no parking site with that id")
        return self._send(request, rep)

    async def _openapi(self, request: web.Request) -> web.StreamResponse:
        return self._send(request, self.documents.openapi)

    async def _health(self, request: web.Request) -> web.StreamResponse:
        states = self.feed.states()
        document = {"status": "ok", "sites": len(states), "sitesWithLiveData": sum(1 for s in states if s.known)}
        response = web.Response(body=_dumps(document), headers={"Cache-Control": "no-store"})
        response.content_type = JSON_MEDIA
        return response

    # -- service ----------------------------------------------------------------------------------------------

    async def start(self) -> None:
        """Listen on host:port (idempotent)."""
        if self._runner is not None:
            return
        runner = web.AppRunner(
            self.app, handle_signals=False, access_log=None, keepalive_timeout=self.options.keepalive_timeout_s
        )
        await runner.setup()
        try:
            site = web.TCPSite(runner, self.options.host, self.options.port, backlog=1024)
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        log.info("public parking feed at %s", self.url)

    async def stop(self) -> None:
        """Close the listening socket and the connections (idempotent)."""
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    @property
    def port(self) -> int:
        """The port listened on (the real one when options.port is 0); 0 before start."""
        if self._runner is None or not self._runner.addresses:
            return 0
        return int(self._runner.addresses[0][1])

    @property
    def url(self) -> str:
        """The base URL of the API."""
        host = self.options.host
        host = "127.0.0.1" if host in ("0.0.0.0", "") else f"[{host}]" if ":" in host else host
        return f"http://{host}:{self.port}"
