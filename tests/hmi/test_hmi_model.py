"""The console's city model, map widget, watch table and permissions, without a server (offscreen Qt)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pyqtgraph as pg
import pytest
from asyncua import ua
from PyQt6.QtCore import QSettings, Qt
from PyQt6.QtGui import QColor
from PyQt6.QtWidgets import QLabel

from hmi import theme
from hmi.mainwindow import MainWindow
from hmi.mapview import CityMap
from hmi.model import (
    LAMP_ABSENT,
    LAMP_CODE_MASK,
    LAMP_DIMMED,
    LAMP_FAILED,
    LAMP_NO_COMM,
    LAMP_NODE_FAULT,
    LAMP_OFF,
    LAMP_ON,
    LAMP_PRESENCE,
    LAMP_UNCERTAIN,
    LAMP_UNKNOWN,
    MAP_KINDS,
    CityModel,
    MapState,
    Projection,
    derive_state,
)
from hmi.panels.signpreview import SignPreview
from hmi.permissions import Permissions
from hmi.scatter import CityScatter, recolour
from hmi.values import NOT_CONNECTED, Change, format_value, status_text
from hmi.watches import WatchTable
from scada import lampstates
from scada.catalog import Kind
from scada.model import Quality
from scada.opcua.sitemap import site_map_values
from scada.site.loader import load_site

ROOT = Path(__file__).resolve().parents[2]
T0 = datetime(2026, 11, 3, 18, tzinfo=UTC)

pytestmark = pytest.mark.qt


@pytest.fixture(scope="module")
def documents() -> dict[str, str]:
    return site_map_values(load_site(ROOT / "config" / "small"))


@pytest.fixture
def model(documents: dict[str, str]) -> CityModel:
    return CityModel.from_documents(documents["Site"], documents["Devices"], documents["Streets"])


def test_lamp_state_codes_are_the_servers() -> None:
    """The console reads LampStates as the information model defines it (scada.lampstates on the server side)."""
    assert (LAMP_UNKNOWN, LAMP_OFF, LAMP_DIMMED, LAMP_ON, LAMP_FAILED, LAMP_NODE_FAULT, LAMP_NO_COMM) == (
        lampstates.UNKNOWN,
        lampstates.OFF,
        lampstates.DIMMED,
        lampstates.ON,
        lampstates.FAILED,
        lampstates.NODE_FAULT,
        lampstates.NO_COMM,
    )
    assert (LAMP_CODE_MASK, LAMP_PRESENCE, LAMP_UNCERTAIN, LAMP_ABSENT) == (
        lampstates.CODE_MASK,
        lampstates.PRESENCE,
        lampstates.UNCERTAIN,
        lampstates.ABSENT,
    )


def test_projection_is_metric_around_the_centre() -> None:
    projection = Projection(47.322, 5.0415)
    x, y = projection.to_xy(47.322 + 0.001, 5.0415)
    assert float(x) == pytest.approx(0.0) and float(y) == pytest.approx(111.19, abs=0.05)
    x, y = projection.to_xy(47.322, 5.0415 + 0.001)
    assert float(x) == pytest.approx(111.19 * np.cos(np.radians(47.322)), abs=0.05)
    lat, lon = projection.to_latlon(250.0, -120.0)
    back = projection.to_xy(lat, lon)
    assert float(back[0]) == pytest.approx(250.0) and float(back[1]) == pytest.approx(-120.0)


def test_model_layers_follow_the_site_map(model: CityModel) -> None:
    site = load_site(ROOT / "config" / "small")
    assert model.counts() == site.counts()
    for lamp in site.lamps():
        ref = model.ref(lamp.id)
        assert ref is not None and ref.kind is Kind.LAMP and ref.path == lamp.path
    assert model.ref("TLC-001").path == "Traffic/TLC-001"  # type: ignore[union-attr]
    assert model.ref("PS-01-0003").path == "Parking/PK-01/PS-01-0003"  # type: ignore[union-attr]
    assert len(model.streets) == 3
    watched = model.watched_paths()
    assert "Lighting/CAB-0002/LampStates" in watched and "Signs/VMS-01/Message" in watched
    assert len(watched) == 3 * 6 + 1 * 5 + 1 * 3 + 1 * 3


def test_lamp_states_array_sets_every_lamp_of_its_cabinet(model: CityModel) -> None:
    lamps = model.lamps_of("CAB-0003")
    codes = bytes([LAMP_ON, LAMP_DIMMED | LAMP_PRESENCE, LAMP_FAILED, LAMP_NO_COMM])
    model.apply([Change("Lighting/CAB-0003/LampStates", codes, 0, T0)])
    layer = model.layers[Kind.LAMP]
    by_index = {model.info(model.ref_at(Kind.LAMP, row))["index"]: row for row in lamps}
    assert [MapState(int(layer.states[by_index[i]])) for i in range(4)] == [
        MapState.ON,
        MapState.DIMMED,
        MapState.FAILED,
        MapState.NO_COMM,
    ]
    assert model.lamp_code(model.ref_at(Kind.LAMP, by_index[1])) & LAMP_PRESENCE
    assert model.take_dirty() >= {Kind.LAMP}
    # a lost connection is not a new value: the states stay, the model is marked stale by the console
    model.apply([Change("Lighting/CAB-0003/LampStates", None, NOT_CONNECTED, None)])
    assert MapState(int(layer.states[by_index[2]])) is MapState.FAILED
    # a Bad status from the server (no array yet): unknown
    model.apply([Change("Lighting/CAB-0003/LampStates", None, Quality.BAD_WAITING_FOR_INITIAL_DATA, None)])
    assert MapState(int(layer.states[by_index[2]])) is MapState.UNKNOWN
    # an array shorter than the indices: the missing lamps are unknown
    model.apply([Change("Lighting/CAB-0003/LampStates", bytes([LAMP_ON]), 0, T0)])
    assert MapState(int(layer.states[by_index[3]])) is MapState.UNKNOWN
    assert model.state_counts(Kind.LAMP, lamps)[MapState.ON] == 1


@pytest.mark.parametrize(
    ("kind", "values", "bad", "state"),
    [
        (Kind.CABINET, {}, set(), MapState.UNKNOWN),
        (Kind.CABINET, {"CommunicationOk": False, "Mode": 0}, set(), MapState.NO_COMM),
        (Kind.CABINET, {"CommunicationOk": True, "Mode": 0}, set(), MapState.NORMAL),
        (Kind.CABINET, {"CommunicationOk": True, "Mode": 2}, set(), MapState.OFF),
        (Kind.CABINET, {"CommunicationOk": True, "Mode": 1, "DoorOpen": True}, set(), MapState.ALARM),
        (Kind.CABINET, {"CommunicationOk": True, "Mode": 1}, {"Fault"}, MapState.NO_COMM),
        (Kind.CONTROLLER, {"CommunicationOk": True, "ControlMode": 3}, set(), MapState.ALARM),
        (Kind.CONTROLLER, {"CommunicationOk": True, "ControlMode": 1, "Fault": False}, set(), MapState.NORMAL),
        (Kind.SIGN, {"CommunicationOk": True, "Message": ""}, set(), MapState.OFF),
        (Kind.SIGN, {"CommunicationOk": True, "Message": "BOUCHON"}, set(), MapState.ON),
        (Kind.SIGN, {"CommunicationOk": True, "Message": "X", "Fault": True}, set(), MapState.ALARM),
        (Kind.PARKING_SITE, {"CommunicationOk": True, "Full": True}, set(), MapState.ALARM),
        (Kind.PARKING_SITE, {"CommunicationOk": True, "Full": False}, set(), MapState.NORMAL),
    ],
)
def test_derived_states(kind: Kind, values: dict[str, Any], bad: set[str], state: MapState) -> None:
    assert derive_state(kind, values, bad) is state


def test_watched_values_change_device_states(model: CityModel) -> None:
    ref = model.ref("VMS-01")
    assert ref is not None
    model.apply([Change("Signs/VMS-01/CommunicationOk", True, 0, T0), Change("Signs/VMS-01/Message", "A\nB", 0, T0)])
    assert model.state(ref) is MapState.ON
    model.apply([Change("Signs/VMS-01/Fault", None, Quality.BAD_COMM, T0)])
    assert model.state(ref) is MapState.NO_COMM
    model.apply([Change("Signs/VMS-01/Fault", False, 0, T0)])
    assert model.state(ref) is MapState.ON


def test_recolour_draws_what_set_brush_draws(qtbot: Any) -> None:
    rng = np.random.default_rng(3)
    x, y = rng.uniform(0, 100, 2000), rng.uniform(0, 100, 2000)
    brushes = np.empty(len(MapState), dtype=object)
    brushes[:] = [pg.mkBrush(theme.STATE_COLOURS[s]) for s in MapState]
    states = rng.integers(0, len(MapState), 2000).astype(np.uint8)

    def plot(item: pg.ScatterPlotItem) -> pg.PlotWidget:
        widget = pg.PlotWidget()
        qtbot.addWidget(widget)
        widget.resize(400, 300)
        widget.addItem(item)
        widget.setRange(xRange=(0, 100), yRange=(0, 100), padding=0)
        widget.show()
        return widget

    stock = pg.ScatterPlotItem(x=x, y=y, size=6, pen=None, brush=brushes[0])
    stock_plot = plot(stock)
    stock.setBrush(list(brushes[states]))  # pyqtgraph's own per-point path
    fast = CityScatter(x=x, y=y, size=6, pen=None, brush=brushes[0])
    fast_plot = plot(fast)
    assert fast_plot.grab().toImage() != stock_plot.grab().toImage()
    recolour(fast, states, brushes)
    assert fast_plot.grab().toImage() == stock_plot.grab().toImage()
    assert all(fast.data["brush"][i] is brushes[states[i]] for i in range(0, 2000, 97))
    # a point with a pen of its own: pyqtgraph's own path, the same picture again
    pens = [pg.mkPen("w")] + [None] * 1999
    stock.setPen(pens)
    fast.setPen(pens)
    assert not fast.fast()
    recolour(fast, states[::-1].copy(), brushes)
    stock.setBrush(list(brushes[states[::-1]]))
    assert fast_plot.grab().toImage() == stock_plot.grab().toImage()


def test_map_filters_search_hover_and_saved_state(model: CityModel, qtbot: Any) -> None:
    cmap = CityMap()
    qtbot.addWidget(cmap)
    cmap.resize(900, 700)
    cmap.show()
    cmap.set_model(model)
    assert {kind: len(cmap.scatters[kind].data) for kind in MAP_KINDS} == {k: model.counts()[k] for k in MAP_KINDS}
    lamp = model.ref("L-000003")
    assert lamp is not None
    model.apply([Change("Lighting/CAB-0001/LampStates", bytes([LAMP_ON] * 3 + [LAMP_FAILED] * 5), 0, T0)])
    cmap.refresh()
    assert cmap.brush_colour(lamp) == theme.STATE_COLOURS[model.state(lamp)]
    # failed lamps are drawn again, larger, above the others
    assert len(cmap.lamp_alerts.data) == 5
    assert {str(QColor(b.color()).name()) for b in cmap.lamp_alerts.data["brush"]} == {
        theme.STATE_COLOURS[MapState.FAILED]
    }
    # state filter: only failures and alarms
    cmap.set_state_filter({MapState.FAILED, MapState.ALARM})
    failed = [model.ref_at(Kind.LAMP, row) for row in model.lamps_of("CAB-0001")]
    shown = [ref for ref in failed if cmap.point_visible(ref)]
    assert shown and all(model.state(ref) is MapState.FAILED for ref in shown)
    assert not cmap.point_visible(model.ref("L-000009"))  # type: ignore[arg-type]  (another cabinet: unknown)
    cmap.set_state_filter({MapState.ON})
    assert len(cmap.lamp_alerts.data) == 0
    cmap.set_state_filter(set(MapState))
    # kind layer off and on
    cmap.toggle_kind(Kind.LAMP)
    assert not cmap.scatters[Kind.LAMP].isVisible() and not cmap.kind_buttons[Kind.LAMP].isChecked()
    assert not cmap.lamp_alerts.isVisible()
    cmap.toggle_kind(Kind.LAMP)
    # search by id (case-insensitive) selects, centres and asks for the panel
    with qtbot.waitSignal(cmap.device_activated, timeout=1000) as found:
        cmap.find_device("tlc-001")
    assert found.args[0].id == "TLC-001" and cmap.selected is not None
    # the device under a point of the map: the controller, drawn above the lamps and cabinets
    x, y = model.position(found.args[0])
    assert cmap.device_at(x + 0.5, y) == found.args[0]
    assert "TLC-001" in cmap.describe(found.args[0])
    assert cmap.device_at(x + 5000, y) is None
    saved = cmap.save_state()
    cmap.fit()
    cmap.set_kind_visible(Kind.SIGN, False)
    cmap.restore_state(saved)
    assert Kind.SIGN in cmap.visible_kinds
    (x0, x1), _ = cmap.view.viewRange()
    assert x0 == pytest.approx(saved["range"][0], abs=1.0) and x1 == pytest.approx(saved["range"][1], abs=1.0)
    # stale: every dot greyed out
    model.set_stale(True)
    cmap.refresh()
    assert cmap.brush_colour(lamp) == theme.STALE_COLOURS[model.state(lamp)]
    assert "values not current" in cmap.legend.text()


def test_window_layout_is_kept_between_sessions(tmp_path: Path, qtbot: Any) -> None:
    path = str(tmp_path / "console.ini")
    window = MainWindow(QSettings(path, QSettings.Format.IniFormat))
    qtbot.addWidget(window)
    window.add_dock("Alarms", QLabel("alarms"), Qt.DockWidgetArea.BottomDockWidgetArea)
    window.add_dock("Device", QLabel("device"))
    with pytest.raises(ValueError, match="already registered"):
        window.add_dock("Alarms", QLabel("again"))
    window.show()
    window.resize(640, 480)  # inside the offscreen screen (800 x 600): restoreGeometry keeps windows on screen
    size = (window.width(), window.height())
    window.docks["Alarms"].hide()
    window.close()  # saves
    again = MainWindow(QSettings(path, QSettings.Format.IniFormat))
    qtbot.addWidget(again)
    again.add_dock("Alarms", QLabel("alarms"), Qt.DockWidgetArea.BottomDockWidgetArea)
    again.add_dock("Device", QLabel("device"))
    assert again.restore_layout()
    again.show()
    assert again.docks["Alarms"].isHidden() and not again.docks["Device"].isHidden()
    assert (again.width(), again.height()) == size
    fresh = MainWindow(QSettings(str(tmp_path / "other.ini"), QSettings.Format.IniFormat))
    qtbot.addWidget(fresh)
    assert not fresh.restore_layout()
    shortcuts = {action.shortcut().toString() for action in again.actions()}
    assert {"Ctrl+F", "Ctrl+0", "Ctrl+-", "Ctrl+1", "Ctrl+5", "F1"} <= shortcuts


def test_sign_preview_shows_three_lines_of_eighteen(qtbot: Any) -> None:
    preview = SignPreview()
    qtbot.addWidget(preview)
    preview.set_content(["BOUCHON", "A 2 KM"], 3, True)
    assert preview.lines == ["BOUCHON", "A 2 KM", ""] and preview.text() == "BOUCHON\nA 2 KM"
    assert preview._blink.isActive()
    preview.set_content([], 9, False)
    assert preview.pictogram == 0 and not preview._blink.isActive()
    assert not preview.grab().isNull()


def test_watch_table_groups_changes_per_watch_and_marks_loss() -> None:
    table = WatchTable()
    seen: dict[str, list[Change]] = {"a": [], "b": []}
    first = table.add(["X/1", "X/2"], seen["a"].extend, 0.0, "a")
    second = table.add(["Y/1"], seen["b"].extend, 0.0, "b")
    items = [
        ua.MonitoredItemNotification(ClientHandle=h, Value=ua.DataValue(ua.Variant(v)))
        for h, v in ((first.handles[1], 2.0), (second.handles[0], 5), (first.handles[0], 1.0), (999, 0))
    ]
    table.deliver(ua.DataChangeNotification(MonitoredItems=items))
    assert [(c.path, c.value) for c in seen["a"]] == [("X/2", 2.0), ("X/1", 1.0)]
    assert [(c.path, c.value) for c in seen["b"]] == [("Y/1", 5)]
    table.created(first.handles[0], ua.MonitoredItemCreateResult(StatusCode=ua.StatusCode(0), MonitoredItemId=7))
    table.created(
        first.handles[1], ua.MonitoredItemCreateResult(StatusCode=ua.StatusCode(ua.StatusCodes.BadNodeIdUnknown))
    )
    table.deliver_refusals([first])
    assert seen["a"][-1] == Change("X/2", None, ua.StatusCodes.BadNodeIdUnknown, None)
    assert table.remove(first) == [7]
    table.deliver_lost()
    assert seen["b"][-1].status == NOT_CONNECTED
    assert len(table) == 1


def test_permissions_learn_from_refusals(qtbot: Any) -> None:
    permissions = Permissions("operator")
    permissions.executable[("controller", "SelectPlan")] = True
    permissions.executable[("sign", "Display")] = True
    assert permissions.may_call(Kind.CONTROLLER, "SelectPlan")
    with qtbot.waitSignal(permissions.changed, timeout=500):
        assert permissions.learn(Kind.CONTROLLER, "SelectPlan", Quality.BAD_USER_ACCESS_DENIED)
    assert not permissions.may_call(Kind.CONTROLLER, "SelectPlan")
    assert not permissions.learn(Kind.SIGN, "Display", Quality.BAD_OUT_OF_RANGE)
    assert permissions.may_call(Kind.SIGN, "Display")
    assert "1 of 2 commands allowed" in permissions.summary()


def test_status_names_and_formats() -> None:
    assert status_text(0) == "Good"
    assert status_text(Quality.BAD_USER_ACCESS_DENIED) == "BadUserAccessDenied"
    assert format_value(True) == "yes" and format_value(None) == "—"
    assert format_value(35.0, "%") == "35.0 %" and format_value(12, "s") == "12 s"
