"""Maintenance overrides over OPC UA: Override / CancelOverride on a cabinet, ended by the server when time is up."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import datetime

import pytest
from asyncua import ua

from drivers.sim.lighting import LIGHT_HR_COMMAND

from .conftest import Post, running_post

CABINET = "Lighting/CAB-0001"


@pytest.fixture
async def post(free_port: int) -> AsyncIterator[Post]:
    async with running_post(free_port, automation=True) as running:
        yield running


def mode(post: Post, cabinet_id: str = "CAB-0001") -> int:
    return int(post.sim.device(cabinet_id).hr[LIGHT_HR_COMMAND])


async def until(check, within: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + within
    while not check():
        assert time.monotonic() < deadline, f"{what} not reached within {within} s"
        await asyncio.sleep(0.05)


async def call(post: Post, method: str, *args: ua.Variant) -> list[object]:
    cabinet = post.node(CABINET)
    result = await cabinet.call_method(ua.NodeId(f"Types/LightingCabinetType/{method}", post.ns), *args)
    return result if isinstance(result, list) else [result]


def override_args(mode_: int, minutes: float, reason: str) -> tuple[ua.Variant, ...]:
    return (
        ua.Variant(mode_, ua.VariantType.Int32),
        ua.Variant(minutes, ua.VariantType.Double),
        ua.Variant(reason, ua.VariantType.String),
    )


async def test_an_override_forces_the_cabinet_and_the_server_ends_it(post: Post) -> None:
    assert post.server.lighting is not None
    await asyncio.wait_for(post.server.lighting.wait_idle(), 10)
    names = {(await ref.read_browse_name()).Name for ref in await post.node(CABINET).get_methods()}
    assert {"Override", "CancelOverride", "SetMode"} <= names
    before = time.time()
    [until_] = await call(post, "Override", *override_args(1, 0.05, "lamp replaced in Rue de la Liberté"))
    assert isinstance(until_, datetime)
    assert 2.0 <= until_.timestamp() - before <= 4.0  # 0.05 min = 3 s
    await until(lambda: mode(post) == 1, 5, "forced on")
    [held] = post.server.lighting.overrides()
    assert (held.cabinet_id, held.mode, held.reason) == ("CAB-0001", 1, "lamp replaced in Rue de la Liberté")
    await until(lambda: mode(post) == 0, 10, "back to automatic when the time is up")  # nobody asked
    assert post.server.lighting.overrides() == []


async def test_cancel_and_refusals(post: Post) -> None:
    assert post.server.lighting is not None
    await asyncio.wait_for(post.server.lighting.wait_idle(), 10)
    await call(post, "Override", *override_args(2, 30, "cable work"))
    await until(lambda: mode(post) == 2, 5, "forced off")
    assert await call(post, "CancelOverride") == [2]
    await until(lambda: mode(post) == 0, 5, "automatic again")
    refusals = (
        (("CancelOverride",), ua.StatusCodes.BadInvalidState),  # nothing to cancel
        (("Override", *override_args(3, 10, "x")), ua.StatusCodes.BadOutOfRange),  # no such mode
        (("Override", *override_args(1, 10_000, "x")), ua.StatusCodes.BadOutOfRange),  # beyond max_minutes
        (("Override", *override_args(1, 10, "  ")), ua.StatusCodes.BadInvalidArgument),  # no reason
    )
    for (method, *args), code in refusals:
        with pytest.raises(ua.UaStatusCodeError) as refused:
            await call(post, method, *args)
        assert refused.value.code == code, method
    assert mode(post) == 0 and post.server.lighting.overrides() == []
