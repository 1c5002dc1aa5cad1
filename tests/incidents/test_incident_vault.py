"""The vault: a 0600 key created on first use, ciphertexts that need that key, unsafe key files refused."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from scada.incidents.vault import Vault, VaultError
from tests.incidents.incident_stack import CONTACT


def test_the_key_is_created_owner_only_on_first_use(tmp_path: Path) -> None:
    vault = Vault(tmp_path / "data")
    assert not vault.path.exists()  # nothing happens before it is used
    token = vault.encrypt(CONTACT)
    assert stat.S_IMODE(vault.path.stat().st_mode) == 0o600
    assert CONTACT.encode() not in token and b"jane" not in token
    assert vault.decrypt(token) == CONTACT
    assert vault.encrypt(CONTACT) != token  # a fresh IV each time
    # another process (another Vault on the same folder) reads the same key
    assert Vault(tmp_path / "data").decrypt(token) == CONTACT


def test_a_ciphertext_needs_its_key_and_must_be_intact(tmp_path: Path) -> None:
    token = Vault(tmp_path / "a").encrypt(CONTACT)
    with pytest.raises(VaultError):
        Vault(tmp_path / "b").decrypt(token)
    altered = bytearray(token)
    altered[40] ^= 0x01
    with pytest.raises(VaultError):
        Vault(tmp_path / "a").decrypt(bytes(altered))


def test_a_key_file_readable_by_others_is_refused(tmp_path: Path) -> None:
    vault = Vault(tmp_path)
    vault.encrypt("x")
    os.chmod(vault.path, 0o644)
    with pytest.raises(VaultError, match="chmod 600"):
        Vault(tmp_path).encrypt("x")


def test_a_damaged_key_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "contact.key"
    path.write_bytes(b"not a key")
    os.chmod(path, 0o600)
    with pytest.raises(VaultError, match="Fernet key"):
        Vault(tmp_path).encrypt("x")
