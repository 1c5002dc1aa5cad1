"""Token buckets: sustained rate, bursts, the wait announced, client keys, bounded memory."""

from __future__ import annotations

import pytest

from scada.public.ratelimit import RateLimit, RateLimiter, client_key


def test_burst_then_sustained_rate() -> None:
    now = [0.0]
    limiter = RateLimiter(RateLimit(rate=2, burst=4), clock=lambda: now[0])
    assert [limiter.take("a") for _ in range(4)] == [0.0] * 4
    wait = limiter.take("a")
    assert wait == pytest.approx(0.5)  # one token comes back every 1/rate s
    assert limiter.retry_after_header(wait) == "1"
    now[0] += 0.5
    assert limiter.take("a") == 0.0
    assert limiter.take("a") > 0
    assert limiter.take("b") == 0.0  # buckets are per client
    now[0] += 100
    assert [limiter.take("a") for _ in range(5)].count(0.0) == 4  # refilled to the burst, not beyond
    assert limiter.refused == 3


def test_refused_requests_do_not_dig_the_bucket_deeper() -> None:
    now = [0.0]
    limiter = RateLimiter(RateLimit(rate=1, burst=1), clock=lambda: now[0])
    limiter.take("a")
    for _ in range(100):
        limiter.take("a")
    now[0] += 1.0
    assert limiter.take("a") == 0.0


def test_client_keys() -> None:
    assert client_key("192.0.2.7") == "192.0.2.7"
    assert client_key("2001:db8:1:2:aaaa::1") == client_key("2001:db8:1:2:ffff::9") == "2001:db8:1:2::/64"
    assert client_key("2001:db8:1:3::1") != client_key("2001:db8:1:2::1")
    assert client_key("::ffff:192.0.2.7") == "192.0.2.7"
    assert client_key("fe80::1%eth0") == "fe80::/64"
    assert client_key(None) == "?"
    assert client_key("not an address") == "not an address"


def test_table_is_bounded() -> None:
    now = [0.0]
    limiter = RateLimiter(RateLimit(rate=1, burst=5, max_clients=50), clock=lambda: now[0])
    for i in range(1000):
        limiter.take(f"10.0.{i // 256}.{i % 256}")
        now[0] += 0.001
    assert len(limiter) <= 50


def test_invalid_rule() -> None:
    with pytest.raises(ValueError):
        RateLimit(rate=0)
