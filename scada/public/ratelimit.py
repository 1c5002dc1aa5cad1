"""Per-client token buckets for the public API: `rate` requests per second on average, bursts up to `burst`.

Clients are keyed by IPv4 address, or by /64 network for IPv6 (one subscriber usually holds a whole /64). The
table is bounded: past `max_clients`, buckets that have refilled are forgotten first, then the least recently
used. Addresses are kept in memory only, for as long as their bucket is not full.
"""

from __future__ import annotations

import ipaddress
import math
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class RateLimit:
    """The rule applied to each client."""

    rate: float = 20.0  # tokens per second (sustained requests per second)
    burst: float = 60.0  # bucket size (requests allowed at once after a quiet period)
    max_clients: int = 100_000

    def __post_init__(self) -> None:
        if self.rate <= 0 or self.burst < 1 or self.max_clients < 1:
            raise ValueError(f"invalid rate limit {self}")


def client_key(address: str | None) -> str:
    """The rate-limit key of a peer address: the IPv4 address, or the /64 of an IPv6 one."""
    if not address:
        return "?"
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return address[:64]
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((int(ip) >> 64 << 64, 64)))
    return str(ip)


class RateLimiter:
    """Token buckets by client key; `take` answers 0.0 (allowed) or the seconds to wait for the next token."""

    def __init__(self, limit: RateLimit | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self.limit = limit or RateLimit()
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, time of that count)
        self.refused = 0

    def take(self, key: str) -> float:
        """Spend one token of `key`'s bucket; returns 0.0 when allowed, else the wait (s) until a token is back."""
        now = self._clock()
        limit = self.limit
        bucket = self._buckets.pop(key, None)  # re-inserted below: the dict stays in least-recent-use order
        if bucket is None:
            if len(self._buckets) >= limit.max_clients:
                self._prune(now)
            tokens = limit.burst
        else:
            tokens = min(limit.burst, bucket[0] + (now - bucket[1]) * limit.rate)
        if tokens >= 1.0:
            self._buckets[key] = (tokens - 1.0, now)
            return 0.0
        self._buckets[key] = (tokens, now)
        self.refused += 1
        return (1.0 - tokens) / limit.rate

    def retry_after_header(self, wait_s: float) -> str:
        """The Retry-After value (whole seconds, at least 1) for a wait."""
        return str(max(1, math.ceil(wait_s)))

    def _prune(self, now: float) -> None:
        limit = self.limit
        full = [k for k, (tokens, ts) in self._buckets.items() if tokens + (now - ts) * limit.rate >= limit.burst]
        for key in full:
            del self._buckets[key]
        while len(self._buckets) >= limit.max_clients:
            del self._buckets[next(iter(self._buckets))]

    def __len__(self) -> int:
        return len(self._buckets)
