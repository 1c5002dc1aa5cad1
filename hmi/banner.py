"""The connection banner: impossible to miss while the console is not connected, gone when it is."""

from __future__ import annotations

import time

from PyQt6.QtCore import QTimer
from PyQt6.QtWidgets import QFrame, QHBoxLayout, QLabel, QWidget

from hmi.client import ConnectionState, ConsoleClient


class ConnectionBanner(QFrame):
    """A red strip across the top of the window while the connection is lost (with the reconnection countdown)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("connectionBanner")
        self.label = QLabel("")
        self.label.setObjectName("connectionBannerText")
        self.label.setWordWrap(True)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(12, 8, 12, 8)
        layout.addWidget(self.label, 1)
        self._client: ConsoleClient | None = None
        self._timer = QTimer(self)
        self._timer.setInterval(500)
        self._timer.timeout.connect(self.refresh)
        self.hide()

    def follow(self, client: ConsoleClient) -> None:
        """Show the state of this client's connection from now on."""
        self._client = client
        client.state_changed.connect(self._on_state)
        self.refresh()

    def stop(self) -> None:
        """Stop following the client (its countdown timer stops)."""
        self._timer.stop()
        if self._client is not None:
            self._client.state_changed.disconnect(self._on_state)
            self._client = None

    @property
    def showing(self) -> bool:
        """True while the banner is up (not hidden)."""
        return not self.isHidden()

    def _on_state(self, _state: str) -> None:
        self.refresh()

    def refresh(self) -> None:
        """Update the text (countdown) or hide the banner."""
        client = self._client
        if client is None or client.state in (ConnectionState.CONNECTED, ConnectionState.IDLE, ConnectionState.CLOSED):
            self._timer.stop()
            self.hide()
            return
        url = client.credentials.url
        if client.state is ConnectionState.CONNECTING:
            text = f"Connecting to {url}…"
        else:
            lost_for = time.monotonic() - (client.lost_at or time.monotonic())
            retry = ""
            if client.retry_at is not None:
                retry = f" Next attempt in {max(0.0, client.retry_at - time.monotonic()):.0f} s"
                retry += f" (attempt {client.attempts + 1})." if client.attempts else "."
            else:
                retry = " Reconnecting now…"
            reason = f" ({client.last_error})" if client.last_error else ""
            text = (
                f"CONNECTION LOST to {url}{reason} {lost_for:.0f} s ago. Values shown are the last known ones and "
                f"are greyed out; commands cannot be sent.{retry}"
            )
        self.label.setText(text)
        self.show()
        if not self._timer.isActive():
            self._timer.start()
