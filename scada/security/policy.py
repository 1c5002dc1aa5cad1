"""The `security` section of site.yaml (users file, anonymous reading, permission -> roles) and the Policy it gives.

Defaults apply per permission: a permission the section leaves out keeps its default roles, one it names gets
exactly the roles listed (`call` is replaced as a whole). Anonymous sessions hold only the Anonymous role and may
at most read, when `allow_anonymous_read` is true; every authenticated user also holds AuthenticatedUser.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from scada.model import AccessDeniedError, ConfigError, ConfigIssue
from scada.security.roles import (
    ROLE_NAMES,
    Permission,
    Role,
    call_key,
    check_call_key,
)
from scada.security.users import UserStore
from scada.site.sources import SourceError, describe, parse_yaml, read_text

SECTION = "security"
SITE_FILE = "site.yaml"
DEFAULT_USERS_FILE = "users.yaml"
SECURITY_FIELDS = (
    "users_file",
    "allow_anonymous_read",
    "permissions",
    "allow_none_endpoint",
    "personal_data_retention_days",
)
DEFAULT_RETENTION_DAYS = 30
MAX_RETENTION_DAYS = 3650

_O, _OP, _E, _S, _SA = Role.OBSERVER, Role.OPERATOR, Role.ENGINEER, Role.SUPERVISOR, Role.SECURITY_ADMIN

DEFAULT_GRANTS: dict[Permission, frozenset[Role]] = {
    Permission.READ: frozenset({_O, _OP, _E, _S, _SA}),
    Permission.WRITE_SETPOINTS: frozenset({_OP, _E, _S}),
    Permission.ACKNOWLEDGE_ALARMS: frozenset({_OP, _S}),
    Permission.SHELVE_ALARMS: frozenset({_S}),
    Permission.SEE_PERSONAL_DATA: frozenset({_S}),
    Permission.TRUST_CERTIFICATES: frozenset({_SA}),
}
"""Default roles of every permission but `call`."""

DEFAULT_CALLS: dict[str, frozenset[Role]] = {
    "lamp.*": frozenset({_OP, _E, _S}),
    "cabinet.*": frozenset({_OP, _E, _S}),
    "controller.*": frozenset({_E, _S}),
    "sign.*": frozenset({_OP, _S}),
    "parking_site.*": frozenset({_OP, _S}),
    "incident.report": frozenset({_OP, _S}),
    "incident.close": frozenset({_OP, _S}),
}
"""Default `call` permission: who may call the methods of each kind (and report or close incidents)."""


@dataclass(frozen=True, slots=True)
class SecurityConfig:
    """The validated `security` section."""

    users_file: Path
    allow_anonymous_read: bool = False
    grants: Mapping[Permission, frozenset[Role]] = field(default_factory=lambda: dict(DEFAULT_GRANTS))
    calls: Mapping[str, frozenset[Role]] = field(default_factory=lambda: dict(DEFAULT_CALLS))
    allow_none_endpoint: bool = False  # the unsecured endpoint (anonymous reading only); needs allow_anonymous_read
    personal_data_retention_days: int = DEFAULT_RETENTION_DAYS  # reporters' contacts are purged after this

    def roles_for(self, permission: Permission | str) -> frozenset[Role]:
        """The roles granted a permission other than `call`."""
        permission = Permission(permission)
        if permission is Permission.CALL:
            raise ValueError("the call permission is per target: use call_roles(target, action)")
        return self.grants.get(permission, frozenset())

    def call_roles(self, target: str, action: str) -> frozenset[Role]:
        """The roles that may call `action` of `target` (a catalog kind or "incident"): exact key, else "<kind>.*"."""
        exact = self.calls.get(call_key(target, action))
        if exact is not None:
            return exact
        return self.calls.get(call_key(target, "*"), frozenset())


def default_config(folder: str | Path) -> SecurityConfig:
    """The configuration of a site without a `security` section."""
    return SecurityConfig(users_file=Path(folder) / DEFAULT_USERS_FILE)


def load_security_config(folder: str | Path) -> SecurityConfig:
    """The `security` section of a site folder's site.yaml, validated (ConfigError with every issue found)."""
    folder = Path(folder)
    label = f"{folder.resolve().name}/{SITE_FILE}"
    issues: list[ConfigIssue] = []
    try:
        doc = parse_yaml(read_text(folder / SITE_FILE, label), label, issues)
    except SourceError as exc:
        raise ConfigError([exc.issue]) from None
    issues = [issue for issue in issues if issue.field.startswith(SECTION)]
    section = doc.data.get(SECTION) if isinstance(doc.data, dict) else None
    try:
        config = parse_security(section, folder, label, doc.lines)
    except ConfigError as exc:
        issues.extend(exc.issues)
    if issues:
        raise ConfigError(issues)
    return config


