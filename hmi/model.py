"""The city as the console knows it: devices and positions from the server's SiteMap, states from watched values.

Everything here is learnt over OPC UA: `CityModel.from_documents` takes the SiteMap variables (Site, Devices,
Streets: JSON, one read); `apply` takes the changes of the map's watch (per-cabinet LampStates arrays and a few
variables of every other device). States are kept per kind in numpy arrays in the order of the SiteMap's columns,
which is the order of the map's points, so a recolour is one vectorised lookup.
"""

from __future__ import annotations

import enum
import json
import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from PyQt6.QtCore import QObject, pyqtSignal

from hmi.values import NOT_CONNECTED, Change
from scada.catalog import Kind


class MapState(enum.IntEnum):
    """What a device's dot says on the map."""

    UNKNOWN = 0
    OFF = 1
    DIMMED = 2
    ON = 3
    FAILED = 4
    NO_COMM = 5
    ALARM = 6
    NORMAL = 7

    @property
    def label(self) -> str:
        """The state's name for people."""
        return STATE_LABELS[self]


STATE_LABELS: dict[MapState, str] = {
    MapState.UNKNOWN: "unknown",
    MapState.OFF: "off",
    MapState.DIMMED: "dimmed",
    MapState.ON: "on",
    MapState.FAILED: "failed",
    MapState.NO_COMM: "no communication",
    MapState.ALARM: "alarm",
    MapState.NORMAL: "normal",
}

# The LampStates contract of the information model (one byte per lamp, indexed by register index).
LAMP_UNKNOWN, LAMP_OFF, LAMP_DIMMED, LAMP_ON, LAMP_FAILED, LAMP_NODE_FAULT, LAMP_NO_COMM = range(7)
LAMP_CODE_MASK = 0x0F
LAMP_PRESENCE = 0x10
LAMP_UNCERTAIN = 0x20
LAMP_ABSENT = 0xFF
LAMP_CODE_LABELS = {
    LAMP_UNKNOWN: "unknown",
    LAMP_OFF: "off",
    LAMP_DIMMED: "dimmed",
    LAMP_ON: "on",
    LAMP_FAILED: "lamp failure",
    LAMP_NODE_FAULT: "node fault",
    LAMP_NO_COMM: "no communication",
}


def _lamp_lut() -> np.ndarray:
    lut = np.full(256, MapState.UNKNOWN, dtype=np.uint8)
    by_code = {
        LAMP_OFF: MapState.OFF,
        LAMP_DIMMED: MapState.DIMMED,
        LAMP_ON: MapState.ON,
        LAMP_FAILED: MapState.FAILED,
        LAMP_NODE_FAULT: MapState.NO_COMM,
        LAMP_NO_COMM: MapState.NO_COMM,
    }
    for byte in range(255):
        lut[byte] = by_code.get(byte & LAMP_CODE_MASK, MapState.UNKNOWN)
    return lut


LAMP_STATE_LUT = _lamp_lut()
"""LampStates byte -> MapState."""

MAP_KINDS: tuple[Kind, ...] = (Kind.LAMP, Kind.CABINET, Kind.CONTROLLER, Kind.SIGN, Kind.PARKING_SITE)
"""The kinds drawn on the map, bottom layer first (parking bay sensors are shown in their car park's panel)."""

WATCHED: dict[Kind, tuple[str, ...]] = {
    Kind.CABINET: ("CommunicationOk", "Mode", "Fault", "MainsFailure", "DoorOpen", "LampStates"),
    Kind.CONTROLLER: ("CommunicationOk", "ControlMode", "Fault", "SignalLampFailure", "DetectorFault"),
    Kind.SIGN: ("CommunicationOk", "Fault", "Message"),
    Kind.PARKING_SITE: ("CommunicationOk", "Full", "Free"),
}
"""What the map watches of each kind (lamps through their cabinet's LampStates)."""

EARTH_RADIUS_M = 6_371_008.8


