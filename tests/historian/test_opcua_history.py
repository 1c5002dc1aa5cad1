"""OPC UA HistoryRead against a real asyncua server and client over TCP, answered from the SQL historian."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import timedelta

import pytest
import pytest_asyncio
from asyncua import Client, Server, ua
from sqlalchemy import Engine, insert

from historian import aggregates as agg
from historian import queries as q
from historian.engine import make_engine
from historian.migrations import upgrade_to_head
from historian.opcua_history import SqlHistory
from historian.opcua_history_install import install_history
from historian.schema import from_us, to_us
from scada.catalog import NAMESPACE_URI

S = 1_000_000
T0 = 1_767_225_600 * S  # 2026-01-01T00:00:00Z
BAD = 0x80050000  # BadCommunicationError
SC = ua.StatusCodes
OID = ua.ObjectIds

LEVEL = "Lighting/CAB-0001/L-000001/Level"
POWER = "Lighting/CAB-0001/L-000001/PowerW"
ON = "Lighting/CAB-0001/L-000001/On"
NOT_HISTORIZED = "Lighting/CAB-0001/L-000001/Note"
CABINET = "Lighting/CAB-0001"

# the hand-computed series (seconds from T0): 10 in effect at 0 s, 20 at 20 s, a Bad 40 at 50 s, 30 at 70 s, 50 at 150 s
HAND = [(-10, 10.0, 0), (20, 20.0, 0), (50, 40.0, BAD), (70, 30.0, 0), (150, 50.0, 0)]

pytestmark = pytest.mark.asyncio(loop_scope="module")


@dataclass
class Rig:
    """A running server with history installed, a connected client, and the database behind them."""

    server: Server
    client: Client
    engine: Engine
    history: SqlHistory
    ns: int

    def node(self, path: str) -> ua.NodeId:
        """The NodeId of a path in the city namespace."""
        return ua.NodeId(path, self.ns)

    async def read(
        self,
        details: object,
        paths: Sequence[str | ua.NodeId],
        *,
        points: Sequence[bytes | None] | None = None,
        release: bool = False,
        timestamps: ua.TimestampsToReturn = ua.TimestampsToReturn.Both,
    ) -> list[ua.HistoryReadResult]:
        """A low-level HistoryRead of several nodes."""
        params = ua.HistoryReadParameters()
        params.HistoryReadDetails = details
        params.TimestampsToReturn = timestamps
        params.ReleaseContinuationPoints = release
        for index, path in enumerate(paths):
            rv = ua.HistoryReadValueId()
            rv.NodeId = path if isinstance(path, ua.NodeId) else self.node(path)
            rv.ContinuationPoint = points[index] if points else None
            params.NodesToRead.append(rv)
        return await self.client.uaclient.history_read(params)


def at(seconds: float) -> object:
    """T0 + seconds as a UTC datetime."""
    return from_us(T0 + round(seconds * S))


def raw_details(
    start: float | None, end: float | None, count: int = 0, bounds: bool = False
) -> ua.ReadRawModifiedDetails:
    """ReadRawModifiedDetails for a raw read (None: time unspecified)."""
    details = ua.ReadRawModifiedDetails()
    details.IsReadModified = False
    details.StartTime = at(start) if start is not None else ua.get_win_epoch()
    details.EndTime = at(end) if end is not None else ua.get_win_epoch()
    details.NumValuesPerNode = count
    details.ReturnBounds = bounds
    return details


def times_of(values: Sequence[ua.DataValue]) -> list[float]:
    """Source times as seconds from T0."""
    return [(to_us(v.SourceTimestamp) - T0) / S for v in values]


def find_free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Served:
    """The module's running server: its URL, namespace index and the historized nodes."""

    server: Server
    url: str
    ns: int
    historized: dict[ua.NodeId, str]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def served() -> AsyncIterator[Served]:
    """One server for the module (its start-up costs seconds): three historized variables, one that is not."""
    server = Server()
    await server.init()
    url = f"opc.tcp://127.0.0.1:{find_free_port()}/cityscada"
    server.set_endpoint(url)
    ns = await server.register_namespace(NAMESPACE_URI)
    cabinet = await server.nodes.objects.add_object(ua.NodeId(CABINET, ns), "CAB-0001")
    historized = {}
    for path, value in ((LEVEL, 0.0), (POWER, 0.0), (ON, False), (NOT_HISTORIZED, "")):
        node = await cabinet.add_variable(ua.NodeId(path, ns), path.rsplit("/", 1)[1], value)
        if path != NOT_HISTORIZED:
            historized[node.nodeid] = path
    async with server:
        yield Served(server, url, ns, historized)


