"""The login dialog: server URL, user, password and optional security settings; shows why a login failed."""

from __future__ import annotations

import asyncio

from PyQt6.QtWidgets import QDialog, QDialogButtonBox, QFormLayout, QLabel, QLineEdit, QVBoxLayout, QWidget

from hmi import theme
from hmi.client import Credentials


class LoginDialog(QDialog):
    """Asks who logs in where; `await dialog.ask()` gives the credentials, or None when cancelled."""

    def __init__(self, credentials: Credentials, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("loginDialog")
        self.setWindowTitle("cityscada console — log in")
        self.url = QLineEdit(credentials.url)
        self.url.setObjectName("loginUrl")
        self.user = QLineEdit(credentials.user or "")
        self.user.setObjectName("loginUser")
        self.password = QLineEdit(credentials.password or "")
        self.password.setObjectName("loginPassword")
        self.password.setEchoMode(QLineEdit.EchoMode.Password)
        self.security = QLineEdit(credentials.security or "auto")
        self.security.setObjectName("loginSecurity")
        self.security.setPlaceholderText("auto, none, Basic256Sha256,SignAndEncrypt[,cert,key]")
        self.error = QLabel("")
        self.error.setObjectName("loginError")
        self.error.setWordWrap(True)
        theme.set_role(self.error, answer="bad")
        form = QFormLayout()
        form.addRow("Server", self.url)
        form.addRow("User", self.user)
        form.addRow("Password", self.password)
        form.addRow("Security", self.security)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        ok = buttons.button(QDialogButtonBox.StandardButton.Ok)
        if ok is not None:
            ok.setText("Log in")
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.error)
        layout.addWidget(buttons)
        self.setMinimumWidth(480)
        if credentials.user:
            self.password.setFocus()
        else:
            self.user.setFocus()

    def credentials(self) -> Credentials:
        """What was typed."""
        return Credentials(
            url=self.url.text().strip(),
            user=self.user.text().strip() or None,
            password=self.password.text(),
            security=self.security.text().strip() or None,
        )

    def show_error(self, message: str) -> None:
        """Say why the last attempt failed (and empty the password)."""
        self.error.setText(message)
        self.password.clear()

    async def ask(self) -> Credentials | None:
        """Show the dialog without blocking the event loop; the credentials, or None when cancelled."""
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()

        def done(result: int) -> None:
            if not future.done():
                future.set_result(result)

        self.finished.connect(done)
        self.open()
        try:
            result = await future
        finally:
            self.finished.disconnect(done)
        return self.credentials() if result == QDialog.DialogCode.Accepted else None
