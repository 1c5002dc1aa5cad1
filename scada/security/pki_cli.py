"""`cityscada pki list|trust|reject|remove`: the administrator's view of the server's PKI folder.

A client refused as unknown leaves its certificate in <data-dir>/pki/rejected/<thumbprint>.der. `trust` moves it
to trusted/ (or imports an outside PEM/DER file); the running server accepts it at the client's next secure
channel, without a restart. Certificates are named by file name, full SHA-256 thumbprint or a unique prefix of
8 hex digits or more. The folder's file permissions (0700, the service account) are the access control here:
whoever may run this command as that account holds the trust_certificates right.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from scada.security.pki import CertInfo, PkiError, PkiFolder

DEFAULT_DATA_DIR = "var"
PKI_DIR = "pki"


def build_pki_parser() -> argparse.ArgumentParser:
    """The parser of `cityscada pki`."""
    parser = argparse.ArgumentParser(prog="cityscada pki", description="Manage the OPC UA server's trust list.")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--data-dir", default=DEFAULT_DATA_DIR, help=f"the server's data folder (default {DEFAULT_DATA_DIR})"
    )
    common.add_argument("--pki-dir", default=None, help="the PKI folder (default <data-dir>/pki)")
    sub = parser.add_subparsers(dest="action", required=True)
    listing = sub.add_parser("list", parents=[common], help="list own, trusted, issuer and rejected certificates")
    listing.add_argument("--state", choices=("own", "trusted", "issuer", "rejected"), help="only this state")
    for name, text in (
        ("trust", "trust a rejected certificate (or import a PEM/DER file as trusted)"),
        ("reject", "stop trusting a certificate (it moves to rejected/)"),
        ("remove", "delete a certificate from trusted/, issuers/ or rejected/"),
    ):
        action = sub.add_parser(name, parents=[common], help=text)
        action.add_argument("certificate", help="thumbprint (or 8+ leading hex digits), file name, or a file to import")
    return parser


def format_entry(entry: CertInfo) -> str:
    """One line of `pki list`."""
    uri = entry.application_uri or "-"
    return (
        f"{entry.state:<8}  {entry.thumbprint[:16]}  {entry.not_after:%Y-%m-%d}  "
        f"{entry.subject[:32]:<32}  {uri}{'  (CA)' if entry.is_ca else ''}"
    )


def pki_main(
    argv: Sequence[str] | None = None,
    *,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
) -> int:
    """Run `cityscada pki <argv>`; 0 on success, 1 when the certificate cannot be found or changed."""
    out = stdout or sys.stdout
    err = stderr or sys.stderr
    args = build_pki_parser().parse_args(argv)
    root = Path(args.pki_dir) if args.pki_dir else Path(args.data_dir) / PKI_DIR
    pki = PkiFolder(root)
    try:
        if args.action == "list":
            entries = [e for e in pki.entries() if args.state is None or e.state == args.state]
            print(f"{'STATE':<8}  {'THUMBPRINT':<16}  {'EXPIRES':<10}  {'SUBJECT':<32}  APPLICATION URI", file=out)
            for entry in entries:
                print(format_entry(entry), file=out)
        elif args.action == "trust":
            entry = pki.trust(args.certificate)
            print(f"trusted {entry.thumbprint} ({entry.subject}): accepted at the next secure channel", file=out)
        elif args.action == "reject":
            entry = pki.reject(args.certificate)
            print(f"rejected {entry.thumbprint} ({entry.subject}): refused at the next secure channel", file=out)
        elif args.action == "remove":
            entry = pki.remove(args.certificate)
            print(f"removed {entry.thumbprint} ({entry.subject}) from {entry.state}", file=out)
    except (PkiError, OSError) as exc:
        print(f"cityscada pki: {exc}", file=err)
        return 1
    return 0