@pytest_asyncio.fixture(loop_scope="module")
async def rig(served: Served, db_url: str) -> AsyncIterator[Rig]:
    """This test's database (known samples) behind the module's server, and a connected client."""
    upgrade_to_head(db_url)
    engine = make_engine(db_url)
    with engine.begin() as conn:
        conn.execute(
            insert(q.tags),
            [
                {"id": 1, "name": LEVEL, "dtype": "Double", "tag_class": "t"},
                {"id": 2, "name": POWER, "dtype": "Double", "tag_class": "t"},
                {"id": 3, "name": ON, "dtype": "Boolean", "tag_class": "t"},
            ],
        )
        conn.execute(
            insert(q.samples),
            [{"tag_id": 1, "ts": T0 + s * S, "value": v, "text": None, "quality": qual} for s, v, qual in HAND]
            + [{"tag_id": 2, "ts": T0 + i * S, "value": float(i), "text": None, "quality": 0} for i in range(1000)]
            + [
                {"tag_id": 3, "ts": T0 + i * 60 * S, "value": float(i % 2), "text": None, "quality": 0}
                for i in range(3)
            ],
        )
    history = install_history(
        served.server,
        engine,
        tag_for_nodeid=served.historized.get,
        max_continuation_points=3,
        max_values=300,
        event_types={"CommunicationLost": ua.NodeId(OID.SystemEventType)},
    )
    client = Client(served.url, timeout=10)
    async with client:
        yield Rig(served.server, client, engine, history, served.ns)
    engine.dispose()


# --- raw ----------------------------------------------------------------------------------------------------------


async def test_raw_with_continuation_points(rig: Rig) -> None:
    details = raw_details(0, 1000, count=100)
    values: list[ua.DataValue] = []
    point = None
    calls = 0
    while True:
        (result,) = await rig.read(details, [POWER], points=[point])
        assert result.StatusCode.is_good()
        values.extend(result.HistoryData.DataValues)
        calls += 1
        point = result.ContinuationPoint
        if point is None:
            break
        assert len(result.HistoryData.DataValues) == 100
    assert calls == 10
    assert [v.Value.Value for v in values] == [float(i) for i in range(1000)]
    assert times_of(values) == [float(i) for i in range(1000)]
    assert all(v.Value.VariantType == ua.VariantType.Double and v.StatusCode.value == 0 for v in values)
    # the client's own loop, no per-call limit: the server's max_values (300) splits it
    node = rig.client.get_node(rig.node(POWER))
    everything = await node.read_raw_history(at(0), at(1000), return_bounds=False)
    assert times_of(everything) == [float(i) for i in range(1000)]
    backwards = await node.read_raw_history(at(999), at(-1), return_bounds=False)
    assert times_of(backwards) == [float(i) for i in range(999, -1, -1)]


async def test_raw_bounds_one_sided_and_types(rig: Rig) -> None:
    (inside,) = await rig.read(raw_details(30, 100, bounds=True), [LEVEL])
    assert times_of(inside.HistoryData.DataValues) == [20, 50, 70, 150]  # prior value, the range, next value
    assert inside.HistoryData.DataValues[1].StatusCode.value == BAD
    (exact,) = await rig.read(raw_details(20, 70, bounds=True), [LEVEL])
    assert times_of(exact.HistoryData.DataValues) == [20, 50, 70]  # values at the ends are their own bounds
    (no_bounds,) = await rig.read(raw_details(20, 70), [LEVEL])
    assert times_of(no_bounds.HistoryData.DataValues) == [20, 50]  # end excluded
    (outside,) = await rig.read(raw_details(-100, 500, bounds=True), [LEVEL])
    first, *_, last = outside.HistoryData.DataValues
    assert first.StatusCode.value == SC.BadBoundNotFound and times_of([first]) == [-100]
    assert last.StatusCode.value == SC.BadBoundNotFound and times_of([last]) == [500]
    (reverse,) = await rig.read(raw_details(100, 30, bounds=True), [LEVEL])
    assert times_of(reverse.HistoryData.DataValues) == [150, 70, 50, 20]
    (start_only,) = await rig.read(raw_details(30, None, count=2, bounds=True), [LEVEL])
    assert times_of(start_only.HistoryData.DataValues) == [20, 50] and start_only.ContinuationPoint is None
    (end_only,) = await rig.read(raw_details(None, 60, count=2), [LEVEL])
    assert times_of(end_only.HistoryData.DataValues) == [50, 20]
    (empty,) = await rig.read(raw_details(1000, 2000), [LEVEL])
    assert empty.StatusCode.value == SC.GoodNoData and empty.HistoryData.DataValues == []
    (booleans,) = await rig.read(raw_details(0, 1000), [ON])
    assert [v.Value.Value for v in booleans.HistoryData.DataValues] == [False, True, False]
    assert booleans.HistoryData.DataValues[0].Value.VariantType == ua.VariantType.Boolean
    (missing,) = await rig.read(raw_details(None, None), [LEVEL])
    assert missing.StatusCode.value == SC.BadInvalidTimestampArgument


