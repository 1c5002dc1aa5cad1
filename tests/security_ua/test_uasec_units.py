"""The pieces without a server: site configuration, the user manager's fallbacks, the event hook's limits."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from asyncua.common.utils import ServiceError
from asyncua.crypto.permission_rules import UserRole
from uasec_kit import cheap_store

from scada.model import ConfigError
from scada.security.auth import Authenticator
from scada.security.events import SecurityEvents, journal_sink, scrub
from scada.security.policy import Policy, load_security_config
from scada.security.ua_users import ACTIVATION, Activation, CityUserManager


def write_site(folder: Path, section: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "site.yaml").write_text(f"security:\n{section}")
    return folder


def test_the_none_endpoint_needs_anonymous_reading_and_retention_is_checked(tmp_path: Path) -> None:
    folder = write_site(tmp_path, "  allow_none_endpoint: true\n  personal_data_retention_days: 0\n")
    with pytest.raises(ConfigError) as info:
        load_security_config(folder)
    fields = {i.field: i.message for i in info.value.issues}
    assert "allow_anonymous_read: true" in fields["security.allow_none_endpoint"]
    assert "1..3650" in fields["security.personal_data_retention_days"]
    folder = write_site(tmp_path / "ok", "  allow_anonymous_read: true\n  allow_none_endpoint: true\n")
    config = load_security_config(folder)
    assert config.allow_none_endpoint and config.personal_data_retention_days == 30
    assert not load_security_config(write_site(tmp_path / "d", "  users_file: users.yaml\n")).allow_none_endpoint


def manager(tmp_path: Path, anonymous: bool = False) -> tuple[CityUserManager, list[tuple[str, dict]]]:
    store = cheap_store(tmp_path)
    config = load_security_config(write_site(tmp_path / "s", f"  allow_anonymous_read: {str(anonymous).lower()}\n"))
    events: list[tuple[str, dict]] = []
    policy = Policy(config, store)
    auth = Authenticator(store, on_security_event=lambda kind, details: events.append((kind, dict(details))))
    return CityUserManager(auth, policy, on_security_event=lambda k, d: events.append((k, dict(d)))), events


def test_without_the_secure_transport_users_are_insecure_and_read_only(tmp_path: Path) -> None:
    users, _ = manager(tmp_path)
    user = users.get_user(None, "operator", "operator-demo-pass")
    # no context: the password is checked here, and the user is marked insecure (the rules refuse writes)
    assert user is not None and user.name == "operator" and user.role is UserRole.User
    assert not user.secure and not user.encrypted
    assert users.get_user(None, "operator", "wrong-password-here") is None


def test_a_user_token_on_an_unsecured_channel_is_rejected_with_an_event(tmp_path: Path) -> None:
    users, events = manager(tmp_path)
    token = ACTIVATION.set(Activation("10.0.0.9", False, "password"))
    try:
        with pytest.raises(ServiceError):
            users.get_user(None, "operator", "operator-demo-pass")
    finally:
        ACTIVATION.reset(token)
    assert events[-1][0] == "login_refused_insecure_channel" and events[-1][1]["client"] == "10.0.0.9"


async def test_a_preauthenticated_outcome_is_used_only_for_the_same_credentials(tmp_path: Path) -> None:
    users, events = manager(tmp_path)
    pre = await users.preauthenticate("operator", "operator-demo-pass", "10.0.0.1")
    assert pre.account is not None and pre.error is None
    checks = len([e for e in events if e[0] == "login_succeeded"])
    token = ACTIVATION.set(Activation("10.0.0.1", True, "password", pre, {"encrypted": True}))
    try:
        user = users.get_user(None, "operator", "operator-demo-pass")
        assert user is not None and user.secure and user.encrypted and user.client == "10.0.0.1"
        assert len([e for e in events if e[0] == "login_succeeded"]) == checks  # not checked twice
        assert users.get_user(None, "operator", "another-password-x") is None  # other credentials: checked again
    finally:
        ACTIVATION.reset(token)


def test_anonymous_users_exist_only_when_anonymous_reading_is_allowed(tmp_path: Path) -> None:
    closed, _ = manager(tmp_path / "a")
    opened, _ = manager(tmp_path / "b", anonymous=True)
    token = ACTIVATION.set(Activation("10.0.0.2", True, "anonymous"))
    try:
        assert closed.get_user(None) is None
        user = opened.get_user(None)
        assert user is not None and user.account is None and user.role is UserRole.Anonymous
    finally:
        ACTIVATION.reset(token)


def test_scrub_drops_secrets() -> None:
    assert scrub({"username": "a", "password": "x", "new_password": "y", "contact": "z", "n": 1}) == {
        "username": "a",
        "n": 1,
    }


async def test_security_events_are_rate_limited_per_kind_and_client_but_audit_events_never() -> None:
    events = SecurityEvents(per_minute=3)
    got: list[tuple[str, dict]] = []
    events.add_sink(lambda e: got.append((e.kind, dict(e.details))))
    for _ in range(5):
        events.emit("login_failed", {"client": "10.0.0.1", "username": "x"})
    events.emit("login_failed", {"client": "10.0.0.2", "username": "x"})
    for _ in range(30):
        events.emit("personal_data_read", {"client": "10.0.0.1", "user": "sam", "incident": "I"})
    assert [k for k, d in got if k == "login_failed" and d["client"] == "10.0.0.1"] == ["login_failed"] * 3
    assert len([1 for k, d in got if d.get("client") == "10.0.0.2"]) == 1
    assert len([1 for k, _ in got if k == "personal_data_read"]) == 30


async def test_events_from_worker_threads_reach_the_sinks_on_the_loop() -> None:
    events = SecurityEvents()
    events.bind(asyncio.get_running_loop())
    journal: list[dict] = []

    class Journal:
        def record_event(self, **fields: object) -> None:
            journal.append(fields)

    events.add_sink(journal_sink(Journal()))
    await asyncio.to_thread(events.emit, "login_failed", {"client": "10.0.0.3", "username": "u", "reason": "r"})
    for _ in range(100):
        if journal:
            break
        await asyncio.sleep(0.01)
    [row] = journal
    assert (row["source"], row["event_type"], row["state"], row["user"]) == (
        "Security",
        "SecurityEvent",
        "login_failed",
        "u",
    )
    assert row["severity"] == 500 and row["data"]["client"] == "10.0.0.3"
