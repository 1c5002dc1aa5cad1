"""One connection to one remote OPC UA server: session, subscription, loss detection, reconnection and commands.

Every session is built from scratch (namespace indexes resolved again, one subscription, every monitored item
created again), so a restarted remote server that renumbered its namespaces is served correctly. Loss is seen
three ways: the socket closing (asyncua's supervisor fires `connection_lost_callback` at once), asyncua's
watchdog probe of ServerState every `watchdog_s`, and the subscription falling silent beyond its keep-alive.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from asyncua import ua
from asyncua.client import Client

from drivers.opcua.convert import (
    command_error,
    converter,
    status_name,
    timestamp,
    to_variant,
    variant_type_of,
    variant_type_of_datatype,
)
from drivers.opcua.mapping import ActionTarget, MethodTarget, NodeRef, RemotePlan
from scada.model import (
    CommandError,
    DeviceCommunicationError,
    InvalidArgumentError,
    Publish,
    Quality,
    UnknownDeviceError,
    ValueRecord,
    WriteResult,
    is_good,
    utcnow,
)
from scada.ua_session import SessionLoss, describe

log = logging.getLogger("drivers.opcua")

_STALE_MARGIN = 1.5  # a subscription silent for 1.5 keep-alive periods (plus a request timeout) is dead

# What asyncua warns about when a session is closed on a connection that is already gone: expected here.
_BENIGN_CLOSE_WARNINGS = frozenset(
    {
        "close_session was called but connection is closed",
        "close_session but connection wasn't established",
        "close_secure_channel was called but connection is closed",
    }
)
_CLOSE_LOGGERS = ("asyncua.client.ua_session.UaSession", "asyncua.client.ua_client.UaClient")


@dataclass(frozen=True, slots=True)
class LinkOptions:
    """Timings of a remote link (defaults suit a real plant; tests shorten them)."""

    request_timeout_s: float = 4.0  # every request, including connect steps and commands
    watchdog_s: float = 5.0  # asyncua's ServerState probe period (its 1 s default drops busy servers)
    keepalive_s: float = 5.0  # keep-alive period asked of the subscription
    session_timeout_s: float = 60.0  # how long the remote keeps our session after we vanish
    backoff_initial_s: float = 1.0  # first reconnect delay; doubles each failure, with jitter
    backoff_max_s: float = 30.0
    close_timeout_s: float = 0.5  # CloseSession is abandoned after this (stop stays under a second)
    items_per_call: int = 1000  # monitored items per CreateMonitoredItems request


class _LinkLost(Exception):
    """The session ended; the message says why."""


class _ItemState:
    """What the link remembers of one monitored item between notifications."""

    __slots__ = ("good_ts", "status", "value")

    def __init__(self) -> None:
        self.value: Any = None
        self.good_ts: datetime | None = None
        self.status: int = Quality.BAD_WAITING_FOR_INITIAL_DATA


class RemoteLink:
    """Feeds the tags of every device behind one remote server and forwards their commands to it."""

    def __init__(self, plan: RemotePlan, publish: Publish, options: LinkOptions, *, name: str) -> None:
        self.plan = plan
        self.name = name
        self._publish = publish
        self._opts = options
        self._items = plan.items
        self._convert = [converter(item.var.dtype) for item in plan.items]
        self._states = [_ItemState() for _ in plan.items]
        self._device_handles: dict[str, list[int]] = {device.id: [] for device in plan.devices}
        for handle, item in enumerate(plan.items, start=1):
            self._device_handles[item.device_id].append(handle)
        self._task: asyncio.Task[None] | None = None
        self._client: Client | None = None
        self._connected = False
        self._loss = SessionLoss(0.0)
        self._subscription_id: int | None = None
        self._ns_index: dict[str, int] = {}
        self._arg_types: dict[str, list[ua.VariantType | None] | None] = {}
        self._write_types: dict[str, ua.VariantType | None] = {}
        self._failed: dict[int, int] = {}  # handle -> status of items the remote refused this session
        self._warned_types: set[int] = set()  # handles whose type mismatch was logged (once per item)
        self._new_mismatches: list[str] = []
        self._state = "init"  # "init" (never connected), "up", "down"
        self._down_since: float | None = None
        self.sessions = 0  # sessions established since construction
        self.notifications = 0  # data-change notifications received

    # ------------------------------------------------------------------ lifecycle

    @property
    def connected(self) -> bool:
        """True while a session with a live subscription serves the devices."""
        return self._connected

    def start(self) -> None:
        """Start the connection task (idempotent)."""
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name=f"{self.name}:{self.plan.url}")

    async def stop(self) -> None:
        """Cancel the connection task, close the session quickly and mark every value Bad (idempotent)."""
        task, self._task = self._task, None
        if task is None:
            return
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if current is not None and current.cancelling():
                raise
        if self._state == "up":
            self._mark_down("driver stopped", log_it=False)
        self._state = "init"  # a later start() logs "connected", not "recovered"

    # ------------------------------------------------------------------ connection loop

    async def _run(self) -> None:
        attempt = 0
        while True:
            sessions = self.sessions
            try:
                await self._session()
            except _LinkLost as exc:
                reason = str(exc)
            except (OSError, TimeoutError, ua.UaError) as exc:
                reason = describe(exc)
            except Exception as exc:
                if self._state != "down":  # a traceback once per outage, not once per retry
                    log.exception("%s: unexpected error on the link to %s", self.name, self.plan.url)
                reason = describe(exc)
            finally:
                await self._close_client()
            if self.sessions != sessions:
                attempt = 0
            self._mark_down(reason)
            await asyncio.sleep(self._backoff(attempt))
            attempt += 1

    def _backoff(self, attempt: int) -> float:
        """Exponential backoff with equal jitter: half the delay fixed, half random."""
        delay = min(self._opts.backoff_max_s, self._opts.backoff_initial_s * (2**attempt))
        return delay / 2 + random.uniform(0, delay / 2)

    async def _session(self) -> None:
        """Connect, resolve namespaces, subscribe, then wait until the session is lost (raises _LinkLost)."""
        opts = self._opts
        client = Client(self.plan.url, timeout=opts.request_timeout_s, watchdog_intervall=opts.watchdog_s)
        client.session_timeout = round(opts.session_timeout_s * 1000)
        client.name = client.description = f"cityscada {self.name}"
        client.application_uri = "urn:cityscada:opcua-client"
        client.product_uri = "urn:cityscada"
        self._client = client
        # a remote restart stays one line in the log: the publish loop is cancelled as the transport closes
        self._loss.arm(client, lambda: self._client is client, "connection closed by the remote server")
        await client.connect()
        namespaces = await client.get_namespace_array()
        self._ns_index = {uri: index for index, uri in enumerate(namespaces)}
        self._arg_types.clear()
        self._write_types.clear()
        await self._subscribe(client)
        self.sessions += 1
        self._mark_up()
        raise _LinkLost(await self._loss.wait())

    async def _subscribe(self, client: Client) -> None:
        """One subscription for the whole server and one monitored item (queue size 1) per mapped variable."""
        opts = self._opts
        interval = self.plan.publishing_ms
        keepalive = max(1, round(opts.keepalive_s * 1000 / interval))
        params = ua.CreateSubscriptionParameters(
            RequestedPublishingInterval=interval,
            RequestedLifetimeCount=keepalive * 6,
            RequestedMaxKeepAliveCount=keepalive,
            MaxNotificationsPerPublish=0,
            PublishingEnabled=True,
            Priority=0,
        )
        result = await client.uaclient.create_subscription(params, self._on_publish)
        self._subscription_id = result.SubscriptionId
        period_s = result.RevisedPublishingInterval * max(1, result.RevisedMaxKeepAliveCount) / 1000.0
        self._loss.subscribed(period_s * _STALE_MARGIN + opts.request_timeout_s)
        self._failed = {}
        requests: list[tuple[int, ua.MonitoredItemCreateRequest]] = []
        for handle, item in enumerate(self._items, start=1):
            node = self._resolve(item.node)
            if node is None:
                self._failed[handle] = ua.StatusCodes.BadNodeIdUnknown
                continue
            requests.append((handle, _monitor_request(handle, node, item.sampling_ms)))
        for start in range(0, len(requests), opts.items_per_call):
            chunk = requests[start : start + opts.items_per_call]
            create = ua.CreateMonitoredItemsParameters(
                SubscriptionId=result.SubscriptionId,
                TimestampsToReturn=ua.TimestampsToReturn.Both,
                ItemsToCreate=[request for _, request in chunk],
            )
            results = await client.uaclient.create_monitored_items(create)
            for (handle, _), created in zip(chunk, results, strict=True):
                if not created.StatusCode.is_good():
                    self._failed[handle] = created.StatusCode.value
        if self._failed:
            sample = ", ".join(
                f"{self._items[h - 1].tag} <- {self._items[h - 1].node} ({status_name(s)})"
                for h, s in list(self._failed.items())[:5]
            )
            log.warning(
                "%s: %s refused %d of %d mapped variables: %s",
                self.name,
                self.plan.url,
                len(self._failed),
                len(self._items),
                sample,
            )

    async def _close_client(self) -> None:
        """Close the session (abandoned after close_timeout_s) and drop the socket; leaves no task behind."""
        client, self._client = self._client, None
        self._connected = False
        self._subscription_id = None
        if client is None:
            return
        client.connection_lost_callback = None
        with _quiet_close():
            try:
                if client.uaclient.has_session or client.uaclient.has_transport:
                    async with asyncio.timeout(self._opts.close_timeout_s):
                        await client.disconnect()
            except (Exception, TimeoutError) as exc:
                log.debug("%s: closing the session with %s: %r", self.name, self.plan.url, exc)
            finally:
                client.disconnect_socket()
                await asyncio.sleep(0)  # let the tasks cancelled by disconnect() (publish loop) finish

    # ------------------------------------------------------------------ values

    def _on_publish(self, result: ua.PublishResult) -> None:
        """One publish response -> one batch of value records (the publish loop calls this)."""
        if result.SubscriptionId != self._subscription_id:
            return
        self._loss.published()
        data = result.NotificationMessage.NotificationData
        if not data:
            return  # keep-alive
        records: list[ValueRecord] = []
        now = utcnow()
        for notification in data:
            if isinstance(notification, ua.DataChangeNotification):
                for monitored in notification.MonitoredItems:
                    record = self._record(monitored.ClientHandle, monitored.Value, now)
                    if record is not None:
                        records.append(record)
            elif isinstance(notification, ua.StatusChangeNotification) and not notification.Status.is_good():
                self._loss.signal(f"subscription status {notification.Status.name}")
        if self._new_mismatches:
            log.warning(
                "%s: %d variables of %s do not fit their catalog type (published BadTypeMismatch), e.g. %s",
                self.name,
                len(self._new_mismatches),
                self.plan.url,
                "; ".join(self._new_mismatches[:3]),
            )
            self._new_mismatches.clear()
        if records:
            self.notifications += len(records)
            self._emit(records)

    def _record(self, handle: int, dv: ua.DataValue, now: datetime) -> ValueRecord | None:
        index = handle - 1
        if not 0 <= index < len(self._items):
            return None
        item = self._items[index]
        state = self._states[index]
        status = dv.StatusCode.value if dv.StatusCode is not None else 0
        ts = timestamp(dv, now)
        raw = dv.Value.Value if dv.Value is not None else None
        if raw is None:
            value = state.value
            if is_good(status):
                status = Quality.BAD_WAITING_FOR_INITIAL_DATA
        else:
            try:
                value = self._convert[index](raw)
            except (TypeError, ValueError) as exc:
                if handle not in self._warned_types:
                    self._warned_types.add(handle)
                    self._new_mismatches.append(f"{item.tag} <- {item.node}: {exc}")
                value = state.value
                status = Quality.BAD_TYPE_MISMATCH
        if is_good(status):
            state.value = value
            state.good_ts = ts
        state.status = status
        return ValueRecord(item.tag, value, status, ts)

    def _emit(self, records: Sequence[ValueRecord]) -> None:
        try:
            self._publish(records)
        except Exception:
            log.exception("%s: publish of %d records failed", self.name, len(records))

    def _mark_up(self) -> None:
        """The session serves: devices answer; items the remote refused are published with its status."""
        now = utcnow()
        records: list[ValueRecord] = []
        for handle, status in self._failed.items():
            state = self._states[handle - 1]
            state.status = status
            records.append(ValueRecord(self._items[handle - 1].tag, state.value, status, state.good_ts or now))
        for device in self.plan.devices:
            handles = self._device_handles[device.id]
            ok = not handles or any(handle not in self._failed for handle in handles)
            records.append(ValueRecord(f"{device.path}/CommunicationOk", ok, Quality.GOOD, now))
        self._connected = True
        previous, self._state = self._state, "up"
        if previous == "down" and self._down_since is not None:
            log.info(
                "%s: %s recovered after %.1f s; subscription restored (%d items, %d devices)",
                self.name,
                self.plan.url,
                time.monotonic() - self._down_since,
                len(self._items) - len(self._failed),
                len(self.plan.devices),
            )
        else:
            log.info(
                "%s: connected to %s (%d items, %d devices)",
                self.name,
                self.plan.url,
                len(self._items) - len(self._failed),
                len(self.plan.devices),
            )
        self._down_since = None
        self._emit(records)

    def _mark_down(self, reason: str, *, log_it: bool = True) -> None:
        """Every value of the server's devices turns BadCommunicationError at its last good time (once per loss)."""
        self._connected = False
        if self._state == "down":
            log.debug("%s: %s still unreachable: %s", self.name, self.plan.url, reason)
            return
        previous, self._state = self._state, "down"
        self._down_since = time.monotonic()
        if log_it:
            if previous == "up":
                log.warning("%s: lost %s: %s; its values are Bad until it is back", self.name, self.plan.url, reason)
            else:
                log.warning("%s: cannot reach %s: %s; retrying with backoff", self.name, self.plan.url, reason)
        now = utcnow()
        records = [
            ValueRecord(item.tag, state.value, Quality.BAD_COMM, state.good_ts or now)
            for item, state in zip(self._items, self._states, strict=True)
        ]
        for state in self._states:
            state.status = Quality.BAD_COMM
        records.extend(
            ValueRecord(f"{device.path}/CommunicationOk", False, Quality.GOOD, now) for device in self.plan.devices
        )
        self._emit(records)

    # ------------------------------------------------------------------ commands

    async def execute(self, device_id: str, action: str, target: ActionTarget, args: Mapping[str, Any]) -> WriteResult:
        """Forward one command; Good only once the remote answered Good, a typed CommandError otherwise."""
        client = self._client
        if client is None or not self._connected:
            raise DeviceCommunicationError(f"{device_id}: the remote server {self.plan.url} is not connected")
        what = f"{device_id} {action} on {self.plan.url}"
        try:
            if isinstance(target, MethodTarget):
                return await self._call(client, what, target, args)
            return await self._write(client, what, target.node, target.arg.name, target.arg.dtype, args)
        except CommandError:
            raise
        except ua.UaStatusCodeError as exc:
            raise command_error(exc.code, what) from exc
        except (ConnectionError, OSError, TimeoutError, ua.UaError) as exc:
            raise DeviceCommunicationError(f"{what}: no answer ({describe(exc)})") from exc

    async def _call(self, client: Client, what: str, target: MethodTarget, args: Mapping[str, Any]) -> WriteResult:
        method = self._node_or_raise(target.method, what)
        obj = self._node_or_raise(target.object, what)
        remote_types = await self._input_types(client, method)
        inputs = []
        for position, arg in enumerate(target.args):
            if arg.name not in args:
                raise InvalidArgumentError(f"{what}: missing argument {arg.name}")
            remote = remote_types[position] if remote_types and position < len(remote_types) else None
            inputs.append(to_variant(arg.name, args[arg.name], remote or variant_type_of(arg.dtype)))
        request = ua.CallMethodRequest(ObjectId=obj, MethodId=method, InputArguments=inputs)
        (result,) = await client.uaclient.call([request])
        status = result.StatusCode.value
        for position, argument_status in enumerate(result.InputArgumentResults or []):
            if argument_status.is_bad():
                name = target.args[position].name if position < len(target.args) else f"#{position}"
                raise command_error(argument_status.value, f"{what}: argument {name}")
        if ua.StatusCode(status).is_bad():
            raise command_error(status, what)
        return WriteResult(status=status, message=f"{status_name(status)} from {self.plan.url}")

    async def _write(
        self, client: Client, what: str, ref: NodeRef, name: str, dtype: str, args: Mapping[str, Any]
    ) -> WriteResult:
        node = self._node_or_raise(ref, what)
        if name not in args:
            raise InvalidArgumentError(f"{what}: missing argument {name}")
        vtype = await self._write_type(client, node) or variant_type_of(dtype)
        variant = to_variant(name, args[name], vtype)
        write = ua.WriteValue(NodeId=node, AttributeId=ua.AttributeIds.Value, Value=ua.DataValue(Value=variant))
        (status_code,) = await client.uaclient.write(ua.WriteParameters(NodesToWrite=[write]))
        status = status_code.value
        if status_code.is_bad():
            raise command_error(status, what)
        return WriteResult(status=status, message=f"{status_name(status)} from {self.plan.url}")

    async def _input_types(self, client: Client, method: ua.NodeId) -> list[ua.VariantType | None] | None:
        """The built-in types of a remote method's InputArguments (read once per session), None if it has none."""
        key = method.to_string()
        if key not in self._arg_types:
            try:
                prop = await client.get_node(method).get_child("0:InputArguments")
                arguments = await prop.read_value()
            except ua.UaStatusCodeError:
                self._arg_types[key] = None
            else:
                self._arg_types[key] = [
                    variant_type_of_datatype(a.DataType) if a.ValueRank in (-1, 0) else None for a in arguments or []
                ]
        return self._arg_types[key]

    async def _write_type(self, client: Client, node: ua.NodeId) -> ua.VariantType | None:
        """The built-in type of a remote variable (read once per session), None when it is not a built-in."""
        key = node.to_string()
        if key not in self._write_types:
            try:
                datatype = await client.get_node(node).read_data_type()
            except ua.UaStatusCodeError:
                self._write_types[key] = None
            else:
                self._write_types[key] = variant_type_of_datatype(datatype)
        return self._write_types[key]

    # ------------------------------------------------------------------ node ids

    def _resolve(self, ref: NodeRef) -> ua.NodeId | None:
        """The node id in this session's namespace numbering, None when the remote lacks the namespace."""
        if ref.uri is not None:
            index = self._ns_index.get(ref.uri)
            if index is None:
                return None
        else:
            index = ref.index
        return ua.NodeId.from_string(f"ns={index};{ref.identifier}")

    def _node_or_raise(self, ref: NodeRef, what: str) -> ua.NodeId:
        node = self._resolve(ref)
        if node is None:
            raise UnknownDeviceError(
                f"{what}: the remote server has no namespace {ref.uri!r}", Quality.BAD_NODE_ID_UNKNOWN
            )
        return node