def parse_security(section: Any, folder: Path, label: str, lines: Mapping[str, int] | None = None) -> SecurityConfig:
    """Check the `security` section (None: absent) and build the configuration; ConfigError with every issue."""
    lines = lines or {}
    issues: list[ConfigIssue] = []

    def issue(path: str, message: str) -> None:
        issues.append(ConfigIssue(label, lines.get(path, lines.get(SECTION)), path, message))

    if section is None:
        return default_config(folder)
    if not isinstance(section, dict):
        raise ConfigError(
            [ConfigIssue(label, lines.get(SECTION), SECTION, f"expected a mapping, got {describe(section)}")]
        )
    for key in section:
        if key not in SECURITY_FIELDS:
            issue(f"{SECTION}.{key}", f"unknown field (expected {', '.join(SECURITY_FIELDS)})")

    users_file = section.get("users_file", DEFAULT_USERS_FILE)
    if not isinstance(users_file, str) or not users_file.strip():
        issue(f"{SECTION}.users_file", f"expected a file name, got {describe(users_file)}")
        users_file = DEFAULT_USERS_FILE
    anonymous = section.get("allow_anonymous_read", False)
    if not isinstance(anonymous, bool):
        issue(f"{SECTION}.allow_anonymous_read", f"expected true or false, got {describe(anonymous)}")
        anonymous = False

    none_endpoint = section.get("allow_none_endpoint", False)
    if not isinstance(none_endpoint, bool):
        issue(f"{SECTION}.allow_none_endpoint", f"expected true or false, got {describe(none_endpoint)}")
        none_endpoint = False
    elif none_endpoint and not anonymous:
        issue(
            f"{SECTION}.allow_none_endpoint",
            "the None endpoint serves anonymous reading only: it needs allow_anonymous_read: true",
        )
    retention = section.get("personal_data_retention_days", DEFAULT_RETENTION_DAYS)
    if isinstance(retention, bool) or not isinstance(retention, int) or not 1 <= retention <= MAX_RETENTION_DAYS:
        issue(
            f"{SECTION}.personal_data_retention_days",
            f"expected a whole number of days 1..{MAX_RETENTION_DAYS}, got {describe(retention)}",
        )
        retention = DEFAULT_RETENTION_DAYS

    grants = dict(DEFAULT_GRANTS)
    calls = dict(DEFAULT_CALLS)
    permissions = section.get("permissions", {})
    base = f"{SECTION}.permissions"
    if permissions is None:
        permissions = {}
    if not isinstance(permissions, dict):
        issue(base, f"expected a mapping of permission -> roles, got {describe(permissions)}")
        permissions = {}
    for name, value in permissions.items():
        path = f"{base}.{name}"
        try:
            permission = Permission(name)
        except ValueError:
            issue(path, f"unknown permission {name!r}, expected one of {', '.join(p.value for p in Permission)}")
            continue
        if permission is Permission.CALL:
            calls = _parse_calls(value, path, issue)
        else:
            grants[permission] = _parse_roles(value, path, permission, issue)
    if issues:
        raise ConfigError(issues)
    return SecurityConfig(
        users_file=(folder / users_file) if not Path(users_file).is_absolute() else Path(users_file),
        allow_anonymous_read=anonymous,
        grants=grants,
        calls=calls,
        allow_none_endpoint=none_endpoint,
        personal_data_retention_days=retention,
    )