@dataclass(frozen=True, slots=True)
class Projection:
    """Equirectangular projection around the site centre: WGS84 degrees <-> local metres (x east, y north)."""

    lat0: float
    lon0: float

    @property
    def _kx(self) -> float:
        return EARTH_RADIUS_M * math.cos(math.radians(self.lat0)) * math.pi / 180.0

    @property
    def _ky(self) -> float:
        return EARTH_RADIUS_M * math.pi / 180.0

    def to_xy(self, lat: Any, lon: Any) -> tuple[Any, Any]:
        """Metres east and north of the centre (scalars or numpy arrays)."""
        return (np.asarray(lon) - self.lon0) * self._kx, (np.asarray(lat) - self.lat0) * self._ky

    def to_latlon(self, x: float, y: float) -> tuple[float, float]:
        """Latitude and longitude of a point in local metres."""
        return self.lat0 + y / self._ky, self.lon0 + x / self._kx


def device_path(kind: Kind, device_id: str, parent: str = "") -> str:
    """The NodeId path of a device object (information model address space)."""
    if kind is Kind.LAMP:
        return f"Lighting/{parent}/{device_id}"
    if kind is Kind.CABINET:
        return f"Lighting/{device_id}"
    if kind is Kind.CONTROLLER:
        return f"Traffic/{device_id}"
    if kind is Kind.SIGN:
        return f"Signs/{device_id}"
    if kind is Kind.PARKING_SITE:
        return f"Parking/{device_id}"
    return f"Parking/{parent}/{device_id}"


@dataclass(frozen=True, slots=True)
class DeviceRef:
    """One device of the map: its kind, id, row in its kind's arrays and object path."""

    kind: Kind
    id: str
    row: int
    path: str


@dataclass(slots=True)
class Layer:
    """The devices of one kind: ids, positions, states and the SiteMap's other columns, row-aligned."""

    kind: Kind
    ids: list[str]
    x: np.ndarray
    y: np.ndarray
    paths: list[str]
    columns: dict[str, list[Any]]
    states: np.ndarray  # MapState per row (uint8)
    values: list[dict[str, Any]] = field(default_factory=list)  # watched values per row (non-lamp kinds)
    bad: list[set[str]] = field(default_factory=list)  # watched variables whose status is Bad, per row

    def __len__(self) -> int:
        return len(self.ids)


