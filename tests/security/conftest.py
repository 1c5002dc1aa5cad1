"""Fixtures of the security tests: a cheap argon2id hasher, a user store with one user per role, a policy."""

from __future__ import annotations

from pathlib import Path

import pytest
from security_helpers import PASSWORD, ROLE_USERS, CountingHasher

from scada.security.policy import Policy, default_config
from scada.security.users import UserStore


@pytest.fixture
def hasher() -> CountingHasher:
    """A fast hasher that counts verifications."""
    return CountingHasher()


@pytest.fixture
def store(tmp_path: Path, hasher: CountingHasher) -> UserStore:
    """A users file in tmp_path with one user per assignable role, all with PASSWORD."""
    users = UserStore(tmp_path / "users.yaml", hasher)
    for name, role in ROLE_USERS.items():
        users.add(name, PASSWORD, [role])
    return users


@pytest.fixture
def policy(store: UserStore, tmp_path: Path) -> Policy:
    """The default permissions applied to the store's users."""
    return Policy(default_config(tmp_path), store)