async def test_per_node_statuses(rig: Rig) -> None:
    results = await rig.read(raw_details(0, 100), [LEVEL, NOT_HISTORIZED, "Lighting/CAB-0001/L-999999/Level"])
    assert [r.StatusCode.value for r in results] == [
        SC.Good,
        SC.BadHistoryOperationUnsupported,
        SC.BadNodeIdUnknown,
    ]
    assert times_of(results[0].HistoryData.DataValues) == [20, 50, 70]
    modified = raw_details(0, 100)
    modified.IsReadModified = True
    (result,) = await rig.read(modified, [LEVEL])
    assert result.StatusCode.value == SC.BadHistoryOperationUnsupported
    (result,) = await rig.read(raw_details(0, 100), [LEVEL], timestamps=ua.TimestampsToReturn.Neither)
    assert result.StatusCode.value == SC.BadTimestampsToReturnInvalid


async def test_continuation_points_release_limit_and_session_close(rig: Rig) -> None:
    details = raw_details(0, 1000, count=10)
    (first,) = await rig.read(details, [POWER])
    assert first.ContinuationPoint
    (released,) = await rig.read(details, [POWER], points=[first.ContinuationPoint], release=True)
    assert released.StatusCode.value == SC.Good
    (reused,) = await rig.read(details, [POWER], points=[first.ContinuationPoint])
    assert reused.StatusCode.value == SC.BadContinuationPointInvalid
    points = []
    for _ in range(4):  # one more than the 3 allowed per session: the oldest is freed
        (result,) = await rig.read(details, [POWER])
        points.append(result.ContinuationPoint)
    (oldest,) = await rig.read(details, [POWER], points=[points[0]])
    assert oldest.StatusCode.value == SC.BadContinuationPointInvalid
    (newest,) = await rig.read(details, [POWER], points=[points[-1]])
    assert newest.StatusCode.is_good() and times_of(newest.HistoryData.DataValues) == [float(i) for i in range(10, 20)]
    (wrong_node,) = await rig.read(details, [LEVEL], points=[points[-2]])
    assert wrong_node.StatusCode.value == SC.BadContinuationPointInvalid
    assert rig.history.continuations.total() > 0
    await rig.client.disconnect()
    assert rig.history.continuations.total() == 0
    await rig.client.connect()  # the fixture disconnects it


# --- processed ------------------------------------------------------------------------------------------------------


def processed(aggregate: int, start: float, end: float, interval_s: float) -> ua.ReadProcessedDetails:
    """ReadProcessedDetails with one aggregate."""
    details = ua.ReadProcessedDetails()
    details.StartTime, details.EndTime = at(start), at(end)
    details.ProcessingInterval = interval_s * 1000
    details.AggregateType = [ua.NodeId(aggregate)]
    return details


async def read_processed(rig: Rig, aggregate: int, start: float, end: float, interval_s: float) -> list[ua.DataValue]:
    """The processed values of the Level tag, asserting a Good operation."""
    (result,) = await rig.read(processed(aggregate, start, end, interval_s), [LEVEL])
    assert result.StatusCode.is_good() and result.ContinuationPoint is None
    return result.HistoryData.DataValues


CALC = agg.INFO_TYPE_DATA_VALUE | agg.CALCULATED


