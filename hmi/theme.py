"""The console's dark, low-glare theme: palette, style sheet, fonts and the colours of device states.

A control room is dim and watched for hours: a dark grey (not black) background, soft off-white text, saturated
colour reserved for states that need attention (red failure, orange alarm, violet no-communication), and stale
values greyed out rather than hidden.
"""

from __future__ import annotations

from PyQt6.QtGui import QColor, QFont, QPalette
from PyQt6.QtWidgets import QApplication

from hmi.model import MapState

BACKGROUND = "#15191e"
SURFACE = "#1d2228"
SURFACE_HIGH = "#262c34"
BORDER = "#323a44"
TEXT = "#c8cdd3"
TEXT_DIM = "#7d8590"
ACCENT = "#5b8fc7"
GOOD = "#58b37c"
WARNING = "#e0a03a"
BAD = "#e5534b"
STALE_TEXT = "#5e6670"
MAP_BACKGROUND = "#111418"
STREET = "#2f3740"

STATE_COLOURS: dict[MapState, str] = {
    MapState.UNKNOWN: "#59616b",
    MapState.OFF: "#3f5f7a",
    MapState.DIMMED: "#c39a2e",
    MapState.ON: "#ffe37a",
    MapState.FAILED: "#ff3b3b",
    MapState.NO_COMM: "#b07cdc",
    MapState.ALARM: "#ff8a1f",
    MapState.NORMAL: "#4fb477",
}
"""Fill colour of a device's dot per state."""

STALE_MIX = 0.72  # how far a stale colour moves towards the stale grey


def stale_colour(colour: str) -> str:
    """A state colour greyed out (the connection is lost: the dot shows the last known state)."""
    base = QColor(colour)
    grey = QColor("#3a4048")
    mixed = QColor(
        round(base.red() * (1 - STALE_MIX) + grey.red() * STALE_MIX),
        round(base.green() * (1 - STALE_MIX) + grey.green() * STALE_MIX),
        round(base.blue() * (1 - STALE_MIX) + grey.blue() * STALE_MIX),
    )
    return str(mixed.name())


STALE_COLOURS: dict[MapState, str] = {state: stale_colour(colour) for state, colour in STATE_COLOURS.items()}

STYLE_SHEET = f"""
QWidget {{ background-color: {BACKGROUND}; color: {TEXT}; }}
QMainWindow::separator {{ background: {BORDER}; width: 3px; height: 3px; }}
QDockWidget {{ titlebar-close-icon: none; }}
QDockWidget::title {{ background: {SURFACE_HIGH}; padding: 4px 8px; }}
QToolBar {{ background: {SURFACE}; border: none; spacing: 6px; padding: 3px; }}
QStatusBar {{ background: {SURFACE}; color: {TEXT_DIM}; }}
QLineEdit, QSpinBox, QDoubleSpinBox, QComboBox, QPlainTextEdit {{
    background: {SURFACE_HIGH}; border: 1px solid {BORDER}; border-radius: 3px; padding: 3px 5px;
    selection-background-color: {ACCENT};
}}
QLineEdit:focus, QSpinBox:focus, QDoubleSpinBox:focus, QComboBox:focus {{ border-color: {ACCENT}; }}
QPushButton, QToolButton {{
    background: {SURFACE_HIGH}; border: 1px solid {BORDER}; border-radius: 3px; padding: 4px 10px;
}}
QPushButton:hover, QToolButton:hover {{ border-color: {ACCENT}; }}
QPushButton:pressed, QToolButton:checked {{ background: #2f3a48; border-color: {ACCENT}; }}
QPushButton:disabled, QToolButton:disabled {{ color: {STALE_TEXT}; border-color: {SURFACE_HIGH}; }}
QCheckBox::indicator {{ width: 14px; height: 14px; border: 1px solid {TEXT_DIM}; border-radius: 2px;
    background: {SURFACE_HIGH}; }}
QCheckBox::indicator:checked {{ background: {ACCENT}; border-color: {ACCENT}; }}
QTabWidget::pane {{ border: 1px solid {BORDER}; }}
QTabBar::tab {{ background: {SURFACE}; padding: 5px 10px; border: 1px solid {BORDER}; border-bottom: none; }}
QTabBar::tab:selected {{ background: {SURFACE_HIGH}; color: #e6e9ec; }}
QGroupBox {{ border: 1px solid {BORDER}; border-radius: 4px; margin-top: 14px; padding-top: 6px; }}
QGroupBox::title {{ subcontrol-origin: margin; left: 8px; padding: 0 4px; color: {TEXT_DIM}; }}
QMenu {{ background: {SURFACE}; border: 1px solid {BORDER}; }}
QMenu::item:selected {{ background: {SURFACE_HIGH}; }}
QToolTip {{ background: {SURFACE_HIGH}; color: {TEXT}; border: 1px solid {BORDER}; padding: 4px; }}
QLabel[role="value"] {{ color: #e6e9ec; font-weight: 600; }}
QLabel[role="value"][stale="true"] {{ color: {STALE_TEXT}; font-weight: normal; }}
QLabel[role="caption"] {{ color: {TEXT_DIM}; }}
QLabel[role="title"] {{ font-size: 13pt; font-weight: 600; color: #e6e9ec; }}
QLabel[answer="good"] {{ color: {GOOD}; }}
QLabel[answer="bad"] {{ color: {BAD}; }}
QLabel[answer="pending"] {{ color: {TEXT_DIM}; }}
QFrame#connectionBanner {{ background: #5a1d1d; border-bottom: 2px solid {BAD}; }}
QFrame#connectionBanner QLabel {{ background: transparent; color: #ffe3e0; font-weight: 600; }}
"""


