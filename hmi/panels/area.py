"""The device dock: open panels as closable tabs (the most recent first); a panel watches only while open."""

from __future__ import annotations

import asyncio

from PyQt6.QtCore import pyqtSignal
from PyQt6.QtWidgets import QLabel, QScrollArea, QTabWidget, QVBoxLayout, QWidget

from hmi import theme
from hmi.model import DeviceRef
from hmi.panels import PANELS, DevicePanel, PanelContext
from hmi.tasks import spawn

MAX_OPEN = 12


class PanelArea(QWidget):
    """Tabs of device panels."""

    panel_opened = pyqtSignal(object)
    """A panel was opened (the DevicePanel)."""

    def __init__(self, context: PanelContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("panelArea")
        self.context = context
        self.tabs = QTabWidget()
        self.tabs.setObjectName("panelTabs")
        self.tabs.setTabsClosable(True)
        self.tabs.setMovable(True)
        self.tabs.setDocumentMode(True)
        self.tabs.tabCloseRequested.connect(self._close_index)
        self.placeholder = QLabel("Click a device on the map, or find one with Ctrl+F.")
        theme.set_role(self.placeholder, role="caption")
        self.placeholder.setWordWrap(True)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.placeholder)
        layout.addWidget(self.tabs, 1)
        self.tabs.hide()
        self._panels: dict[str, tuple[DevicePanel, QScrollArea]] = {}
        self.opening: dict[str, asyncio.Task[None]] = {}

    def panel(self, device_id: str) -> DevicePanel | None:
        """The open panel of a device, or None."""
        found = self._panels.get(device_id)
        return found[0] if found else None

    def open(self, ref: DeviceRef) -> DevicePanel | None:
        """Show a device's panel (opening it if needed); None for kinds without a panel."""
        found = self._panels.get(ref.id)
        if found is not None:
            self.tabs.setCurrentWidget(found[1])
            return found[0]
        panel_class = PANELS.get(ref.kind)
        if panel_class is None:
            return None
        panel = panel_class(ref, self.context)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(panel)
        self._panels[ref.id] = (panel, scroll)
        self.tabs.insertTab(0, scroll, ref.id)
        self.tabs.setCurrentIndex(0)
        self.placeholder.hide()
        self.tabs.show()
        self.opening[ref.id] = spawn(self._open(panel), name=f"open {ref.id}")
        while len(self._panels) > MAX_OPEN:
            self._close_index(self.tabs.count() - 1)
        self.panel_opened.emit(panel)
        return panel

    async def _open(self, panel: DevicePanel) -> None:
        try:
            await panel.start()
        finally:
            self.opening.pop(panel.ref.id, None)

    def close_current(self) -> None:
        """Close the panel in front (Ctrl+W)."""
        if self.tabs.count():
            self._close_index(self.tabs.currentIndex())

    def close_all(self) -> None:
        """Close every panel."""
        while self.tabs.count():
            self._close_index(0)

    def _close_index(self, index: int) -> None:
        scroll = self.tabs.widget(index)
        for device_id, (panel, owner) in list(self._panels.items()):
            if owner is scroll:
                del self._panels[device_id]
                spawn(panel.stop(), name=f"close {device_id}")
                break
        self.tabs.removeTab(index)
        if scroll is not None:
            scroll.deleteLater()
        if not self.tabs.count():
            self.tabs.hide()
            self.placeholder.show()

    def open_ids(self) -> list[str]:
        """The devices whose panels are open, in tab order."""
        ids: list[str] = []
        for index in range(self.tabs.count()):
            widget = self.tabs.widget(index)
            ids.extend(device_id for device_id, (_p, owner) in self._panels.items() if owner is widget)
        return ids