async def test_processed_against_hand_computation(rig: Rig) -> None:
    # [0,100): Good 20 and 30, a Bad 40 skipped; 10 in effect at 0 s.  [100,200): 50 at 150 s, 30 before it.
    average = await read_processed(rig, OID.AggregateFunction_Average, 0, 200, 100)
    assert times_of(average) == [0, 100]
    assert average[0].Value.Value == pytest.approx(25.0)
    assert average[0].StatusCode.value == agg.UNCERTAIN_DATA_SUBNORMAL | CALC
    assert average[1].Value.Value == pytest.approx(50.0) and average[1].StatusCode.value == CALC

    at_0, at_100 = 10 + 10 * 10 / 30, 30 + 20 * 30 / 80  # TimeAverage: sloped lines between Good values
    area_0 = (at_0 + 20) / 2 * 20 + (20 + 30) / 2 * 50 + (30 + at_100) / 2 * 30
    area_1 = (at_100 + 50) / 2 * 50 + 50 * 50  # 50 held after the last value
    time_average = await read_processed(rig, OID.AggregateFunction_TimeAverage, 0, 200, 100)
    assert time_average[0].Value.Value == pytest.approx(area_0 / 100)
    assert agg.status_code(time_average[0].StatusCode.value) == agg.UNCERTAIN_DATA_SUBNORMAL  # a Bad value skipped
    assert time_average[1].Value.Value == pytest.approx(area_1 / 100)
    assert time_average[1].StatusCode.value == CALC

    minimum = await read_processed(rig, OID.AggregateFunction_Minimum, 0, 200, 100)
    maximum = await read_processed(rig, OID.AggregateFunction_Maximum, 0, 200, 100)
    assert [v.Value.Value for v in minimum] == [20.0, 50.0]
    assert [v.Value.Value for v in maximum] == [30.0, 50.0]
    assert times_of(minimum) == [0, 100]

    start = await read_processed(rig, OID.AggregateFunction_Start, 0, 200, 100)
    end = await read_processed(rig, OID.AggregateFunction_End, 0, 200, 100)
    assert [(t, v.Value.Value) for t, v in zip(times_of(start), start, strict=True)] == [(20, 20.0), (150, 50.0)]
    assert [(t, v.Value.Value) for t, v in zip(times_of(end), end, strict=True)] == [(70, 30.0), (150, 50.0)]
    assert [v.StatusCode.value for v in start] == [0, 0]  # the raw values' own status, Raw bits

    # Count over [-300, 160) by 100 s: two intervals before the data, a partial last interval
    count = await read_processed(rig, OID.AggregateFunction_Count, -300, 160, 100)
    assert times_of(count) == [-300, -200, -100, 0, 100]
    assert [v.StatusCode.value for v in count[:2]] == [agg.BAD_NO_DATA] * 2
    assert [v.Value.Value for v in count[2:]] == [1, 2, 1]
    assert count[2].Value.VariantType == ua.VariantType.Int32
    assert agg.status_code(count[3].StatusCode.value) == agg.UNCERTAIN_DATA_SUBNORMAL
    assert count[4].StatusCode.value == CALC | agg.PARTIAL  # 60 s of a 100 s interval
    (after_data,) = await read_processed(rig, OID.AggregateFunction_Count, 200, 300, 100)
    assert after_data.StatusCode.value == agg.BAD_NO_DATA
    empty = await read_processed(rig, OID.AggregateFunction_Average, 200, 300, 100)
    assert empty[0].StatusCode.value == agg.BAD_NO_DATA

    # one interval for the whole range when ProcessingInterval is 0
    (whole,) = await read_processed(rig, OID.AggregateFunction_Average, 0, 200, 0)
    assert whole.Value.Value == pytest.approx((20 + 30 + 50) / 3)


async def test_processed_errors_several_nodes_and_continuation(rig: Rig) -> None:
    details = processed(OID.AggregateFunction_Average, 0, 200, 100)
    details.AggregateType = [ua.NodeId(OID.AggregateFunction_Maximum), ua.NodeId(OID.AggregateFunction_Total)]
    maximum, total = await rig.read(details, [LEVEL, POWER])
    assert [v.Value.Value for v in maximum.HistoryData.DataValues] == [30.0, 50.0]
    assert total.StatusCode.value == SC.BadAggregateNotSupported
    mismatch = await rig.read(details, [LEVEL])
    assert mismatch[0].StatusCode.value == SC.BadAggregateListMismatch
    backwards = processed(OID.AggregateFunction_Average, 200, 0, 100)
    (result,) = await rig.read(backwards, [LEVEL])
    assert result.StatusCode.value == SC.BadHistoryOperationUnsupported
    # 1000 one-second intervals: the server returns 300 per call with continuation points
    many = processed(OID.AggregateFunction_Average, 0, 1000, 1)
    values: list[ua.DataValue] = []
    point = None
    while True:
        (result,) = await rig.read(many, [POWER], points=[point])
        values.extend(result.HistoryData.DataValues)
        point = result.ContinuationPoint
        if point is None:
            break
    assert [v.Value.Value for v in values] == [float(i) for i in range(1000)]


