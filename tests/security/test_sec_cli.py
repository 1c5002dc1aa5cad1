"""`cityscada users add|passwd|remove|list` through users_main, on a copy of the small site."""

from __future__ import annotations

import datetime as dt
import io
import shutil
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from scada.security.auth import Authenticator
from scada.security.cli import users_main
from scada.security.roles import Role
from scada.security.users import UserStore, certificate_thumbprint

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def site(tmp_path: Path) -> Path:
    folder = tmp_path / "small"
    folder.mkdir()
    shutil.copy(ROOT / "config" / "small" / "site.yaml", folder / "site.yaml")
    return folder


def run(*argv: str, stdin: str = "") -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = users_main(list(argv), stdin=io.StringIO(stdin), stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


def test_add_passwd_remove_list(site: Path) -> None:
    code, out, err = run("add", "--site", str(site), "jeanne", "--role", "Operator", "--role", "Observer",
                         "--password-stdin", stdin="first long password\n")  # fmt: skip
    assert (code, err) == (0, "") and "added jeanne (Observer, Operator)" in out
    users_file = site / "users.yaml"
    text = users_file.read_text()
    assert "first long password" not in text and "$argon2id$v=19$m=19456,t=2,p=1$" in text
    authenticator = Authenticator(UserStore(users_file))
    assert authenticator.authenticate("jeanne", "first long password").roles == {Role.OPERATOR, Role.OBSERVER}

    code, out, _ = run("passwd", "--site", str(site), "jeanne", "--password-stdin", stdin="second long password\r\n")
    assert code == 0 and "password of jeanne changed" in out
    assert "second long password" not in users_file.read_text()
    assert authenticator.authenticate("jeanne", "second long password").name == "jeanne"

    code, out, _ = run("list", "--site", str(site))
    assert code == 0 and "jeanne" in out and "Observer,Operator" in out and "$argon2id" not in out

    code, out, _ = run("remove", "--site", str(site), "jeanne")
    assert code == 0 and "removed jeanne" in out
    assert UserStore(users_file).users() == []


def test_refusals(site: Path) -> None:
    assert (
        run("add", "--site", str(site), "ana", "--role", "Operator", "--password-stdin", stdin="long enough pw\n")[0]
        == 0
    )
    code, _, err = run(
        "add", "--site", str(site), "ANA", "--role", "Operator", "--password-stdin", stdin="long enough pw\n"
    )
    assert code == 1 and "user 'ana' already exists" in err
    code, _, err = run("add", "--site", str(site), "bob", "--role", "Operator", "--password-stdin", stdin="short\n")
    assert code == 1 and "at least 12 characters" in err
    code, _, err = run(
        "add", "--site", str(site), "bob", "--role", "Root", "--password-stdin", stdin="long enough pw\n"
    )
    assert code == 1 and "unknown role 'Root'" in err
    code, _, err = run("passwd", "--site", str(site), "nobody", "--password-stdin", stdin="long enough pw\n")
    assert code == 1 and "no user 'nobody'" in err
    code, _, err = run("remove", "--site", str(site), "nobody")
    assert code == 1 and "no user 'nobody'" in err
    code, _, err = run("add", "--site", str(site), "bob", "--role", "Operator")  # stdin is not a terminal
    assert code == 1 and "use --password-stdin" in err
    code, _, err = run("list", "--site", str(site / "absent"))
    assert code == 2 and "site.yaml: (file): file not found" in err


def test_a_password_is_never_taken_from_the_command_line(site: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        users_main(["add", "--site", str(site), "eve", "--role", "Operator", "--password", "in the process list"])
    assert info.value.code == 2
    assert "unrecognized arguments" in capsys.readouterr().err


def test_interactive_prompt_asks_twice(site: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    answers = iter(["typed long password", "typed long password", "typed long password", "a different one!!"])
    monkeypatch.setattr("getpass.getpass", lambda prompt="": next(answers))

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    out, err = io.StringIO(), io.StringIO()
    assert (
        users_main(["add", "--site", str(site), "tty", "--role", "Engineer"], stdin=Terminal(), stdout=out, stderr=err)
        == 0
    )
    assert users_main(["passwd", "--site", str(site), "tty"], stdin=Terminal(), stdout=out, stderr=err) == 1
    assert "the two passwords differ" in err.getvalue()


def self_signed(tmp_path: Path) -> tuple[bytes, Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "traffic-centre")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=30))
        .sign(key, hashes.SHA256())
    )
    der = cert.public_bytes(serialization.Encoding.DER)
    pem_path, der_path = tmp_path / "user.pem", tmp_path / "user.der"
    pem_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    der_path.write_bytes(der)
    return der, pem_path, der_path


def test_certificate_only_account(site: Path, tmp_path: Path) -> None:
    der, pem_path, der_path = self_signed(tmp_path)
    code, _, err = run(
        "add", "--site", str(site), "tc", "--role", "Operator", "--certificate", str(pem_path), "--no-password"
    )
    assert code == 0, err
    user = UserStore(site / "users.yaml").get("tc")
    assert user is not None and user.password_hash is None and user.certificates == (certificate_thumbprint(der),)
    assert Authenticator(UserStore(site / "users.yaml")).authenticate_certificate(der).name == "tc"
    code, _, err = run(
        "add", "--site", str(site), "tc2", "--role", "Operator", "--certificate", str(der_path), "--no-password"
    )
    assert code == 1 and "already belongs to user 'tc'" in err
    (tmp_path / "junk.pem").write_bytes(b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")
    code, _, err = run(
        "add",
        "--site",
        str(site),
        "tc3",
        "--role",
        "Operator",
        "--certificate",
        str(tmp_path / "junk.pem"),
        "--no-password",
    )
    assert code == 1 and "is not an X.509 certificate" in err
