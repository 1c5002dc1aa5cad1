"""X.509 helpers of the PKI: OPC UA application instance certificates, keys, DER chains, names and URIs."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from datetime import datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from scada.model import utcnow

KEY_BITS = 2048
LIFETIME = timedelta(days=730)


def split_der(blob: bytes) -> list[bytes]:
    """The DER certificates of a blob holding one or several concatenated (a chain as OPC UA sends it)."""
    parts: list[bytes] = []
    pos = 0
    while pos < len(blob):
        if blob[pos] != 0x30 or pos + 2 > len(blob):
            raise ValueError("not a DER certificate sequence")
        first = blob[pos + 1]
        if first < 0x80:
            length, header = first, 2
        else:
            count = first & 0x7F
            if count == 0 or count > 4 or pos + 2 + count > len(blob):
                raise ValueError("bad DER length")
            length, header = int.from_bytes(blob[pos + 2 : pos + 2 + count], "big"), 2 + count
        end = pos + header + length
        if end > len(blob):
            raise ValueError("truncated DER certificate")
        parts.append(blob[pos:end])
        pos = end
    if not parts:
        raise ValueError("empty certificate")
    return parts


def load_certificate_bytes(data: bytes) -> x509.Certificate:
    """A certificate from PEM or DER bytes (the first of a DER chain); ValueError otherwise."""
    if b"-----BEGIN" in data:
        return x509.load_pem_x509_certificate(data)
    return x509.load_der_x509_certificate(split_der(data)[0])


def der_of(cert: x509.Certificate) -> bytes:
    """The DER encoding of a certificate."""
    return cert.public_bytes(serialization.Encoding.DER)


def common_name(name: x509.Name) -> str:
    """The CN of a name, else its RFC 4514 text."""
    cns = name.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(cns[0].value) if cns else name.rfc4514_string()


def application_uri(cert: x509.Certificate) -> str | None:
    """The URI in the certificate's SubjectAltName (the OPC UA application URI), or None."""
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return None
    uris = san.get_values_for_type(x509.UniformResourceIdentifier)
    return uris[0] if uris else None


def is_ca(cert: x509.Certificate) -> bool:
    """True when basicConstraints says cA."""
    try:
        return bool(cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except x509.ExtensionNotFound:
        return False


def make_application_certificate(
    key: rsa.RSAPrivateKey,
    uri: str,
    name: str,
    *,
    hostnames: Iterable[str] = (),
    addresses: Iterable[str] = (),
    organization: str = "cityscada",
    now: datetime | None = None,
    lifetime: timedelta = LIFETIME,
    issuer: tuple[x509.Certificate, rsa.RSAPrivateKey] | None = None,
) -> x509.Certificate:
    """An OPC UA application instance certificate (Part 6 6.2.2): self-signed, or signed by `issuer` (cert, key).

    SubjectAltName carries the application URI, the DNS names and the IP addresses; key usage allows signatures,
    key and data encipherment (and certificate signing when self-signed); extended key usage is server and client
    authentication. Valid from one hour before `now` (clock skew) for `lifetime`.
    """
    now = now or utcnow()
    subject = x509.Name(
        [x509.NameAttribute(NameOID.COMMON_NAME, name), x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization)]
    )
    alt: list[x509.GeneralName] = [x509.UniformResourceIdentifier(uri)]
    alt += [x509.DNSName(h) for h in dict.fromkeys(hostnames) if h]
    alt += [x509.IPAddress(ipaddress.ip_address(a)) for a in dict.fromkeys(addresses) if a]
    signer_cert, signer_key = issuer if issuer is not None else (None, key)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(signer_cert.subject if signer_cert is not None else subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(hours=1))
        .not_valid_after(now + lifetime)
        .add_extension(x509.SubjectAlternativeName(alt), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=True,
                key_encipherment=True,
                data_encipherment=True,
                key_agreement=False,
                key_cert_sign=signer_cert is None,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    signer_public = signer_cert.public_key() if signer_cert is not None else key.public_key()
    builder = builder.add_extension(
        x509.AuthorityKeyIdentifier.from_issuer_public_key(signer_public),  # type: ignore[arg-type]
        critical=False,
    )
    return builder.sign(signer_key, hashes.SHA256())


def new_key(bits: int = KEY_BITS) -> rsa.RSAPrivateKey:
    """A new RSA private key."""
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


def key_pem(key: rsa.RSAPrivateKey) -> bytes:
    """The unencrypted PKCS#8 PEM of a private key (the file holding it is mode 0600)."""
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def dns_names(cert: x509.Certificate) -> list[str]:
    """The DNS names of the certificate's SubjectAltName."""
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    return list(san.get_values_for_type(x509.DNSName))
