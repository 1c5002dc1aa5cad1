"""The Energy folder through OPC UA: city and district figures, their history, and GetEnergyReport."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from asyncua import Client, ua
from sqlalchemy import insert

from historian.schema import EnergyInterval, to_us
from scada.app import ControlServer

from .conftest import Post

FIGURES = (
    "LightingPowerKW",
    "LightingEnergyKWhToday",
    "LightingBaselineKWhToday",
    "LightingSavingsPercent",
    "LightingSavingsPercentNight",
)


@pytest.fixture
async def stack(historian_post: Post) -> AsyncIterator[tuple[ControlServer, Client, int]]:
    yield historian_post.server, historian_post.client, historian_post.ns


async def test_city_and_district_figures_are_published_and_historized(stack) -> None:
    server, client, ns = stack
    energy = client.get_node(f"ns={ns};s=Energy")
    names = {(await child.read_browse_name()).Name for child in await energy.get_children()}
    assert set(FIGURES) | {"Districts", "GetEnergyReport"} <= names
    districts = client.get_node(f"ns={ns};s=Energy/Districts")
    assert {(await c.read_browse_name()).Name for c in await districts.get_children()} == set(server.site.districts)

    def node(path: str):  # type: ignore[no-untyped-def]
        return client.get_node(f"ns={ns};s={path}")

    lamps = list(server.site.lamps())
    deadline = time.monotonic() + 15
    while True:  # the city's power is the sum of its lamps' power, and of its districts'
        values = [await node(f"{lamp.path}/PowerW").read_data_value(raise_on_bad_status=False) for lamp in lamps]
        powers = [dv.Value.Value if dv.StatusCode.is_good() else None for dv in values]
        city = await node("Energy/LightingPowerKW").read_data_value(raise_on_bad_status=False)
        parts = [await node(f"Energy/Districts/{d}/LightingPowerKW").read_value() for d in server.site.districts]
        if (
            None not in powers
            and city.StatusCode.is_good()
            and city.Value.Value == pytest.approx(sum(powers) / 1000, abs=0.002)
        ):
            break
        assert time.monotonic() < deadline, f"city power {city.Value.Value} vs lamps {sum(p or 0 for p in powers)} W"
        await asyncio.sleep(0.2)
    assert sum(parts) == pytest.approx(city.Value.Value, abs=0.002)
    for name in FIGURES:  # every figure has a value or says it waits for data (no baseline yet)
        dv = await node(f"Energy/Districts/montchapet/{name}").read_data_value(raise_on_bad_status=False)
        assert dv.StatusCode.is_good() or dv.StatusCode.value == ua.StatusCodes.BadWaitingForInitialData
    assert await node("Energy/LightingPowerKW").read_attribute(ua.AttributeIds.Historizing) is not None

    assert server.historian is not None
    await server.historian.flush(10)
    start = datetime.now(UTC) - timedelta(minutes=5)
    history = await node("Energy/LightingPowerKW").read_raw_history(start, datetime.now(UTC) + timedelta(seconds=1))
    stored = [dv.Value.Value for dv in history if dv.StatusCode.is_good()]  # between the two bounds markers
    assert stored and stored[-1] == pytest.approx(city.Value.Value, abs=0.5)


async def test_get_energy_report_answers_buckets_and_refuses_bad_arguments(stack) -> None:
    server, client, ns = stack
    site = server.site
    start = datetime(2026, 1, 14, 12, 0, tzinfo=UTC)  # two past nights, computed by the historian
    rows = []
    for k in range(2 * 96):
        ts = to_us(start + timedelta(minutes=15 * k))
        night = 5 <= (k % 96) // 4 < 16  # 17:00-04:00 UTC: 11 hours
        energy, baseline = (400.0, 1000.0) if night else (12.0, 0.0)
        rows.append(dict(scope="city", scope_id=site.name, start_ts=ts, energy_wh=energy, baseline_wh=baseline))
        rows.append(
            dict(scope="district", scope_id="montchapet", start_ts=ts, energy_wh=energy / 4, baseline_wh=baseline / 4)
        )
    assert server.historian is not None
    with server.historian.engine.begin() as conn:
        conn.execute(insert(EnergyInterval), rows)
    energy = client.get_node(f"ns={ns};s=Energy")
    method = ua.NodeId("Energy/GetEnergyReport", ns)

    def args(scope: str, s: datetime, e: datetime, bucket: int) -> list[ua.Variant]:
        return [
            ua.Variant(scope, ua.VariantType.String),
            ua.Variant(s, ua.VariantType.DateTime),
            ua.Variant(e, ua.VariantType.DateTime),
            ua.Variant(bucket, ua.VariantType.UInt32),
        ]

    starts, kwh, baseline = await energy.call_method(method, *args("City", start, start + timedelta(days=2), 86400))
    assert [s.replace(tzinfo=UTC) for s in starts] == [start, start + timedelta(days=1)]
    nightly = 11 * 4  # 44 night intervals per window
    assert kwh == pytest.approx([(nightly * 400 + (96 - nightly) * 12) / 1000] * 2)
    assert baseline == pytest.approx([nightly * 1000 / 1000] * 2)
    _, kwh_m, baseline_m = await energy.call_method(
        method, *args("montchapet", start, start + timedelta(days=1), 86400)
    )
    assert kwh_m == pytest.approx([kwh[0] / 4]) and baseline_m == pytest.approx([baseline[0] / 4])

    for bad in (
        args("Atlantis", start, start + timedelta(days=1), 86400),  # unknown scope
        args("City", start, start + timedelta(days=1), 100),  # not a multiple of 900 s
        args("City", start, start - timedelta(days=1), 900),  # end before start
        args("City", start, start + timedelta(days=200), 900),  # more than 10,000 buckets
    ):
        with pytest.raises(ua.UaStatusCodeError) as refused:
            await energy.call_method(method, *bad)
        assert refused.value.code == ua.StatusCodes.BadInvalidArgument
    with pytest.raises(ua.UaStatusCodeError) as refused:
        await energy.call_method(method, *args("City", start, start, 900)[:3])
    assert refused.value.code == ua.StatusCodes.BadArgumentsMissing