class CityModel(QObject):
    """Devices, positions and live states of the whole site."""

    states_changed = pyqtSignal()
    """Some states changed (emitted once per applied batch; the map coalesces repaints)."""
    stale_changed = pyqtSignal(bool)
    """The connection was lost (True: every state is the last known one) or is back (False)."""

    def __init__(self, site: dict[str, Any], devices: dict[str, Any], streets: Sequence[dict[str, Any]]) -> None:
        super().__init__()
        self.site = site
        self.title = str(site.get("title") or site.get("name") or "")
        self.projection = Projection(float(site["latitude"]), float(site["longitude"]))
        self.layers: dict[Kind, Layer] = {}
        self._refs: dict[str, tuple[Kind, int]] = {}
        for kind in Kind:
            columns = devices.get(kind.value) or {"id": [], "lat": [], "lon": []}
            self.layers[kind] = self._layer(kind, columns)
        self.street_names: dict[str, str] = {str(s["id"]): str(s.get("name", "")) for s in streets}
        self.streets: list[np.ndarray] = []
        lines = [street.get("points") or [] for street in streets]
        lines = [line for line in lines if len(line) >= 2]
        if lines:
            points = np.asarray([point for line in lines for point in line], dtype=float).reshape(-1, 2)
            x, y = self.projection.to_xy(points[:, 1], points[:, 0])
            xy = np.column_stack([x, y])
            ends = np.cumsum([len(line) for line in lines])[:-1]
            self.streets = np.split(xy, ends)
        lamps = self.layers[Kind.LAMP]
        self.lamp_codes = np.full(len(lamps), LAMP_UNKNOWN, dtype=np.uint8)
        self._lamp_slots: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        self._build_lamp_slots()
        self._routes: dict[str, tuple[Kind, int, str]] = {}
        for kind, names in WATCHED.items():
            layer = self.layers[kind]
            for row, path in enumerate(layer.paths):
                for name in names:
                    self._routes[f"{path}/{name}"] = (kind, row, name)
        self._dirty: set[Kind] = set(MAP_KINDS)
        self.stale = False
        self.updates = 0
        """How many changes were applied."""

    @classmethod
    def from_documents(cls, site_doc: str, devices_doc: str, streets_doc: str) -> CityModel:
        """The model of the three SiteMap variables (JSON strings as read from the server)."""
        streets = json.loads(streets_doc) if streets_doc else {}
        return cls(json.loads(site_doc), json.loads(devices_doc), streets.get("streets", []))

    def _layer(self, kind: Kind, columns: dict[str, list[Any]]) -> Layer:
        ids = [str(i) for i in columns["id"]]
        x, y = self.projection.to_xy(np.asarray(columns["lat"], dtype=float), np.asarray(columns["lon"], dtype=float))
        parents = columns.get("cabinet") or columns.get("site") or [""] * len(ids)
        if kind is Kind.LAMP:
            paths = [f"Lighting/{parent}/{device_id}" for device_id, parent in zip(ids, parents, strict=True)]
        else:
            paths = [device_path(kind, device_id, parent) for device_id, parent in zip(ids, parents, strict=True)]
        layer = Layer(
            kind=kind,
            ids=ids,
            x=np.asarray(x, dtype=float),
            y=np.asarray(y, dtype=float),
            paths=paths,
            columns=columns,
            states=np.full(len(ids), MapState.UNKNOWN, dtype=np.uint8),
        )
        if kind is not Kind.LAMP:
            layer.values = [{} for _ in ids]
            layer.bad = [set() for _ in ids]
        for row, device_id in enumerate(ids):
            self._refs.setdefault(device_id, (kind, row))
        return layer

    def _build_lamp_slots(self) -> None:
        lamps = self.layers[Kind.LAMP]
        cabinets = np.asarray(lamps.columns.get("cabinet", []), dtype=str)
        if not len(cabinets):
            return
        indices = np.asarray(lamps.columns.get("index", []), dtype=np.int64)
        names, group = np.unique(cabinets, return_inverse=True)
        order = np.argsort(group, kind="stable")
        bounds = np.searchsorted(group[order], np.arange(len(names) + 1))
        for number, cabinet in enumerate(names):
            rows = order[bounds[number] : bounds[number + 1]]
            self._lamp_slots[str(cabinet)] = (rows, indices[rows])

    # ------------------------------------------------------------------ lookups

    def counts(self) -> dict[Kind, int]:
        """How many devices of each kind the site has."""
        return {kind: len(layer) for kind, layer in self.layers.items()}

    def ref(self, device_id: str) -> DeviceRef | None:
        """The device of that id, or None."""
        found = self._refs.get(device_id)
        if found is None:
            return None
        kind, row = found
        return DeviceRef(kind, device_id, row, self.layers[kind].paths[row])

    def ref_at(self, kind: Kind, row: int) -> DeviceRef:
        """The device at a row of a kind's arrays."""
        layer = self.layers[kind]
        return DeviceRef(kind, layer.ids[row], row, layer.paths[row])

    def info(self, ref: DeviceRef) -> dict[str, Any]:
        """The SiteMap columns of one device (name, district, cabinet, street, ...)."""
        layer = self.layers[ref.kind]
        return {name: values[ref.row] for name, values in layer.columns.items()}

    def position(self, ref: DeviceRef) -> tuple[float, float]:
        """Local metres (x, y) of a device."""
        layer = self.layers[ref.kind]
        return float(layer.x[ref.row]), float(layer.y[ref.row])

    def state(self, ref: DeviceRef) -> MapState:
        """The map state of a device."""
        return MapState(int(self.layers[ref.kind].states[ref.row]))

    def lamp_code(self, ref: DeviceRef) -> int:
        """The raw LampStates byte of a lamp (state code, presence and uncertain flags)."""
        return int(self.lamp_codes[ref.row])

    def lamps_of(self, cabinet_id: str) -> list[int]:
        """The lamp rows of a cabinet."""
        found = self._lamp_slots.get(cabinet_id)
        return [] if found is None else [int(r) for r in found[0]]

    def state_counts(self, kind: Kind, rows: Iterable[int] | None = None) -> Counter[MapState]:
        """How many devices of a kind (or of some rows) are in each state."""
        states = self.layers[kind].states
        if rows is not None:
            states = states[np.asarray(list(rows), dtype=np.int64)]
        values, counts = np.unique(states, return_counts=True)
        return Counter({MapState(int(v)): int(c) for v, c in zip(values, counts, strict=True)})

    def all_ids(self) -> list[str]:
        """Every device id of the map's kinds (for the search box)."""
        return [device_id for kind in MAP_KINDS for device_id in self.layers[kind].ids]

    def watched_paths(self) -> list[str]:
        """What the map watches: the WATCHED variables of every cabinet, controller, sign and car park."""
        return list(self._routes)

    # ------------------------------------------------------------------ updates

    def take_dirty(self) -> set[Kind]:
        """The kinds whose states changed since the last call (and forget them)."""
        dirty, self._dirty = self._dirty, set()
        return dirty

    def set_stale(self, stale: bool) -> None:
        """Mark every state as the last known one (connection lost) or current again."""
        if stale != self.stale:
            self.stale = stale
            self._dirty.update(MAP_KINDS)
            self.stale_changed.emit(stale)
            self.states_changed.emit()

    def apply(self, changes: Sequence[Change]) -> None:
        """Take a batch of the map watch's changes; BadNotConnected changes are the loss, not new values."""
        touched: dict[Kind, set[int]] = {}
        routes = self._routes
        for change in changes:
            route = routes.get(change.path)
            if route is None:
                continue
            if change.status == NOT_CONNECTED:
                continue  # connection loss: keep the last values (set_stale greys them)
            kind, row, name = route
            self.updates += 1
            if name == "LampStates":
                self._apply_lamp_states(self.layers[kind].ids[row], change)
                continue
            layer = self.layers[kind]
            if change.status & 0x80000000:
                layer.bad[row].add(name)
            else:
                layer.bad[row].discard(name)
                layer.values[row][name] = change.value
            touched.setdefault(kind, set()).add(row)
        for kind, rows in touched.items():
            layer = self.layers[kind]
            for row in rows:
                layer.states[row] = derive_state(kind, layer.values[row], layer.bad[row])
            self._dirty.add(kind)
        if self._dirty:
            self.states_changed.emit()

    def _apply_lamp_states(self, cabinet_id: str, change: Change) -> None:
        slots = self._lamp_slots.get(cabinet_id)
        if slots is None:
            return
        rows, indices = slots
        value = change.value
        if change.status & 0x80000000 or not isinstance(value, bytes | bytearray):
            codes = np.full(len(rows), LAMP_UNKNOWN, dtype=np.uint8)
        else:
            data = np.frombuffer(bytes(value), dtype=np.uint8)
            codes = np.full(len(rows), LAMP_UNKNOWN, dtype=np.uint8)
            inside = indices < len(data)
            codes[inside] = data[indices[inside]]
        self.lamp_codes[rows] = codes
        self.layers[Kind.LAMP].states[rows] = LAMP_STATE_LUT[codes]
        self._dirty.add(Kind.LAMP)


def derive_state(kind: Kind, values: dict[str, Any], bad: set[str]) -> MapState:
    """The map state of a cabinet, controller, sign or car park from its watched values."""
    if values.get("CommunicationOk") is False or bad - {"LampStates"}:
        return MapState.NO_COMM
    if not values:
        return MapState.UNKNOWN
    if kind is Kind.CABINET:
        if values.get("Fault") or values.get("MainsFailure") or values.get("DoorOpen"):
            return MapState.ALARM
        mode = values.get("Mode")
        return MapState.OFF if mode == 2 else MapState.ON if mode == 1 else MapState.NORMAL
    if kind is Kind.CONTROLLER:
        faults = values.get("Fault") or values.get("SignalLampFailure") or values.get("DetectorFault")
        return MapState.ALARM if faults or values.get("ControlMode") == 3 else MapState.NORMAL
    if kind is Kind.SIGN:
        if values.get("Fault"):
            return MapState.ALARM
        message = values.get("Message")
        return MapState.ON if isinstance(message, str) and message.strip() else MapState.OFF
    if kind is Kind.PARKING_SITE:
        return MapState.ALARM if values.get("Full") else MapState.NORMAL
    return MapState.UNKNOWN
