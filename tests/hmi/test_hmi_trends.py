"""The Trends view against a real control post with a SQLite historian: history, raw/processed, live, exports."""

from __future__ import annotations

import asyncio
import contextlib
import csv
import math
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from asyncua import ua
from hmikit import Stack, close_console, open_console, wait_for
from PyQt6.QtGui import QImage
from PyQt6.QtWidgets import QPushButton

from hmi.analysis import TRENDS_DOCK
from hmi.console import Console
from hmi.history import RAW_MAX_SECONDS, TARGET_POINTS, plan_read, read_processed, samples, value_at
from hmi.trends import RANGES, TrendView

pytestmark = pytest.mark.qt

OCCUPIED = "Parking/PK-01/Occupied"


@contextlib.asynccontextmanager
async def historised_post(folder: Path, port: int) -> AsyncIterator[tuple[Stack, Console]]:
    """Simulators, the secure server with a SQLite historian, and a console logged in as operator."""
    stack = Stack(port, folder, historian_url=f"sqlite:///{folder / 'history.sqlite'}")
    await stack.start()
    try:
        console = await open_console(stack, folder)
        try:
            yield stack, console
        finally:
            await close_console(console)
    finally:
        await stack.stop()
        await asyncio.sleep(0.1)


async def occupy(stack: Stack, console: Console, *counts: int) -> None:
    """Make PK-01 report each count in turn, each seen by the server, then flush the historian."""
    for count in counts:
        stack.sim.set_occupancy("PK-01", count)
        await wait_for_value(console, OCCUPIED, count)
    assert stack.server is not None and stack.server.historian is not None
    assert await stack.server.historian.flush(10)


async def wait_for_value(console: Console, path: str, expected: object) -> None:
    for _ in range(200):
        [dv] = await console.client.read([path])
        if dv.Value is not None and dv.Value.Value == expected:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{path} never became {expected!r}")


def view_of(console: Console) -> TrendView:
    assert console.analysis is not None
    return console.analysis.trends


def assert_same(a: np.ndarray, b: np.ndarray) -> None:
    np.testing.assert_array_equal(a, b)  # NaN equals NaN here: gaps at the same places


async def test_trend_plots_the_servers_raw_history_then_live_values(tmp_path: Path, free_port: int) -> None:
    async with historised_post(tmp_path, free_port) as (stack, console):
        await occupy(stack, console, 3, 9, 14)
        view = view_of(console)
        await view.set_span(600.0)
        assert view.range_box.currentText() == "10 minutes"
        [pen] = await view.add([OCCUPIED])
        assert view.plan is not None and not view.plan.processed and view.plan.mode == "raw"
        # the plot holds exactly what the server's HistoryRead answers for the same range
        expected_t, expected_v = samples(await console.client.read_history(OCCUPIED, view.plan.start, view.plan.end))
        assert pen.history_count == len(expected_t) >= 3
        assert_same(pen.times[: pen.history_count], expected_t)
        assert_same(pen.values[: pen.history_count], expected_v)
        assert_same(np.asarray(pen.curve.xData), pen.times)
        assert_same(np.asarray(pen.curve.yData), pen.values)
        assert {3.0, 9.0, 14.0} <= set(expected_v.tolist())
        # the cursor reads the value in force at a sample's time
        assert "14" in view.cursor_text(float(pen.times[-1]))
        # live: a new occupancy is appended without a new history read
        stack.sim.set_occupancy("PK-01", 21)
        await wait_for(lambda: len(pen.values) > pen.history_count and pen.values[-1] == 21.0, what="live append")
        assert pen.times[-1] >= pen.times[pen.history_count - 1]
        assert_same(np.asarray(pen.curve.yData), pen.values)
        assert "live" in view.status.text()


async def test_long_ranges_are_read_processed_short_ones_raw(tmp_path: Path, free_port: int) -> None:
    async with historised_post(tmp_path, free_port) as (stack, console):
        await occupy(stack, console, 4, 11)
        view = view_of(console)
        [pen] = await view.add([OCCUPIED])
        labels = [label for label, _s in RANGES]
        view.range_box.setCurrentIndex(labels.index("7 days"))  # the user's choice, through the combo box
        await wait_for(lambda: view.plan is not None and view.plan.processed and not view.loading, what="7 days")
        plan = view.plan
        assert plan is not None and plan.aggregate == "TimeAverage"
        assert plan.interval_s == math.ceil(7 * 86400 / TARGET_POINTS)
        direct = await read_processed(console.client, OCCUPIED, plan.start, plan.end, plan.interval_s)
        expected_t, expected_v = samples(direct)
        assert 990 <= len(expected_t) <= 1001
        assert_same(pen.times[: pen.history_count], expected_t)
        assert_same(pen.values[: pen.history_count], expected_v)
        # buckets before the historian started are Bad (no data): gaps; the last ones average the stored values
        assert np.isnan(expected_v[0])
        finite = expected_v[np.isfinite(expected_v)]
        assert finite.size and 4.0 <= finite[-1] <= 11.0
        view.range_box.setCurrentIndex(labels.index("6 hours"))
        await wait_for(lambda: view.plan is not None and not view.plan.processed and not view.loading, what="6 h")
        assert view.plan is not None and (view.plan.end - view.plan.start).total_seconds() == RAW_MAX_SECONDS
        assert {4.0, 11.0} <= set(pen.values.tolist())
        # a fixed (custom) range: no live values appended
        now = datetime.now(UTC)
        await view.set_range(now - timedelta(days=400), now)
        assert view.plan is not None and view.plan.processed and view.plan.interval_s == math.ceil(400 * 86.4)
        assert not view.live and "live" not in view.status.text()