def _parse_calls(value: Any, path: str, issue: Any) -> dict[str, frozenset[Role]]:
    calls: dict[str, frozenset[Role]] = {}
    if value is None:
        return calls
    if not isinstance(value, dict):
        issue(path, f"expected a mapping of <kind>.<action> or <kind>.* -> roles, got {describe(value)}")
        return calls
    for key, roles in value.items():
        key_path = f"{path}.{key}"
        try:
            check_call_key(str(key))
        except ValueError as exc:
            issue(key_path, str(exc))
            continue
        calls[str(key)] = _parse_roles(roles, key_path, Permission.CALL, issue)
    return calls


def _parse_roles(value: Any, path: str, permission: Permission, issue: Any) -> frozenset[Role]:
    if value is None:
        return frozenset()
    if not isinstance(value, list):
        issue(path, f"expected a list of roles, got {describe(value)}")
        return frozenset()
    roles: set[Role] = set()
    for i, raw in enumerate(value):
        item = f"{path}[{i}]"
        try:
            role = Role(raw)
        except (ValueError, TypeError):
            issue(item, f"unknown role {raw!r}, expected one of {ROLE_NAMES}")
            continue
        if role is Role.ANONYMOUS:
            if permission is Permission.READ:
                issue(item, "anonymous reading is turned on with security.allow_anonymous_read: true")
            else:
                issue(item, f"Anonymous may only read, never {permission.value}")
            continue
        if role in roles:
            issue(item, f"duplicate role {role.value}")
        roles.add(role)
    return frozenset(roles)


class Policy:
    """Who may do what: the configuration's permissions applied to the roles of the user store's accounts."""

    def __init__(self, config: SecurityConfig, users: UserStore) -> None:
        self.config = config
        self.users = users

    def roles_of(self, user: str | None) -> frozenset[Role]:
        """The roles of a session's user: None is anonymous; an unknown or disabled user has none at all."""
        if user is None:
            return frozenset({Role.ANONYMOUS})
        account = self.users.get(user)
        if account is None or account.disabled:
            return frozenset()
        return account.roles | {Role.AUTHENTICATED_USER}

    def allows(self, user: str | None, permission: Permission | str) -> bool:
        """True when the user (None: anonymous) holds a permission other than `call`."""
        permission = Permission(permission)
        roles = self.roles_of(user)
        if Role.ANONYMOUS in roles:
            return permission is Permission.READ and self.config.allow_anonymous_read
        return not roles.isdisjoint(self.config.roles_for(permission))

    def may_call(self, user: str | None, target: str, action: str) -> bool:
        """True when the user may call `action` of `target` (a catalog kind value, or "incident"); never anonymous."""
        roles = self.roles_of(user)
        if Role.ANONYMOUS in roles:
            return False
        return not roles.isdisjoint(self.config.call_roles(target, action))

    def require(self, user: str | None, permission: Permission | str) -> None:
        """Raise AccessDeniedError (BadUserAccessDenied) unless `allows`."""
        if not self.allows(user, permission):
            raise AccessDeniedError(f"{_who(user)} may not {Permission(permission).value}")

    def require_call(self, user: str | None, target: str, action: str) -> None:
        """Raise AccessDeniedError (BadUserAccessDenied) unless `may_call`."""
        if not self.may_call(user, target, action):
            raise AccessDeniedError(f"{_who(user)} may not call {call_key(target, action)}")


def _who(user: str | None) -> str:
    return "an anonymous user" if user is None else f"user {user!r}"