# --- at time --------------------------------------------------------------------------------------------------------


async def test_read_at_time(rig: Rig) -> None:
    details = ua.ReadAtTimeDetails()
    details.ReqTimes = [at(-20), at(-5), at(20), at(60), at(100)]
    details.UseSimpleBounds = True
    (simple,) = await rig.read(details, [LEVEL])
    values = simple.HistoryData.DataValues
    assert times_of(values) == [-20, -5, 20, 60, 100]
    assert values[0].StatusCode.value == agg.BAD_NO_DATA
    assert values[1].Value.Value == 10.0 and values[1].StatusCode.value == agg.INFO_TYPE_DATA_VALUE | agg.INTERPOLATED
    assert values[2].Value.Value == 20.0 and values[2].StatusCode.value == 0  # a raw value there
    assert values[3].StatusCode.value == BAD  # simple bounds: the Bad value at 50 s is in effect
    assert values[4].Value.Value == 30.0
    details.UseSimpleBounds = False
    (interpolated,) = await rig.read(details, [LEVEL])
    held = interpolated.HistoryData.DataValues[3]
    assert held.Value.Value == 20.0  # the last Good value
    assert agg.status_code(held.StatusCode.value) == agg.UNCERTAIN_DATA_SUBNORMAL


# --- events ---------------------------------------------------------------------------------------------------------

EVENTS = [
    # seconds, source, type, severity, message, state
    (1, "Lighting/CAB-0001/L-000001", "OffNormalAlarmType", 700, "Lamp failure", "active"),
    (2, "Lighting/CAB-0001", "CommunicationLost", 800, "Cabinet unreachable", "active"),
    (3, "Lighting/CAB-0001/L-000001", "OffNormalAlarmType", 700, "Lamp failure cleared", "inactive"),
    (4, "Lighting/CAB-00010", "SystemOffNormalAlarmType", 300, "Door open", "active"),
    (5, "Traffic/TLC-001", "AuditEventType", 100, "Plan 3 selected", None),
    (6, "Lighting/CAB-0001/L-000001", "OffNormalAlarmType", 200, "Lamp flicker", "active"),
]


def add_events(engine: Engine) -> None:
    """Insert the EVENTS rows."""
    with engine.begin() as conn:
        conn.execute(
            insert(q.events),
            [
                {
                    "ts": T0 + s * S,
                    "source": source,
                    "event_type": etype,
                    "severity": severity,
                    "message": message,
                    "state": state,
                    "data": '{"k": 1}',
                }
                for s, source, etype, severity, message, state in EVENTS
            ],
        )


def operand(name: str, ns: int = 0) -> ua.SimpleAttributeOperand:
    """A SimpleAttributeOperand on a BaseEventType field."""
    op = ua.SimpleAttributeOperand()
    op.TypeDefinitionId = ua.NodeId(OID.BaseEventType)
    op.BrowsePath = [ua.QualifiedName(name, ns)]
    op.AttributeId = ua.AttributeIds.Value
    return op


def element(operator: ua.FilterOperator, *operands: object) -> ua.ContentFilterElement:
    """A where-clause element."""
    el = ua.ContentFilterElement()
    el.FilterOperator = operator
    el.FilterOperands = list(operands)
    return el


def event_details(
    start: float, end: float, where: list[ua.ContentFilterElement], ns: int, count: int = 0
) -> ua.ReadEventDetails:
    """ReadEventDetails selecting the standard fields and two cityscada ones."""
    details = ua.ReadEventDetails()
    details.StartTime, details.EndTime = at(start), at(end)
    details.NumValuesPerNode = count
    details.Filter = ua.EventFilter()
    names = ["EventId", "EventType", "SourceNode", "SourceName", "Time", "Message", "Severity"]
    details.Filter.SelectClauses = [operand(n) for n in names] + [operand("State", ns), operand("LocalTime")]
    details.Filter.WhereClause = ua.ContentFilter(Elements=where)
    return details


def fields(result: ua.HistoryReadResult) -> list[list[object]]:
    """The event field values of a result."""
    return [[v.Value for v in e.EventFields] for e in result.HistoryData.Events]


