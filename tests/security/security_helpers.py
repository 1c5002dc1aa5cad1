"""Helpers of the security tests: the common password, one user per role, a cheap counting hasher."""

from __future__ import annotations

from scada.security.passwords import PasswordHasher

PASSWORD = "correct horse battery"
ROLE_USERS = {
    "olga": "Observer",
    "oscar": "Operator",
    "emma": "Engineer",
    "sam": "Supervisor",
    "cora": "ConfigureAdmin",
    "sacha": "SecurityAdmin",
}


class CountingHasher(PasswordHasher):
    """argon2id with minimal cost (fast tests) that counts the verifications it performs."""

    def __init__(self) -> None:
        super().__init__(time_cost=1, memory_kib=8, parallelism=1)
        self.verifications = 0

    def verify(self, password_hash: str, password: str) -> bool:
        self.verifications += 1
        return super().verify(password_hash, password)

    def verify_dummy(self, password: str) -> None:
        self.verifications += 1
        super().verify_dummy(password)
