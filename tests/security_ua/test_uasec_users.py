"""Users, roles and security events through real clients: Part 18 roles decide, refusals are audited."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import pytest
from asyncua import Client, ua
from uasec_kit import (
    LAMP,
    EventCollector,
    SecureCity,
    cheap_store,
    city_ns,
    demo_password,
    eventually,
    make_app_cert,
    start_city,
)

from scada.model import Quality
from scada.security.passwords import PasswordHasher
from scada.security.users import UserStore


async def test_an_operator_commands_a_lamp_and_an_observer_is_refused_and_audited(city: SecureCity) -> None:
    async with await city.client("operator") as client:
        ns = await city_ns(client)
        await client.get_node(ua.NodeId(LAMP, ns)).call_method(f"{ns}:SetLevel", 30.0)
        await client.get_node(ua.NodeId(f"{LAMP}/LevelSetpoint", ns)).write_value(35.0)
    async with await city.client("observer") as client:
        lamp = client.get_node(ua.NodeId(LAMP, ns))
        assert (await lamp.read_browse_name()).Name == "L-000001"  # observers read
        with pytest.raises(ua.uaerrors.BadUserAccessDenied):
            await lamp.call_method(f"{ns}:SetLevel", 0.0)
        with pytest.raises(ua.uaerrors.BadUserAccessDenied):
            await client.get_node(ua.NodeId(f"{LAMP}/LevelSetpoint", ns)).write_value(0.0)
    assert [(r.user, r.origin, r.args) for r in city.driver.requests] == [
        ("operator", "opcua-method", {"Level": 30.0}),
        ("operator", "opcua-write", {"Level": 35.0}),
    ]
    audited = [(a.user, a.origin, a.device_id, a.status) for a in city.audits]
    assert audited == [
        ("operator", "opcua-method", "L-000001", Quality.GOOD),
        ("operator", "opcua-write", "L-000001", Quality.GOOD),
        ("observer", "opcua-method", "L-000001", Quality.BAD_USER_ACCESS_DENIED),
        ("observer", "opcua-write", "L-000001", Quality.BAD_USER_ACCESS_DENIED),
    ]


async def test_an_engineer_may_command_a_controller_but_an_operator_may_not(city: SecureCity) -> None:
    for user in ("engineer", "operator"):
        async with await city.client(user) as client:
            ns = await city_ns(client)
            controller = client.get_node(ua.NodeId("Traffic/TLC-001", ns))
            if user == "engineer":
                await controller.call_method(f"{ns}:ReleasePlan")
            else:
                with pytest.raises(ua.uaerrors.BadUserAccessDenied):
                    await controller.call_method(f"{ns}:ReleasePlan")
    assert [(r.user, r.action) for r in city.driver.requests] == [("engineer", "release_plan")]


async def test_a_user_without_the_read_permission_cannot_browse_or_read(city: SecureCity) -> None:
    async with await city.client("configadmin") as client:  # ConfigureAdmin has no `read` by default
        with pytest.raises(ua.uaerrors.BadUserAccessDenied):
            await client.nodes.objects.get_children()
        with pytest.raises(ua.uaerrors.BadUserAccessDenied):
            await client.nodes.server.read_browse_name()


async def test_an_observer_cannot_report_an_incident(city: SecureCity) -> None:
    args = ("accident", 47.3222, 5.0413, "two cars", "")
    async with await city.client("observer") as client:
        ns = await city_ns(client)
        incidents = client.get_node(ua.NodeId("Incidents", ns))
        with pytest.raises(ua.uaerrors.BadUserAccessDenied):
            await incidents.call_method(f"{ns}:ReportIncident", *args)
    async with await city.client("operator") as client:
        incidents = client.get_node(ua.NodeId("Incidents", ns))
        incident_id = await incidents.call_method(f"{ns}:ReportIncident", *args)
        assert incident_id.startswith("INC-")


async def test_a_disabled_user_loses_write_rights_within_the_session(city: SecureCity) -> None:
    async with await city.client("operator") as client:
        ns = await city_ns(client)
        lamp = client.get_node(ua.NodeId(LAMP, ns))
        await lamp.call_method(f"{ns}:SetLevel", 10.0)
        city.security.store.update("operator", disabled=True)
        with pytest.raises(ua.uaerrors.BadUserAccessDenied):
            await lamp.call_method(f"{ns}:SetLevel", 20.0)
    assert [r.args for r in city.driver.requests] == [{"Level": 10.0}]


async def test_a_user_certificate_logs_in_with_its_roles(tmp_path: Path, free_port: int) -> None:
    store = cheap_store(tmp_path / "u")
    badge = make_app_cert(tmp_path / "badge", "alice-badge", "urn:cityscada:user:alice")
    store.add("alice", None, ["Operator"], [badge.thumbprint])
    city = await start_city(tmp_path / "data", free_port, store=store)
    try:
        client = await city.client()
        await client.load_client_certificate(str(badge.cert))
        await client.load_private_key(badge.key)
        async with client:
            ns = await city_ns(client)
            await client.get_node(ua.NodeId(LAMP, ns)).call_method(f"{ns}:SetLevel", 70.0)
        stranger = make_app_cert(tmp_path / "other", "mallory", "urn:cityscada:user:mallory")
        client = await city.client()
        await client.load_client_certificate(str(stranger.cert))
        await client.load_private_key(stranger.key)
        with pytest.raises(ua.uaerrors.BadUserAccessDenied):
            await client.connect()
        await client.disconnect()
    finally:
        await city.stop()
    assert [(r.user, r.args) for r in city.driver.requests] == [("alice", {"Level": 70.0})]


async def test_bad_passwords_are_throttled_and_raise_security_events_for_subscribers(city: SecureCity) -> None:
    collector = EventCollector()
    async with await city.client("supervisor") as watcher:
        ns = await city_ns(watcher)
        event_type = watcher.get_node(ua.NodeId("Types/CitySecurityEventType", ns))
        subscription = await watcher.create_subscription(50, collector)
        await subscription.subscribe_events(watcher.nodes.server, event_type, queuesize=100)
        for _ in range(5):
            intruder = await city.client("operator", "not-the-password")
            with pytest.raises(ua.uaerrors.BadUserAccessDenied):
                await intruder.connect()
            await intruder.disconnect()
        locked = await city.client("operator")  # the right password, but the name is locked out now
        with pytest.raises(ua.uaerrors.BadUserAccessDenied):
            await locked.connect()
        await locked.disconnect()
        await eventually(lambda: "login_refused_locked" in collector.kinds(), what="the lockout events")
    kinds = collector.kinds()
    assert kinds.count("login_failed") == 5
    assert "login_locked_out" in kinds
    failed = next(e for e in collector.events if e.Kind == "login_failed")
    assert failed.ClientUserId == "operator"
    assert failed.Status is False
    assert failed.Severity >= 500
    assert failed.ClientAddress == "127.0.0.1"
    assert "bad_password" in failed.Details
    assert "not-the-password" not in failed.Details


async def test_the_server_never_logs_passwords(
    tmp_path: Path, free_port: int, caplog: pytest.LogCaptureFixture
) -> None:
    secret = "Zebra-Quartz-Melon-417"
    wrong = "Wrong-Guess-Banana-992"
    store = cheap_store(tmp_path / "u")
    store.add("paula", secret, ["Operator"])
    caplog.set_level(logging.DEBUG)
    city = await start_city(tmp_path / "data", free_port, store=store)
    try:
        async with await city.client("paula", secret) as client:
            ns = await city_ns(client)
            await client.get_node(ua.NodeId(LAMP, ns)).call_method(f"{ns}:SetLevel", 5.0)
        for _ in range(6):
            client = await city.client("paula", wrong)
            with pytest.raises(ua.UaError):
                await client.connect()
            await client.disconnect()
    finally:
        await city.stop()
    server_records = [r for r in caplog.records if not r.name.startswith("asyncua.client")]
    assert any("login" in r.getMessage() for r in server_records)  # the capture did see the logins
    for record in server_records:
        text = record.getMessage() + (record.exc_text or "")
        assert secret not in text and wrong not in text, record.name
    assert secret not in store.path.read_text() and wrong not in store.path.read_text()


class ThreadRecordingHasher(PasswordHasher):
    """A cheap hasher that records the threads it verifies in."""

    def __init__(self) -> None:
        super().__init__(time_cost=1, memory_kib=8, parallelism=1)
        self.threads: list[int] = []

    def verify(self, password_hash: str, password: str) -> bool:
        self.threads.append(threading.get_ident())
        return super().verify(password_hash, password)

    def verify_dummy(self, password: str) -> None:
        self.threads.append(threading.get_ident())
        super().verify_dummy(password)


async def test_password_checks_run_off_the_event_loop(tmp_path: Path, free_port: int) -> None:
    hasher = ThreadRecordingHasher()
    store = UserStore(tmp_path / "users.yaml", hasher)
    store.add("olivia", demo_password("olivia"), ["Operator"])
    city = await start_city(tmp_path / "data", free_port, store=store)
    try:
        async with await city.client("olivia"):
            pass
        client = await city.client("nobody-at-all")
        with pytest.raises(ua.uaerrors.BadUserAccessDenied):
            await client.connect()
        await client.disconnect()
    finally:
        await city.stop()
    loop_thread = threading.get_ident()
    assert len(hasher.threads) == 2
    assert loop_thread not in hasher.threads


async def test_anonymous_sessions_are_refused_unless_anonymous_reading_is_allowed(city: SecureCity) -> None:
    client = await city.client()
    with pytest.raises(ua.UaError):
        await client.connect()
    await client.disconnect()
    assert isinstance(client, Client)


async def test_user_executable_and_user_access_level_answer_for_the_sessions_user(city: SecureCity) -> None:
    """What a user may do is told before trying: per-user UserExecutable and UserAccessLevel (Part 3)."""
    write_bit = 1 << ua.AccessLevel.CurrentWrite.value

    async def rights(user: str) -> dict[str, object]:
        async with await city.client(user) as client:
            ns = await city_ns(client)
            lamp = client.get_node(ua.NodeId(LAMP, ns))
            set_level = await lamp.get_child(f"{ns}:SetLevel")
            release = await client.get_node(ua.NodeId("Traffic/TLC-001", ns)).get_child(f"{ns}:ReleasePlan")
            report = await client.get_node(ua.NodeId("Incidents", ns)).get_child(f"{ns}:ReportIncident")
            acknowledge = client.get_node(ua.NodeId(ua.ObjectIds.AcknowledgeableConditionType_Acknowledge))
            shelve = client.get_node(ua.NodeId(ua.ObjectIds.ShelvedStateMachineType_TimedShelve))
            out: dict[str, object] = {}
            for name, node in (
                ("SetLevel", set_level),
                ("ReleasePlan", release),
                ("ReportIncident", report),
                ("Acknowledge", acknowledge),
                ("TimedShelve", shelve),
            ):
                out[name] = await node.read_attribute(ua.AttributeIds.UserExecutable)
                out[name] = out[name].Value.Value  # type: ignore[attr-defined]
                assert (await node.read_attribute(ua.AttributeIds.Executable)).Value.Value is True
            setpoint = client.get_node(ua.NodeId(f"{LAMP}/LevelSetpoint", ns))
            level = (await setpoint.read_attribute(ua.AttributeIds.UserAccessLevel)).Value.Value
            access = (await setpoint.read_attribute(ua.AttributeIds.AccessLevel)).Value.Value
            assert access & write_bit  # the node itself is writable
            out["LevelSetpoint writable"] = bool(level & write_bit)
            return out

    assert await rights("operator") == {
        "SetLevel": True,
        "ReleasePlan": False,  # controllers are the engineers'
        "ReportIncident": True,
        "Acknowledge": True,
        "TimedShelve": False,  # shelving is the supervisors'
        "LevelSetpoint writable": True,
    }
    assert await rights("observer") == {
        "SetLevel": False,
        "ReleasePlan": False,
        "ReportIncident": False,
        "Acknowledge": False,
        "TimedShelve": False,
        "LevelSetpoint writable": False,
    }
    engineer = await rights("engineer")
    assert engineer["ReleasePlan"] is True and engineer["SetLevel"] is True
