"""The PKI folder: the server's own certificate (fields, renewal, archive) and the trust list (direct, CA, CRL)."""

from __future__ import annotations

import io
import ipaddress
import os
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from uasec_kit import make_app_cert

from scada.security.pki import (
    BAD_CERTIFICATE_INVALID,
    BAD_CERTIFICATE_POLICY_CHECK_FAILED,
    BAD_CERTIFICATE_REVOKED,
    BAD_CERTIFICATE_TIME_INVALID,
    BAD_CERTIFICATE_UNTRUSTED,
    BAD_CERTIFICATE_URI_INVALID,
    CertificateRejected,
    PkiError,
    PkiFolder,
    TrustList,
    der_of,
    make_application_certificate,
    new_key,
    split_der,
)
from scada.security.pki_cli import pki_main

URI = "urn:cityscada:server"
T0 = datetime(2026, 1, 10, 8, 0, tzinfo=UTC)


class Clock:
    """A fixed clock the test moves."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def ensure(pki: PkiFolder):  # type: ignore[no-untyped-def]
    return pki.ensure_own(URI, "cityscada", hostnames=["scada.example", "localhost"], addresses=["10.1.2.3"])


def test_the_own_certificate_is_made_for_opc_ua(tmp_path: Path) -> None:
    pki = PkiFolder(tmp_path / "pki", clock=Clock(T0))
    own = ensure(pki)
    cert = own.certificate
    assert own.created and not own.renewed
    assert isinstance(cert.public_key(), rsa.RSAPublicKey) and cert.public_key().key_size == 2048
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.UniformResourceIdentifier) == [URI]
    assert san.get_values_for_type(x509.DNSName) == ["scada.example", "localhost"]
    assert san.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("10.1.2.3")]
    usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.digital_signature and usage.content_commitment and usage.key_encipherment and usage.data_encipherment
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert set(eku) == {ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH}
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "cityscada"
    assert cert.signature_hash_algorithm is not None and cert.signature_hash_algorithm.name == "sha256"
    cert.verify_directly_issued_by(cert)  # self-signed
    assert cert.not_valid_before_utc <= T0 < cert.not_valid_after_utc
    assert stat.S_IMODE(os.stat(pki.key_path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(pki.root).st_mode) == 0o700
    for folder in ("own", "trusted", "rejected", "issuers"):
        assert (pki.root / folder).is_dir()
    again = ensure(pki)
    assert again.der == own.der and not again.created and not again.renewed


def test_the_own_certificate_is_renewed_when_30_days_remain_and_the_old_one_archived(tmp_path: Path) -> None:
    clock = Clock(T0)
    pki = PkiFolder(tmp_path / "pki", clock=clock)
    first = ensure(pki)
    clock.now = first.not_after - timedelta(days=31)
    assert ensure(pki).der == first.der  # 31 days left: kept
    clock.now = first.not_after - timedelta(days=29)
    second = ensure(pki)
    assert second.renewed and second.der != first.der
    assert second.certificate.not_valid_before_utc <= clock.now < second.certificate.not_valid_after_utc
    archived = sorted(p.name for p in pki.archive.iterdir())
    assert len(archived) == 2 and archived[0].endswith(f"{first.thumbprint[:16]}.der")
    assert (pki.archive / archived[0]).read_bytes() == first.der
    assert stat.S_IMODE(os.stat(pki.archive / archived[1]).st_mode) == 0o600  # the old key
    assert pki.own() is not None and pki.own().der == second.der  # type: ignore[union-attr]


def test_an_own_certificate_for_another_uri_is_replaced(tmp_path: Path) -> None:
    pki = PkiFolder(tmp_path / "pki", clock=Clock(T0))
    old = pki.ensure_own("urn:elsewhere", "x")
    assert ensure(pki).der != old.der


def trusting(tmp_path: Path, now: datetime = T0) -> tuple[PkiFolder, TrustList]:
    pki = PkiFolder(tmp_path / "pki", clock=Clock(now))
    pki.ensure_folders()
    return pki, TrustList(pki)


def refusal(trust: TrustList, blob: bytes, **kwargs: object) -> int:
    with pytest.raises(CertificateRejected) as info:
        trust.check(blob, **kwargs)  # type: ignore[arg-type]
    return info.value.status


def test_a_self_signed_certificate_is_trusted_only_once_in_trusted(tmp_path: Path) -> None:
    pki, trust = trusting(tmp_path, datetime.now(UTC))
    app = make_app_cert(tmp_path / "c")
    assert refusal(trust, app.der) == BAD_CERTIFICATE_UNTRUSTED
    assert pki.record_rejected(app.der) == pki.rejected / f"{app.thumbprint}.der"
    pki.trust(app.thumbprint[:10])
    assert trust.check(app.der).serial_number == x509.load_der_x509_certificate(app.der).serial_number
    assert refusal(trust, app.der, uri="urn:other") == BAD_CERTIFICATE_URI_INVALID
    pki.reject(app.thumbprint)
    assert refusal(trust, app.der) == BAD_CERTIFICATE_UNTRUSTED


def test_expired_small_key_and_garbage_certificates_are_refused(tmp_path: Path) -> None:
    pki, trust = trusting(tmp_path, T0)
    key = new_key()
    expired = make_application_certificate(key, "urn:x", "x", now=T0 - timedelta(days=400), lifetime=timedelta(days=30))
    pki.trust(_write(tmp_path / "expired.der", der_of(expired)))
    assert refusal(trust, der_of(expired)) == BAD_CERTIFICATE_TIME_INVALID
    small = make_application_certificate(rsa.generate_private_key(65537, 1024), "urn:y", "y", now=T0)
    pki.trust(_write(tmp_path / "small.der", der_of(small)))
    assert refusal(trust, der_of(small)) == BAD_CERTIFICATE_POLICY_CHECK_FAILED
    assert refusal(trust, b"\x30\x82\x01\x00garbage") == BAD_CERTIFICATE_INVALID
    assert refusal(trust, b"") == BAD_CERTIFICATE_INVALID


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def make_ca(name: str, now: datetime, issuer: tuple[x509.Certificate, rsa.RSAPrivateKey] | None = None):  # type: ignore[no-untyped-def]
    key = new_key()
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    signer_cert, signer_key = issuer if issuer else (None, key)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(signer_cert.subject if signer_cert else subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
        .sign(signer_key, hashes.SHA256())
    )
    return cert, key


def crl_of(
    ca: x509.Certificate, key: rsa.RSAPrivateKey, now: datetime, *serials: int
) -> x509.CertificateRevocationList:
    builder = x509.CertificateRevocationListBuilder().issuer_name(ca.subject)
    builder = builder.last_update(now - timedelta(hours=1)).next_update(now + timedelta(days=7))
    for serial in serials:
        builder = builder.add_revoked_certificate(
            x509.RevokedCertificateBuilder().serial_number(serial).revocation_date(now - timedelta(hours=1)).build()
        )
    return builder.sign(key, hashes.SHA256())


def test_a_certificate_issued_by_a_trusted_ca_through_an_intermediate_is_accepted_unless_revoked(
    tmp_path: Path,
) -> None:
    from cryptography.hazmat.primitives.serialization import Encoding

    pki, trust = trusting(tmp_path, T0)
    root, root_key = make_ca("City Root CA", T0)
    inter, inter_key = make_ca("Control Room CA", T0, (root, root_key))
    leaf_key = new_key()
    leaf = make_application_certificate(leaf_key, "urn:console:1", "console-1", now=T0, issuer=(inter, inter_key))
    other = make_application_certificate(new_key(), "urn:console:2", "console-2", now=T0, issuer=(inter, inter_key))
    assert refusal(trust, der_of(leaf)) == BAD_CERTIFICATE_UNTRUSTED  # nothing trusted yet
    (pki.trusted / "root.der").write_bytes(der_of(root))
    assert refusal(trust, der_of(leaf)) == BAD_CERTIFICATE_UNTRUSTED  # the intermediate is unknown
    assert trust.check(der_of(leaf) + der_of(inter))  # ... unless the client sends its chain
    (pki.issuers / "inter.der").write_bytes(der_of(inter))
    assert trust.check(der_of(leaf)) and trust.check(der_of(other))
    assert split_der(der_of(leaf) + der_of(inter)) == [der_of(leaf), der_of(inter)]
    (pki.issuers / "crl" / "inter.crl").write_bytes(
        crl_of(inter, inter_key, T0, leaf.serial_number).public_bytes(Encoding.DER)
    )
    assert refusal(trust, der_of(leaf)) == BAD_CERTIFICATE_REVOKED
    assert trust.check(der_of(other))
    forged = crl_of(inter, new_key(), T0, other.serial_number)  # not signed by the intermediate: ignored
    (pki.issuers / "crl" / "forged.crl").write_bytes(forged.public_bytes(Encoding.DER))
    assert trust.check(der_of(other))
    impostor, impostor_key = make_ca("Control Room CA", T0)  # same name, another key
    fake = make_application_certificate(new_key(), "urn:console:3", "c3", now=T0, issuer=(impostor, impostor_key))
    assert refusal(trust, der_of(fake)) == BAD_CERTIFICATE_UNTRUSTED


def test_pki_cli_lists_trusts_rejects_and_removes(tmp_path: Path) -> None:
    pki = PkiFolder(tmp_path / "data" / "pki")
    ensure(pki)
    app = make_app_cert(tmp_path / "c", "console", "urn:console")
    pki.record_rejected(app.der)
    data = ["--data-dir", str(tmp_path / "data")]

    def run(*argv: str) -> tuple[int, str, str]:
        out, err = io.StringIO(), io.StringIO()
        code = pki_main([*argv, *data], stdout=out, stderr=err)
        return code, out.getvalue(), err.getvalue()

    code, out, _ = run("list")
    lines = out.splitlines()
    assert code == 0 and len(lines) == 3
    assert lines[1].startswith("own") and URI in lines[1]
    assert lines[2].startswith("rejected") and app.thumbprint[:16] in lines[2] and "urn:console" in lines[2]
    assert run("trust", f"{app.thumbprint}.der")[0] == 0
    assert run("list", "--state", "trusted")[1].splitlines()[1].startswith("trusted")
    assert run("reject", app.thumbprint[:8])[0] == 0
    assert (pki.rejected / f"{app.thumbprint}.der").exists()
    code, _, err = run("trust", "abc")
    assert code == 1 and "8+ hex digits" in err
    code, _, err = run("trust", "0123456789abcdef")
    assert code == 1 and "no certificate matches" in err
    assert run("remove", app.thumbprint)[0] == 0
    assert not any(pki.rejected.iterdir())
    outside = make_app_cert(tmp_path / "o", "tablet", "urn:tablet")
    code, out, _ = run("trust", str(outside.cert))
    assert code == 0 and (pki.trusted / f"{outside.thumbprint}.der").read_bytes() == outside.der


def test_rejected_certificates_do_not_fill_the_disk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import scada.security.pki as pki_module

    monkeypatch.setattr(pki_module, "MAX_REJECTED", 2)
    pki, _ = trusting(tmp_path)
    kept = [pki.record_rejected(make_app_cert(tmp_path / f"c{i}", f"c{i}").der) for i in range(3)]
    assert kept[0] is not None and kept[1] is not None and kept[2] is None
    assert len(list(pki.rejected.iterdir())) == 2


def test_an_unknown_file_name_is_an_error(tmp_path: Path) -> None:
    pki, _ = trusting(tmp_path)
    with pytest.raises(PkiError):
        pki.find("no-such-file.der")
