"""OPC UA Part 9 conditions through a real asyncua client over TCP: events, Acknowledge/Confirm/AddComment,
flood suppression, shelving expiry, ConditionRefresh, status codes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from asyncua import Client, ua
from asyncua.crypto.permission_rules import User, UserRole
from uakit import command_service
from uasites import make_site

from scada.alarms import AlarmEngine, AlarmsConfig, AlarmTransition, FloodConfig
from scada.model import AccessDeniedError, Quality, ValueRecord, utcnow
from scada.opcua import CityServer
from scada.opcua.conditions import OpcUaConditions
from scada.router import TagRouter

pytestmark = pytest.mark.asyncio(loop_scope="module")

ACKNOWLEDGE = ua.NodeId(ua.ObjectIds.AcknowledgeableConditionType_Acknowledge)
CONFIRM = ua.NodeId(ua.ObjectIds.AcknowledgeableConditionType_Confirm)
ADD_COMMENT = ua.NodeId(ua.ObjectIds.ConditionType_AddComment)
ENABLE = ua.NodeId(ua.ObjectIds.ConditionType_Enable)
DISABLE = ua.NodeId(ua.ObjectIds.ConditionType_Disable)
TIMED_SHELVE = ua.NodeId(ua.ObjectIds.ShelvedStateMachineType_TimedShelve)
UNSHELVE = ua.NodeId(ua.ObjectIds.ShelvedStateMachineType_Unshelve)
REFRESH = ua.NodeId(ua.ObjectIds.ConditionType_ConditionRefresh)
REFRESH2 = ua.NodeId(ua.ObjectIds.ConditionType_ConditionRefresh2)
CONDITION_TYPE = ua.NodeId(ua.ObjectIds.ConditionType)
OFF_NORMAL = ua.NodeId(ua.ObjectIds.OffNormalAlarmType)
SYSTEM_OFF_NORMAL = ua.NodeId(ua.ObjectIds.SystemOffNormalAlarmType)
REFRESH_START = ua.NodeId(ua.ObjectIds.RefreshStartEventType)
REFRESH_END = ua.NodeId(ua.ObjectIds.RefreshEndEventType)
SMALL_SITE = Path(__file__).resolve().parents[2] / "config" / "small"
PASSWORDS = {"alice": "alice-pass", "sam": "sam-pass"}
MAY = {"acknowledge_alarms": {"alice", "sam"}, "shelve_alarms": {"sam"}}


class PasswordUsers:
    """A user manager over a fixed table."""

    def get_user(self, iserver: Any, username: str | None = None, password: str | None = None, certificate: Any = None):
        if username is None:
            return User(role=UserRole.User)
        if PASSWORDS.get(username) == password:
            return User(role=UserRole.User, name=username)
        return None


def authorize(user: str | None, permission: str) -> None:
    """The role check: alice acknowledges, sam acknowledges and shelves, anonymous does neither."""
    if user not in MAY[permission]:
        raise AccessDeniedError(f"{user!r} may not {permission}")


class Events:
    """An asyncua subscription handler keeping every event notification."""

    def __init__(self) -> None:
        self.events: list[Any] = []
        self.position = 0  # where the last event taken by next() was
        self._arrived = asyncio.Event()

    def event_notification(self, event: Any) -> None:
        self.events.append(event)
        self._arrived.set()

    async def until(self, done: Callable[[list[Any]], bool], within: float = 5.0) -> None:
        """Wait until `done(events)` holds (fails after `within` seconds)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while not done(self.events):
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise AssertionError(f"not done within {within} s ({len(self.events)} events)")
            self._arrived.clear()
            try:
                await asyncio.wait_for(self._arrived.wait(), remaining)
            except TimeoutError:
                pass

    async def next(self, match: Callable[[Any], bool], within: float = 5.0) -> Any:
        """The first event not yet taken that matches (taken out of the list); fails after `within` seconds."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while True:
            for index, event in enumerate(self.events):
                if match(event):
                    self.position = index
                    return self.events.pop(index)
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise AssertionError(f"no matching event within {within} s; got {[summary(e) for e in self.events]}")
            self._arrived.clear()
            try:
                await asyncio.wait_for(self._arrived.wait(), remaining)
            except TimeoutError:
                pass


async def refresh_window(events: Events) -> list[Any]:
    """The events a ConditionRefresh delivered, between its RefreshStart and RefreshEnd (taken out of the list)."""
    end = await events.next(lambda e: value(e, "EventType") == REFRESH_END)
    events.events.insert(events.position, end)  # put it back where it was: arrival order matters here
    kept = events.events
    last = kept.index(end)
    first = max(i for i, e in enumerate(kept[:last]) if value(e, "EventType") == REFRESH_START)
    assert value(kept[first], "SourceNode") == value(end, "SourceNode") == ua.NodeId(ua.ObjectIds.Server)
    window = kept[first + 1 : last]
    del kept[: last + 1]
    return window


def value(event: Any, name: str) -> Any:
    """A field of a received event by its browse path ("ActiveState/Id")."""
    return getattr(event, name)


def summary(event: Any) -> str:
    return f"{value(event, 'SourceName')}:{getattr(value(event, 'Message'), 'Text', '')}"


def source_is(name: str) -> Callable[[Any], bool]:
    return lambda event: value(event, "SourceName") == name


@dataclass
class Rig:
    """A CityServer with alarms & conditions, a router feeding it, and a subscribed client (alice)."""

    site: Any
    server: CityServer
    engine: AlarmEngine
    conditions: OpcUaConditions
    router: TagRouter
    client: Client
    sub: Any
    events: Events
    ns: int
    journal: list[AlarmTransition] = field(default_factory=list)

    def feed(self, *items: tuple[str, Any] | tuple[str, Any, int]) -> None:
        now = utcnow()
        self.router.publish(
            [ValueRecord(i[0], i[1], i[2] if len(i) > 2 else Quality.GOOD, now) for i in items]  # type: ignore[misc]
        )

    def nid(self, path: str) -> ua.NodeId:
        return ua.NodeId(path, self.ns)

    async def sentinel(self, tag: str) -> None:
        """Raise and clear an unrelated alarm and wait for both events: everything emitted before has arrived."""
        self.feed((tag, True))
        await self.events.next(lambda e: value(e, "InputNode") == self.nid(tag) and value(e, "ActiveState/Id"))
        self.feed((tag, False))
        await self.events.next(lambda e: value(e, "InputNode") == self.nid(tag) and not value(e, "ActiveState/Id"))


async def connect(url: str, user: str | None = None) -> Client:
    client = Client(url, timeout=10, watchdog_intervall=30.0)
    if user is not None:
        client.set_user(user)
        client.set_password(PASSWORDS[user])
    await client.connect()
    return client


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def rig() -> AsyncIterator[Rig]:
    site = make_site(cabinets=3, lamps_per_cabinet=4, controllers=3, signs=3)
    service, _driver = command_service(site)
    server = CityServer(site, service, "127.0.0.1", 0, user_manager=PasswordUsers())
    await server.start()
    journal: list[AlarmTransition] = []
    config = replace(AlarmsConfig(), flood=FloodConfig(release_delay_s=0.0), max_shelve_s=3600.0, coalesce_ms=20.0)
    engine = AlarmEngine(site, config, journal=journal.append)
    conditions = OpcUaConditions(server, engine, authorize=authorize, freeze_gc=False)
    router = TagRouter()
    router.add_sink("address-space", server.writer.apply)
    router.add_sink("alarms", engine)
    await engine.start()
    await conditions.start()
    client = await connect(server.endpoint_url, "alice")
    events = Events()
    sub = await client.create_subscription(50, events)
    await sub.subscribe_alarms_and_conditions(evtypes=ua.ObjectIds.AlarmConditionType)
    ns = await client.get_namespace_index("urn:cityscada:city")
    try:
        yield Rig(site, server, engine, conditions, router, client, sub, events, ns, journal)
    finally:
        await client.disconnect()
        await conditions.stop()
        await engine.stop()
        await server.stop()


async def test_a_lamp_failure_raises_a_condition_event_with_the_standard_fields(rig: Rig) -> None:
    lamp = "Lighting/CAB-0001/L-000001"
    now = utcnow()
    rig.router.publish([ValueRecord(f"{lamp}/LampFailure", True, Quality.GOOD, now)])
    event = await rig.events.next(source_is("L-000001"))
    assert value(event, "EventType") == OFF_NORMAL
    assert value(event, "SourceNode") == rig.nid(lamp)
    assert value(event, "NodeId") == rig.nid(f"{lamp}/Alarms/LampFailure")  # the ConditionId
    assert value(event, "InputNode") == rig.nid(f"{lamp}/LampFailure")
    assert value(event, "ConditionName") == "LampFailure"
    assert value(event, "ConditionClassId") == ua.NodeId(ua.ObjectIds.MaintenanceConditionClassType)
    assert value(event, "BranchId") == ua.NodeId()
    assert value(event, "Time") == now
    assert (value(event, "Severity"), value(event, "LastSeverity")) == (300, 300)
    assert value(event, "Message").Text == "Lamp failure: lamp L-000001 (cabinet CAB-0001)"
    assert isinstance(value(event, "EventId"), bytes) and len(value(event, "EventId")) == 16
    assert value(event, "Retain") is True
    assert value(event, "EnabledState/Id") is True and value(event, "EnabledState").Text == "Enabled"
    assert value(event, "ActiveState/Id") is True and value(event, "ActiveState").Text == "Active"
    assert value(event, "AckedState/Id") is False and value(event, "AckedState").Text == "Unacknowledged"
    assert value(event, "ConfirmedState/Id") is True
    assert value(event, "SuppressedState/Id") is False
    assert value(event, "ShelvingState/CurrentState").Text == "Unshelved"
    assert value(event, "ShelvingState/CurrentState/Id") == ua.NodeId(ua.ObjectIds.ShelvedStateMachineType_Unshelved)
    assert value(event, "Quality") == ua.StatusCode(ua.StatusCodes.Good)
    assert value(event, "ActiveState/TransitionTime") == now
    assert value(event, "MaxTimeShelved") == 3_600_000.0
    assert value(event, "Comment").Text in ("", None)


async def test_acknowledge_confirm_and_comment_through_the_standard_methods(rig: Rig) -> None:
    lamp = "Lighting/CAB-0001/L-000002"
    rig.feed((f"{lamp}/LampFailure", True))
    raised = await rig.events.next(source_is("L-000002"))
    condition = rig.client.get_node(value(raised, "NodeId"))
    event_id = value(raised, "EventId")
    with pytest.raises(ua.UaStatusCodeError) as unknown:
        await condition.call_method(ACKNOWLEDGE, b"not-an-event-id", ua.LocalizedText("?"))
    assert unknown.value.code == ua.StatusCodes.BadEventIdUnknown
    with pytest.raises(ua.UaStatusCodeError) as early:
        await condition.call_method(CONFIRM, event_id, ua.LocalizedText("too early"))
    assert early.value.code == ua.StatusCodes.BadConditionBranchAlreadyConfirmed
    await condition.call_method(ACKNOWLEDGE, event_id, ua.LocalizedText("crew sent"))
    acked = await rig.events.next(source_is("L-000002"))
    assert value(acked, "AckedState/Id") is True and value(acked, "ConfirmedState/Id") is False
    assert value(acked, "Comment").Text == "crew sent" and value(acked, "ClientUserId") == "alice"
    assert value(acked, "EventId") != event_id and value(acked, "Retain") is True
    with pytest.raises(ua.UaStatusCodeError) as again:
        await condition.call_method(ACKNOWLEDGE, value(acked, "EventId"), ua.LocalizedText("again"))
    assert again.value.code == ua.StatusCodes.BadConditionBranchAlreadyAcked
    await condition.call_method(ADD_COMMENT, value(acked, "EventId"), ua.LocalizedText("lamp ordered"))
    commented = await rig.events.next(source_is("L-000002"))
    assert value(commented, "Comment").Text == "lamp ordered" and value(commented, "AckedState/Id") is True
    await condition.call_method(CONFIRM, value(commented, "EventId"), ua.LocalizedText("replaced"))
    confirmed = await rig.events.next(source_is("L-000002"))
    assert value(confirmed, "ConfirmedState/Id") is True and value(confirmed, "Retain") is True  # still active
    rig.feed((f"{lamp}/LampFailure", False))
    cleared = await rig.events.next(source_is("L-000002"))
    assert value(cleared, "ActiveState/Id") is False and value(cleared, "Retain") is False
    mine = [(t.transition, t.user, t.comment) for t in rig.journal if t.source == "L-000002"]
    assert mine == [
        ("raised", None, None),
        ("acknowledged", "alice", "crew sent"),
        ("commented", "alice", "lamp ordered"),
        ("confirmed", "alice", "replaced"),
        ("cleared", None, None),
    ]
    assert rig.journal[-1].path == lamp and rig.journal[-1].condition == "LampFailure"


async def test_method_arguments_rights_and_unknown_conditions(rig: Rig) -> None:
    rig.feed(("Signs/VMS-01/Fault", True))
    raised = await rig.events.next(source_is("VMS-01"))
    condition = rig.client.get_node(value(raised, "NodeId"))
    with pytest.raises(ua.UaStatusCodeError) as wrong_type:
        await condition.call_method(ACKNOWLEDGE, "not bytes", ua.LocalizedText(""))
    assert wrong_type.value.code == ua.StatusCodes.BadInvalidArgument
    with pytest.raises(ua.UaStatusCodeError) as missing:
        await condition.call_method(ACKNOWLEDGE, value(raised, "EventId"))
    assert missing.value.code == ua.StatusCodes.BadArgumentsMissing
    with pytest.raises(ua.UaStatusCodeError) as not_a_condition:
        await rig.client.get_node(rig.nid("Signs/VMS-01")).call_method(ACKNOWLEDGE, b"x", ua.LocalizedText(""))
    assert not_a_condition.value.code == ua.StatusCodes.BadNodeIdUnknown
    with pytest.raises(ua.UaStatusCodeError) as may_not_shelve:  # alice acknowledges, she does not shelve
        await condition.call_method(TIMED_SHELVE, 1000.0)
    assert may_not_shelve.value.code == ua.StatusCodes.BadUserAccessDenied
    anonymous = await connect(rig.server.endpoint_url)
    try:
        with pytest.raises(ua.UaStatusCodeError) as denied:
            await anonymous.get_node(value(raised, "NodeId")).call_method(
                ACKNOWLEDGE, value(raised, "EventId"), ua.LocalizedText("")
            )
        assert denied.value.code == ua.StatusCodes.BadUserAccessDenied
    finally:
        await anonymous.disconnect()
    assert rig.engine.find("Signs/VMS-01/Alarms/SignFault").acked is False  # type: ignore[union-attr]


async def test_a_cabinet_communication_loss_suppresses_and_counts_its_lamp_alarms(rig: Rig) -> None:
    cab, lamps = "Lighting/CAB-0002", [f"Lighting/CAB-0002/L-00100{i}" for i in range(1, 5)]
    rig.feed((f"{lamps[0]}/LampFailure", True))  # failed before the loss: shown
    shown = await rig.events.next(source_is("L-001001"))
    assert value(shown, "Retain") is True
    rig.feed(
        (f"{cab}/CommunicationOk", False),
        *((f"{lamp}/LampFailure", None, Quality.BAD_COMM) for lamp in lamps),
    )
    rig.feed((f"{lamps[1]}/LampFailure", True), (f"{lamps[2]}/LampFailure", True))  # more lamp alarms meanwhile
    lost = await rig.events.next(lambda e: value(e, "SourceName") == "CAB-0002" and value(e, "ActiveState/Id"))
    assert value(lost, "EventType") == SYSTEM_OFF_NORMAL and value(lost, "Severity") == 700
    suppressed = await rig.events.next(source_is("L-001001"))
    assert value(suppressed, "SuppressedState/Id") is True and value(suppressed, "Retain") is False
    await rig.sentinel("Traffic/TLC-003/SignalLampFailure")
    counted = [e for e in rig.events.events if value(e, "SourceName") == "CAB-0002"]
    messages = [value(lost, "Message").Text] + [value(e, "Message").Text for e in counted]
    assert messages[-1] == "Communication lost: cabinet CAB-0002 (Cabinet 2) (+3 lamp alarms suppressed)"
    assert not [e for e in rig.events.events if value(e, "SourceName").startswith("L-00100")]  # none shown
    assert rig.engine.suppressed_count("CAB-0002") == 3
    rig.events.events.clear()
    # back: lamps 1 and 2 still failed, lamp 3 recovered during the loss, lamp 4 never failed
    rig.feed(
        (f"{cab}/CommunicationOk", True),
        (f"{lamps[0]}/LampFailure", True),
        (f"{lamps[1]}/LampFailure", True),
        (f"{lamps[2]}/LampFailure", False),
        (f"{lamps[3]}/LampFailure", False),
    )
    back_1 = await rig.events.next(source_is("L-001001"))
    back_2 = await rig.events.next(source_is("L-001002"))
    for event in (back_1, back_2):
        assert value(event, "SuppressedState/Id") is False and value(event, "Retain") is True
        assert value(event, "ActiveState/Id") is True and value(event, "AckedState/Id") is False
    await rig.sentinel("Traffic/TLC-003/SignalLampFailure")
    assert not [e for e in rig.events.events if value(e, "SourceName") in ("L-001003", "L-001004")]
    transitions = [(t.source, t.transition, t.suppressed) for t in rig.journal if t.source.startswith("L-00100")]
    assert ("L-001002", "raised", True) in transitions and ("L-001003", "cleared", True) in transitions
    assert ("L-001002", "unsuppressed", False) in transitions


async def test_timed_shelve_expires_with_an_event(rig: Rig) -> None:
    sam = await connect(rig.server.endpoint_url, "sam")
    try:
        rig.feed(("Traffic/TLC-001/SignalLampFailure", True))
        raised = await rig.events.next(source_is("TLC-001"))
        condition = sam.get_node(value(raised, "NodeId"))
        shelving = await condition.get_child("0:ShelvingState")  # browsing makes the condition's variables
        assert shelving.nodeid == ua.NodeId(f"{value(raised, 'NodeId').Identifier}/ShelvingState", rig.ns)
        with pytest.raises(ua.UaStatusCodeError) as not_shelved:
            await shelving.call_method(UNSHELVE)
        assert not_shelved.value.code == ua.StatusCodes.BadConditionNotShelved
        for bad in (0.0, 3_600_001.0):
            with pytest.raises(ua.UaStatusCodeError) as out_of_range:
                await shelving.call_method(TIMED_SHELVE, ua.Variant(bad, ua.VariantType.Double))
            assert out_of_range.value.code == ua.StatusCodes.BadShelvingTimeOutOfRange
        await shelving.call_method(TIMED_SHELVE, ua.Variant(400.0, ua.VariantType.Double))
        shelved = await rig.events.next(source_is("TLC-001"))
        assert value(shelved, "ShelvingState/CurrentState").Text == "Timed Shelved"
        assert value(shelved, "SuppressedOrShelved") is True
        assert 0.0 < value(shelved, "ShelvingState/UnshelveTime") <= 400.0
        assert value(shelved, "ShelvingState/LastTransition/Id") == ua.NodeId(
            ua.ObjectIds.ShelvedStateMachineType_UnshelvedToTimedShelved
        )
        remaining = await sam.get_node(
            rig.nid(f"{value(raised, 'NodeId').Identifier}/ShelvingState/UnshelveTime")
        ).read_value()
        assert 0.0 <= remaining <= 400.0
        with pytest.raises(ua.UaStatusCodeError) as already:
            await condition.call_method(TIMED_SHELVE, ua.Variant(1000.0, ua.VariantType.Double))  # on the condition
        assert already.value.code == ua.StatusCodes.BadConditionAlreadyShelved
        expired = await rig.events.next(source_is("TLC-001"), within=5.0)
        assert value(expired, "ShelvingState/CurrentState").Text == "Unshelved"
        assert value(expired, "ShelvingState/LastTransition/Id") == ua.NodeId(
            ua.ObjectIds.ShelvedStateMachineType_TimedShelvedToUnshelved
        )
        assert value(expired, "ActiveState/Id") is True and value(expired, "SuppressedOrShelved") is False
        mine = [(t.transition, t.user, t.detail) for t in rig.journal if t.source == "TLC-001"]
        assert mine[-2:] == [("shelved", "sam", "timed 0.4 s"), ("unshelved", None, "shelving time expired")]
    finally:
        await sam.disconnect()


async def test_disable_and_enable_through_the_standard_methods(rig: Rig) -> None:
    sam = await connect(rig.server.endpoint_url, "sam")
    try:
        rig.feed(("Signs/VMS-02/Fault", True))
        raised = await rig.events.next(source_is("VMS-02"))
        condition = sam.get_node(value(raised, "NodeId"))
        await condition.call_method(DISABLE)
        disabled = await rig.events.next(source_is("VMS-02"))
        assert value(disabled, "EnabledState/Id") is False and value(disabled, "Retain") is False
        with pytest.raises(ua.UaStatusCodeError) as twice:
            await condition.call_method(DISABLE)
        assert twice.value.code == ua.StatusCodes.BadConditionAlreadyDisabled
        with pytest.raises(ua.UaStatusCodeError) as ack_disabled:
            await condition.call_method(ACKNOWLEDGE, value(raised, "EventId"), ua.LocalizedText(""))
        assert ack_disabled.value.code == ua.StatusCodes.BadConditionDisabled
        await condition.call_method(ENABLE)
        enabled = await rig.events.next(source_is("VMS-02"))
        assert value(enabled, "EnabledState/Id") is True and value(enabled, "ActiveState/Id") is True
    finally:
        await sam.disconnect()


async def test_condition_refresh_gives_a_late_client_the_retained_conditions(rig: Rig) -> None:
    rig.feed(("Parking/PK-01/Free", 0), ("Lighting/CAB-0003/DoorOpen", True))
    await rig.events.next(source_is("PK-01"))
    await rig.events.next(source_is("CAB-0003"))
    retained = {
        ua.NodeId(c.path, rig.ns) for c in rig.engine.conditions() if c.retain and rig.conditions.node_of(c.path)
    }
    assert rig.nid("Parking/PK-01/Alarms/CarParkFull") in retained and len(retained) >= 3
    late = await connect(rig.server.endpoint_url, "alice")
    try:
        events = Events()
        sub = await late.create_subscription(50, events)
        handle = await sub.subscribe_alarms_and_conditions(evtypes=ua.ObjectIds.AlarmConditionType)
        rig.events.events.clear()
        await late.get_node(CONDITION_TYPE).call_method(REFRESH, ua.Variant(sub.subscription_id, ua.VariantType.UInt32))
        refreshed = await refresh_window(events)
        assert {value(e, "NodeId") for e in refreshed} == retained
        assert all(value(e, "Retain") for e in refreshed)
        # only that subscription: the first client saw no refresh
        await rig.sentinel("Traffic/TLC-002/Fault")
        assert not [e for e in rig.events.events if value(e, "EventType") in (REFRESH_START, REFRESH_END)]
        retained.add(rig.nid("Traffic/TLC-002/Alarms/ControllerFault"))  # cleared but not acknowledged: retained
        await late.get_node(CONDITION_TYPE).call_method(
            REFRESH2, ua.Variant(sub.subscription_id, ua.VariantType.UInt32), ua.Variant(handle, ua.VariantType.UInt32)
        )
        assert {value(e, "NodeId") for e in await refresh_window(events)} == retained
        with pytest.raises(ua.UaStatusCodeError) as bad_sub:
            await late.get_node(CONDITION_TYPE).call_method(REFRESH, ua.Variant(999_999, ua.VariantType.UInt32))
        assert bad_sub.value.code == ua.StatusCodes.BadSubscriptionIdInvalid
        with pytest.raises(ua.UaStatusCodeError) as bad_item:
            await late.get_node(CONDITION_TYPE).call_method(
                REFRESH2,
                ua.Variant(sub.subscription_id, ua.VariantType.UInt32),
                ua.Variant(424242, ua.VariantType.UInt32),
            )
        assert bad_item.value.code == ua.StatusCodes.BadMonitoredItemIdInvalid
    finally:
        await late.disconnect()


async def test_notifiers_and_condition_nodes_in_the_address_space(rig: Rig) -> None:
    client, ns = rig.client, rig.ns
    lamp = client.get_node(rig.nid("Lighting/CAB-0001/L-000003"))
    assert await lamp.read_event_notifier() == {ua.EventNotifier.SubscribeToEvents}
    assert await client.get_node(rig.nid("Lighting")).read_event_notifier() == {ua.EventNotifier.SubscribeToEvents}
    server = client.get_node(ua.ObjectIds.Server)
    notified = await server.get_referenced_nodes(refs=ua.ObjectIds.HasNotifier)
    assert rig.nid("City") in [n.nodeid for n in notified]
    cabinet = client.get_node(rig.nid("Lighting/CAB-0001"))
    sources = await cabinet.get_referenced_nodes(refs=ua.ObjectIds.HasEventSource, includesubtypes=False)
    assert {n.nodeid for n in sources} == {rig.nid(f"Lighting/CAB-0001/L-00000{i}") for i in range(1, 5)}
    rig.feed(("Lighting/CAB-0001/L-000003/LampFailure", True))
    raised = await rig.events.next(source_is("L-000003"))
    conditions = await lamp.get_referenced_nodes(refs=ua.ObjectIds.HasCondition)
    assert [n.nodeid for n in conditions] == [value(raised, "NodeId")]
    condition = client.get_node(value(raised, "NodeId"))
    assert (await condition.read_type_definition()) == OFF_NORMAL
    names = {(await child.read_browse_name()).Name for child in await condition.get_children()}
    assert {"EnabledState", "ActiveState", "AckedState", "ConfirmedState", "Retain", "Severity", "Message"} <= names
    assert {"Acknowledge", "Confirm", "AddComment", "Enable", "Disable", "ShelvingState"} <= names
    active_id = await condition.get_child(["0:ActiveState", "0:Id"])
    assert await active_id.read_value() is True
    acked = client.get_node(ua.NodeId(f"{value(raised, 'NodeId').Identifier}/AckedState/Id", ns))
    assert await acked.read_value() is False
    with pytest.raises(ua.UaStatusCodeError) as read_only:
        await acked.write_value(True)
    assert read_only.value.code == ua.StatusCodes.BadNotWritable
    # a subscription on a condition variable follows its events
    changes: asyncio.Queue[Any] = asyncio.Queue()

    class Changes:
        def datachange_notification(self, node: Any, val: Any, data: Any) -> None:
            changes.put_nowait(val)

    watch = await client.create_subscription(50, Changes())
    await watch.subscribe_data_change(acked)
    assert await asyncio.wait_for(changes.get(), 5) is False
    await condition.call_method(ACKNOWLEDGE, value(raised, "EventId"), ua.LocalizedText("seen"))
    assert await asyncio.wait_for(changes.get(), 5) is True
    await watch.delete()


async def test_events_reach_items_on_the_area_and_cabinet_notifiers(rig: Rig) -> None:
    watcher = await connect(rig.server.endpoint_url, "alice")
    try:
        lighting, cabinet = Events(), Events()
        await (await watcher.create_subscription(50, lighting)).subscribe_alarms_and_conditions(
            sourcenode=rig.nid("Lighting"), evtypes=ua.ObjectIds.AlarmConditionType
        )
        await (await watcher.create_subscription(50, cabinet)).subscribe_alarms_and_conditions(
            sourcenode=rig.nid("Lighting/CAB-0003"), evtypes=ua.ObjectIds.AlarmConditionType
        )
        rig.feed(("Traffic/TLC-003/Fault", True), ("Lighting/CAB-0003/L-002004/LampFailure", True))
        rig.feed(("Lighting/CAB-0001/L-000004/LampFailure", True))
        await lighting.next(source_is("L-002004"))
        await lighting.next(source_is("L-000004"))
        await cabinet.next(source_is("L-002004"))
        await rig.sentinel("Lighting/CAB-0003/MainsFailure")  # a cabinet's own alarm, through its own notifier
        await cabinet.next(source_is("CAB-0003"))
        assert not [e for e in lighting.events + cabinet.events if value(e, "SourceName") == "TLC-003"]
        assert not [e for e in cabinet.events if value(e, "SourceName") == "L-000004"]
    finally:
        await watcher.disconnect()


async def test_a_burst_is_paced_to_the_clients_queues_and_a_stuck_client_holds_nobody(free_port: int) -> None:
    site = make_site(cabinets=4, lamps_per_cabinet=60, controllers=1, signs=1)
    service, _driver = command_service(site)
    server = CityServer(site, service, "127.0.0.1", free_port)
    await server.start()
    config = replace(AlarmsConfig(), coalesce_ms=10.0)
    engine = AlarmEngine(site, config)
    conditions = OpcUaConditions(server, engine, chunk=50, stall_s=0.5, freeze_gc=False)
    router = TagRouter()
    router.add_sink("alarms", engine)
    await conditions.start()
    steady, stuck = await connect(server.endpoint_url), await connect(server.endpoint_url)
    try:
        received = Events()
        sub = await steady.create_subscription(50, received)
        await sub.subscribe_events(evtypes=ua.ObjectIds.AlarmConditionType, queuesize=20)
        frozen = await stuck.create_subscription(50, Events())
        await frozen.subscribe_events(evtypes=ua.ObjectIds.AlarmConditionType, queuesize=20)
        await frozen.set_publishing_mode(False)  # this client takes nothing: its queue fills and stays full
        now = utcnow()
        router.publish([ValueRecord(f"{lamp.path}/LampFailure", True, Quality.GOOD, now) for lamp in site.lamps()])
        await received.until(lambda events: len({value(e, "SourceName") for e in events}) >= 240, within=20.0)
        names = [value(e, "SourceName") for e in received.events]
        assert len(names) == len(set(names)) == 240  # every alarm once, none lost to the queue of 20
        assert conditions.stats.stalls == 1  # the stuck client was waited for once, then ignored
        assert conditions.stats.events == 240
    finally:
        await steady.disconnect()
        await stuck.disconnect()
        await conditions.stop()
        await server.stop()


async def test_on_simulators_over_modbus_lamp_failure_then_cabinet_loss(tmp_path: Any) -> None:
    """Field to client: simulator -> Modbus driver -> router -> alarm engine -> conditions -> OPC UA client."""
    from drivers.modbus.driver import ModbusDriver
    from drivers.sim.city import CityOptions
    from drivers.sim.runner import CitySimulator
    from scada.commands import CommandService
    from scada.site.loader import load_site, rebind_endpoints

    site = load_site(SMALL_SITE)
    for device in site.field_devices():
        device.endpoint = replace(device.endpoint, poll_ms=200)
    sim = CitySimulator(site, seed=3, bind="free", options=CityOptions(movers=0.0, cars=False, random_faults=False))
    await sim.start()
    rebind_endpoints(site, sim.endpoints)
    server = CityServer(site, CommandService(site), "127.0.0.1", 0)
    journal: list[AlarmTransition] = []
    engine = AlarmEngine(site, replace(AlarmsConfig(), flood=FloodConfig(release_delay_s=0.5)), journal=journal.append)
    conditions = OpcUaConditions(server, engine, coalesce_ms=20.0, freeze_gc=False)
    router = TagRouter()
    driver = ModbusDriver(list(site.field_devices()), router.publish, timeout=0.5, reconnect_min_s=0.2)
    client = None
    try:
        await server.start()
        router.add_sink("address-space", server.writer.apply)
        router.add_sink("alarms", engine)
        await engine.start()
        await conditions.start()
        await driver.start()
        client = await connect(server.endpoint_url)
        events = Events()
        await (await client.create_subscription(50, events)).subscribe_alarms_and_conditions(
            evtypes=ua.ObjectIds.AlarmConditionType
        )
        cabinet = site.cabinets["CAB-0002"]
        failed, other = cabinet.lamps[0], cabinet.lamps[1]
        await sim.set_fault(failed.id, "lamp_failure")
        raised = await events.next(source_is(failed.id), within=10.0)
        assert value(raised, "ActiveState/Id") is True and value(raised, "Severity") == 300
        await client.get_node(value(raised, "NodeId")).call_method(
            ACKNOWLEDGE, value(raised, "EventId"), ua.LocalizedText("crew sent")
        )
        acked = await events.next(source_is(failed.id))
        assert value(acked, "AckedState/Id") is True and value(acked, "Comment").Text == "crew sent"
        await sim.set_fault(cabinet.id, "offline")
        lost = await events.next(lambda e: value(e, "SourceName") == cabinet.id, within=15.0)
        assert value(lost, "ConditionName") == "CommunicationLost" and value(lost, "ActiveState/Id") is True
        # (the lamp's quality went Uncertain after the first failed poll: an event; then the loss suppresses it)
        hidden = await events.next(lambda e: value(e, "SourceName") == failed.id and value(e, "SuppressedState/Id"))
        assert value(hidden, "Retain") is False
        assert value(hidden, "Quality") != ua.StatusCode(ua.StatusCodes.Good)
        await sim.set_fault(other.id, "lamp_failure")  # fails while nobody can see it
        await sim.set_fault(cabinet.id, "offline", on=False)
        back = await events.next(
            lambda e: value(e, "SourceName") == cabinet.id and not value(e, "ActiveState/Id"), within=15.0
        )
        assert value(back, "Retain") is True  # cleared, still to be acknowledged
        shown_again = await events.next(source_is(failed.id), within=10.0)
        assert value(shown_again, "SuppressedState/Id") is False and value(shown_again, "Retain") is True
        newly = await events.next(source_is(other.id), within=10.0)  # read after the recovery, once released
        assert value(newly, "ActiveState/Id") is True and value(newly, "AckedState/Id") is False
        steps = [(t.source, t.transition) for t in journal if t.source in (failed.id, other.id, cabinet.id)]
        assert steps[:4] == [
            (failed.id, "raised"),
            (failed.id, "acknowledged"),
            (cabinet.id, "raised"),
            (failed.id, "suppressed"),
        ]
        assert (cabinet.id, "cleared") in steps and (failed.id, "unsuppressed") in steps
    finally:
        if client is not None:
            await client.disconnect()
        await driver.stop()
        await conditions.stop()
        await engine.stop()
        await server.stop()
        await sim.stop()


async def test_a_where_clause_on_severity_is_evaluated_per_event(rig: Rig) -> None:
    from asyncua.common.events import get_filter_from_event_type

    watcher = await connect(rig.server.endpoint_url, "alice")
    try:
        evfilter = await get_filter_from_event_type([watcher.get_node(ua.ObjectIds.AlarmConditionType)])
        severity = ua.SimpleAttributeOperand(
            TypeDefinitionId=ua.NodeId(ua.ObjectIds.BaseEventType),
            BrowsePath=[ua.QualifiedName("Severity", 0)],
            AttributeId=ua.AttributeIds.Value,
        )
        evfilter.WhereClause = ua.ContentFilter(
            Elements=[
                ua.ContentFilterElement(
                    FilterOperator=ua.FilterOperator.GreaterThan,
                    FilterOperands=[severity, ua.LiteralOperand(Value=ua.Variant(500, ua.VariantType.UInt16))],
                )
            ]
        )
        severe = Events()
        await (await watcher.create_subscription(50, severe)).subscribe_events(
            ua.ObjectIds.Server, ua.ObjectIds.AlarmConditionType, evfilter
        )
        rig.feed(("Lighting/CAB-0003/L-002003/LampFailure", True), ("Traffic/TLC-002/SignalLampFailure", True))
        await rig.events.next(source_is("L-002003"))
        event = await severe.next(source_is("TLC-002"))
        assert value(event, "Severity") == 600
        await rig.sentinel("Traffic/TLC-003/Fault")  # severity 900: passes too
        await severe.next(lambda e: value(e, "SourceName") == "TLC-003")
        assert not [e for e in severe.events if value(e, "Severity") <= 500]
    finally:
        await watcher.disconnect()


async def test_one_shot_shelve_with_a_comment_ends_when_the_alarm_clears(rig: Rig) -> None:
    sam = await connect(rig.server.endpoint_url, "sam")
    try:
        rig.feed(("Signs/VMS-03/Fault", True))
        raised = await rig.events.next(source_is("VMS-03"))
        condition = sam.get_node(value(raised, "NodeId"))
        one_shot2 = ua.NodeId(ua.ObjectIds.ShelvedStateMachineType_OneShotShelve2)
        await condition.call_method(one_shot2, ua.LocalizedText("known pixel fault, crew tomorrow"))
        shelved = await rig.events.next(source_is("VMS-03"))
        assert value(shelved, "ShelvingState/CurrentState").Text == "One Shot Shelved"
        with pytest.raises(ua.UaStatusCodeError) as twice:
            await condition.call_method(ua.NodeId(ua.ObjectIds.ShelvedStateMachineType_OneShotShelve))
        assert twice.value.code == ua.StatusCodes.BadConditionAlreadyShelved
        rig.feed(("Signs/VMS-03/Fault", False))
        cleared = await rig.events.next(source_is("VMS-03"))
        assert value(cleared, "ActiveState/Id") is False
        assert value(cleared, "ShelvingState/CurrentState").Text == "Unshelved"
        mine = [(t.transition, t.user, t.comment) for t in rig.journal if t.source == "VMS-03"]
        assert mine == [
            ("raised", None, None),
            ("shelved", "sam", "known pixel fault, crew tomorrow"),
            ("cleared", None, None),
            ("unshelved", None, None),
        ]
    finally:
        await sam.disconnect()


@pytest.mark.slow
async def test_a_district_blackout_of_10000_lamp_alarms_reaches_the_client_with_nothing_lost() -> None:
    """Dijon scale, flood suppression off: 10,000 conditions at once, the client gets every one exactly once."""
    from scada.commands import CommandService
    from scada.site.loader import load_site

    site = load_site(SMALL_SITE.parent / "dijon")
    server = CityServer(site, CommandService(site), "127.0.0.1", 0)
    await server.start()
    engine = AlarmEngine(site, replace(AlarmsConfig(), flood=FloodConfig(suppress_children_on=frozenset())))
    conditions = OpcUaConditions(server, engine, freeze_gc=False)
    router = TagRouter()
    router.add_sink("address-space", server.writer.apply)
    router.add_sink("alarms", engine)
    await conditions.start()
    client = await connect(server.endpoint_url)
    try:
        received = Events()
        sub = await client.create_subscription(100, received)
        await sub.subscribe_alarms_and_conditions(evtypes=ua.ObjectIds.AlarmConditionType)  # default queue
        lamps = [lamp for cabinet in list(site.cabinets.values())[:100] for lamp in cabinet.lamps][:10_000]
        now = utcnow()
        for start in range(0, len(lamps), 100):
            router.publish(
                [
                    ValueRecord(f"{lamp.path}/LampFailure", True, Quality.GOOD, now)
                    for lamp in lamps[start : start + 100]
                ]
            )
        await received.until(lambda events: len(events) >= 10_000, within=120.0)
        names = [value(e, "SourceName") for e in received.events]
        assert len(names) == len(set(names)) == 10_000
        assert set(names) == {lamp.id for lamp in lamps}
        assert conditions.stats.stalls == 0
    finally:
        await client.disconnect()
        await conditions.stop()
        await server.stop()
