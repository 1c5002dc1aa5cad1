"""`cityscada users add|passwd|remove|list`: manage the accounts of a site's users file.

Passwords are read from standard input (--password-stdin, one line) or typed twice at a prompt; never from an
argument, which would land in shell history and in the process list.
"""

from __future__ import annotations

import argparse
import getpass
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from scada.model import CityScadaError, ConfigError
from scada.security.passwords import check_strength
from scada.security.policy import load_security_config
from scada.security.roles import ASSIGNABLE_ROLES
from scada.security.users import UserStore, certificate_thumbprint

DEFAULT_SITE = "config/dijon"


class UsageError(CityScadaError):
    """The command line or the password input cannot be used."""


def build_users_parser() -> argparse.ArgumentParser:
    """The parser of `cityscada users`."""
    parser = argparse.ArgumentParser(prog="cityscada users", description="Manage the users of a site.")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--site", default=DEFAULT_SITE, help=f"site folder (default {DEFAULT_SITE})")
    common.add_argument("--users-file", default=None, help="users file (default: the site's security.users_file)")
    sub = parser.add_subparsers(dest="action", required=True)
    password_help = "read the password from the first line of standard input (default: prompt twice)"

    add = sub.add_parser("add", parents=[common], help="create a user")
    add.add_argument("username")
    roles = ", ".join(ASSIGNABLE_ROLES)
    add.add_argument("--role", action="append", default=[], required=True, help=f"a role (repeatable): {roles}")
    add.add_argument("--password-stdin", action="store_true", help=password_help)
    add.add_argument("--certificate", action="append", default=[], type=Path, help="X.509 user certificate (PEM/DER)")
    add.add_argument("--no-password", action="store_true", help="certificate-only account")

    passwd = sub.add_parser("passwd", parents=[common], help="set a user's password")
    passwd.add_argument("username")
    passwd.add_argument("--password-stdin", action="store_true", help=password_help)

    remove = sub.add_parser("remove", parents=[common], help="delete a user")
    remove.add_argument("username")

    sub.add_parser("list", parents=[common], help="list the users (never their hashes)")
    return parser


def read_password(username: str, from_stdin: bool, stdin: TextIO) -> str:
    """The new password: one line of standard input, or typed twice at a terminal prompt; checked for strength."""
    if from_stdin:
        line = stdin.readline()
        password = line[:-1] if line.endswith("\n") else line
        password = password[:-1] if password.endswith("\r") else password
    else:
        if not stdin.isatty():
            raise UsageError("no terminal to prompt for the password: use --password-stdin")
        password = getpass.getpass(f"New password for {username}: ")
        if getpass.getpass("Again: ") != password:
            raise UsageError("the two passwords differ")
    if not password:
        raise UsageError("empty password")
    check_strength(password, username)
    return password


def read_certificate(path: Path) -> str:
    """The SHA-256 thumbprint of a PEM or DER X.509 certificate file."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror}") from None
    try:
        cert = x509.load_pem_x509_certificate(data) if b"-----BEGIN" in data else x509.load_der_x509_certificate(data)
    except ValueError as exc:
        raise UsageError(f"{path} is not an X.509 certificate ({exc})") from None
    return certificate_thumbprint(cert.public_bytes(Encoding.DER))


def _store(args: argparse.Namespace) -> UserStore:
    path = Path(args.users_file) if args.users_file else load_security_config(args.site).users_file
    store = UserStore(path)
    store.load()
    return store


def users_main(
    argv: Sequence[str] | None = None,
    *,
    stdin: TextIO | None = None,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
) -> int:
    """Run `cityscada users <argv>`; 0 on success, 1 when the change is refused, 2 for a configuration error."""
    stdin = stdin or sys.stdin
    out = stdout or sys.stdout
    err = stderr or sys.stderr
    args = build_users_parser().parse_args(argv)
    try:
        store = _store(args)
        if args.action == "add":
            thumbprints = [read_certificate(path) for path in args.certificate]
            if args.no_password:
                if not thumbprints:
                    raise UsageError("--no-password needs at least one --certificate")
                password = None
            else:
                password = read_password(args.username, args.password_stdin, stdin)
            user = store.add(args.username, password, args.role, thumbprints)
            print(f"added {user.name} ({', '.join(sorted(user.roles))}) to {store.path}", file=out)
        elif args.action == "passwd":
            if store.get(args.username) is None:
                raise UsageError(f"no user {args.username!r}")
            store.set_password(args.username, read_password(args.username, args.password_stdin, stdin))
            print(f"password of {args.username} changed in {store.path}", file=out)
        elif args.action == "remove":
            store.remove(args.username)
            print(f"removed {args.username} from {store.path}", file=out)
        elif args.action == "list":
            users = store.users()
            width = max([4, *(len(u.name) for u in users)])
            print(f"{'NAME':<{width}}  {'ROLES':<40}  CERTS  STATUS", file=out)
            for user in users:
                roles = ",".join(sorted(user.roles)) or "-"
                status = "disabled" if user.disabled else "enabled"
                print(f"{user.name:<{width}}  {roles:<40}  {len(user.certificates):>5}  {status}", file=out)
    except ConfigError as exc:
        print(exc, file=err)
        return 2
    except (CityScadaError, ValueError, OSError) as exc:
        print(f"cityscada users: {exc}", file=err)
        return 1
    return 0
