"""The intersection panel: plan, stage, control mode and faults; select a plan for a time, or release it."""

from __future__ import annotations

from asyncua import ua
from PyQt6.QtWidgets import QFormLayout, QHBoxLayout, QPushButton, QSpinBox, QVBoxLayout

from hmi.panels.base import DevicePanel, Field
from scada.catalog import Kind

CONTROL_MODES = {0: "local", 1: "central", 2: "manual", 3: "fault"}
PLAN_NAMES = {9: "all red", 10: "flashing amber"}


class ControllerPanel(DevicePanel):
    """One traffic-light controller."""

    kind = Kind.CONTROLLER
    fields = (
        Field("ActivePlan", "Active plan", names=PLAN_NAMES),
        Field("RequestedPlan", "Requested plan", names=PLAN_NAMES),
        Field("Stage", "Stage"),
        Field("CycleSecond", "Cycle second", digits=0),
        Field("ControlMode", "Control mode", names=CONTROL_MODES),
        Field("Fault", "Conflict fault"),
        Field("SignalLampFailure", "Signal lamp failure"),
        Field("DetectorFault", "Detector fault"),
        Field("ManualPanel", "Manual panel"),
        Field("VehicleCount", "Vehicles", digits=0),
        Field("CommunicationOk", "Communication"),
    )

    def build_commands(self, layout: QVBoxLayout) -> None:
        """Select plan (1-8 timing plans, 9 all red, 10 flashing amber) for a duration; release."""
        form = QFormLayout()
        self.plan = QSpinBox()
        self.plan.setObjectName("planValue")
        self.plan.setRange(1, 10)
        self.plan.setToolTip("1-8 timing plans, 9 all red, 10 flashing amber")
        self.duration = QSpinBox()
        self.duration.setObjectName("planDuration")
        self.duration.setRange(10, 86400)
        self.duration.setSingleStep(60)
        self.duration.setValue(900)
        self.duration.setSuffix(" s")
        form.addRow("Plan", self.plan)
        form.addRow("For", self.duration)
        layout.addLayout(form)
        row = QHBoxLayout()
        select = QPushButton("Select plan")
        select.setObjectName("selectPlan")
        select.clicked.connect(self.send_plan)
        release = QPushButton("Release to local")
        release.setObjectName("releasePlan")
        release.clicked.connect(lambda: self.send("ReleasePlan"))
        row.addWidget(self.gate("SelectPlan", select))
        row.addWidget(self.gate("ReleasePlan", release))
        row.addStretch(1)
        layout.addLayout(row)

    def send_plan(self) -> None:
        """SelectPlan with the chosen plan and duration."""
        self.send(
            "SelectPlan",
            ua.Variant(int(self.plan.value()), ua.VariantType.UInt16),
            ua.Variant(int(self.duration.value()), ua.VariantType.UInt32),
        )
