"""The lamp panel: level, power, energy, presence, burning hours and the lamp's failure bits; set its level."""

from __future__ import annotations

from typing import Any

from asyncua import ua
from PyQt6.QtWidgets import QDoubleSpinBox, QHBoxLayout, QPushButton, QVBoxLayout

from hmi.panels.base import DevicePanel, Field
from scada.catalog import Kind


class LampPanel(DevicePanel):
    """One street lamp."""

    kind = Kind.LAMP
    fields = (
        Field("Level", "Level"),
        Field("LevelSetpoint", "Setpoint"),
        Field("On", "On"),
        Field("PowerW", "Power"),
        Field("EnergyKWh", "Energy", digits=2),
        Field("PresenceDetected", "Presence"),
        Field("BurningHours", "Burning hours", digits=0),
        Field("LampFailure", "Lamp failure"),
        Field("NodeFault", "Node fault"),
    )

    def caption_text(self, info: dict[str, Any]) -> str:
        """Lamp of a cabinet, on a street."""
        street = self.context.model.street_names.get(str(info.get("street", "")), "")
        where = f" · {street} #{info.get('seq')}" if street else ""
        return f"lamp of cabinet {info.get('cabinet', '?')} (index {info.get('index', '?')}){where}"

    def build_commands(self, layout: QVBoxLayout) -> None:
        """Set level: 0-100 %."""
        row = QHBoxLayout()
        self.level = QDoubleSpinBox()
        self.level.setObjectName("setLevelValue")
        self.level.setRange(0.0, 100.0)
        self.level.setDecimals(0)
        self.level.setSuffix(" %")
        self.level.setValue(100.0)
        self.set_level = QPushButton("Set level")
        self.set_level.setObjectName("setLevel")
        self.set_level.clicked.connect(self.send_level)
        row.addWidget(self.level)
        row.addWidget(self.gate("SetLevel", self.set_level))
        row.addStretch(1)
        layout.addLayout(row)

    def send_level(self) -> None:
        """SetLevel with the spin box's value."""
        self.send("SetLevel", ua.Variant(float(self.level.value()), ua.VariantType.Double))
