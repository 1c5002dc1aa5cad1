"""The car park panel: capacity, occupancy, free bays, full, display mode, faulty sensors; set the display mode."""

from __future__ import annotations

from typing import Any

from asyncua import ua
from PyQt6.QtWidgets import QComboBox, QHBoxLayout, QPushButton, QVBoxLayout

from hmi.panels.base import DevicePanel, Field
from scada.catalog import Kind

DISPLAY_MODES = {0: "automatic", 1: "full", 2: "closed"}


class ParkingPanel(DevicePanel):
    """One car park (or on-street zone)."""

    kind = Kind.PARKING_SITE
    fields = (
        Field("Capacity", "Capacity", digits=0),
        Field("Free", "Free", digits=0),
        Field("Occupied", "Occupied", digits=0),
        Field("OccupancyPercent", "Occupancy"),
        Field("Full", "Full"),
        Field("DisplayMode", "Display mode", names=DISPLAY_MODES),
        Field("FaultySensors", "Faulty sensors", digits=0),
        Field("CommunicationOk", "Communication"),
    )

    def caption_text(self, info: dict[str, Any]) -> str:
        """Car park type, district."""
        return f"{info.get('type', 'car park')} · {info.get('district', '')} · capacity {info.get('capacity', '?')}"

    def build_commands(self, layout: QVBoxLayout) -> None:
        """Entrance display mode."""
        row = QHBoxLayout()
        self.mode = QComboBox()
        self.mode.setObjectName("displayModeValue")
        for value, name in DISPLAY_MODES.items():
            self.mode.addItem(name, value)
        button = QPushButton("Set display mode")
        button.setObjectName("setDisplayMode")
        button.clicked.connect(self.send_mode)
        row.addWidget(self.mode)
        row.addWidget(self.gate("SetDisplayMode", button))
        row.addStretch(1)
        layout.addLayout(row)

    def send_mode(self) -> None:
        """SetDisplayMode with the chosen mode."""
        self.send("SetDisplayMode", ua.Variant(int(self.mode.currentData()), ua.VariantType.Int32))
