"""Device panels: one per device kind, opened from the map, each watching its device while open."""

from __future__ import annotations

from hmi.panels.base import DevicePanel, Field, PanelContext
from hmi.panels.cabinet import CabinetPanel, ForceKeeper
from hmi.panels.controller import ControllerPanel
from hmi.panels.lamp import LampPanel
from hmi.panels.parking import ParkingPanel
from hmi.panels.sign import SignPanel
from scada.catalog import Kind

PANELS: dict[Kind, type[DevicePanel]] = {
    Kind.LAMP: LampPanel,
    Kind.CABINET: CabinetPanel,
    Kind.CONTROLLER: ControllerPanel,
    Kind.SIGN: SignPanel,
    Kind.PARKING_SITE: ParkingPanel,
}
"""The panel class of each kind that has one (bay sensors are shown by their car park)."""

__all__ = [
    "PANELS",
    "CabinetPanel",
    "ControllerPanel",
    "DevicePanel",
    "Field",
    "ForceKeeper",
    "LampPanel",
    "PanelContext",
    "ParkingPanel",
    "SignPanel",
]
