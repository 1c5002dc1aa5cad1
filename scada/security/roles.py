"""OPC UA Part 18 well-known roles, the permissions the site configuration grants them, and the call targets."""

from __future__ import annotations

import enum

from scada.catalog import ACTIONS, Kind


class Role(enum.StrEnum):
    """The well-known roles of OPC UA Part 18 (4.2), by their browse names."""

    ANONYMOUS = "Anonymous"
    AUTHENTICATED_USER = "AuthenticatedUser"
    OBSERVER = "Observer"
    OPERATOR = "Operator"
    ENGINEER = "Engineer"
    SUPERVISOR = "Supervisor"
    CONFIGURE_ADMIN = "ConfigureAdmin"
    SECURITY_ADMIN = "SecurityAdmin"

    @property
    def node_id(self) -> int:
        """The numeric identifier of the role's object in namespace 0 (ObjectIds.WellKnownRole_<name>)."""
        return ROLE_NODE_IDS[self]


ROLE_NODE_IDS: dict[Role, int] = {
    Role.ANONYMOUS: 15644,
    Role.AUTHENTICATED_USER: 15656,
    Role.OBSERVER: 15668,
    Role.OPERATOR: 15680,
    Role.ENGINEER: 16036,
    Role.SUPERVISOR: 15692,
    Role.CONFIGURE_ADMIN: 15716,
    Role.SECURITY_ADMIN: 15704,
}
"""ns=0 NodeIds of the well-known role objects (checked against asyncua.ua.ObjectIds in the tests)."""

ASSIGNABLE_ROLES: tuple[Role, ...] = tuple(r for r in Role if r is not Role.ANONYMOUS)
"""Roles a user account may hold (Anonymous belongs to anonymous sessions only; AuthenticatedUser is implicit)."""

ROLE_NAMES = ", ".join(r.value for r in Role)


class Permission(enum.StrEnum):
    """What the configuration maps to roles (`security.permissions`)."""

    READ = "read"
    WRITE_SETPOINTS = "write_setpoints"
    CALL = "call"  # per target: "<kind>.<action>", "<kind>.*", "incident.report", ...
    ACKNOWLEDGE_ALARMS = "acknowledge_alarms"
    SHELVE_ALARMS = "shelve_alarms"
    SEE_PERSONAL_DATA = "see_personal_data"
    TRUST_CERTIFICATES = "trust_certificates"


PERMISSION_NAMES = ", ".join(p.value for p in Permission)

INCIDENT_TARGET = "incident"
INCIDENT_ACTIONS: tuple[str, ...] = ("report", "close")

SERVER_ACTIONS: dict[str, tuple[str, ...]] = {Kind.CABINET.value: ("override",)}
"""Methods the server runs itself rather than a device command: a cabinet's maintenance override."""

CALL_TARGETS: dict[str, tuple[str, ...]] = {
    **{
        kind.value: tuple(spec.name for spec in ACTIONS[kind]) + SERVER_ACTIONS.get(kind.value, ())
        for kind in Kind
        if ACTIONS[kind]
    },
    INCIDENT_TARGET: INCIDENT_ACTIONS,
}
"""Every target of the `call` permission and its actions: the catalog's device kinds (and the server's own methods
on them), and incidents."""


def parse_role(name: str) -> Role:
    """The role of that browse name; ValueError naming the known roles otherwise."""
    try:
        return Role(name)
    except ValueError:
        raise ValueError(f"unknown role {name!r}, expected one of {ROLE_NAMES}") from None


def call_key(target: str, action: str) -> str:
    """The configuration key of one call target ("lamp.set_level")."""
    return f"{target}.{action}"


def check_call_key(key: str) -> None:
    """Raise ValueError with a precise message unless `key` is "<kind>.<action>" or "<kind>.*" of a known target."""
    target, dot, action = key.partition(".")
    if not dot or not target or not action:
        raise ValueError(f"expected <kind>.<action> or <kind>.*, got {key!r}")
    actions = CALL_TARGETS.get(target)
    if actions is None:
        known = ", ".join(CALL_TARGETS)
        raise ValueError(f"unknown kind {target!r}, expected one of {known}")
    if action != "*" and action not in actions:
        raise ValueError(f"a {target} has no action {action!r} (expected {', '.join(actions)} or *)")
