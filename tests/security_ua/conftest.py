"""Fixtures of the OPC UA security tests: the small site's server with build_security(), stopped after the test."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from uasec_kit import SecureCity, cheap_store, start_city


@pytest.fixture
async def city(tmp_path: Path, free_port: int) -> AsyncIterator[SecureCity]:
    """The small site's secure server (default security section, demo users with a fast hash, client trusted)."""
    started = await start_city(tmp_path / "data", free_port, store=cheap_store(tmp_path / "users"))
    try:
        yield started
    finally:
        await started.stop()
