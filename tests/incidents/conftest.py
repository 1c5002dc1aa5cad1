"""Fixtures of the incident tests: the control stack over real Modbus TCP with the small site's simulators."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.incidents.incident_stack import Stack, close_stack, open_stack


@pytest.fixture
async def stack() -> AsyncIterator[Stack]:
    """Simulators, driver, command service, value cache and incident service, stopped after the test."""
    opened = await open_stack()
    try:
        yield opened
    finally:
        await close_stack(opened)
