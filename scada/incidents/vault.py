"""Encryption at rest of personal data (the reporter's contact of an incident): Fernet with a key file.

The key is created on first use in the data folder, with mode 0600 (owner only), atomically: two processes
starting together end up with the same key. An existing key file readable by group or others is refused. The
ciphertext (a Fernet token: AES-128-CBC + HMAC-SHA256, with its timestamp) is what the historian stores; reading
it back needs the key. A later security issue adds role-gated reads and a purge job on top of encrypt/decrypt.
"""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

from scada.model import CityScadaError

KEY_FILE = "contact.key"


class VaultError(CityScadaError):
    """The key cannot be created or read safely, or a ciphertext is not ours (or was altered)."""


class Vault:
    """encrypt(str) -> bytes and decrypt(bytes) -> str with a key kept in `folder`/contact.key (mode 0600)."""

    def __init__(self, folder: Path, key_name: str = KEY_FILE) -> None:
        self.path = Path(folder) / key_name
        self._fernet: Fernet | None = None

    def _key(self) -> Fernet:
        if self._fernet is None:
            self._fernet = Fernet(self._load_or_create())
        return self._fernet

    def _load_or_create(self) -> bytes:
        """Read the key, creating it (0600, exclusive create) when there is none."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        except OSError as exc:
            raise VaultError(f"cannot create the key folder {self.path.parent}: {exc.strerror}") from exc
        key = Fernet.generate_key()
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return self._read()
        except OSError as exc:
            raise VaultError(f"cannot create the key file {self.path}: {exc.strerror}") from exc
        try:
            os.write(fd, key)
            os.fsync(fd)
        except OSError as exc:
            os.close(fd)
            with contextlib.suppress(OSError):
                self.path.unlink()
            raise VaultError(f"cannot write the key file {self.path}: {exc.strerror}") from exc
        os.close(fd)
        return key

    def _read(self) -> bytes:
        try:
            mode = self.path.stat().st_mode
            if mode & (stat.S_IRWXG | stat.S_IRWXO):
                raise VaultError(
                    f"the key file {self.path} is accessible to others (mode {mode & 0o777:04o}); chmod 600"
                )
            key = self.path.read_bytes().strip()
        except OSError as exc:
            raise VaultError(f"cannot read the key file {self.path}: {exc.strerror}") from exc
        if not key:  # another process created the file and has not written it yet
            raise VaultError(f"the key file {self.path} is empty")
        try:
            Fernet(key)
        except ValueError as exc:
            raise VaultError(f"the key file {self.path} does not hold a Fernet key") from exc
        return key

    def encrypt(self, text: str) -> bytes:
        """The ciphertext of a text (a new random IV each time: equal texts give different ciphertexts)."""
        return self._key().encrypt(text.encode("utf-8"))

    def decrypt(self, token: bytes) -> str:
        """The text of a ciphertext made with this key; VaultError if it is not (or was altered)."""
        try:
            return self._key().decrypt(bytes(token)).decode("utf-8")
        except InvalidToken as exc:
            raise VaultError("the ciphertext was not made with this key or was altered") from exc
