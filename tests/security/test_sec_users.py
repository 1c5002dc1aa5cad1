"""The user store: hashes only on disk, mode 0600, atomic locked writes, reload on change, file validation."""

from __future__ import annotations

import os
import stat
import threading
from pathlib import Path

import pytest
from security_helpers import PASSWORD, CountingHasher

from scada.model import ConfigError
from scada.security.roles import Role
from scada.security.users import (
    UnknownUserError,
    UserExistsError,
    UserStore,
    UserStoreError,
    certificate_thumbprint,
    parse_users,
)

ROOT = Path(__file__).resolve().parents[2]


def test_file_holds_hashes_never_passwords_and_is_owner_only(store: UserStore) -> None:
    text = store.path.read_text()
    assert PASSWORD not in text
    assert text.count("$argon2id$") == 6
    assert stat.S_IMODE(os.stat(store.path).st_mode) == 0o600
    assert [p.name for p in store.path.parent.iterdir()] == ["users.yaml"]  # no temp or lock file left


def test_add_passwd_remove_round_trip(store: UserStore, hasher: CountingHasher) -> None:
    user = store.get("OSCAR")  # names are case-insensitive
    assert user is not None and user.name == "oscar" and user.roles == {Role.OPERATOR}
    old_hash = user.password_hash
    store.set_password("oscar", "another long password")
    fresh = UserStore(store.path, hasher)  # what another process reads
    new = fresh.get("oscar")
    assert new is not None and new.password_hash != old_hash
    assert hasher.verify(new.password_hash or "", "another long password")
    store.remove("oscar")
    assert UserStore(store.path, hasher).get("oscar") is None
    with pytest.raises(UnknownUserError):
        store.remove("oscar")
    with pytest.raises(UserExistsError):
        store.add("Olga", PASSWORD, ["Observer"])
    with pytest.raises(UserStoreError, match="unknown role 'Admin'"):
        store.add("newbie", PASSWORD, ["Admin"])
    with pytest.raises(UserStoreError, match="unknown role 'Anonymous'"):
        store.add("newbie", PASSWORD, ["Anonymous"])


def test_a_running_store_sees_changes_made_by_another_process(store: UserStore, hasher: CountingHasher) -> None:
    other = UserStore(store.path, hasher)
    other.update("olga", roles=["Observer", "Operator"], disabled=True)
    seen = store.get("olga")
    assert seen is not None and seen.roles == {Role.OBSERVER, Role.OPERATOR} and seen.disabled


def test_an_invalid_edit_keeps_the_previous_users_in_a_running_store(store: UserStore) -> None:
    assert store.get("sam") is not None
    store.path.write_text("users:\n  - name: sam\n    password_hash: hunter2hunter2\n    roles: [Supervisor]\n")
    assert store.get("sam") is not None and store.get("sam").password_hash.startswith("$argon2id$")  # type: ignore[union-attr]
    with pytest.raises(ConfigError, match="passwords are never stored in clear"):
        UserStore(store.path).load()


def test_concurrent_writers_lose_nothing(tmp_path: Path, hasher: CountingHasher) -> None:
    path = tmp_path / "users.yaml"
    errors: list[BaseException] = []

    def add(i: int) -> None:
        try:
            UserStore(path, hasher).add(f"user{i}", PASSWORD, ["Observer"])
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=add, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert sorted(u.name for u in UserStore(path, hasher).users()) == sorted(f"user{i}" for i in range(8))


def test_rewrites_keep_the_leading_comment(store: UserStore) -> None:
    text = store.path.read_text()
    store.path.write_text("# DEMO USERS - keep me\n" + text.split("\n\n", 1)[1])
    store.remove("cora")
    assert store.path.read_text().startswith("# DEMO USERS - keep me\n")


def test_certificates_are_stored_as_sha256_thumbprints(store: UserStore) -> None:
    der = b"\x30\x82fake-but-bytes"
    thumbprint = certificate_thumbprint(der)
    user = store.add("device-1", None, ["Operator"], [thumbprint.upper()])
    assert user.certificates == (thumbprint,) and user.password_hash is None
    assert store.by_thumbprint(thumbprint) == user
    with pytest.raises(UserStoreError, match="already belongs to user 'device-1'"):
        store.add("device-2", None, ["Operator"], [thumbprint])
    with pytest.raises(ValueError, match="SHA-256 thumbprint"):
        store.add("device-3", None, ["Operator"], ["abcd"])


def test_world_writable_file_is_refused(store: UserStore) -> None:
    os.chmod(store.path, 0o666)
    with pytest.raises(ConfigError, match="writable by every user"):
        UserStore(store.path).load()


def test_missing_file_is_an_empty_store(tmp_path: Path) -> None:
    users = UserStore(tmp_path / "absent.yaml")
    users.load()
    assert users.users() == [] and users.get("anyone") is None


def test_validation_reports_every_issue_with_its_line() -> None:
    text = """\
users:
  - name: ok-user
    password_hash: "$argon2id$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2g"
    roles: [Operator]
  - name: "bad name!"
    password_hash: "secret-in-clear"
    roles: [Operator, Wizard, Anonymous, Operator]
    certificates: [nothex]
    disabled: maybe
    email: x@y
  - name: OK-USER
    password_hash: "$argon2id$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2g"
  - name: nothing
"""
    with pytest.raises(ConfigError) as info:
        parse_users(text, "site/users.yaml")
    got = [(i.line, i.field, i.message) for i in info.value.issues]
    assert (10, "users[1].email", "unknown field") in got
    assert any(line == 5 and f == "users[1].name" and "invalid user name 'bad name!'" in m for line, f, m in got)
    assert (
        6,
        "users[1].password_hash",
        "not an argon2id hash: passwords are never stored in clear (use `cityscada users passwd`)",
    ) in got
    assert any(f == "users[1].roles[1]" and "unknown role 'Wizard'" in m for _, f, m in got)
    assert (7, "users[1].roles[2]", "Anonymous belongs to anonymous sessions, not to a user") in got
    assert (7, "users[1].roles[3]", "duplicate role Operator") in got
    assert any(f == "users[1].certificates[0]" and "64 hex digits" in m for _, f, m in got)
    assert (9, "users[1].disabled", "expected true or false, got 'maybe'") in got
    assert (11, "users[2].name", "duplicate user 'OK-USER', already at line 2") in got
    assert (13, "users[3].password_hash", "a user needs a password hash or a certificate") in got


@pytest.mark.parametrize("site", ["small", "dijon"])
def test_shipped_demo_users_load_and_hold_one_user_per_role(site: str) -> None:
    users = UserStore(ROOT / "config" / site / "users.yaml")
    users.load()
    roles = sorted(next(iter(u.roles)).value for u in users.users())
    assert roles == sorted(r.value for r in Role if r not in (Role.ANONYMOUS, Role.AUTHENTICATED_USER))
    text = (ROOT / "config" / site / "users.yaml").read_text()
    assert text.startswith("# DEMONSTRATION USERS - NOT FOR PRODUCTION.")
    operator = users.get("operator")
    assert operator is not None and users.hasher.verify(operator.password_hash or "", "operator-demo-pass")
