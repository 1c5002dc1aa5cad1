"""Logging in: who is logged in is shown, wrong credentials are refused, and what the role may not do is disabled."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest
from hmikit import DEMO_PASSWORDS, FAST, ROOT, Stack, running_post, wait_for
from PyQt6.QtWidgets import QPushButton

from hmi.client import ConnectionState, ConsoleClient, ConsoleError, Credentials, LoginError
from hmi.login import LoginDialog
from hmi.panels import ControllerPanel
from hmi.security import certificate_uri, console_uri, ensure_certificate, resolve_security
from scada.catalog import Kind
from scada.model import Quality

pytestmark = pytest.mark.qt


async def test_login_shows_who_is_logged_in(tmp_path: Path, free_port: int) -> None:
    async with running_post(tmp_path, free_port, user="operator") as post:
        window = post.console.window
        assert post.console.client.state is ConnectionState.CONNECTED
        assert "operator" in window.user_label.text()
        assert "security Basic256Sha256/SignAndEncrypt" in window.user_label.text()
        assert "connected to" in window.connection_label.text()
        permissions = post.console.permissions
        assert permissions.discovered
        # the server answered UserExecutable for the shared methods of every kind and for the incidents
        assert {target for target, _method in permissions.executable} >= {
            "lamp",
            "cabinet",
            "controller",
            "sign",
            "parking_site",
            "incident",
        }
        assert ("sign", "Display") in permissions.executable
        assert ("lamp", "LevelSetpoint") in permissions.writable


async def test_wrong_password_anonymous_untrusted_and_unreachable_are_refused(tmp_path: Path, free_port: int) -> None:
    stack = Stack(free_port, tmp_path)
    await stack.start()
    try:
        wrong = ConsoleClient(Credentials(stack.url, "operator", "not-the-password", stack.security), FAST)
        with pytest.raises(LoginError, match="refused the login"):
            await wrong.connect()
        assert wrong.state is ConnectionState.IDLE
        anonymous = ConsoleClient(Credentials(stack.url, security=stack.security), FAST)
        with pytest.raises(LoginError):
            await anonymous.connect()
        unsecured = ConsoleClient(Credentials(stack.url, "operator", DEMO_PASSWORDS["operator"]), FAST)
        with pytest.raises(ConsoleError):
            await unsecured.connect()
        # a console whose certificate the server does not trust: told how to get it trusted
        stranger = await ensure_certificate(tmp_path / "stranger")
        untrusted = ConsoleClient(
            Credentials(
                stack.url,
                "operator",
                DEMO_PASSWORDS["operator"],
                f"Basic256Sha256,SignAndEncrypt,{stranger.cert},{stranger.key}",
            ),
            FAST,
        )
        with pytest.raises(LoginError) as caught:
            await untrusted.connect()
        assert f"cityscada pki trust {stranger.thumbprint[:16]}" in str(caught.value)
        assert stack.server is not None and stack.server.security is not None
        rejected = [e.thumbprint for e in stack.server.security.pki.entries() if e.state == "rejected"]
        assert stranger.thumbprint in rejected
    finally:
        await stack.stop()
    nobody = ConsoleClient(Credentials(stack.url, "operator", DEMO_PASSWORDS["operator"], stack.security), FAST)
    with pytest.raises(ConsoleError) as refused:
        await nobody.connect()
    assert not isinstance(refused.value, LoginError)
    await asyncio.sleep(0.1)


async def test_what_the_role_may_not_do_is_disabled_from_login_and_after_a_refusal(
    tmp_path: Path, free_port: int
) -> None:
    async with running_post(tmp_path, free_port, user="operator") as post:  # intersections: engineer, supervisor
        assert post.console.panels is not None and post.console.model is not None
        # the server answers UserExecutable for the session's user: the operator's plan buttons are off at once
        assert not post.console.permissions.may_call(Kind.CONTROLLER, "SelectPlan")
        assert post.console.permissions.may_call(Kind.SIGN, "Display")
        assert "commands allowed" in post.console.window.user_label.text()
        ref = post.console.model.ref("TLC-001")
        assert ref is not None
        panel = post.console.panels.open(ref)
        assert isinstance(panel, ControllerPanel)
        await wait_for(lambda: not post.console.panels.opening, what="the panel's watch")  # type: ignore[union-attr]
        select = panel.findChild(QPushButton, "selectPlan")
        assert select is not None and not select.isEnabled() and "may not" in select.toolTip()
        # a server that said yes but refuses: the refusal disables the command for the rest of the session
        sign_ref = post.console.model.ref("VMS-01")
        assert sign_ref is not None
        sign = post.console.panels.open(sign_ref)
        await wait_for(lambda: not post.console.panels.opening, what="the sign panel's watch")  # type: ignore[union-attr]
        send = [b for b in sign.findChildren(QPushButton) if b.isEnabled() and "Send" in b.text()]
        assert send, "the operator may display messages"
        assert post.console.permissions.learn(Kind.SIGN, "Display", Quality.BAD_USER_ACCESS_DENIED)
        assert not post.console.permissions.may_call(Kind.SIGN, "Display")
        await wait_for(lambda: not send[0].isEnabled(), what="Send disabled after the refusal")


async def test_command_line_refuses_a_wrong_password(tmp_path: Path, free_port: int) -> None:
    stack = Stack(free_port, tmp_path)
    await stack.start()
    try:
        command = [sys.executable, "-m", "hmi", "--url", stack.url, "--user", "operator", "--password-stdin"]
        command += ["--security", stack.security, "--layout-file", str(tmp_path / "layout.ini")]
        done = await asyncio.to_thread(
            subprocess.run,
            command,
            input="wrong-password\n",
            capture_output=True,
            text=True,
            timeout=60,
            cwd=ROOT,
            env={**__import__("os").environ, "QT_QPA_PLATFORM": "offscreen"},
        )
    finally:
        await stack.stop()
    assert done.returncode == 2, done.stderr
    assert "refused the login" in done.stderr


async def test_login_dialog_returns_what_was_typed() -> None:
    dialog = LoginDialog(Credentials("opc.tcp://scada:4840/cityscada", "operator"))
    asked = asyncio.ensure_future(dialog.ask())
    await asyncio.sleep(0.05)
    assert dialog.isVisible() and dialog.security.text() == "auto"
    dialog.password.setText("s3cret")
    dialog.security.setText("none")
    dialog.accept()
    typed = await asyncio.wait_for(asked, 5)
    assert typed == Credentials("opc.tcp://scada:4840/cityscada", "operator", "s3cret", "none")
    dialog.show_error("the server refused the login")
    assert dialog.error.text() == "the server refused the login" and dialog.password.text() == ""
    asked = asyncio.ensure_future(dialog.ask())
    await asyncio.sleep(0.05)
    dialog.reject()
    assert await asyncio.wait_for(asked, 5) is None
    dialog.deleteLater()


async def test_security_option_resolution(tmp_path: Path) -> None:
    assert await resolve_security("none", "operator", tmp_path) is None
    assert await resolve_security("auto", None, tmp_path) is None
    own = await resolve_security("auto", "operator", tmp_path)
    assert own is not None
    policy, mode, cert, key = own.split(",")
    assert (policy, mode) == ("Basic256Sha256", "SignAndEncrypt")
    assert written_privately(cert, key)
    assert certificate_uri(Path(cert)) == console_uri()
    again = await resolve_security("Aes256_Sha256_RsaPss,Sign", "operator", tmp_path)
    assert again == f"Aes256_Sha256_RsaPss,Sign,{cert},{key}"  # the same certificate, kept
    given = "Basic256Sha256,SignAndEncrypt,/etc/c.der,/etc/k.pem"
    assert await resolve_security(given, "operator", tmp_path) == given
    with pytest.raises(ValueError, match="expected none, auto"):
        await resolve_security("Basic256Sha256", "operator", tmp_path)


def written_privately(cert: str, key: str) -> bool:
    """Both files exist and the key is readable by its owner only."""
    return Path(cert).is_file() and Path(key).is_file() and Path(key).stat().st_mode & 0o777 == 0o600
