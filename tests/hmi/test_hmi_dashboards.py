"""The Energy and Parking dashboards against a real control post (simulators, secure server, SQLite historian)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from asyncua import ua
from hmikit import wait_for
from test_hmi_trends import historised_post, occupy, wait_for_value

from hmi.console import Console
from hmi.dashboards import (
    ENERGY,
    NIGHT_S,
    PARKING_INTERVAL_S,
    EnergyDashboard,
    ParkingDashboard,
    local_midnight,
    night_starts,
)
from hmi.history import read_processed, samples
from hmi.values import format_value

pytestmark = pytest.mark.qt


def dashboards(console: Console) -> tuple[EnergyDashboard, ParkingDashboard]:
    assert console.analysis is not None
    return console.analysis.energy, console.analysis.parking


async def test_power_now_is_the_servers_value(tmp_path: Path, free_port: int) -> None:
    async with historised_post(tmp_path, free_port) as (_stack, console):
        energy, _parking = dashboards(console)
        path = f"{ENERGY}/LightingPowerKW"
        label = energy.figure_labels["LightingPowerKW"]
        deadline = asyncio.get_running_loop().time() + 10
        while True:  # the power moves with the lamps: compare with the server's value of the moment
            server_value = await console.client.read_value(path)
            shown = energy.figure(path)
            if shown is not None and shown == pytest.approx(float(server_value), abs=1e-9):
                break
            assert asyncio.get_running_loop().time() < deadline, f"dashboard {shown} != server {server_value}"
            await asyncio.sleep(0.1)
        assert label.text() == format_value(energy.values[path], "kW", 1)
        assert isinstance(server_value, float)
        # the nights' report shows exactly what GetEnergyReport answers (or the server's refusal when it has none)
        await energy.load_report()
        start, end = night_starts(datetime.now(UTC), energy.zone)
        direct = await console.client.call(
            ENERGY,
            "GetEnergyReport",
            ua.Variant("City", ua.VariantType.String),
            ua.Variant(start, ua.VariantType.DateTime),
            ua.Variant(end, ua.VariantType.DateTime),
            ua.Variant(NIGHT_S, ua.VariantType.UInt32),
        )
        if direct.ok:
            assert energy.report["energy"] == list(direct.outputs[1])
            assert energy.report["baseline"] == list(direct.outputs[2])
            assert len(energy.report["starts"]) == 7
        else:
            assert energy.report == {} and energy.report_status == direct.text
            assert direct.text in energy.report_note.text()


def test_nights_start_at_local_noon() -> None:
    paris = ZoneInfo("Europe/Paris")
    start, end = night_starts(datetime(2026, 11, 25, 10, 0, tzinfo=UTC), paris)  # 11:00 in Paris: before noon
    assert end == datetime(2026, 11, 25, 11, 0, tzinfo=UTC)  # today's noon in Paris (UTC+1)
    assert end - start == timedelta(days=7)
    start, end = night_starts(datetime(2026, 11, 25, 12, 0, tzinfo=UTC), paris)  # 13:00 in Paris
    assert end == datetime(2026, 11, 26, 11, 0, tzinfo=UTC)
    assert local_midnight(datetime(2026, 11, 25, 23, 30, tzinfo=UTC), paris) == datetime(
        2026, 11, 25, 23, 0, tzinfo=UTC
    )


async def test_parking_free_and_occupied_match_the_server(tmp_path: Path, free_port: int) -> None:
    async with historised_post(tmp_path, free_port) as (stack, console):
        _energy, parking = dashboards(console)
        assert [site_id for site_id, _n, _p in parking.sites] == sorted(stack.site.parking)
        await occupy(stack, console, 2, 5)
        await wait_for_value(console, "Parking/PK-01/Free", stack.site.parking["PK-01"].capacity - 5)
        paths = parking.paths()
        server = dict(zip(paths, [dv.Value.Value for dv in await console.client.read(paths)], strict=True))
        await wait_for(
            lambda: all(parking.values.get(p) == v for p, v in server.items()), what="the dashboard's figures"
        )
        for row, (_site_id, _name, path) in enumerate(parking.sites):
            table = parking.table
            assert table.item(row, 2).text() == str(server[f"{path}/Occupied"])  # type: ignore[union-attr]
            assert table.item(row, 3).text() == str(server[f"{path}/Free"])  # type: ignore[union-attr]
        free = sum(v for p, v in server.items() if p.endswith("/Free"))
        capacity = sum(v for p, v in server.items() if p.endswith("/Capacity"))
        assert parking.totals.text().startswith(f"{free} free of {capacity} bays")
        # the day's curve: the server's 5-minute averages since local midnight, then live values
        await parking.load_day()
        now = datetime.now(UTC)
        direct = await read_processed(
            console.client,
            "Parking/PK-01/Occupied",
            local_midnight(now, parking.zone),
            now,
            PARKING_INTERVAL_S,
            "Average",
        )
        times, values = samples(direct)
        np.testing.assert_array_equal(parking.series["PK-01"][0][: len(times)], times)
        np.testing.assert_array_equal(parking.series["PK-01"][1][: len(values)], values)
        assert np.nanmax(values) >= 2.0
        stack.sim.set_occupancy("PK-01", 7)
        await wait_for(lambda: parking.series["PK-01"][1][-1] == 7.0, what="a live point on the day's curve")
        await wait_for(lambda: parking.table.item(0, 2).text() == "7", what="the table's live value")  # type: ignore[union-attr]