async def test_events_with_filters(rig: Rig) -> None:
    add_events(rig.engine)
    server_node = ua.NodeId(OID.Server)
    where = [
        element(ua.FilterOperator.And, ua.ElementOperand(1), ua.ElementOperand(2)),
        element(
            ua.FilterOperator.GreaterThanOrEqual,
            operand("Severity"),
            ua.LiteralOperand(ua.Variant(500, ua.VariantType.UInt16)),
        ),
        element(
            ua.FilterOperator.Equals, operand("SourceName"), ua.LiteralOperand(ua.Variant("Lighting/CAB-0001/L-000001"))
        ),
    ]
    (result,) = await rig.read(event_details(0, 100, where, rig.ns), [server_node])
    rows = fields(result)
    assert [row[5].Text for row in rows] == ["Lamp failure", "Lamp failure cleared"]
    event_id, event_type, source_node, source_name, time, _msg, severity, state, local_time = rows[0]
    assert isinstance(event_id, bytes) and len(event_id) == 8
    assert event_type == ua.NodeId(OID.OffNormalAlarmType)
    assert source_node == rig.node("Lighting/CAB-0001/L-000001") and source_name == "Lighting/CAB-0001/L-000001"
    assert to_us(time) == T0 + 1 * S and severity == 700 and state == "active" and local_time is None

    of_type = [element(ua.FilterOperator.OfType, ua.LiteralOperand(ua.Variant(ua.NodeId(OID.OffNormalAlarmType))))]
    (result,) = await rig.read(event_details(0, 100, of_type, rig.ns), [server_node])
    assert [row[5].Text for row in fields(result)] == [
        "Lamp failure",
        "Lamp failure cleared",
        "Door open",
        "Lamp flicker",
    ]

    system = [element(ua.FilterOperator.OfType, ua.LiteralOperand(ua.Variant(ua.NodeId(OID.SystemEventType))))]
    (result,) = await rig.read(event_details(0, 100, system, rig.ns), [server_node])
    assert [row[5].Text for row in fields(result)] == ["Cabinet unreachable"]  # mapped by the event_types override

    # events of a device object: the cabinet and what is below it, not CAB-00010; newest first when reversed
    (cabinet,) = await rig.read(event_details(100, 0, [], rig.ns), [CABINET])
    assert [row[5].Text for row in fields(cabinet)] == [
        "Lamp flicker",
        "Lamp failure cleared",
        "Cabinet unreachable",
        "Lamp failure",
    ]
    like = [element(ua.FilterOperator.Like, operand("Message"), ua.LiteralOperand(ua.Variant("lamp f%")))]
    (result,) = await rig.read(event_details(0, 100, like, rig.ns), [server_node])
    assert [row[5].Text for row in fields(result)] == ["Lamp failure", "Lamp failure cleared", "Lamp flicker"]

    unsupported = [element(ua.FilterOperator.BitwiseAnd, operand("Severity"), ua.LiteralOperand(ua.Variant(1)))]
    (result,) = await rig.read(event_details(0, 100, unsupported, rig.ns), [server_node])
    assert result.StatusCode.value == SC.BadFilterOperatorUnsupported
    dangling = [element(ua.FilterOperator.And, ua.ElementOperand(5), ua.ElementOperand(0))]
    (result,) = await rig.read(event_details(0, 100, dangling, rig.ns), [server_node])
    assert result.StatusCode.value == SC.BadEventFilterInvalid
    (result,) = await rig.read(event_details(0, 100, [], rig.ns), [LEVEL])
    assert result.StatusCode.value == SC.BadHistoryOperationUnsupported  # a variable is not an event notifier


async def test_events_paging_and_the_client_helper(rig: Rig) -> None:
    add_events(rig.engine)
    server_node = rig.client.get_node(ua.NodeId(OID.Server))
    details = event_details(0, 100, [], rig.ns, count=4)
    seen: list[str] = []
    point = None
    while True:
        (result,) = await rig.read(details, [ua.NodeId(OID.Server)], points=[point])
        seen.extend(row[5].Text for row in fields(result))
        point = result.ContinuationPoint
        if point is None:
            break
    assert seen == [e[4] for e in EVENTS]
    # asyncua's helper: select clauses of BaseEventType, where clause InList of every event type
    events = await server_node.read_event_history(at(0), at(100))
    assert [e.Message.Text for e in events] == [e[4] for e in EVENTS]
    assert [e.Severity for e in events] == [e[3] for e in EVENTS]
    assert events[0].Time == from_us(T0 + S) and events[0].SourceName == EVENTS[0][1]
    assert events[0].Time - events[1].Time == timedelta(seconds=-1)
