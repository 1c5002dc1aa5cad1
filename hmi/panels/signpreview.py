"""A picture of a variable message sign: 3 lines of 18 amber characters and a pictogram, blinking when flashing."""

from __future__ import annotations

from PyQt6.QtCore import QPointF, QRectF, QSize, Qt, QTimer
from PyQt6.QtGui import QColor, QFont, QPainter, QPaintEvent, QPen, QPolygonF
from PyQt6.QtWidgets import QSizePolicy, QWidget

from hmi import theme
from scada.catalog import SIGN_COLUMNS, SIGN_LINES

PICTOGRAMS = {
    0: "none",
    1: "accident",
    2: "roadworks",
    3: "congestion",
    4: "diversion",
    5: "car park full",
    6: "danger",
    7: "pollution / reduced speed",
}
_GLYPHS = {1: "!", 2: "W", 3: "≡", 4: "↱", 5: "P", 6: "!", 7: "50"}
AMBER = QColor("#ffb23e")
AMBER_OFF = QColor("#2b2216")
FACE = QColor("#0d0f12")


class SignPreview(QWidget):
    """The sign's face as drivers would see it."""

    BLINK_MS = 500

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.lines: list[str] = [""] * SIGN_LINES
        self.pictogram = 0
        self.flashing = False
        self.stale = False
        self._lit = True
        self._blink = QTimer(self)
        self._blink.setInterval(self.BLINK_MS)
        self._blink.timeout.connect(self._toggle)
        self.setMinimumSize(QSize(330, 84))
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)

    def set_content(self, lines: list[str], pictogram: int, flashing: bool) -> None:
        """Show a message (exactly the lines given, padded to 3), a pictogram (0-7) and the flashing mode."""
        self.lines = (list(lines) + [""] * SIGN_LINES)[:SIGN_LINES]
        self.pictogram = int(pictogram) if pictogram in PICTOGRAMS else 0
        self.flashing = bool(flashing)
        if self.flashing and not self._blink.isActive():
            self._blink.start()
        elif not self.flashing:
            self._blink.stop()
            self._lit = True
        self.update()

    def set_stale(self, stale: bool) -> None:
        """Dim the picture (the values are not current)."""
        self.stale = stale
        self.update()

    def text(self) -> str:
        """The message as the sign holds it (lines joined by newlines, trailing spaces removed)."""
        return "\n".join(line.rstrip() for line in self.lines).rstrip("\n")

    def _toggle(self) -> None:
        self._lit = not self._lit
        self.update()

    def sizeHint(self) -> QSize:
        """Wide and short, like the sign."""
        return QSize(420, 96)

    def paintEvent(self, event: QPaintEvent | None) -> None:
        """Draw the face, the pictogram and the character cells."""
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        rect = QRectF(self.rect()).adjusted(1, 1, -1, -1)
        painter.fillRect(rect, FACE)
        painter.setPen(QPen(QColor(theme.BORDER), 1))
        painter.drawRect(rect)
        lit = self._lit and not self.stale
        on = AMBER if lit else AMBER.darker(260)
        pad = 6.0
        picto = QRectF(rect.left() + pad, rect.top() + pad, rect.height() - 2 * pad, rect.height() - 2 * pad)
        self._draw_pictogram(painter, picto, on)
        left = picto.right() + pad
        cell_w = (rect.right() - pad - left) / SIGN_COLUMNS
        cell_h = (rect.height() - 2 * pad) / SIGN_LINES
        font = QFont(theme.mono_font())
        font.setPixelSize(max(8, int(min(cell_h * 0.78, cell_w * 1.45))))
        font.setBold(True)
        painter.setFont(font)
        for line_no, line in enumerate(self.lines):
            for col in range(SIGN_COLUMNS):
                cell = QRectF(left + col * cell_w, rect.top() + pad + line_no * cell_h, cell_w, cell_h)
                painter.fillRect(cell.adjusted(0.5, 0.5, -0.5, -0.5), AMBER_OFF)
                char = line[col] if col < len(line) else " "
                if char != " ":
                    painter.setPen(on)
                    painter.drawText(cell, Qt.AlignmentFlag.AlignCenter, char)
        painter.end()

    def _draw_pictogram(self, painter: QPainter, box: QRectF, colour: QColor) -> None:
        painter.fillRect(box, AMBER_OFF)
        if self.pictogram == 0:
            return
        red = QColor("#ff4d4d") if colour == AMBER else QColor("#5a2a2a")
        painter.setPen(QPen(red, max(2.0, box.width() / 14)))
        if self.pictogram in (1, 2, 3, 6):
            triangle = QPolygonF(
                [
                    QPointF(box.center().x(), box.top() + 3),
                    QPointF(box.right() - 3, box.bottom() - 3),
                    QPointF(box.left() + 3, box.bottom() - 3),
                ]
            )
            painter.drawPolygon(triangle)
        else:
            painter.drawEllipse(box.adjusted(3, 3, -3, -3))
        font = QFont(theme.mono_font())
        font.setPixelSize(max(8, int(box.height() * 0.38)))
        font.setBold(True)
        painter.setFont(font)
        painter.setPen(colour)
        glyph_box = box.adjusted(0, box.height() * 0.18, 0, 0)
        painter.drawText(glyph_box, Qt.AlignmentFlag.AlignCenter, _GLYPHS.get(self.pictogram, "?"))