async def test_exports_units_axes_tree_and_the_panel_trend_button(tmp_path: Path, free_port: int) -> None:
    async with historised_post(tmp_path, free_port) as (stack, console):
        await occupy(stack, console, 6, 8)
        view = view_of(console)
        # a device panel's Trend button opens the Trends dock with the device's measured values
        assert console.model is not None and console.panels is not None
        ref = console.model.ref("CAB-0001")
        assert ref is not None
        console.open_panel(ref)
        await wait_for(lambda: console.panels.panel("CAB-0001") is not None, what="the cabinet's panel")  # type: ignore[union-attr]
        panel = console.panels.panel("CAB-0001")
        button = panel.findChild(QPushButton, "trendButton")
        assert button is not None
        button.click()
        cabinet_paths = panel.trend_paths()
        assert "Lighting/CAB-0001/MainsVoltage" in cabinet_paths
        await wait_for(lambda: set(cabinet_paths) <= set(view.pens) and not view.loading, what="the cabinet's pens")
        assert not console.window.docks[TRENDS_DOCK].isHidden()
        assert view.pens["Lighting/CAB-0001/MainsVoltage"].unit == "V"
        await view.add([OCCUPIED])
        units = {pen.unit for pen in view.pens.values()}
        assert len(view._axes) == len(units) >= 2  # one Y axis per engineering unit
        # CSV: every sample of every pen, as plotted
        rows = view.export_csv(tmp_path / "trend.csv")
        with (tmp_path / "trend.csv").open(encoding="utf-8") as handle:
            table = list(csv.DictReader(handle))
        assert rows == len(table) == sum(len(pen.times) for pen in view.pens.values())
        pen = view.pens[OCCUPIED]
        mine = [row for row in table if row["variable"] == OCCUPIED]
        assert [datetime.fromisoformat(row["time"]).timestamp() for row in mine] == pytest.approx(
            pen.times.tolist(), abs=0.001
        )
        assert [float(row["value"]) if row["value"] else math.nan for row in mine] == pytest.approx(
            pen.values.tolist(), nan_ok=True
        )
        assert {"6.0", "8.0"} <= {row["value"] for row in mine}
        # PNG: the plot as shown
        view.resize(900, 500)
        png = view.export_png(tmp_path / "trend.png")
        image = QImage(str(png))
        assert not image.isNull() and image.width() > 100 and image.height() > 100
        # the tag tree browses lazily down to a car park's variables
        tree = view.tree
        root = tree.topLevelItem(0)
        assert root is not None
        names = {root.child(i).text(0) for i in range(root.childCount())}
        assert {"Lighting", "Parking", "Traffic", "Signs"} <= names and len(names) == root.childCount()  # no twice
        parking = next(root.child(i) for i in range(root.childCount()) if root.child(i).text(0) == "Parking")
        await tree.load(parking)
        pk01 = tree.find_path("Parking/PK-01")
        assert pk01 is not None
        await tree.load(pk01)
        assert tree.find_path("Parking/PK-01/Free") is not None
        await view.clear()
        assert not view.pens and not view._axes


def test_plans_and_gaps() -> None:
    now = datetime(2026, 11, 25, 12, tzinfo=UTC)
    assert not plan_read(now - timedelta(minutes=10), now).processed
    assert not plan_read(now - timedelta(hours=6), now).processed
    year = plan_read(now - timedelta(days=365), now)
    assert year.processed and year.interval_s == 31536.0
    with pytest.raises(ValueError, match="before it starts"):
        plan_read(now, now - timedelta(hours=1))
    values = [
        ua.DataValue(ua.Variant(1.0), SourceTimestamp=now),
        ua.DataValue(ua.Variant(None), ua.StatusCode(ua.StatusCodes.BadNoData), SourceTimestamp=now + timedelta(1)),
        ua.DataValue(ua.Variant(True), SourceTimestamp=now + timedelta(2)),
    ]
    times, ys = samples(values)
    assert ys[0] == 1.0 and math.isnan(ys[1]) and ys[2] == 1.0
    assert value_at(times, ys, times[0] + 1) == 1.0 and math.isnan(value_at(times, ys, times[0] - 1))
