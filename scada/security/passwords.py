"""Password hashing: argon2id with fixed, documented parameters, a dummy hash for unknown users, strength rules."""

from __future__ import annotations

import contextlib

import argon2
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from scada.model import CityScadaError

# OWASP Password Storage Cheat Sheet, first argon2id configuration: 19 MiB, 2 iterations, 1 lane. One check
# costs ~40 ms of one core on the reference machine (150 ms under load): slow for a guesser, short enough not
# to stall the OPC UA server's event loop for long at a login.
TIME_COST = 2
MEMORY_KIB = 19456
PARALLELISM = 1
HASH_LEN = 32
SALT_LEN = 16
HASH_PREFIX = "$argon2id$"

MIN_PASSWORD_LENGTH = 12
MAX_PASSWORD_LENGTH = 1024


class WeakPasswordError(CityScadaError):
    """A new password does not meet the rules (length, not the user name, not one repeated character)."""


class PasswordHasher:
    """argon2id hashing and verification; `verify` never raises for a wrong password or a malformed hash."""

    def __init__(
        self,
        time_cost: int = TIME_COST,
        memory_kib: int = MEMORY_KIB,
        parallelism: int = PARALLELISM,
    ) -> None:
        self._hasher = argon2.PasswordHasher(
            time_cost=time_cost,
            memory_cost=memory_kib,
            parallelism=parallelism,
            hash_len=HASH_LEN,
            salt_len=SALT_LEN,
            type=argon2.Type.ID,
        )
        self._dummy: str | None = None

    @property
    def parameters(self) -> str:
        """The parameter block every hash made here carries, e.g. "m=19456,t=2,p=1"."""
        h = self._hasher
        return f"m={h.memory_cost},t={h.time_cost},p={h.parallelism}"

    def hash(self, password: str) -> str:
        """A new salted argon2id hash of `password` (PHC string format)."""
        return self._hasher.hash(password)

    def verify(self, password_hash: str, password: str) -> bool:
        """True when `password` matches; False for a mismatch, a malformed hash or an oversized password."""
        if len(password) > MAX_PASSWORD_LENGTH or not password_hash.startswith(HASH_PREFIX):
            self.verify_dummy(password[:MAX_PASSWORD_LENGTH])
            return False
        try:
            return self._hasher.verify(password_hash, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    def verify_dummy(self, password: str) -> None:
        """Spend the time of one verification against a dummy hash (unknown users cost the same as known ones)."""
        if self._dummy is None:
            self._dummy = self._hasher.hash("cityscada dummy password for unknown users")
        with contextlib.suppress(VerifyMismatchError, VerificationError, InvalidHashError):
            self._hasher.verify(self._dummy, password[:MAX_PASSWORD_LENGTH])

    def needs_rehash(self, password_hash: str) -> bool:
        """True when the hash was made with other parameters than this hasher's."""
        try:
            return self._hasher.check_needs_rehash(password_hash)
        except InvalidHashError:
            return True


def check_strength(password: str, username: str = "") -> None:
    """Raise WeakPasswordError unless the new password is 12..1024 characters, not the user name, not one character."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise WeakPasswordError(f"a password needs at least {MIN_PASSWORD_LENGTH} characters")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise WeakPasswordError(f"a password has at most {MAX_PASSWORD_LENGTH} characters")
    if username and username.casefold() in password.casefold() and len(password) - len(username) < 6:
        raise WeakPasswordError("the password must not be (mostly) the user name")
    if len(set(password)) < 4:
        raise WeakPasswordError("the password needs at least 4 different characters")
    if password != password.strip():
        raise WeakPasswordError("the password must not start or end with white space")
