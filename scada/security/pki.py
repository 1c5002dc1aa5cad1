"""The server's PKI folder: its own application instance certificate (created, renewed, archived) and the trust list.

Layout (OPC UA Part 12 "directory store", flattened)::

    <root>/own/cert.der, own/key.pem (0600), own/archive/<UTC time>-<thumbprint[:16]>.{der,pem}
    <root>/trusted/*.der|pem   trusted/crl/*.crl|der|pem   certificates trusted directly, or CAs trusted to issue
    <root>/issuers/*.der|pem   issuers/crl/...              intermediate CAs used to build chains (not trusted alone)
    <root>/rejected/<thumbprint>.der                        certificates refused as unknown, until trusted

A client certificate is accepted when it is valid now, has an RSA key of 2048 bits or more, and either is itself in
trusted/ or chains (signature by signature, through issuers/ and the chain the client sent) to a CA in trusted/,
no certificate of the chain being revoked by a CRL of its issuer. Thumbprints are SHA-256 of the DER (64 hex
digits, as for user certificates). The trust list (scada.security.trust) is re-read whenever a file of trusted/ or issuers/
changes, so `cityscada pki trust` takes effect at the next secure channel, without restarting the server.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from scada.model import CityScadaError, utcnow
from scada.security.certs import (
    KEY_BITS,
    LIFETIME,
    application_uri,
    common_name,
    der_of,
    dns_names,
    is_ca,
    key_pem,
    load_certificate_bytes,
    make_application_certificate,
    new_key,
    split_der,
)
from scada.security.trust import (
    BAD_CERTIFICATE_INVALID,
    BAD_CERTIFICATE_POLICY_CHECK_FAILED,
    BAD_CERTIFICATE_REVOKED,
    BAD_CERTIFICATE_TIME_INVALID,
    BAD_CERTIFICATE_UNTRUSTED,
    BAD_CERTIFICATE_URI_INVALID,
    BAD_CERTIFICATE_USE_NOT_ALLOWED,
    CertificateRejected,
    TrustList,
)
from scada.security.users import certificate_thumbprint

__all__ = [
    "BAD_CERTIFICATE_INVALID",
    "BAD_CERTIFICATE_POLICY_CHECK_FAILED",
    "BAD_CERTIFICATE_REVOKED",
    "BAD_CERTIFICATE_TIME_INVALID",
    "BAD_CERTIFICATE_UNTRUSTED",
    "BAD_CERTIFICATE_URI_INVALID",
    "BAD_CERTIFICATE_USE_NOT_ALLOWED",
    "KEY_BITS",
    "LIFETIME",
    "CertInfo",
    "CertificateRejected",
    "OwnCertificate",
    "PkiError",
    "PkiFolder",
    "TrustList",
    "der_of",
    "key_pem",
    "load_certificate_bytes",
    "make_application_certificate",
    "new_key",
    "split_der",
]

log = logging.getLogger(__name__)

RENEW_BEFORE = timedelta(days=30)
MAX_REJECTED = 1000  # the rejected/ folder stops growing beyond this (a flood of fresh certificates fills no disk)
CERT_SUFFIXES = (".der", ".pem", ".crt", ".cer")


class PkiError(CityScadaError):
    """The PKI folder cannot be used or changed as asked."""


@dataclass(frozen=True, slots=True)
class CertInfo:
    """What an administrator needs to recognise a certificate."""

    thumbprint: str
    state: str  # own, trusted, issuer, rejected
    subject: str
    application_uri: str | None
    issuer: str
    not_before: datetime
    not_after: datetime
    is_ca: bool
    path: Path


@dataclass(frozen=True, slots=True)
class OwnCertificate:
    """The server's application instance certificate and key, and what ensure_own() did."""

    der: bytes
    key_pem: bytes
    certificate: x509.Certificate
    created: bool = False
    renewed: bool = False

    @property
    def thumbprint(self) -> str:
        """SHA-256 thumbprint of the certificate."""
        return certificate_thumbprint(self.der)

    @property
    def not_after(self) -> datetime:
        """When the certificate expires."""
        return self.certificate.not_valid_after_utc


def describe(cert: x509.Certificate, path: Path, state: str) -> CertInfo:
    """The CertInfo of a certificate file."""
    return CertInfo(
        thumbprint=certificate_thumbprint(der_of(cert)),
        state=state,
        subject=common_name(cert.subject),
        application_uri=application_uri(cert),
        issuer=common_name(cert.issuer),
        not_before=cert.not_valid_before_utc,
        not_after=cert.not_valid_after_utc,
        is_ca=is_ca(cert),
        path=path,
    )


