"""The incident dialogs: report an incident at a place picked on the map, change a proposed action.

Both are opened with `open()` (window-modal, not a nested event loop: the console's asyncio loop keeps running)
and the view acts on their `accepted` signal.
"""

from __future__ import annotations

from typing import Any

from asyncua import ua
from PyQt6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from hmi.panels.signpreview import SignPreview

MAX_DESCRIPTION = 1000
MAX_CONTACT = 200
MAX_PICTOGRAM = 7
MAX_PLAN = 10


class ReportDialog(QDialog):
    """Kind, description and the reporter's contact of an incident at (lat, lon)."""

    def __init__(self, kinds: list[str], lat: float, lon: float, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("incidentReportDialog")
        self.setWindowTitle("Report an incident")
        self.lat, self.lon = lat, lon
        self.kind_box = QComboBox()
        self.kind_box.setObjectName("incidentKind")
        self.kind_box.addItems(kinds)
        self.description_edit = QLineEdit()
        self.description_edit.setObjectName("incidentDescription")
        self.description_edit.setMaxLength(MAX_DESCRIPTION)
        self.description_edit.setPlaceholderText("what happened, lanes blocked, …")
        self.contact_edit = QLineEdit()
        self.contact_edit.setObjectName("incidentContact")
        self.contact_edit.setMaxLength(MAX_CONTACT)
        self.contact_edit.setPlaceholderText("how to reach the reporter (kept private by the server)")
        form = QFormLayout()
        form.addRow("Place", QLabel(f"{lat:.6f}, {lon:.6f}"))
        form.addRow("Kind", self.kind_box)
        form.addRow("Description", self.description_edit)
        form.addRow("Reporter contact", self.contact_edit)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        ok = self.buttons.button(QDialogButtonBox.StandardButton.Ok)
        if ok is not None:
            ok.setText("Report")
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.buttons)

    @property
    def ok_button(self) -> QPushButton:
        """The Report button."""
        button = self.buttons.button(QDialogButtonBox.StandardButton.Ok)
        assert button is not None
        return button

    def kind(self) -> str:
        """The chosen kind."""
        return self.kind_box.currentText()

    def description(self) -> str:
        """The description typed."""
        return self.description_edit.text()

    def contact(self) -> str:
        """The reporter's contact typed."""
        return self.contact_edit.text()


class ChangeActionDialog(QDialog):
    """A sign action's text and pictogram, or a traffic action's plan."""

    def __init__(self, action: dict[str, Any], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("incidentChangeDialog")
        self.action = action
        self.kind = str(action.get("kind", ""))
        args = (action.get("command") or {}).get("args") or {}
        self.setWindowTitle(f"Change action {action.get('id')} on {action.get('device')}")
        form = QFormLayout()
        self.text_edit = QPlainTextEdit(str(args.get("Text", "")))
        self.text_edit.setObjectName("changeText")
        self.pictogram = QSpinBox()
        self.pictogram.setObjectName("changePictogram")
        self.pictogram.setRange(0, MAX_PICTOGRAM)
        self.pictogram.setValue(int(args.get("Pictogram", 0) or 0))
        self.plan = QSpinBox()
        self.plan.setObjectName("changePlan")
        self.plan.setRange(1, MAX_PLAN)
        self.plan.setValue(int(args.get("Plan", 1) or 1))
        self.preview: SignPreview | None = None
        if self.kind == "sign":
            self.preview = SignPreview()
            self.text_edit.textChanged.connect(self._preview)
            form.addRow("Text (3 lines of 18)", self.text_edit)
            form.addRow("Pictogram", self.pictogram)
            form.addRow("Preview", self.preview)
            self._preview()
        else:
            form.addRow("Plan", self.plan)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.buttons)

    def _preview(self) -> None:
        if self.preview is not None:
            self.preview.set_content(self.text_edit.toPlainText().split("\n")[:3], self.pictogram.value(), False)

    def arguments(self) -> tuple[ua.Variant, ua.Variant, ua.Variant]:
        """Text, Pictogram and Plan of ChangeAction (a sign action: Plan 0; a traffic action: Text "" and 0)."""
        if self.kind == "sign":
            return (
                ua.Variant(self.text_edit.toPlainText(), ua.VariantType.String),
                ua.Variant(self.pictogram.value(), ua.VariantType.UInt16),
                ua.Variant(0, ua.VariantType.UInt16),
            )
        return (
            ua.Variant("", ua.VariantType.String),
            ua.Variant(0, ua.VariantType.UInt16),
            ua.Variant(self.plan.value(), ua.VariantType.UInt16),
        )
