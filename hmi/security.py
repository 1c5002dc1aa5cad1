"""The console's side of OPC UA security: its own application certificate and the security string it uses.

A secure channel needs a client certificate the server trusts. The console makes its own on first use (RSA 2048,
self-signed, application URI urn:cityscada:console:<host>, in ~/.config/cityscada/pki by default); the server's
administrator trusts it once (`cityscada pki trust <thumbprint>`: the server keeps the refused certificate in its
rejected/ folder). The `--security` option accepts:

- "none": the None endpoint (a development server, or anonymous reading when the site allows it);
- "Basic256Sha256,SignAndEncrypt" (a policy and a mode): the console's own certificate;
- "Policy,Mode,client_cert,client_key[,server_cert]": asyncua's security string, as given;
- "auto" (the default): the console's own certificate with Basic256Sha256/SignAndEncrypt when a user logs in (a
  password never travels on an unsigned channel), the None endpoint otherwise.
"""

from __future__ import annotations

import hashlib
import socket
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

DEFAULT_POLICY = "Basic256Sha256,SignAndEncrypt"
CERT_NAME = "console.der"
KEY_NAME = "console-key.pem"


def default_pki_dir() -> Path:
    """Where the console keeps its certificate by default."""
    return Path.home() / ".config" / "cityscada" / "pki"


def console_uri(host: str | None = None) -> str:
    """The console's application URI on this machine."""
    return f"urn:cityscada:console:{host or socket.gethostname()}"


@dataclass(frozen=True, slots=True)
class ConsoleCertificate:
    """The console's application instance certificate and key files."""

    cert: Path
    key: Path
    uri: str
    thumbprint: str


def read_certificate(path: Path) -> x509.Certificate:
    """A certificate file, DER or PEM."""
    data = path.read_bytes()
    if data.lstrip().startswith(b"-----BEGIN"):
        return x509.load_pem_x509_certificate(data)
    return x509.load_der_x509_certificate(data)


def certificate_uri(path: Path) -> str | None:
    """The application URI (SubjectAltName URI) of a certificate file, None if it has none."""
    cert = read_certificate(path)
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        return None
    uris = san.value.get_values_for_type(x509.UniformResourceIdentifier)
    return uris[0] if uris else None


def thumbprint(path: Path) -> str:
    """SHA-256 of the certificate's DER encoding, lower-case hex (how `cityscada pki` names certificates)."""
    return hashlib.sha256(read_certificate(path).public_bytes(Encoding.DER)).hexdigest()


async def ensure_certificate(folder: Path | None = None) -> ConsoleCertificate:
    """The console's certificate in `folder`, created (or renewed when invalid or expired) if needed."""
    from asyncua.crypto.cert_gen import setup_self_signed_certificate
    from cryptography.x509.oid import ExtendedKeyUsageOID

    folder = folder or default_pki_dir()
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    cert, key = folder / CERT_NAME, folder / KEY_NAME
    host = socket.gethostname()
    uri = certificate_uri(cert) if cert.is_file() else None
    await setup_self_signed_certificate(
        key, cert, uri or console_uri(host), host, [ExtendedKeyUsageOID.CLIENT_AUTH], {"organizationName": "cityscada"}
    )
    key.chmod(0o600)
    return ConsoleCertificate(cert, key, certificate_uri(cert) or console_uri(host), thumbprint(cert))


async def resolve_security(option: str | None, user: str | None, pki_dir: Path | None = None) -> str | None:
    """The asyncua security string for a --security option (None: the None endpoint); see the module docstring."""
    text = (option or "auto").strip()
    if text.lower() == "none":
        return None
    if text.lower() == "auto":
        if not user:
            return None
        text = DEFAULT_POLICY
    parts = [part.strip() for part in text.split(",")]
    if len(parts) == 2:
        own = await ensure_certificate(pki_dir)
        return ",".join([*parts, str(own.cert), str(own.key)])
    if len(parts) < 4:
        raise ValueError(f"--security {option!r}: expected none, auto, Policy,Mode or Policy,Mode,cert,key[,server]")
    return ",".join(parts)


def security_certificate(security: str | None) -> Path | None:
    """The client certificate file named by a security string."""
    if not security:
        return None
    parts = security.split(",")
    return Path(parts[2]) if len(parts) >= 4 else None
