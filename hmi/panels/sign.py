"""The sign panel: what the sign shows now, an editor with a preview of how the message will look; send or blank."""

from __future__ import annotations

from typing import Any

from asyncua import ua
from PyQt6.QtCore import QRegularExpression
from PyQt6.QtGui import QRegularExpressionValidator
from PyQt6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
)

from hmi import theme
from hmi.client import CallAnswer
from hmi.panels.base import DevicePanel, Field
from hmi.panels.signpreview import PICTOGRAMS, SignPreview
from scada.catalog import SIGN_COLUMNS, SIGN_LINES, Kind, sign_lines


class SignPanel(DevicePanel):
    """One variable message sign."""

    kind = Kind.SIGN
    fields = (
        Field("Pictogram", "Pictogram", names=PICTOGRAMS),
        Field("Flashing", "Flashing"),
        Field("MessageId", "Message id", digits=0),
        Field("Fault", "Fault"),
        Field("PixelFailure", "Pixel failure"),
        Field("PowerFault", "Power fault"),
        Field("DoorOpen", "Door open"),
        Field("OverTemperature", "Over temperature"),
        Field("Luminance", "Luminance", digits=0),
        Field("Brightness", "Brightness", digits=0),
        Field("CommunicationOk", "Communication"),
    )

    def caption_text(self, info: dict[str, Any]) -> str:
        """Road and reading direction."""
        road = f" · {info['road']}" if info.get("road") else ""
        return f"message sign · {info.get('district', '')}{road} · facing traffic heading {info.get('bearing', 0):g}°"

    def extra_variables(self) -> tuple[str, ...]:
        """The message itself is shown as a picture, not a value row."""
        return ("Message",)

    def build_extra(self, layout: QVBoxLayout) -> None:
        """The sign as it is now."""
        caption = QLabel("On the sign now")
        theme.set_role(caption, role="caption")
        layout.addWidget(caption)
        self.current = SignPreview()
        self.current.setObjectName("signCurrent")
        layout.addWidget(self.current)

    def build_commands(self, layout: QVBoxLayout) -> None:
        """Three 18-character lines, pictogram, flashing, and the preview of the result; send or blank."""
        grid = QGridLayout()
        validator = QRegularExpressionValidator(QRegularExpression(f"[\\x20-\\x7E]{{0,{SIGN_COLUMNS}}}"), self)
        self.line_edits: list[QLineEdit] = []
        for number in range(SIGN_LINES):
            edit = QLineEdit()
            edit.setObjectName(f"signLine{number + 1}")
            edit.setMaxLength(SIGN_COLUMNS)
            edit.setValidator(validator)
            edit.setFont(theme.mono_font())
            edit.setPlaceholderText(f"line {number + 1} ({SIGN_COLUMNS} characters)")
            edit.textChanged.connect(self.update_preview)
            grid.addWidget(QLabel(f"Line {number + 1}"), number, 0)
            grid.addWidget(edit, number, 1)
            self.line_edits.append(edit)
        layout.addLayout(grid)
        options = QHBoxLayout()
        self.pictogram = QComboBox()
        self.pictogram.setObjectName("signPictogram")
        for value, name in PICTOGRAMS.items():
            self.pictogram.addItem(f"{value} {name}", value)
        self.pictogram.currentIndexChanged.connect(self.update_preview)
        self.flashing = QCheckBox("Flashing")
        self.flashing.setObjectName("signFlashing")
        self.flashing.toggled.connect(self.update_preview)
        copy = QPushButton("Edit current")
        copy.setToolTip("Load the message on the sign into the editor")
        copy.clicked.connect(self.load_current)
        options.addWidget(QLabel("Pictogram"))
        options.addWidget(self.pictogram)
        options.addWidget(self.flashing)
        options.addStretch(1)
        options.addWidget(copy)
        layout.addLayout(options)
        caption = QLabel("Will look like")
        theme.set_role(caption, role="caption")
        layout.addWidget(caption)
        self.preview = SignPreview()
        self.preview.setObjectName("signPreview")
        layout.addWidget(self.preview)
        buttons = QHBoxLayout()
        send = QPushButton("Send to sign")
        send.setObjectName("signSend")
        send.clicked.connect(self.send_message)
        blank = QPushButton("Blank")
        blank.setObjectName("signBlank")
        blank.clicked.connect(lambda: self.send("Blank"))
        buttons.addWidget(self.gate("Display", send))
        buttons.addWidget(self.gate("Blank", blank))
        buttons.addStretch(1)
        layout.addLayout(buttons)

    def edited_text(self) -> str:
        """The editor's message as the sign takes it: lines joined by newlines, empty trailing lines dropped."""
        return "\n".join(edit.text().rstrip() for edit in self.line_edits).rstrip("\n")

    def update_preview(self) -> None:
        """Redraw 'will look like' from the editor."""
        self.preview.set_content(
            [edit.text() for edit in self.line_edits], int(self.pictogram.currentData()), self.flashing.isChecked()
        )

    def set_message(self, text: str, pictogram: int = 0, flashing: bool = False) -> None:
        """Fill the editor (lines split on newlines)."""
        lines = (text.split("\n") + [""] * SIGN_LINES)[:SIGN_LINES]
        for edit, line in zip(self.line_edits, lines, strict=True):
            edit.setText(line)
        self.pictogram.setCurrentIndex(max(0, self.pictogram.findData(int(pictogram))))
        self.flashing.setChecked(bool(flashing))
        self.update_preview()

    def load_current(self) -> None:
        """Copy the displayed message into the editor."""
        message = self.values.get("Message")
        self.set_message(message if isinstance(message, str) else "", self.values.get("Pictogram") or 0)
        self.flashing.setChecked(bool(self.values.get("Flashing")))

    def send_message(self) -> None:
        """Display the edited message (checked against the 3 x 18 format first)."""
        text = self.edited_text()
        try:
            sign_lines(text)
        except ValueError as exc:
            self.refuse(f"not sent: {exc}")
            return
        self.send(*self.display_arguments(text))

    def display_arguments(self, text: str) -> tuple[str, ua.Variant, ua.Variant, ua.Variant]:
        """The Display method and its three arguments for a message and the editor's pictogram and flashing."""
        return (
            "Display",
            ua.Variant(text, ua.VariantType.String),
            ua.Variant(int(self.pictogram.currentData()), ua.VariantType.UInt16),
            ua.Variant(self.flashing.isChecked(), ua.VariantType.Boolean),
        )

    async def display(self, text: str, pictogram: int = 0, flashing: bool = False) -> CallAnswer:
        """Put a message in the editor and send it (what the Send button does, awaitable)."""
        self.set_message(text, pictogram, flashing)
        sign_lines(self.edited_text())
        return await self.call(*self.display_arguments(self.edited_text()))

    def values_changed(self, names: set[str]) -> None:
        """Redraw the current sign from Message, Pictogram and Flashing."""
        if names & {"Message", "Pictogram", "Flashing"}:
            message = self.values.get("Message")
            lines = message.split("\n") if isinstance(message, str) else []
            self.current.set_content(lines, self.values.get("Pictogram") or 0, bool(self.values.get("Flashing")))
        self.current.set_stale(self.is_stale("Message"))
