"""The user store: a YAML file of accounts (argon2id hashes, roles, certificate thumbprints), written atomically.

The file is read once and re-read whenever it changes on disk (an administrator running `cityscada users` while
the server runs); every change is a locked read-modify-write ending in write-temp + fsync + rename, mode 0600.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import re
import stat
import tempfile
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from scada.model import CityScadaError, ConfigError, ConfigIssue
from scada.security.passwords import HASH_PREFIX, PasswordHasher, check_strength
from scada.security.roles import ASSIGNABLE_ROLES, Role
from scada.site.sources import FILE_FIELD, SourceError, describe, parse_yaml, read_text

log = logging.getLogger(__name__)

NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")
THUMBPRINT_PATTERN = re.compile(r"[0-9a-f]{64}")
USER_FIELDS = ("name", "password_hash", "roles", "certificates", "disabled")
FILE_MODE = 0o600
DEFAULT_HEADER = (
    "# cityscada users: managed with `cityscada users add|passwd|remove|list`; keep this file mode 0600.\n"
    "# Passwords are stored as argon2id hashes, never in clear.\n"
)


class UserStoreError(CityScadaError):
    """A change to the user store cannot be made."""


class UserExistsError(UserStoreError):
    """A user of that name already exists."""


class UnknownUserError(UserStoreError):
    """No user has that name."""


@dataclass(frozen=True, slots=True)
class User:
    """One account: roles, an argon2id hash (None: certificate only) and the SHA-256 thumbprints of its certificates."""

    name: str
    password_hash: str | None
    roles: frozenset[Role]
    certificates: tuple[str, ...] = ()
    disabled: bool = False

    def __repr__(self) -> str:  # the hash stays out of logs and tracebacks
        roles = ",".join(sorted(self.roles))
        return (
            f"User(name={self.name!r}, roles={roles}, certificates={len(self.certificates)}, disabled={self.disabled})"
        )


def check_name(name: str) -> str:
    """The user name if valid; ValueError otherwise."""
    if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name):
        raise ValueError(
            f"invalid user name {name!r}: 1-64 letters, digits, '.', '_', '@', '-', starting with a letter or digit"
        )
    return name


def certificate_thumbprint(der: bytes) -> str:
    """The SHA-256 thumbprint (64 lowercase hex digits) of a DER-encoded X.509 certificate."""
    return hashlib.sha256(der).hexdigest()


def normalize_thumbprint(text: str) -> str:
    """A thumbprint as stored (lowercase hex, no colons or spaces); ValueError unless it is SHA-256 sized."""
    value = str(text).replace(":", "").replace(" ", "").lower()
    if not THUMBPRINT_PATTERN.fullmatch(value):
        raise ValueError(f"expected a SHA-256 thumbprint (64 hex digits), got {text!r}")
    return value


# ---------------------------------------------------------------------------------------------------------
# Reading and writing the file
# ---------------------------------------------------------------------------------------------------------


def file_label(path: Path) -> str:
    """How issues name the users file: its folder and name ("dijon/users.yaml")."""
    return f"{path.parent.name}/{path.name}" if path.parent.name else path.name


def parse_users(text: str, label: str) -> dict[str, User]:
    """The accounts of a users file keyed by casefolded name; ConfigError with every issue found."""
    issues: list[ConfigIssue] = []
    try:
        doc = parse_yaml(text, label, issues)
    except SourceError as exc:
        raise ConfigError([exc.issue]) from None
    top = doc.data
    users: dict[str, User] = {}
    first_line: dict[str, int] = {}
    if top is None:
        top = {"users": []}
    if not isinstance(top, dict):
        raise ConfigError([ConfigIssue(label, 1, FILE_FIELD, f"expected a mapping with 'users', got {describe(top)}")])
    for key in top:
        if key != "users":
            issues.append(ConfigIssue(label, doc.lines.get(str(key)), str(key), "unknown field"))
    items = top.get("users") or []
    if not isinstance(items, list):
        issues.append(ConfigIssue(label, doc.lines.get("users"), "users", f"expected a list, got {describe(items)}"))
        items = []
    for i, item in enumerate(items):
        path = f"users[{i}]"
        user = _parse_user(item, path, doc.lines, label, issues)
        if user is None:
            continue
        key = user.name.casefold()
        if key in users:
            line = doc.lines.get(f"{path}.name")
            issues.append(
                ConfigIssue(
                    label, line, f"{path}.name", f"duplicate user {user.name!r}, already at line {first_line[key]}"
                )
            )
            continue
        users[key] = user
        first_line[key] = doc.lines.get(f"{path}.name", 0)
    if issues:
        raise ConfigError(issues)
    return users


def _parse_user(item: Any, path: str, lines: dict[str, int], label: str, issues: list[ConfigIssue]) -> User | None:
    """One account of the file, or None after adding its issues."""

    def issue(name: str, message: str) -> None:
        field_path = f"{path}.{name}" if name else path
        issues.append(ConfigIssue(label, lines.get(field_path, lines.get(path)), field_path, message))

    if not isinstance(item, dict):
        issue("", f"expected a mapping (name, password_hash, roles, ...), got {describe(item)}")
        return None
    before = len(issues)
    for key in item:
        if key not in USER_FIELDS:
            issue(str(key), "unknown field")
    name = item.get("name")
    if name is None:
        issue("name", "missing required field")
    else:
        try:
            check_name(name)
        except ValueError as exc:
            issue("name", str(exc))
    password_hash = item.get("password_hash")
    if password_hash is not None and (not isinstance(password_hash, str) or not password_hash.startswith(HASH_PREFIX)):
        issue(
            "password_hash", "not an argon2id hash: passwords are never stored in clear (use `cityscada users passwd`)"
        )
    roles: set[Role] = set()
    raw_roles = item.get("roles", [])
    if not isinstance(raw_roles, list):
        issue("roles", f"expected a list of roles, got {describe(raw_roles)}")
        raw_roles = []
    for j, raw in enumerate(raw_roles):
        try:
            role = Role(raw)
        except ValueError:
            issue(f"roles[{j}]", f"unknown role {raw!r}, expected one of {', '.join(ASSIGNABLE_ROLES)}")
            continue
        if role is Role.ANONYMOUS:
            issue(f"roles[{j}]", "Anonymous belongs to anonymous sessions, not to a user")
        elif role in roles:
            issue(f"roles[{j}]", f"duplicate role {role.value}")
        roles.add(role)
    certificates: list[str] = []
    raw_certs = item.get("certificates", [])
    if not isinstance(raw_certs, list):
        issue("certificates", f"expected a list of SHA-256 thumbprints, got {describe(raw_certs)}")
        raw_certs = []
    for j, raw in enumerate(raw_certs):
        try:
            certificates.append(normalize_thumbprint(raw))
        except ValueError as exc:
            issue(f"certificates[{j}]", str(exc))
    disabled = item.get("disabled", False)
    if not isinstance(disabled, bool):
        issue("disabled", f"expected true or false, got {describe(disabled)}")
    if password_hash is None and not raw_certs:
        issue("password_hash", "a user needs a password hash or a certificate")
    if len(issues) > before:
        return None
    return User(str(name), password_hash, frozenset(roles - {Role.ANONYMOUS}), tuple(certificates), bool(disabled))


def render_users(users: Iterable[User], header: str = DEFAULT_HEADER) -> str:
    """The text of a users file (stable field order; strings JSON-quoted, which YAML reads back verbatim)."""
    out = [header.rstrip("\n") + "\n\n" if header else "", "users:\n"]
    count = 0
    for user in sorted(users, key=lambda u: u.name.casefold()):
        count += 1
        out.append(f"  - name: {json.dumps(user.name)}\n")
        out.append(f"    password_hash: {json.dumps(user.password_hash)}\n")
        roles = ", ".join(sorted(r.value for r in user.roles))
        out.append(f"    roles: [{roles}]\n")
        if user.certificates:
            out.append("    certificates:\n")
            out.extend(f"      - {json.dumps(tp)}\n" for tp in user.certificates)
        if user.disabled:
            out.append("    disabled: true\n")
    if not count:
        out[-1] = "users: []\n"
    return "".join(out)


def leading_comments(text: str) -> str:
    """The comment block at the top of a file (kept when the store rewrites it)."""
    lines: list[str] = []
    for line in text.splitlines(keepends=True):
        if line.startswith("#") or (not line.strip() and lines):
            lines.append(line)
        else:
            break
    return "".join(lines).rstrip("\n") + "\n" if lines else ""


def write_atomic(path: Path, text: str, mode: int = FILE_MODE) -> None:
    """Replace `path` by `text`: temp file in the same folder, fsync, rename, fsync of the folder; mode 0600."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as handle:
            os.fchmod(handle.fileno(), mode)
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    folder = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(folder)
    finally:
        os.close(folder)


