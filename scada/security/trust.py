"""The trust list: peer certificates checked against the PKI folder's trusted/ and issuers/ (with CRLs).

A certificate is accepted when it is valid now, has an RSA key of 2048 bits or more, and either is itself in
trusted/ or chains, signature by signature, through issuers/ and the chain the peer sent to a CA in trusted/, no
certificate of the chain being revoked by a valid CRL of its issuer. The lists are re-read whenever a file of
trusted/ or issuers/ (or their crl/ folders) changes.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import rsa

from scada.model import CityScadaError
from scada.security.certs import application_uri, common_name, der_of, is_ca, load_certificate_bytes, split_der
from scada.security.users import certificate_thumbprint

if TYPE_CHECKING:
    from scada.security.pki import PkiFolder

log = logging.getLogger(__name__)

MIN_KEY_BITS = 2048
MAX_CHAIN = 6
CRL_SUFFIXES = (".crl", ".der", ".pem")

# OPC UA status codes of certificate checks (ua.StatusCodes values; kept here to stay free of asyncua)
BAD_CERTIFICATE_INVALID = 0x80120000
BAD_CERTIFICATE_TIME_INVALID = 0x80140000
BAD_CERTIFICATE_URI_INVALID = 0x80170000
BAD_CERTIFICATE_USE_NOT_ALLOWED = 0x80180000
BAD_CERTIFICATE_UNTRUSTED = 0x801A0000
BAD_CERTIFICATE_REVOKED = 0x801D0000
BAD_CERTIFICATE_POLICY_CHECK_FAILED = 0x81140000


class CertificateRejected(CityScadaError):
    """A peer certificate was refused; `status` is the precise OPC UA reason (clients are told less)."""

    def __init__(self, status: int, reason: str, thumbprint: str | None = None) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.thumbprint = thumbprint


@dataclass(frozen=True, slots=True)
class _Lists:
    trusted: dict[str, x509.Certificate]  # thumbprint -> certificate
    issuers: dict[str, x509.Certificate]
    crls: tuple[x509.CertificateRevocationList, ...]


class TrustList:
    """Checks peer certificates against the PKI folder's trusted/ and issuers/ (re-read when they change)."""

    def __init__(self, pki: PkiFolder) -> None:
        self.pki = pki
        self._signature: tuple[tuple[str, int, int], ...] | None = None
        self._lists = _Lists({}, {}, ())
        self._lock = threading.Lock()

    def _scan(self) -> tuple[tuple[str, int, int], ...]:
        entries: list[tuple[str, int, int]] = []
        for folder in (self.pki.trusted, self.pki.trusted / "crl", self.pki.issuers, self.pki.issuers / "crl"):
            try:
                with os.scandir(folder) as it:
                    for entry in it:
                        if entry.is_file():
                            info = entry.stat()
                            entries.append((entry.path, info.st_mtime_ns, info.st_size))
            except FileNotFoundError:
                continue
        return tuple(sorted(entries))

    def lists(self) -> _Lists:
        """The current trusted and issuer certificates and CRLs (re-read if any file changed)."""
        signature = self._scan()
        with self._lock:
            if signature != self._signature:
                self._lists = self._load()
                self._signature = signature
                log.info(
                    "trust list loaded: %d trusted, %d issuers, %d CRLs",
                    len(self._lists.trusted),
                    len(self._lists.issuers),
                    len(self._lists.crls),
                )
            return self._lists

    def _load(self) -> _Lists:
        def certs(folder: Path) -> dict[str, x509.Certificate]:
            found: dict[str, x509.Certificate] = {}
            for path in self.pki.files(folder):
                try:
                    cert = load_certificate_bytes(path.read_bytes())
                except (OSError, ValueError) as exc:
                    log.warning("ignoring %s: not a certificate (%s)", path, exc)
                    continue
                found[certificate_thumbprint(der_of(cert))] = cert
            return found

        crls: list[x509.CertificateRevocationList] = []
        for folder in (self.pki.trusted / "crl", self.pki.issuers / "crl"):
            for path in self.pki.files(folder, CRL_SUFFIXES):
                try:
                    data = path.read_bytes()
                    crl = x509.load_pem_x509_crl(data) if b"-----BEGIN" in data else x509.load_der_x509_crl(data)
                except (OSError, ValueError) as exc:
                    log.warning("ignoring %s: not a CRL (%s)", path, exc)
                    continue
                crls.append(crl)
        return _Lists(certs(self.pki.trusted), certs(self.pki.issuers), tuple(crls))

    def check(self, blob: bytes, uri: str | None = None) -> x509.Certificate:
        """The peer's certificate if accepted (blob: DER, maybe a chain); CertificateRejected with the reason."""
        try:
            chain = [x509.load_der_x509_certificate(part) for part in split_der(blob)]
        except ValueError as exc:
            raise CertificateRejected(BAD_CERTIFICATE_INVALID, f"not a DER certificate: {exc}") from None
        leaf = chain[0]
        thumbprint = certificate_thumbprint(der_of(leaf))
        now = self.pki.clock()
        if not leaf.not_valid_before_utc <= now <= leaf.not_valid_after_utc:
            raise CertificateRejected(
                BAD_CERTIFICATE_TIME_INVALID,
                f"valid {leaf.not_valid_before_utc:%Y-%m-%d} to {leaf.not_valid_after_utc:%Y-%m-%d} only",
                thumbprint,
            )
        key = leaf.public_key()
        if not isinstance(key, rsa.RSAPublicKey) or key.key_size < MIN_KEY_BITS:
            raise CertificateRejected(
                BAD_CERTIFICATE_POLICY_CHECK_FAILED, f"needs an RSA key of {MIN_KEY_BITS} bits or more", thumbprint
            )
        if uri is not None and application_uri(leaf) != uri:
            raise CertificateRejected(
                BAD_CERTIFICATE_URI_INVALID,
                f"certificate URI {application_uri(leaf)!r} differs from the application URI {uri!r}",
                thumbprint,
            )
        lists = self.lists()
        if thumbprint in lists.trusted:
            return leaf
        self._chain_to_anchor(leaf, chain[1:], lists, now, thumbprint)
        return leaf

    def _chain_to_anchor(
        self,
        leaf: x509.Certificate,
        sent: Sequence[x509.Certificate],
        lists: _Lists,
        now: datetime,
        thumbprint: str,
    ) -> None:
        """Walk issuer by issuer to a trusted CA; CertificateRejected (untrusted, revoked, invalid) otherwise."""
        anchors = [c for c in lists.trusted.values() if is_ca(c)]
        helpers = [*lists.issuers.values(), *(c for c in sent if is_ca(c))]
        current = leaf
        for _depth in range(MAX_CHAIN):
            for pool, trusted in ((anchors, True), (helpers, False)):
                issuer = _issuer_of(current, pool, now)
                if issuer is None:
                    continue
                if _revoked(current, issuer, lists.crls, now):
                    raise CertificateRejected(
                        BAD_CERTIFICATE_REVOKED, f"{common_name(current.subject)} is revoked", thumbprint
                    )
                if trusted:
                    return
                current = issuer
                break
            else:
                break
        raise CertificateRejected(BAD_CERTIFICATE_UNTRUSTED, "not in the trust list", thumbprint)


def _issuer_of(cert: x509.Certificate, pool: Iterable[x509.Certificate], now: datetime) -> x509.Certificate | None:
    """The CA of `pool` that signed `cert` and is valid now, or None."""
    for candidate in pool:
        if candidate.subject != cert.issuer or candidate is cert:
            continue
        if not candidate.not_valid_before_utc <= now <= candidate.not_valid_after_utc:
            continue
        try:
            cert.verify_directly_issued_by(candidate)
        except (InvalidSignature, ValueError, TypeError):
            continue
        return candidate
    return None


def _revoked(
    cert: x509.Certificate, issuer: x509.Certificate, crls: Iterable[x509.CertificateRevocationList], now: datetime
) -> bool:
    """True when a valid CRL of `issuer` lists `cert`'s serial number."""
    for crl in crls:
        if crl.issuer != issuer.subject:
            continue
        try:
            if not crl.is_signature_valid(issuer.public_key()):  # type: ignore[arg-type]
                continue
        except (TypeError, ValueError):
            continue
        if crl.get_revoked_certificate_by_serial_number(cert.serial_number) is not None:
            return True
    return False