def ui_font(point_size: float = 10.5) -> QFont:
    """The console's text font: the platform's sans serif at a size readable from a desk away."""
    font = QFont()
    font.setFamilies(["Inter", "Noto Sans", "DejaVu Sans", "Sans Serif"])
    font.setPointSizeF(point_size)
    return font


def mono_font(point_size: float = 11.0) -> QFont:
    """A fixed-pitch font (sign previews, ids)."""
    font = QFont()
    font.setFamilies(["JetBrains Mono", "DejaVu Sans Mono", "Monospace"])
    font.setStyleHint(QFont.StyleHint.Monospace)
    font.setPointSizeF(point_size)
    return font


def palette() -> QPalette:
    """The dark palette (for widgets the style sheet does not reach)."""
    pal = QPalette()
    roles = {
        QPalette.ColorRole.Window: BACKGROUND,
        QPalette.ColorRole.WindowText: TEXT,
        QPalette.ColorRole.Base: SURFACE_HIGH,
        QPalette.ColorRole.AlternateBase: SURFACE,
        QPalette.ColorRole.Text: TEXT,
        QPalette.ColorRole.Button: SURFACE_HIGH,
        QPalette.ColorRole.ButtonText: TEXT,
        QPalette.ColorRole.Highlight: ACCENT,
        QPalette.ColorRole.HighlightedText: "#ffffff",
        QPalette.ColorRole.ToolTipBase: SURFACE_HIGH,
        QPalette.ColorRole.ToolTipText: TEXT,
        QPalette.ColorRole.PlaceholderText: TEXT_DIM,
    }
    for role, colour in roles.items():
        pal.setColor(role, QColor(colour))
    pal.setColor(QPalette.ColorGroup.Disabled, QPalette.ColorRole.ButtonText, QColor(STALE_TEXT))
    pal.setColor(QPalette.ColorGroup.Disabled, QPalette.ColorRole.Text, QColor(STALE_TEXT))
    return pal


def apply_theme(app: QApplication) -> None:
    """Give the application the dark theme (Fusion style, palette, style sheet, font, pyqtgraph colours)."""
    import pyqtgraph as pg

    app.setStyle("Fusion")
    app.setPalette(palette())
    app.setFont(ui_font())
    app.setStyleSheet(STYLE_SHEET)
    pg.setConfigOptions(background=MAP_BACKGROUND, foreground=TEXT_DIM, antialias=False)


def set_role(widget: object, **properties: object) -> None:
    """Set dynamic properties the style sheet selects on (role, stale, answer) and re-polish the widget."""
    for name, value in properties.items():
        widget.setProperty(name, value)  # type: ignore[attr-defined]
    style = widget.style()  # type: ignore[attr-defined]
    style.unpolish(widget)
    style.polish(widget)