@contextlib.contextmanager
def folder_lock(folder: Path) -> Iterator[None]:
    """An exclusive advisory lock on a folder (serializes concurrent `cityscada users` runs; no lock file left)."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


# ---------------------------------------------------------------------------------------------------------
# The store
# ---------------------------------------------------------------------------------------------------------

_Signature = tuple[int, int, int, int]


class UserStore:
    """The accounts of one users file; re-read when the file changes, changed only through locked atomic writes."""

    def __init__(self, path: str | Path, hasher: PasswordHasher | None = None) -> None:
        self.path = Path(path)
        self.hasher = hasher or PasswordHasher()
        self.label = file_label(self.path)
        self._users: dict[str, User] = {}
        self._by_thumbprint: dict[str, User] = {}
        self._signature: _Signature | None = None
        self._loaded = False
        self._lock = threading.Lock()

    # -- reading ----------------------------------------------------------------------------------------------

    def load(self) -> None:
        """Read the file now; ConfigError if it is invalid (a missing file is an empty store)."""
        with self._lock:
            self._load_locked(strict=True)

    def _stat(self) -> os.stat_result | None:
        try:
            return os.stat(self.path)
        except FileNotFoundError:
            return None

    def _load_locked(self, strict: bool) -> None:
        info = self._stat()
        signature = None if info is None else (info.st_dev, info.st_ino, info.st_mtime_ns, info.st_size)
        if self._loaded and signature == self._signature:
            return
        try:
            users = self._read(info)
        except ConfigError as exc:
            if strict or not self._loaded:
                raise
            log.error("users file %s changed but is invalid; keeping the previous users:\n%s", self.path, exc)
            self._signature = signature
            return
        self._install(users, signature)

    def _read(self, info: os.stat_result | None) -> dict[str, User]:
        if info is None:
            if not self._loaded:
                log.warning("users file %s does not exist: no user can log in", self.path)
            return {}
        if info.st_mode & stat.S_IWOTH:
            raise ConfigError(
                [ConfigIssue(self.label, None, FILE_FIELD, "writable by every user of the machine (chmod 600)")]
            )
        if info.st_mode & (stat.S_IRGRP | stat.S_IROTH) and not self._loaded:
            log.warning("users file %s is readable by other users (chmod 600)", self.path)
        try:
            text = read_text(self.path, self.label)
        except SourceError as exc:
            raise ConfigError([exc.issue]) from None
        return parse_users(text, self.label)

    def _install(self, users: dict[str, User], signature: _Signature | None) -> None:
        self._users = users
        self._by_thumbprint = {tp: user for user in users.values() for tp in user.certificates}
        self._signature = signature
        self._loaded = True

    def refresh(self) -> None:
        """Re-read the file if it changed on disk (an invalid new version is logged and ignored)."""
        with self._lock:
            self._load_locked(strict=False)

    def get(self, name: str | None) -> User | None:
        """The user of that name (case-insensitive), or None."""
        if not name:
            return None
        self.refresh()
        return self._users.get(name.casefold())

    def by_thumbprint(self, thumbprint: str) -> User | None:
        """The user holding the certificate of that SHA-256 thumbprint, or None."""
        self.refresh()
        return self._by_thumbprint.get(thumbprint.lower())

    def users(self) -> list[User]:
        """Every user, sorted by name."""
        self.refresh()
        return sorted(self._users.values(), key=lambda u: u.name.casefold())

    # -- changing ---------------------------------------------------------------------------------------------

    def _mutate(self, change: Callable[[dict[str, User]], None]) -> None:
        """Locked read-modify-write of the file: re-read it, apply `change`, write it atomically."""
        with self._lock, folder_lock(self.path.parent):
            info = self._stat()
            header = DEFAULT_HEADER
            if info is not None:
                try:
                    header = leading_comments(read_text(self.path, self.label)) or DEFAULT_HEADER
                except SourceError as exc:
                    raise ConfigError([exc.issue]) from None
            users = self._read(info)
            change(users)
            write_atomic(self.path, render_users(users.values(), header))
            info = self._stat()
            assert info is not None
            self._install(users, (info.st_dev, info.st_ino, info.st_mtime_ns, info.st_size))

    def add(
        self,
        name: str,
        password: str | None,
        roles: Iterable[Role | str],
        certificates: Iterable[str] = (),
        *,
        check_password: bool = True,
    ) -> User:
        """Create a user (password hashed here; None for a certificate-only account); UserExistsError if taken."""
        check_name(name)
        role_set = _roles(roles)
        thumbprints = tuple(normalize_thumbprint(tp) for tp in certificates)
        if password is None and not thumbprints:
            raise UserStoreError("a user needs a password or a certificate")
        if password is not None and check_password:
            check_strength(password, name)
        password_hash = None if password is None else self.hasher.hash(password)
        user = User(name, password_hash, role_set, thumbprints)

        def change(users: dict[str, User]) -> None:
            if name.casefold() in users:
                raise UserExistsError(f"user {users[name.casefold()].name!r} already exists")
            _check_thumbprints_free(users, user)
            users[name.casefold()] = user

        self._mutate(change)
        return user

    def set_password(self, name: str, password: str, *, check_password: bool = True) -> None:
        """Replace a user's password hash; UnknownUserError if there is no such user."""
        if check_password:
            check_strength(password, name)
        password_hash = self.hasher.hash(password)
        self._update(name, lambda user: replace(user, password_hash=password_hash))

    def update(
        self,
        name: str,
        *,
        roles: Iterable[Role | str] | None = None,
        certificates: Iterable[str] | None = None,
        disabled: bool | None = None,
    ) -> User:
        """Change a user's roles, certificates or disabled flag; returns the new account."""
        role_set = None if roles is None else _roles(roles)
        thumbprints = None if certificates is None else tuple(normalize_thumbprint(tp) for tp in certificates)

        def edit(user: User) -> User:
            return replace(
                user,
                roles=user.roles if role_set is None else role_set,
                certificates=user.certificates if thumbprints is None else thumbprints,
                disabled=user.disabled if disabled is None else disabled,
            )

        return self._update(name, edit)

    def _update(self, name: str, edit: Callable[[User], User]) -> User:
        result: list[User] = []

        def change(users: dict[str, User]) -> None:
            old = users.get(name.casefold())
            if old is None:
                raise UnknownUserError(f"no user {name!r}")
            new = edit(old)
            others = {key: u for key, u in users.items() if key != name.casefold()}
            _check_thumbprints_free(others, new)
            users[name.casefold()] = new
            result.append(new)

        self._mutate(change)
        return result[0]

    def remove(self, name: str) -> None:
        """Delete a user; UnknownUserError if there is no such user."""

        def change(users: dict[str, User]) -> None:
            if users.pop(name.casefold(), None) is None:
                raise UnknownUserError(f"no user {name!r}")

        self._mutate(change)


def _roles(roles: Iterable[Role | str]) -> frozenset[Role]:
    result: set[Role] = set()
    for raw in roles:
        try:
            role = Role(raw)
        except ValueError:
            role = Role.ANONYMOUS
        if role is Role.ANONYMOUS:
            raise UserStoreError(f"unknown role {raw!r}, expected one of {', '.join(ASSIGNABLE_ROLES)}")
        result.add(role)
    return frozenset(result)


def _check_thumbprints_free(users: dict[str, User], user: User) -> None:
    taken = {tp: other.name for other in users.values() for tp in other.certificates}
    for tp in user.certificates:
        if tp in taken:
            raise UserStoreError(f"certificate {tp[:16]}... already belongs to user {taken[tp]!r}")
