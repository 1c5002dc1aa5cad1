"""Roles (Part 18 NodeIds) and password hashing: argon2id parameters, verification, strength rules."""

from __future__ import annotations

import pytest
from asyncua import ua

from scada.security.passwords import (
    MEMORY_KIB,
    PARALLELISM,
    TIME_COST,
    PasswordHasher,
    WeakPasswordError,
    check_strength,
)
from scada.security.roles import CALL_TARGETS, ROLE_NODE_IDS, Role, check_call_key


def test_role_node_ids_are_the_standard_well_known_roles() -> None:
    for role in Role:
        assert role.node_id == getattr(ua.ObjectIds, f"WellKnownRole_{role.value}"), role
    assert len(ROLE_NODE_IDS) == 8


def test_call_targets_cover_every_kind_with_actions_and_incidents() -> None:
    assert CALL_TARGETS["lamp"] == ("set_level",)
    assert "select_plan" in CALL_TARGETS["controller"]
    assert CALL_TARGETS["incident"] == ("report", "close")
    assert "parking_sensor" not in CALL_TARGETS  # no actions
    check_call_key("cabinet.*")
    check_call_key("sign.display")
    with pytest.raises(ValueError, match="a lamp has no action 'set_mode'"):
        check_call_key("lamp.set_mode")
    with pytest.raises(ValueError, match="unknown kind 'lamps'"):
        check_call_key("lamps.*")
    with pytest.raises(ValueError, match=r"expected <kind>\.<action>"):
        check_call_key("lamp")


def test_hash_is_argon2id_with_the_documented_parameters_and_a_random_salt() -> None:
    hasher = PasswordHasher()
    first, second = hasher.hash("a long enough secret"), hasher.hash("a long enough secret")
    expected = f"$argon2id$v=19$m={MEMORY_KIB},t={TIME_COST},p={PARALLELISM}$"
    assert first.startswith(expected) and second.startswith(expected)
    assert (MEMORY_KIB, TIME_COST, PARALLELISM) == (19456, 2, 1)  # OWASP's first argon2id configuration
    assert first != second  # salted
    assert "a long enough secret" not in first
    assert hasher.verify(first, "a long enough secret")
    assert not hasher.verify(first, "a long enough secreT")
    assert not hasher.needs_rehash(first)
    assert PasswordHasher(time_cost=1, memory_kib=8).needs_rehash(first)


def test_verify_never_raises_on_garbage() -> None:
    hasher = PasswordHasher(time_cost=1, memory_kib=8)
    assert not hasher.verify("plain-text-password", "plain-text-password")  # a clear password is never accepted
    assert not hasher.verify("$argon2id$garbage", "x")
    assert not hasher.verify(hasher.hash("x" * 20), "x" * 5000)  # oversized input refused


@pytest.mark.parametrize(
    ("password", "message"),
    [
        ("short", "at least 12 characters"),
        ("aaaaaaaaaaaaaaaa", "4 different characters"),
        ("operator12345", "user name"),
        (" padded password ", "white space"),
        ("x" * 1025, "at most 1024"),
    ],
)
def test_weak_passwords_are_refused(password: str, message: str) -> None:
    with pytest.raises(WeakPasswordError, match=message):
        check_strength(password, "operator")


def test_reasonable_passwords_pass() -> None:
    check_strength("correct horse battery", "operator")
    check_strength("operator-demo-pass", "operator")