class _DropBenignCloseWarnings(logging.Filter):
    """Drops asyncua's warnings about closing a session whose connection is already gone."""

    def filter(self, record: logging.LogRecord) -> bool:
        """False for the benign warnings."""
        return record.getMessage() not in _BENIGN_CLOSE_WARNINGS


@contextlib.contextmanager
def _quiet_close() -> Iterator[None]:
    """While a link closes its session, asyncua's expected "connection is closed" warnings are not logged."""
    loggers = [logging.getLogger(name) for name in _CLOSE_LOGGERS]
    quiet = _DropBenignCloseWarnings()
    for logger in loggers:
        logger.addFilter(quiet)
    try:
        yield
    finally:
        for logger in loggers:
            logger.removeFilter(quiet)


def _monitor_request(handle: int, node: ua.NodeId, sampling_ms: float) -> ua.MonitoredItemCreateRequest:
    return ua.MonitoredItemCreateRequest(
        ItemToMonitor=ua.ReadValueId(NodeId=node, AttributeId=ua.AttributeIds.Value),
        MonitoringMode=ua.MonitoringMode.Reporting,
        RequestedParameters=ua.MonitoringParameters(
            ClientHandle=handle, SamplingInterval=sampling_ms, QueueSize=1, DiscardOldest=True
        ),
    )
