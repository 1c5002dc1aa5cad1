"""`cityscada hmi`: start the console (log in, show the city), a separate process and an ordinary OPC UA client.

    cityscada hmi --url opc.tcp://scada:4840/cityscada --user operator --password-stdin < secret
    cityscada hmi --make-certificate        # once: the console's certificate, and how the server trusts it
    cityscada hmi --security Basic256Sha256,SignAndEncrypt,console.der,console-key.pem --user operator

Without --user or without a password the login dialog asks. --security defaults to "auto": a user logs in over
Basic256Sha256/SignAndEncrypt with the console's own certificate (hmi.security), anonymous over the None endpoint;
"none" forces the None endpoint (a development server started with --insecure).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

DEFAULT_URL = "opc.tcp://127.0.0.1:4840/cityscada"
log = logging.getLogger("hmi")


def build_parser() -> argparse.ArgumentParser:
    """The console's command line."""
    parser = argparse.ArgumentParser(prog="cityscada hmi", description="the cityscada control-room console")
    parser.add_argument("--url", default=DEFAULT_URL, help=f"server endpoint (default {DEFAULT_URL})")
    parser.add_argument("--user", default=None, help="user name (the login dialog asks when absent)")
    parser.add_argument(
        "--password-stdin", action="store_true", help="read the password from the first line of standard input"
    )
    parser.add_argument(
        "--security",
        default="auto",
        help="auto (default), none, Policy,Mode (own certificate) or Policy,Mode,client_cert,client_key[,server_cert]",
    )
    parser.add_argument(
        "--pki-dir", type=Path, default=None, help="where the console keeps its certificate (~/.config/cityscada/pki)"
    )
    parser.add_argument(
        "--make-certificate",
        action="store_true",
        help="create the console's certificate if needed, print how the server's administrator trusts it, exit",
    )
    parser.add_argument("--layout-file", type=Path, default=None, help="where the window layout is kept (INI)")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    return parser


async def run_console(args: argparse.Namespace, password: str | None) -> int:
    """Log in (dialog when needed), run the console until its window closes; the exit code."""
    from hmi.client import ConsoleClient, ConsoleError, Credentials, LoginError
    from hmi.console import Console
    from hmi.login import LoginDialog
    from hmi.security import resolve_security

    typed = Credentials(args.url, args.user, password, args.security)
    ask = args.user is None or password is None
    dialog: LoginDialog | None = None
    while True:
        if ask:
            dialog = dialog or LoginDialog(typed)
            answer = await dialog.ask()
            if answer is None:
                return 1
            typed = answer
        console = None
        try:
            security = await resolve_security(typed.security, typed.user, args.pki_dir)
            client = ConsoleClient(Credentials(typed.url, typed.user, typed.password, security))
            console = Console(client, args.layout_file)
            await console.start()
            break
        except (LoginError, ConsoleError, ValueError, OSError) as exc:
            if console is not None:
                await console.client.close()
                console.window.deleteLater()
            if not ask:
                print(f"cityscada hmi: {exc}", file=sys.stderr)
                return 2
            assert dialog is not None
            dialog.show_error(str(exc))
    closed = asyncio.Event()
    console.window.closing.connect(closed.set)
    await closed.wait()
    await console.stop()
    return 0


def make_certificate(pki_dir: Path | None) -> int:
    """Create (or keep) the console's certificate and say how the server's administrator trusts it."""
    from hmi.security import ensure_certificate

    own = asyncio.run(ensure_certificate(pki_dir))
    print(f"console certificate: {own.cert}")
    print(f"application URI:     {own.uri}")
    print(f"thumbprint:          {own.thumbprint}")
    print("on the server, trust it once (the server keeps a refused certificate in its pki/rejected/ folder):")
    print(f"    cityscada pki trust {own.thumbprint[:16]}      (after a first refused login), or")
    print(f"    cityscada pki trust {own.cert}                 (import the file)")
    return 0


def hmi_main(argv: Sequence[str] | None = None) -> int:
    """Entry point of `cityscada hmi` (and `python -m hmi`)."""
    args = build_parser().parse_args(argv)
    if args.make_certificate:
        return make_certificate(args.pki_dir)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("asyncua").setLevel(logging.WARNING)
    password = sys.stdin.readline().rstrip("\r\n") if args.password_stdin else None

    import qasync
    from PyQt6.QtWidgets import QApplication

    from hmi.theme import apply_theme

    existing = QApplication.instance()
    app = existing if isinstance(existing, QApplication) else QApplication(sys.argv[:1])
    app.setQuitOnLastWindowClosed(False)  # the console closes its session after its window closes, then exits
    app.setApplicationName("cityscada console")
    app.setOrganizationName("cityscada")
    apply_theme(app)
    try:
        return int(qasync.run(run_console(args, password)))
    except KeyboardInterrupt:
        return 130


__all__ = ["DEFAULT_URL", "build_parser", "hmi_main", "run_console"]
