"""OPC UA Historical Access (Part 11) for an asyncua Server, answered from the SQL historian.

SqlHistory answers HistoryRead for a session (historian.opcua_history_install puts it into an asyncua server).
Continuation points are opaque random bytes kept per session (at most `max_continuation_points`, the oldest freed
first), released on request or when the session closes. Supported: ReadRaw (NumValuesPerNode, continuation, ReturnBounds, either time direction),
ReadProcessed (Average, TimeAverage, Minimum, Maximum, Count, Start, End; Part 13 status and historian bits),
ReadAtTime (stepped, simple or interpolated bounds) and ReadEvent (select clauses on the standard and cityscada
fields, where clauses compiled to SQL). The database work runs in a worker thread: a long query never stalls the
server's event loop.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from asyncua import Server, ua
from asyncua.server.internal_server import InternalServer
from sqlalchemy import Connection, Engine, and_, or_
from sqlalchemy.exc import OperationalError

from historian import aggregates as agg
from historian import event_queries as eq
from historian import queries as q
from historian.aggregates import Interpolation
from historian.opcua_events import EventFields, EventFilterError, EventTypes
from historian.schema import from_us, to_us
from scada.catalog import NAMESPACE_URI

_logger = logging.getLogger(__name__)

SC = ua.StatusCodes
OID = ua.ObjectIds


def nodeid(identifier: int | str, namespace: int = 0) -> ua.NodeId:
    """A NodeId (asyncua's annotations want its own int/str subclasses)."""
    return ua.NodeId(cast(Any, identifier), cast(Any, namespace))


def status_code(code: int) -> ua.StatusCode:
    """A StatusCode from an int."""
    return ua.StatusCode(cast(Any, code))


AGGREGATES: dict[int, str] = {
    OID.AggregateFunction_Average: "Average",
    OID.AggregateFunction_TimeAverage: "TimeAverage",
    OID.AggregateFunction_Minimum: "Minimum",
    OID.AggregateFunction_Maximum: "Maximum",
    OID.AggregateFunction_Count: "Count",
    OID.AggregateFunction_Start: "Start",
    OID.AggregateFunction_End: "End",
}

TagForNodeId = Callable[[ua.NodeId], str | None]
SourceForNodeId = Callable[[ua.NodeId], str | None]

_VARIANT_TYPES: dict[str, ua.VariantType] = {
    "Boolean": ua.VariantType.Boolean,
    "UInt16": ua.VariantType.UInt16,
    "UInt32": ua.VariantType.UInt32,
    "Int32": ua.VariantType.Int32,
    "Double": ua.VariantType.Double,
    "String": ua.VariantType.String,
    "DateTime": ua.VariantType.DateTime,
}


def variant(value: Any, dtype: str) -> ua.Variant:
    """A stored value (float, str or None) as a Variant of the tag's OPC UA data type."""
    if value is None:
        return ua.Variant()
    vtype = _VARIANT_TYPES.get(dtype, ua.VariantType.Double)
    if vtype is ua.VariantType.Boolean:
        return ua.Variant(bool(value), vtype)
    if vtype in (ua.VariantType.UInt16, ua.VariantType.UInt32, ua.VariantType.Int32):
        return ua.Variant(round(value), vtype) if isinstance(value, int | float) else ua.Variant(str(value))
    if vtype is ua.VariantType.String:
        return ua.Variant(str(value), vtype)
    if vtype is ua.VariantType.DateTime:
        if isinstance(value, int | float):
            return ua.Variant(from_us(int(value)), vtype)
        try:
            return ua.Variant(datetime.fromisoformat(str(value)), vtype)  # the ingest stores datetimes as ISO text
        except ValueError:
            return ua.Variant(str(value))
    return ua.Variant(float(value), ua.VariantType.Double) if isinstance(value, int | float) else ua.Variant(value)


def opc_time(moment: datetime | None) -> int | None:
    """An OPC UA UtcTime as µs since the epoch; None when unspecified (DateTime.MinValue, the 1601 epoch)."""
    if moment is None or moment <= ua.get_win_epoch():
        return None
    return to_us(moment)


# --- continuation points -----------------------------------------------------------------------------------------


class ContinuationStore:
    """Continuation points per session: opaque random tokens mapped to the state of a paused read."""

    def __init__(self, max_per_session: int) -> None:
        if max_per_session < 1:
            raise ValueError("a server keeps at least one continuation point per session")
        self.max_per_session = max_per_session
        self._points: dict[Any, OrderedDict[bytes, Any]] = {}

    def put(self, session: Any, state: Any) -> bytes:
        """Store a state and return its token; the session's oldest point is freed when it has too many."""
        points = self._points.setdefault(session, OrderedDict())
        while len(points) >= self.max_per_session:
            points.popitem(last=False)
        token = secrets.token_bytes(16)
        points[token] = state
        return token

    def take(self, session: Any, token: bytes) -> Any | None:
        """Remove and return the state of a token of this session (None when unknown or released)."""
        points = self._points.get(session)
        return None if points is None else points.pop(bytes(token), None)

    def count(self, session: Any) -> int:
        """How many continuation points the session holds."""
        return len(self._points.get(session, ()))

    def total(self) -> int:
        """How many continuation points all sessions hold."""
        return sum(len(points) for points in self._points.values())

    def drop(self, session: Any) -> int:
        """Free every continuation point of a session (it closed); returns how many there were."""
        return len(self._points.pop(session, ()))

    def clear(self) -> None:
        """Free every continuation point of every session."""
        self._points.clear()


@dataclass(slots=True)
class _Read:
    """Common state of a paused data read: the node, its tag, and the reading window."""

    nodeid: ua.NodeId
    tag: q.TagInfo


@dataclass(slots=True)
class _RawRead(_Read):
    """A raw read: from `origin` (inclusive) towards `stop` (exclusive) in one direction."""

    origin: int
    stop: int | None
    descending: bool
    per_call: int  # NumValuesPerNode when both times are given (0: none)
    remaining: int | None  # values still owed when only one time is given
    start_bound: bool  # the start bound is still to be sent
    end_bound: bool  # the end bound is still to be sent
    after: int | None = None
    data_done: bool = False
    returned: int = 0  # real points sent so far


@dataclass(slots=True)
class _ProcessedRead(_Read):
    """A processed read: intervals of `width` µs from start to end, the next one to compute."""

    aggregate: int
    start: int
    end: int
    width: int
    next_index: int = 0


@dataclass(slots=True)
class _AtTimeRead(_Read):
    """An at-time read: the requested times and the next one to answer."""

    times: list[int]
    simple_bounds: bool
    next_index: int = 0


@dataclass(slots=True)
class _EventRead:
    """An event read: the source, the compiled filter and the keyset position."""

    nodeid: ua.NodeId
    source: str  # "" for every source
    select: list[ua.SimpleAttributeOperand]
    where: Any
    origin: int
    stop: int | None
    descending: bool
    per_call: int
    remaining: int | None
    after: eq.Cursor | None = None
    returned: int = 0


@dataclass(slots=True)
class _Outcome:
    """What one node's read produced: values (or event field lists), the status, and the state to resume."""

    items: list[Any]
    status: int
    resume: Any = None


class _Failure(Exception):
    """A per-node failure carrying its status code."""

    def __init__(self, status: int) -> None:
        super().__init__(hex(status))
        self.status = status


# --- the backend ------------------------------------------------------------------------------------------------


class SqlHistory:
    """Answers HistoryRead from the SQL historian (see the module docstring)."""

    def __init__(
        self,
        server: Server,
        engine: Engine,
        *,
        tag_for_nodeid: TagForNodeId,
        source_for_nodeid: SourceForNodeId | None = None,
        nodeid_for_source: Callable[[str], ua.NodeId | None] | None = None,
        event_types: Mapping[str, ua.NodeId] | None = None,
        max_continuation_points: int = 10,
        max_values: int = 10_000,
        time_average: Interpolation = Interpolation.SLOPED,
    ) -> None:
        self.server = server
        self.iserver: InternalServer = server.iserver
        self.engine = engine
        self.tag_for_nodeid = tag_for_nodeid
        self.source_for_nodeid = source_for_nodeid or _default_source_for_nodeid
        self._nodeid_for_source = nodeid_for_source
        self._event_type_overrides = dict(event_types or {})
        self._event_types: EventTypes | None = None
        self.continuations = ContinuationStore(max_continuation_points)
        self.max_values = max_values
        self.time_average = time_average
        self._tags: dict[str, q.TagInfo] = {}
        self._city_ns: int | None = None

    # -- set-up -----------------------------------------------------------------------------------------------

    def advertise(self) -> None:
        """Publish the history capabilities in the Server object (capability flags, limits, aggregate functions)."""
        aspace = self.iserver.aspace
        values = {
            OID.HistoryServerCapabilities_AccessHistoryDataCapability: ua.Variant(True, ua.VariantType.Boolean),
            OID.HistoryServerCapabilities_AccessHistoryEventsCapability: ua.Variant(True, ua.VariantType.Boolean),
            OID.HistoryServerCapabilities_MaxReturnDataValues: ua.Variant(self.max_values, ua.VariantType.UInt32),
            OID.HistoryServerCapabilities_MaxReturnEventValues: ua.Variant(self.max_values, ua.VariantType.UInt32),
            OID.HistoryServerCapabilities_ServerTimestampSupported: ua.Variant(False, ua.VariantType.Boolean),
            OID.Server_ServerCapabilities_MaxHistoryContinuationPoints: ua.Variant(
                self.continuations.max_per_session, ua.VariantType.UInt16
            ),
        }
        for number, value in values.items():
            node = aspace.get(nodeid(number))
            attribute = node.attributes.get(ua.AttributeIds.Value) if node is not None else None
            if attribute is not None:
                attribute.value = ua.DataValue(value)
        refs = []
        for folder in (
            OID.HistoryServerCapabilities_AggregateFunctions,
            OID.Server_ServerCapabilities_AggregateFunctions,
        ):
            for function in AGGREGATES:
                item = ua.AddReferencesItem()
                item.SourceNodeId = nodeid(folder)
                item.ReferenceTypeId = nodeid(OID.Organizes)
                item.IsForward = True
                item.TargetNodeId = nodeid(function)
                item.TargetNodeClass = ua.NodeClass.Object
                refs.append(item)
        self.iserver.node_mgt_service.add_references(refs)

    def event_types(self) -> EventTypes:
        """The event type tree of the address space (built on first use; types do not change once serving)."""
        if self._event_types is None:
            self._event_types = EventTypes(self.iserver.aspace, self._event_type_overrides)
        return self._event_types

    def nodeid_for_source(self, source: str) -> ua.NodeId | None:
        """The SourceNode of an event source (default: the string NodeId of that path in the city namespace)."""
        if self._nodeid_for_source is not None:
            return self._nodeid_for_source(source)
        return nodeid(source, self.city_namespace())

    def city_namespace(self) -> int:
        """Index of urn:cityscada:city in the server's NamespaceArray (the last namespace when absent); cached."""
        if self._city_ns is None:
            array = self.iserver.aspace.read_attribute_value(nodeid(OID.Server_NamespaceArray), ua.AttributeIds.Value)
            uris = list(array.Value.Value or []) if array.Value is not None else []
            self._city_ns = uris.index(NAMESPACE_URI) if NAMESPACE_URI in uris else max(len(uris) - 1, 0)
        return self._city_ns

    def release_session(self, session: Any) -> None:
        """Free the continuation points of a closing session."""
        freed = self.continuations.drop(session)
        if freed:
            _logger.debug("freed %d history continuation points of a closed session", freed)

    # -- the service -----------------------------------------------------------------------------------------

    async def history_read(self, params: ua.HistoryReadParameters, session: Any = None) -> list[ua.HistoryReadResult]:
        """The HistoryRead service for one session (None: the server's internal session)."""
        details = params.HistoryReadDetails
        nodes = list(params.NodesToRead)
        if params.ReleaseContinuationPoints:
            return [self._release(session, rv) for rv in nodes]
        if isinstance(details, ua.ReadProcessedDetails) and len(details.AggregateType) != len(nodes):
            return [_result(SC.BadAggregateListMismatch) for _ in nodes]
        is_events = isinstance(details, ua.ReadEventDetails)
        if not is_events:
            mode = params.TimestampsToReturn
            if mode not in (ua.TimestampsToReturn.Source, ua.TimestampsToReturn.Both, ua.TimestampsToReturn.Server):
                return [_result(SC.BadTimestampsToReturnInvalid) for _ in nodes]
            if mode == ua.TimestampsToReturn.Server:
                return [_result(SC.BadTimestampNotSupported) for _ in nodes]
        else:
            self.event_types()  # built on the loop thread, before the worker needs them
            self.city_namespace()
        results: list[ua.HistoryReadResult | None] = [None] * len(nodes)
        jobs: list[tuple[int, Any]] = []
        for index, rv in enumerate(nodes):
            try:
                jobs.append((index, self._prepare(session, details, rv, index)))
            except _Failure as failure:
                results[index] = _result(failure.status)
        if jobs:
            outcomes = await asyncio.to_thread(self._run, jobs)
            for (index, _job), outcome in zip(jobs, outcomes, strict=True):
                results[index] = self._finish(session, outcome, is_events)
        return [r if r is not None else _result(SC.BadInternalError) for r in results]

    def _release(self, session: Any, rv: ua.HistoryReadValueId) -> ua.HistoryReadResult:
        """Release one continuation point (Good, or Bad_ContinuationPointInvalid when unknown)."""
        if not rv.ContinuationPoint:
            return _result(SC.Good)
        known = self.continuations.take(session, rv.ContinuationPoint) is not None
        return _result(SC.Good if known else SC.BadContinuationPointInvalid)

    def _finish(self, session: Any, outcome: _Outcome, is_events: bool) -> ua.HistoryReadResult:
        """Wrap an outcome into a HistoryReadResult, storing its continuation state."""
        result = ua.HistoryReadResult()
        result.StatusCode = status_code(outcome.status)
        if outcome.resume is not None:
            result.ContinuationPoint = self.continuations.put(session, outcome.resume)
        if is_events:
            result.HistoryData = ua.HistoryEvent(Events=outcome.items)
        elif not agg.status_is_bad(outcome.status):
            result.HistoryData = ua.HistoryData(DataValues=outcome.items)
        return result

    def _prepare(self, session: Any, details: Any, rv: ua.HistoryReadValueId, index: int) -> Any:
        """Validate one node of the request and build (or resume) its read state; raises _Failure."""
        if rv.ContinuationPoint:
            state = self.continuations.take(session, rv.ContinuationPoint)
            if state is None or state.nodeid != rv.NodeId or not _matches(state, details):
                raise _Failure(SC.BadContinuationPointInvalid)
            return state
        if rv.NodeId not in self.iserver.aspace:
            raise _Failure(SC.BadNodeIdUnknown)
        if isinstance(details, ua.ReadEventDetails):
            return self._prepare_events(details, rv)
        if isinstance(details, ua.ReadRawModifiedDetails | ua.ReadProcessedDetails | ua.ReadAtTimeDetails):
            name = self.tag_for_nodeid(rv.NodeId)
            if name is None:
                raise _Failure(SC.BadHistoryOperationUnsupported)
            tag = q.TagInfo(-1, name, "Double", "")  # resolved against the database in the worker
            if isinstance(details, ua.ReadRawModifiedDetails):
                return self._prepare_raw(details, rv.NodeId, tag)
            if isinstance(details, ua.ReadProcessedDetails):
                return self._prepare_processed(details, rv.NodeId, tag, details.AggregateType[index])
            return _AtTimeRead(
                rv.NodeId, tag, [_required_time(t) for t in details.ReqTimes], bool(details.UseSimpleBounds)
            )
        if isinstance(details, ua.ReadAnnotationDataDetails):
            raise _Failure(SC.BadHistoryOperationUnsupported)
        raise _Failure(SC.BadHistoryOperationInvalid)

    def _prepare_raw(self, details: ua.ReadRawModifiedDetails, node: ua.NodeId, tag: q.TagInfo) -> _RawRead:
        """A raw read from the details (Part 11 6.5.3): direction, window, limits and bounds."""
        if details.IsReadModified:
            raise _Failure(SC.BadHistoryOperationUnsupported)
        start, end, count = opc_time(details.StartTime), opc_time(details.EndTime), int(details.NumValuesPerNode)
        origin, stop, descending, per_call, remaining = _window(start, end, count)
        bounds = bool(details.ReturnBounds)
        return _RawRead(node, tag, origin, stop, descending, per_call, remaining, bounds, bounds and stop is not None)

    def _prepare_processed(
        self, details: ua.ReadProcessedDetails, node: ua.NodeId, tag: q.TagInfo, aggregate: ua.NodeId
    ) -> _ProcessedRead:
        """A processed read: checks the aggregate, the times and the processing interval."""
        if aggregate.NamespaceIndex != 0 or aggregate.Identifier not in AGGREGATES:
            raise _Failure(SC.BadAggregateNotSupported)
        start, end = opc_time(details.StartTime), opc_time(details.EndTime)
        if start is None or end is None:
            raise _Failure(SC.BadInvalidTimestampArgument)
        if end < start:
            raise _Failure(SC.BadHistoryOperationUnsupported)  # intervals laid out backward: not supported
        if end == start or details.ProcessingInterval < 0:
            raise _Failure(SC.BadInvalidArgument)
        width = round(details.ProcessingInterval * 1000) if details.ProcessingInterval > 0 else end - start
        if width <= 0:
            raise _Failure(SC.BadInvalidArgument)
        return _ProcessedRead(node, tag, int(aggregate.Identifier), start, end, width)

    def _prepare_events(self, details: ua.ReadEventDetails, rv: ua.HistoryReadValueId) -> _EventRead:
        """An event read: the node's source, the filter compiled later in the worker, the window."""
        if rv.NodeId == nodeid(OID.Server):
            source = ""
        else:
            node_class = self.iserver.aspace.read_attribute_value(rv.NodeId, ua.AttributeIds.NodeClass).Value
            if node_class is None or node_class.Value not in (ua.NodeClass.Object, ua.NodeClass.View):
                raise _Failure(SC.BadHistoryOperationUnsupported)  # only objects and views notify events
            mapped = self.source_for_nodeid(rv.NodeId)
            if mapped is None:
                raise _Failure(SC.BadHistoryOperationUnsupported)
            source = mapped
        evfilter = details.Filter
        if evfilter is None or not evfilter.SelectClauses:
            raise _Failure(SC.BadEventFilterInvalid)
        start, end, count = opc_time(details.StartTime), opc_time(details.EndTime), int(details.NumValuesPerNode)
        origin, stop, descending, per_call, remaining = _window(start, end, count)
        return _EventRead(
            rv.NodeId,
            source,
            list(evfilter.SelectClauses),
            evfilter.WhereClause,
            origin,
            stop,
            descending,
            per_call,
            remaining,
        )

    # -- the worker (runs in a thread) --------------------------------------------------------------------------

    def _run(self, jobs: Sequence[tuple[int, Any]]) -> list[_Outcome]:
        """Carry out every node's read on one connection; while the database is away (refused, lost, locked) every
        node answers BadDataUnavailable, a temporary condition the client may retry (found by the soak run)."""
        try:
            return self._run_on_connection(jobs)
        except OperationalError as exc:
            _logger.warning("history read: historian database unavailable (%s)", str(exc.orig or exc).strip()[:200])
            return [_Outcome([], SC.BadDataUnavailable) for _ in jobs]

    def _run_on_connection(self, jobs: Sequence[tuple[int, Any]]) -> list[_Outcome]:
        outcomes = []
        with self.engine.connect() as conn:
            for _index, job in jobs:
                try:
                    if isinstance(job, _EventRead):
                        outcomes.append(self._read_events(conn, job))
                        continue
                    self._resolve(conn, job)
                    if isinstance(job, _RawRead):
                        outcomes.append(self._read_raw(conn, job))
                    elif isinstance(job, _ProcessedRead):
                        outcomes.append(self._read_processed(conn, job))
                    else:
                        outcomes.append(self._read_at_time(conn, job))
                except _Failure as failure:
                    outcomes.append(_Outcome([], failure.status))
                except OperationalError:
                    raise  # the database went away: _run answers every node
                except Exception:
                    _logger.exception("history read of %s failed", job.nodeid)
                    outcomes.append(_Outcome([], SC.BadInternalError))
                conn.rollback()
        return outcomes

    def _resolve(self, conn: Connection, job: _Read) -> None:
        """Replace the job's placeholder tag by the stored one (id -1 stays when nothing is stored yet)."""
        if job.tag.id >= 0:
            return
        cached = self._tags.get(job.tag.name)
        if cached is None:
            try:
                cached = q.tag_info(conn, job.tag.name)
            except q.UnknownTagError:
                return
            self._tags[cached.name] = cached
        job.tag = cached

    def _data_value(self, point: agg.Point | agg.AggregateValue, dtype: str) -> ua.DataValue:
        """A DataValue stamped with its source time (Source and Both; server timestamps are not stored)."""
        status = point.quality if isinstance(point, agg.Point) else point.status
        return ua.DataValue(
            variant(point.value, dtype), status_code(status), SourceTimestamp=cast(Any, from_us(point.ts))
        )

    def _read_raw(self, conn: Connection, job: _RawRead) -> _Outcome:
        """One page of a raw read, with the bounds where asked (Part 11 4.6 Table 1)."""
        tag_id, budget = job.tag.id, self._budget(job.per_call, job.remaining)
        items: list[ua.DataValue] = []
        real = 0
        if job.start_bound:
            job.start_bound = False
            if job.descending:
                bound = q.bound_after(conn, tag_id, job.origin)
            else:
                bound = q.bound_before(conn, tag_id, job.origin)
            if bound is None:
                items.append(_no_bound(job.origin))
            elif bound.ts != job.origin:  # a point at the origin is the first data point itself
                items.append(self._data_value(bound, job.tag.dtype))
                real += 1
        left = budget - len(items)
        if left > 0 and not job.data_done:
            if job.descending:
                lo = job.stop + 1 if job.stop is not None else None
                page = q.read_raw(conn, tag_id, lo, job.origin + 1, limit=left, descending=True, after=job.after)
            else:
                page = q.read_raw(conn, tag_id, job.origin, job.stop, limit=left, after=job.after)
            items.extend(self._data_value(p, job.tag.dtype) for p in page.points)
            real += len(page.points)
            if page.points:
                job.after = page.points[-1].ts
            job.data_done = not page.more
        if job.data_done and job.end_bound and len(items) < budget and job.stop is not None:
            job.end_bound = False
            if job.descending:
                bound = q.bound_before(conn, tag_id, job.stop)
            else:
                bound = q.bound_after(conn, tag_id, job.stop)
            items.append(_no_bound(job.stop) if bound is None else self._data_value(bound, job.tag.dtype))
            real += bound is not None
        job.returned += real
        if job.remaining is not None:
            job.remaining -= len(items)
        finished = (job.data_done and not job.end_bound) or (job.remaining is not None and job.remaining <= 0)
        if finished:
            return _Outcome(items, SC.Good if job.returned else SC.GoodNoData)
        return _Outcome(items, SC.Good, job)

    def _budget(self, per_call: int, remaining: int | None) -> int:
        """How many values this call may return."""
        budget = self.max_values
        if per_call > 0:
            budget = min(budget, per_call)
        if remaining is not None:
            budget = min(budget, remaining)
        return max(budget, 1)

    def _read_processed(self, conn: Connection, job: _ProcessedRead) -> _Outcome:
        """The next intervals of a processed read, each computed by the Part 13 rules of its aggregate."""
        total = agg.bucket_count(job.start, job.end, job.width)
        first = job.next_index
        last = min(total, first + self.max_values)
        lo = job.start + first * job.width
        hi = min(job.end, job.start + last * job.width)
        name = AGGREGATES[job.aggregate]
        interpolation = self.time_average if name == "TimeAverage" else None
        buckets = q.bucket_stats(conn, job.tag.id, lo, hi, job.width, interpolation=interpolation)
        now = q.now_us()
        weights: list[agg.TimeWeight] = []
        if interpolation is not None:
            before, after = q.time_weight_bounds(conn, job.tag.id, lo, hi, interpolation)
            weights = agg.time_weighted(buckets, before, after, interpolation=interpolation, hold_until=now)
        extent = q.data_extent(conn, job.tag.id) if name == "Count" else None
        items = []
        for position, bucket in enumerate(buckets):
            partial = bucket.end - bucket.start < job.width or bucket.end > now
            if name == "Average":
                value = agg.average(bucket, partial=partial)
            elif name == "TimeAverage":
                value = agg.time_average(bucket, weights[position], partial=partial)
            elif name == "Minimum":
                value = agg.minimum(bucket, partial=partial)
            elif name == "Maximum":
                value = agg.maximum(bucket, partial=partial)
            elif name == "Count":
                data_start, data_end = extent if extent is not None else (None, None)
                value = agg.count(bucket, data_start=data_start, data_end=data_end, partial=partial)
            elif name == "Start":
                value = agg.start(bucket, partial=partial)
            else:
                value = agg.end(bucket, partial=partial)
            dtype = {"Average": "Double", "TimeAverage": "Double", "Count": "Int32"}.get(name, job.tag.dtype)
            items.append(self._data_value(value, dtype))
        job.next_index = last
        return _Outcome(items, SC.Good, job if last < total else None)

    def _read_at_time(self, conn: Connection, job: _AtTimeRead) -> _Outcome:
        """The stepped values at the next requested times."""
        first = job.next_index
        last = min(len(job.times), first + self.max_values)
        values = q.values_at(conn, job.tag.id, job.times[first:last], simple_bounds=job.simple_bounds)
        items = [self._data_value(value, job.tag.dtype) for value in values]
        job.next_index = last
        return _Outcome(items, SC.Good, job if last < len(job.times) else None)

    def _read_events(self, conn: Connection, job: _EventRead) -> _Outcome:
        """One page of events of the node's source that pass the where clause."""
        fields = EventFields(self.event_types(), self.nodeid_for_source)
        if not isinstance(job.where, _Compiled):
            try:
                job.where = _Compiled(fields.compile_where(conn, job.where))
            except EventFilterError as error:
                return _Outcome([], error.status)
        conditions = []
        e = q.events
        if job.source:
            conditions.append(or_(e.c.source == job.source, eq.prefix(e.c.source, job.source + "/")))
        if job.where.expression is not None:
            conditions.append(job.where.expression)
        lo: int | None
        hi: int | None
        if job.descending:
            lo, hi = (job.stop + 1 if job.stop is not None else None), job.origin + 1
        else:
            lo, hi = job.origin, job.stop
        where = and_(*conditions) if conditions else None
        budget = self._budget(job.per_call, job.remaining)
        page = eq.query_events(
            conn,
            eq.EventQuery(start=lo, end=hi, where=where),
            limit=budget,
            cursor=job.after,
            descending=job.descending,
        )
        items = [ua.HistoryEventFieldList(EventFields=fields.values(record, job.select)) for record in page.items]
        job.returned += len(items)
        if job.remaining is not None:
            job.remaining -= len(items)
        job.after = page.next
        if page.next is None or (job.remaining is not None and job.remaining <= 0):
            return _Outcome(items, SC.Good if job.returned else SC.GoodNoData)
        return _Outcome(items, SC.Good, job)


@dataclass(slots=True)
class _Compiled:
    """A where clause already compiled to SQL (kept across continuation points)."""

    expression: Any


def _default_source_for_nodeid(node: ua.NodeId) -> str | None:
    """Events of a node: those whose source is its string NodeId path (or below it)."""
    if node.NodeIdType == ua.NodeIdType.String and node.Identifier:
        return str(node.Identifier)
    return None


def _result(status: int) -> ua.HistoryReadResult:
    """A HistoryReadResult carrying only a status."""
    result = ua.HistoryReadResult()
    result.StatusCode = status_code(status)
    return result


def _no_bound(ts: int) -> ua.DataValue:
    """The FIRST/LAST placeholder of Part 11: no value, Bad_BoundNotFound, the asked time."""
    return ua.DataValue(ua.Variant(), status_code(SC.BadBoundNotFound), SourceTimestamp=cast(Any, from_us(ts)))


def _required_time(moment: datetime) -> int:
    """A requested time that must be specified."""
    ts = opc_time(moment)
    if ts is None:
        raise _Failure(SC.BadInvalidTimestampArgument)
    return ts


def _window(start: int | None, end: int | None, count: int) -> tuple[int, int | None, bool, int, int | None]:
    """(origin, stop, descending, per_call, remaining) of a raw or event read (Part 11 6.5.3.2)."""
    if start is not None and end is not None:
        if start == end:
            return start, start + 1, False, count, None  # the values at that very time
        return start, end, end < start, count, None
    if count <= 0:
        raise _Failure(SC.BadInvalidTimestampArgument)  # two of start, end and count are needed
    if start is not None:
        return start, None, False, 0, count
    if end is not None:
        return end, None, True, 0, count
    raise _Failure(SC.BadInvalidTimestampArgument)


def _matches(state: Any, details: Any) -> bool:
    """True when a continuation point belongs to the same kind of read as the request."""
    kinds = {
        _RawRead: ua.ReadRawModifiedDetails,
        _ProcessedRead: ua.ReadProcessedDetails,
        _AtTimeRead: ua.ReadAtTimeDetails,
        _EventRead: ua.ReadEventDetails,
    }
    return isinstance(details, kinds[type(state)])


# --- the asyncua glue ---------------------------------------------------------------------------------------