def _write_bytes(path: Path, data: bytes, mode: int) -> None:
    """Atomically replace `path` (temp + fsync + rename) with `data`, file mode `mode`."""
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        os.fchmod(fd, mode)
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


class PkiFolder:
    """The PKI folder: own certificate management and the administrator's operations on the trust list."""

    def __init__(self, root: str | Path, clock: Callable[[], datetime] = utcnow) -> None:
        self.root = Path(root)
        self.clock = clock
        self.own_dir = self.root / "own"
        self.archive = self.own_dir / "archive"
        self.trusted = self.root / "trusted"
        self.issuers = self.root / "issuers"
        self.rejected = self.root / "rejected"
        self.cert_path = self.own_dir / "cert.der"
        self.key_path = self.own_dir / "key.pem"
        self._own_lock = threading.Lock()

    def ensure_folders(self) -> None:
        """Create the folders (mode 0700: only the service account reads keys and decides trust)."""
        for folder in (self.own_dir, self.archive, self.trusted / "crl", self.issuers / "crl", self.rejected):
            folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        with contextlib.suppress(OSError):
            os.chmod(self.root, 0o700)

    # -- own certificate ---------------------------------------------------------------------------------

    def own(self) -> OwnCertificate | None:
        """The current own certificate and key, or None when there is none (or it cannot be read)."""
        try:
            der = self.cert_path.read_bytes()
            pem = self.key_path.read_bytes()
            cert = x509.load_der_x509_certificate(der)
            serialization.load_pem_private_key(pem, password=None)
        except (OSError, ValueError) as exc:
            if self.cert_path.exists():
                log.error("own certificate in %s unreadable (%s): a new one will be made", self.own_dir, exc)
            return None
        return OwnCertificate(der, pem, cert)

    def needs_renewal(self, own: OwnCertificate | None, uri: str, renew_before: timedelta = RENEW_BEFORE) -> bool:
        """True when there is no usable own certificate, it names another URI, or it expires within renew_before."""
        if own is None:
            return True
        if application_uri(own.certificate) != uri:
            return True
        return own.not_after - self.clock() < renew_before

    def ensure_own(
        self,
        uri: str,
        name: str,
        *,
        hostnames: Sequence[str] = (),
        addresses: Sequence[str] = (),
        organization: str = "cityscada",
        renew_before: timedelta = RENEW_BEFORE,
        lifetime: timedelta = LIFETIME,
    ) -> OwnCertificate:
        """The own certificate: created on first use, renewed (old one archived) when it is due; RSA 2048."""
        with self._own_lock:
            self.ensure_folders()
            current = self.own()
            if not self.needs_renewal(current, uri, renew_before):
                assert current is not None
                missing = set(hostnames) - set(dns_names(current.certificate))
                if missing:
                    log.warning("own certificate does not name %s: clients checking host names may refuse it", missing)
                return current
            now = self.clock()
            key = new_key()
            cert = make_application_certificate(
                key,
                uri,
                name,
                hostnames=hostnames,
                addresses=addresses,
                organization=organization,
                now=now,
                lifetime=lifetime,
            )
            if current is not None:
                self._archive(current, now)
            _write_bytes(self.key_path, key_pem(key), 0o600)
            _write_bytes(self.cert_path, der_of(cert), 0o644)
            own = OwnCertificate(der_of(cert), key_pem(key), cert, created=current is None, renewed=current is not None)
            log.info(
                "%s own certificate %s (%s, valid until %s)",
                "renewed" if own.renewed else "created",
                own.thumbprint[:16],
                uri,
                cert.not_valid_after_utc.isoformat(),
            )
            return own

    def _archive(self, own: OwnCertificate, now: datetime) -> None:
        stem = f"{now:%Y%m%dT%H%M%SZ}-{own.thumbprint[:16]}"
        _write_bytes(self.archive / f"{stem}.der", own.der, 0o644)
        _write_bytes(self.archive / f"{stem}.pem", own.key_pem, 0o600)

    # -- listing and the administrator's operations ------------------------------------------------------

    def files(self, folder: Path, suffixes: Sequence[str] = CERT_SUFFIXES) -> list[Path]:
        """The files of a folder with one of the suffixes, sorted (none when the folder is missing)."""
        try:
            return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in suffixes)
        except FileNotFoundError:
            return []

    def entries(self) -> list[CertInfo]:
        """Every certificate of the folder (own, trusted, issuers, rejected); unreadable files are logged."""
        found: list[CertInfo] = []
        own = self.own()
        if own is not None:
            found.append(describe(own.certificate, self.cert_path, "own"))
        for state, folder in (("trusted", self.trusted), ("issuer", self.issuers), ("rejected", self.rejected)):
            for path in self.files(folder):
                try:
                    found.append(describe(load_certificate_bytes(path.read_bytes()), path, state))
                except (OSError, ValueError) as exc:
                    log.warning("%s is not a certificate (%s)", path, exc)
        return found

    def find(self, ref: str, states: Sequence[str] = ("trusted", "issuer", "rejected")) -> CertInfo:
        """The certificate a reference names: a thumbprint, a unique prefix of one (8+ hex digits) or a file name."""
        ref = ref.strip()
        candidates = [e for e in self.entries() if e.state in states]
        by_name = [e for e in candidates if e.path.name == Path(ref).name]
        if by_name:
            return by_name[0]
        needle = ref.replace(":", "").lower()
        if len(needle) < 8 or any(c not in "0123456789abcdef" for c in needle):
            raise PkiError(f"no certificate file named {ref!r} (a thumbprint reference needs 8+ hex digits)")
        matches = {e.thumbprint: e for e in candidates if e.thumbprint.startswith(needle)}
        if not matches:
            raise PkiError(f"no certificate matches {ref!r}")
        if len(matches) > 1:
            raise PkiError(f"{ref!r} matches {len(matches)} certificates: give more digits")
        return next(iter(matches.values()))

    def trust(self, ref: str | Path) -> CertInfo:
        """Trust a certificate: a rejected one moves to trusted/; an outside file (PEM/DER) is copied there."""
        path = Path(ref)
        if path.is_file() and self.root.resolve() not in path.resolve().parents:
            return self._import(path)
        entry = self.find(str(ref), ("rejected", "trusted", "issuer"))
        if entry.state == "trusted":
            return entry
        target = self.trusted / f"{entry.thumbprint}.der"
        if entry.state == "issuer":  # an intermediate CA becomes a trust anchor: copy, keep it as an issuer too
            shutil.copyfile(entry.path, target)
        else:
            self.trusted.mkdir(parents=True, exist_ok=True, mode=0o700)
            os.replace(entry.path, target)
        log.info("certificate %s (%s) trusted", entry.thumbprint[:16], entry.subject)
        return describe(load_certificate_bytes(target.read_bytes()), target, "trusted")

    def _import(self, path: Path) -> CertInfo:
        try:
            cert = load_certificate_bytes(path.read_bytes())
        except (OSError, ValueError) as exc:
            raise PkiError(f"{path} is not a certificate ({exc})") from None
        der = der_of(cert)
        self.ensure_folders()
        target = self.trusted / f"{certificate_thumbprint(der)}.der"
        _write_bytes(target, der, 0o644)
        with contextlib.suppress(FileNotFoundError):
            (self.rejected / target.name).unlink()
        log.info("certificate %s (%s) imported as trusted", target.stem[:16], common_name(cert.subject))
        return describe(cert, target, "trusted")

    def reject(self, ref: str) -> CertInfo:
        """Stop trusting a certificate: it moves from trusted/ to rejected/."""
        entry = self.find(ref, ("trusted", "rejected"))
        if entry.state == "rejected":
            return entry
        target = self.rejected / f"{entry.thumbprint}.der"
        self.rejected.mkdir(parents=True, exist_ok=True, mode=0o700)
        _write_bytes(target, der_of(load_certificate_bytes(entry.path.read_bytes())), 0o644)
        entry.path.unlink()
        log.info("certificate %s (%s) no longer trusted", entry.thumbprint[:16], entry.subject)
        return describe(load_certificate_bytes(target.read_bytes()), target, "rejected")

    def remove(self, ref: str) -> CertInfo:
        """Delete a certificate from trusted/, issuers/ or rejected/."""
        entry = self.find(ref)
        entry.path.unlink()
        log.info("certificate %s (%s) removed from %s", entry.thumbprint[:16], entry.subject, entry.state)
        return entry

    def record_rejected(self, der: bytes) -> Path | None:
        """Keep a copy of a refused certificate in rejected/<thumbprint>.der (at most MAX_REJECTED files)."""
        target = self.rejected / f"{certificate_thumbprint(der)}.der"
        if target.exists():
            return target
        try:
            self.rejected.mkdir(parents=True, exist_ok=True, mode=0o700)
            if sum(1 for _ in self.rejected.iterdir()) >= MAX_REJECTED:
                log.warning("rejected/ holds %d certificates: not keeping more", MAX_REJECTED)
                return None
            _write_bytes(target, der, 0o644)
        except OSError as exc:
            log.error("cannot keep the rejected certificate in %s: %s", self.rejected, exc)
            return None
        return target
