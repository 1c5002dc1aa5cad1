"""Fixtures of the public feed tests: a car park and an on-street zone, the feed, the API on a free port."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest
from public_helpers import parking_sites

from scada.public.api import PublicApi, PublicApiOptions
from scada.public.feed import ParkingFeed
from scada.public.ratelimit import RateLimit


@pytest.fixture
def feed() -> ParkingFeed:
    return ParkingFeed(parking_sites(), {"centre-ville": "Centre-Ville"})


@pytest.fixture
async def api(feed: ParkingFeed) -> AsyncIterator[PublicApi]:
    """The API on 127.0.0.1, a free port, with a rate limit high enough not to interfere."""
    service = PublicApi(feed, PublicApiOptions(host="127.0.0.1", port=0, rate_limit=RateLimit(1000, 1000)))
    await service.start()
    try:
        yield service
    finally:
        await service.stop()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    """A client that does not decompress, so that the test sees the bytes on the wire."""
    async with aiohttp.ClientSession(auto_decompress=False) as session:
        yield session
