"""The `security` section: defaults, validation messages with lines, and the permission matrix of the Policy."""

from __future__ import annotations

from pathlib import Path

import pytest

from scada.model import AccessDeniedError, ConfigError, Quality
from scada.security.policy import DEFAULT_CALLS, DEFAULT_GRANTS, Policy, load_security_config
from scada.security.roles import Permission, Role
from scada.security.users import UserStore

ROOT = Path(__file__).resolve().parents[2]
SITE_HEAD = "site: {name: t, latitude: 47.3, longitude: 5.0, timezone: UTC}\n"


def write_site(tmp_path: Path, security: str) -> Path:
    folder = tmp_path / "site"
    folder.mkdir()
    (folder / "site.yaml").write_text(SITE_HEAD + security)
    return folder


@pytest.mark.parametrize("site", ["small", "dijon"])
def test_shipped_sites_give_the_documented_permissions(site: str) -> None:
    config = load_security_config(ROOT / "config" / site)
    assert config.users_file == ROOT / "config" / site / "users.yaml"
    assert config.allow_anonymous_read is False
    assert dict(config.grants) == DEFAULT_GRANTS
    assert dict(config.calls) == DEFAULT_CALLS
    assert config.call_roles("controller", "select_plan") == {Role.ENGINEER, Role.SUPERVISOR}
    assert config.call_roles("incident", "close") == {Role.OPERATOR, Role.SUPERVISOR}


def test_absent_section_gives_the_defaults(tmp_path: Path) -> None:
    config = load_security_config(write_site(tmp_path, ""))
    assert config.users_file == tmp_path / "site" / "users.yaml"
    assert dict(config.calls) == DEFAULT_CALLS and not config.allow_anonymous_read


def test_a_permission_given_replaces_its_default_only(tmp_path: Path) -> None:
    folder = write_site(
        tmp_path,
        "security:\n  users_file: /etc/cityscada/users.yaml\n  allow_anonymous_read: true\n"
        "  permissions:\n    shelve_alarms: [Supervisor, Engineer]\n    call:\n      lamp.set_level: [Engineer]\n",
    )
    config = load_security_config(folder)
    assert config.users_file == Path("/etc/cityscada/users.yaml")
    assert config.allow_anonymous_read
    assert config.roles_for("shelve_alarms") == {Role.SUPERVISOR, Role.ENGINEER}
    assert config.roles_for(Permission.READ) == DEFAULT_GRANTS[Permission.READ]
    assert config.call_roles("lamp", "set_level") == {Role.ENGINEER}
    assert config.call_roles("cabinet", "set_mode") == frozenset()  # `call` is replaced as a whole: fail closed


def test_every_issue_is_reported_with_its_line(tmp_path: Path) -> None:
    folder = write_site(
        tmp_path,
        """\
security:
  users_file: 12
  allow_anonymous_read: "yes"
  colour: blue
  permissions:
    read: [Observer, Anonymous]
    write_setpoints: [Operator, Opertor]
    acknowledge_alarms: Operator
    teleport: [Supervisor]
    call:
      lamp.*: [Operator, Anonymous]
      lamp.set_mode: [Operator]
      tram.*: [Operator]
      cabinet: [Operator]
      incident.report: [Operator, Operator]
""",
    )
    with pytest.raises(ConfigError) as info:
        load_security_config(folder)
    got = {(i.line, i.field, i.message) for i in info.value.issues}
    assert all(i.file == "site/site.yaml" for i in info.value.issues)
    expected = {
        (3, "security.users_file", "expected a file name, got the number 12"),
        (4, "security.allow_anonymous_read", "expected true or false, got 'yes'"),
        (
            5,
            "security.colour",
            "unknown field (expected users_file, allow_anonymous_read, permissions, allow_none_endpoint, "
            "personal_data_retention_days)",
        ),
        (7, "security.permissions.read[1]", "anonymous reading is turned on with security.allow_anonymous_read: true"),
        (
            8,
            "security.permissions.write_setpoints[1]",
            "unknown role 'Opertor', expected one of Anonymous, AuthenticatedUser, Observer, Operator, Engineer, "
            "Supervisor, ConfigureAdmin, SecurityAdmin",
        ),
        (9, "security.permissions.acknowledge_alarms", "expected a list of roles, got 'Operator'"),
        (
            10,
            "security.permissions.teleport",
            "unknown permission 'teleport', expected one of read, write_setpoints, call, acknowledge_alarms, "
            "shelve_alarms, see_personal_data, trust_certificates",
        ),
        (12, "security.permissions.call.lamp.*[1]", "Anonymous may only read, never call"),
        (13, "security.permissions.call.lamp.set_mode", "a lamp has no action 'set_mode' (expected set_level or *)"),
        (
            14,
            "security.permissions.call.tram.*",
            "unknown kind 'tram', expected one of lamp, cabinet, controller, sign, parking_site, incident",
        ),
        (15, "security.permissions.call.cabinet", "expected <kind>.<action> or <kind>.*, got 'cabinet'"),
        (16, "security.permissions.call.incident.report[1]", "duplicate role Operator"),
    }
    assert got == expected


def test_policy_matrix(policy: Policy) -> None:
    matrix = {
        "olga": {"read"},
        "oscar": {"read", "write_setpoints", "acknowledge_alarms"},
        "emma": {"read", "write_setpoints"},
        "sam": {"read", "write_setpoints", "acknowledge_alarms", "shelve_alarms", "see_personal_data"},
        "cora": set(),
        "sacha": {"read", "trust_certificates"},
        "nobody": set(),  # unknown user: no role at all
        None: set(),  # anonymous, and anonymous reading is off
    }
    plain = [p for p in Permission if p is not Permission.CALL]
    for user, allowed in matrix.items():
        assert {p.value for p in plain if policy.allows(user, p)} == allowed, user
    assert policy.may_call("oscar", "lamp", "set_level") and not policy.may_call("olga", "lamp", "set_level")
    assert policy.may_call("emma", "controller", "select_plan") and not policy.may_call(
        "oscar", "controller", "release_plan"
    )
    assert policy.may_call("oscar", "incident", "report") and not policy.may_call("emma", "incident", "close")
    assert not policy.may_call(None, "lamp", "set_level")
    with pytest.raises(AccessDeniedError) as info:
        policy.require("olga", "shelve_alarms")
    assert info.value.status == Quality.BAD_USER_ACCESS_DENIED
    with pytest.raises(AccessDeniedError, match=r"user 'olga' may not call sign\.display"):
        policy.require_call("olga", "sign", "display")
    with pytest.raises(ValueError, match="call permission is per target"):
        policy.allows("oscar", "call")


def test_anonymous_may_only_read_even_when_allowed(policy: Policy, tmp_path: Path) -> None:
    folder = write_site(tmp_path, "security: {allow_anonymous_read: true}\n")
    open_policy = Policy(load_security_config(folder), policy.users)
    assert open_policy.allows(None, "read")
    assert not any(open_policy.allows(None, p) for p in Permission if p not in (Permission.READ, Permission.CALL))
    assert not open_policy.may_call(None, "lamp", "set_level")


def test_disabled_user_loses_every_permission(policy: Policy, store: UserStore) -> None:
    assert policy.allows("sam", "see_personal_data")
    store.update("sam", disabled=True)
    assert policy.roles_of("sam") == frozenset()
    assert not policy.allows("sam", "read")
