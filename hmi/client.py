"""The console's OPC UA connection: login, one subscription for every watch, reconnection with watches restored.

`ConsoleClient` is what every view of the console uses (the map, the device panels, and later alarms, incidents,
trends and dashboards):

    client = ConsoleClient(Credentials(url, "operator", password))
    await client.connect()                                   # LoginError / ConsoleError when it cannot
    watch = await client.watch(["Traffic/TLC-001/Stage"], on_changes)   # on_changes(list[Change]), batched
    answer = await client.call("Signs/VMS-01", "Blank")      # CallAnswer: the device's status code
    values = await client.read(["SiteMap/Devices"])          # batched Read of DataValues
    history = await client.read_history("Lighting/CAB-0001/EnergyKWh", start, end)
    await client.unwatch(watch)

Every session is built from scratch (namespace index resolved again, one subscription, every watch's monitored
items created again in batches), so a restarted server is served correctly. Loss is seen three ways: the socket
closing, asyncua's ServerState watchdog, and the subscription falling silent beyond its keep-alive. While lost,
every watched path is delivered once as BadNotConnected (views grey the value out) and the client retries with
backoff; `state_changed` tells the connection banner. Callbacks run in the event loop's thread (the Qt thread under
qasync), so they may touch widgets.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import random
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

from asyncua import Client, ua
from PyQt6.QtCore import QObject, pyqtSignal

from hmi.security import certificate_uri, security_certificate, thumbprint
from hmi.values import NOT_CONNECTED, status_text
from hmi.watches import Watch, WatchCallback, WatchTable
from scada.catalog import NAMESPACE_URI
from scada.model import CityScadaError
from scada.ua_session import SessionLoss, describe

log = logging.getLogger(__name__)

APPLICATION_URI = "urn:cityscada:console"
LOGIN_REFUSALS = frozenset(
    {
        ua.StatusCodes.BadUserAccessDenied,
        ua.StatusCodes.BadIdentityTokenInvalid,
        ua.StatusCodes.BadIdentityTokenRejected,
        ua.StatusCodes.BadUserSignatureInvalid,
        ua.StatusCodes.BadSecurityPolicyRejected,
        ua.StatusCodes.BadCertificateUntrusted,
        ua.StatusCodes.BadCertificateInvalid,
        ua.StatusCodes.BadSecurityChecksFailed,
    }
)
CERTIFICATE_REFUSALS = frozenset(
    {
        ua.StatusCodes.BadSecurityChecksFailed,
        ua.StatusCodes.BadCertificateUntrusted,
        ua.StatusCodes.BadCertificateInvalid,
    }
)
_BENIGN_CLOSE_WARNINGS = frozenset(
    {
        "close_session was called but connection is closed",
        "close_session but connection wasn't established",
        "close_secure_channel was called but connection is closed",
    }
)
_CLOSE_LOGGERS = ("asyncua.client.ua_session.UaSession", "asyncua.client.ua_client.UaClient")


class ConnectionState(enum.StrEnum):
    """Where the console's connection stands."""

    IDLE = "idle"  # never connected
    CONNECTING = "connecting"  # first connection under way
    CONNECTED = "connected"  # a session serves every watch
    LOST = "lost"  # the session ended: retrying with backoff, values stale
    CLOSED = "closed"  # close() was called


class ConsoleError(CityScadaError):
    """The console cannot talk to the server (unreachable, not a cityscada server, connection lost)."""


class LoginError(ConsoleError):
    """The server refused the credentials or the security settings."""


@dataclass(frozen=True, slots=True)
class Credentials:
    """Where and as whom the console logs in."""

    url: str
    user: str | None = None
    password: str | None = field(default=None, repr=False)
    security: str | None = None  # asyncua security string "Policy,Mode,client_cert,client_key[,server_cert]"

    @property
    def security_label(self) -> str:
        """ "Basic256Sha256/SignAndEncrypt" or "None" (no message security)."""
        if not self.security:
            return "None"
        parts = self.security.split(",")
        return "/".join(parts[:2])


@dataclass(frozen=True, slots=True)
class ClientOptions:
    """Timings of the console's connection (tests shorten them)."""

    request_timeout_s: float = 10.0
    watchdog_s: float = 5.0  # asyncua's ServerState probe (its 1 s default drops a busy server)
    publishing_ms: float = 200.0  # the console's subscription; changes coalesce at this period
    sampling_ms: float = 0.0  # default sampling interval asked per item (0: the server's fastest, its real poll)
    keepalive_s: float = 3.0
    session_timeout_s: float = 60.0
    backoff_initial_s: float = 0.5
    backoff_max_s: float = 5.0
    items_per_call: int = 1000  # monitored items per CreateMonitoredItems request
    reads_per_call: int = 5000  # values per Read request


@dataclass(frozen=True, slots=True)
class CallAnswer:
    """The server's answer to a command: the device's status code, output arguments, per-argument results."""

    status: int
    outputs: tuple[Any, ...] = ()
    input_results: tuple[int, ...] = ()
    message: str = ""

    @property
    def ok(self) -> bool:
        """True when the device accepted the command."""
        return (self.status & 0xC0000000) == 0

    @property
    def text(self) -> str:
        """ "Good" or the status code's name (and the reason when the console could not send it)."""
        name = status_text(self.status)
        return f"{name}: {self.message}" if self.message else name


class ConsoleClient(QObject):
    """One OPC UA session at a time to the control server, kept alive for the console's life."""

    state_changed = pyqtSignal(str)
    """The ConnectionState value, emitted on every change and on every reconnection attempt."""
    session_ready = pyqtSignal()
    """A session serves every watch (after the first connection and after each reconnection)."""

    def __init__(
        self, credentials: Credentials, options: ClientOptions | None = None, parent: QObject | None = None
    ) -> None:
        super().__init__(parent)
        self.credentials = credentials
        self.options = options or ClientOptions()
        self.watches = WatchTable()
        self._client: Client | None = None
        self._ns: int | None = None
        self._state = ConnectionState.IDLE
        self._task: asyncio.Task[None] | None = None
        self._loss = SessionLoss()
        self._subscription_id: int | None = None
        self._items_lock: asyncio.Lock | None = None
        self._methods: dict[tuple[str, str], ua.NodeId] = {}
        self.sessions = 0
        """Sessions opened so far (1 after the first connection, +1 per reconnection)."""
        self.attempts = 0
        """Failed reconnection attempts of the current outage."""
        self.retry_at: float | None = None
        """time.monotonic() of the next reconnection attempt while LOST."""
        self.last_error = ""
        self.lost_at: float | None = None

    # ------------------------------------------------------------------ properties

    @property
    def state(self) -> ConnectionState:
        """Where the connection stands."""
        return self._state

    @property
    def connected(self) -> bool:
        """True while a session serves the watches."""
        return self._state is ConnectionState.CONNECTED

    @property
    def ns(self) -> int:
        """The index of urn:cityscada:city in the current session's namespace array."""
        if self._ns is None:
            raise ConsoleError("not connected")
        return self._ns

    @property
    def user(self) -> str | None:
        """Who is logged in (None: anonymous)."""
        return self.credentials.user

    def nodeid(self, path: str) -> ua.NodeId:
        """The NodeId of a city path (ns=<city>;s=<path>)."""
        return ua.NodeId(cast(ua.String, path), cast(ua.Int16, self.ns))

    def _set_state(self, state: ConnectionState) -> None:
        changed = state is not self._state
        self._state = state
        if changed or state is ConnectionState.LOST:
            self.state_changed.emit(state.value)

    def _lock(self) -> asyncio.Lock:
        if self._items_lock is None:
            self._items_lock = asyncio.Lock()
        return self._items_lock

    # ------------------------------------------------------------------ lifecycle

    async def connect(self) -> None:
        """Open the first session (LoginError, ConsoleError) and from then on keep one open until close()."""
        if self._task is not None:
            return
        self._set_state(ConnectionState.CONNECTING)
        try:
            await self._open_session()
        except BaseException:
            await self._close_client()
            self._set_state(ConnectionState.IDLE)
            raise
        self._task = asyncio.create_task(self._keep_alive(), name="console-connection")

    async def close(self) -> None:
        """Stop reconnecting and close the session (idempotent)."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self._close_client()
        self._set_state(ConnectionState.CLOSED)

    async def _keep_alive(self) -> None:
        while True:
            reason = await self._loss.wait()
            await self._close_client()
            self._mark_lost(reason)
            self.attempts = 0
            while True:
                delay = self._backoff(self.attempts)
                self.retry_at = time.monotonic() + delay
                self._set_state(ConnectionState.LOST)
                await asyncio.sleep(delay)
                self.retry_at = None
                try:
                    await self._open_session()
                except (ConsoleError, OSError, TimeoutError, ua.UaError) as exc:
                    self.last_error = describe(exc)
                    self.attempts += 1
                    await self._close_client()
                    if self.attempts == 1:
                        log.warning("reconnection to %s failed: %s (retrying)", self.credentials.url, self.last_error)
                    continue
                log.info(
                    "reconnected to %s after %.1f s; %d watches restored",
                    self.credentials.url,
                    time.monotonic() - (self.lost_at or time.monotonic()),
                    len(self.watches.watches),
                )
                break

    def _backoff(self, attempt: int) -> float:
        """Exponential backoff with equal jitter."""
        delay = min(self.options.backoff_max_s, self.options.backoff_initial_s * (2**attempt))
        return delay / 2 + random.uniform(0, delay / 2)

    async def _open_session(self) -> None:
        opts = self.options
        creds = self.credentials
        client = Client(creds.url, timeout=opts.request_timeout_s, watchdog_intervall=opts.watchdog_s)
        client.session_timeout = round(opts.session_timeout_s * 1000)
        client.name = client.description = "cityscada console"
        client.application_uri = APPLICATION_URI
        client.product_uri = "urn:cityscada"
        if creds.user:
            client.set_user(creds.user)
            client.set_password(creds.password or "")
        self._client = client
        try:
            if creds.security:
                certificate = security_certificate(creds.security)
                uri = certificate_uri(certificate) if certificate is not None else None
                if uri:
                    client.application_uri = uri  # the server checks it against the certificate
                await client.set_security_string(creds.security)
            await client.connect()
        except ua.UaStatusCodeError as exc:
            certificate = security_certificate(creds.security)
            if exc.code in CERTIFICATE_REFUSALS and certificate is not None:
                raise LoginError(
                    f"{creds.url} refused this console's certificate ({status_text(exc.code)}). If the server does not "
                    f"trust it yet, an administrator runs `cityscada pki trust {thumbprint(certificate)[:16]}` on the "
                    f"server (certificate {certificate})"
                ) from exc
            if exc.code in LOGIN_REFUSALS:
                raise LoginError(f"{creds.url} refused the login: {status_text(exc.code)}") from exc
            raise ConsoleError(f"{creds.url}: {status_text(exc.code)}") from exc
        except (OSError, TimeoutError) as exc:
            raise ConsoleError(f"cannot reach {creds.url}: {describe(exc)}") from exc
        # watched from here on: set_security's endpoint discovery opens and closes a channel of its own
        self._loss.arm(client, lambda: self._client is client, "connection closed by the server")
        try:
            self._ns = await client.get_namespace_index(NAMESPACE_URI)
        except ValueError as exc:
            raise ConsoleError(f"{creds.url} is not a cityscada server (no namespace {NAMESPACE_URI})") from exc
        self._methods.clear()
        await self._subscribe(client)
        self.sessions += 1
        self.last_error = ""
        self._set_state(ConnectionState.CONNECTED)
        self.session_ready.emit()

    async def _subscribe(self, client: Client) -> None:
        opts = self.options
        keepalive = max(1, round(opts.keepalive_s * 1000 / opts.publishing_ms))
        params = ua.CreateSubscriptionParameters(
            RequestedPublishingInterval=opts.publishing_ms,
            RequestedLifetimeCount=keepalive * 10,
            RequestedMaxKeepAliveCount=keepalive,
            MaxNotificationsPerPublish=0,
            PublishingEnabled=True,
            Priority=0,
        )
        result = await client.uaclient.create_subscription(params, self._on_publish)
        self._subscription_id = result.SubscriptionId
        period_s = result.RevisedPublishingInterval * max(1, result.RevisedMaxKeepAliveCount) / 1000.0
        self._loss.subscribed(period_s * 1.5 + opts.request_timeout_s)
        async with self._lock():
            self.watches.forget_session()
            watches = self.watches.watches
            await self._create_items(client, watches)
        self.watches.deliver_refusals(watches)

    async def _create_items(self, client: Client, watches: Sequence[Watch]) -> None:
        assert self._subscription_id is not None
        requests = [item for watch in watches for item in self.watches.requests(watch, self.nodeid)]
        step = self.options.items_per_call
        for start in range(0, len(requests), step):
            chunk = requests[start : start + step]
            create = ua.CreateMonitoredItemsParameters(
                SubscriptionId=self._subscription_id,
                TimestampsToReturn=ua.TimestampsToReturn.Both,
                ItemsToCreate=[request for _, request in chunk],
            )
            results = await client.uaclient.create_monitored_items(create)
            for (handle, _request), created in zip(chunk, results, strict=True):
                self.watches.created(handle, created)

    async def _close_client(self) -> None:
        client, self._client = self._client, None
        self._subscription_id = None
        if client is None:
            return
        client.connection_lost_callback = None
        with _quiet_close():
            try:
                if client.uaclient.has_session or client.uaclient.has_transport:
                    async with asyncio.timeout(1.0):
                        await client.disconnect()
            except (Exception, TimeoutError) as exc:
                log.debug("closing the session: %r", exc)
            finally:
                client.disconnect_socket()
                await asyncio.sleep(0)

    # ------------------------------------------------------------------ loss detection

    def _mark_lost(self, reason: str) -> None:
        self.last_error = reason
        self.lost_at = time.monotonic()
        log.warning("connection to %s lost: %s", self.credentials.url, reason)
        self.watches.forget_session()
        self._set_state(ConnectionState.LOST)
        self.watches.deliver_lost()

    def _on_publish(self, result: ua.PublishResult) -> None:
        if result.SubscriptionId != self._subscription_id:
            return
        self._loss.published()
        for notification in result.NotificationMessage.NotificationData or ():
            if isinstance(notification, ua.DataChangeNotification):
                self.watches.deliver(notification)
            elif isinstance(notification, ua.StatusChangeNotification) and not notification.Status.is_good():
                self._loss.signal(f"subscription status {status_text(notification.Status.value)}")

    # ------------------------------------------------------------------ the API views use

    def _session(self) -> Client:
        client = self._client
        if client is None or self._state is not ConnectionState.CONNECTED:
            raise ConsoleError(f"not connected to {self.credentials.url}")
        return client

    async def watch(
        self, paths: Sequence[str], callback: WatchCallback, *, sampling_ms: float | None = None, name: str = ""
    ) -> Watch:
        """Watch variables: `callback(changes)` receives their current values, then every change, in batches.

        The watch survives reconnections. A path the server refuses is delivered once with its Bad status.
        """
        sampling = self.options.sampling_ms if sampling_ms is None else sampling_ms
        watch = self.watches.add(paths, callback, sampling, name)
        if self.connected and self._client is not None:
            client = self._client
            try:
                async with self._lock():
                    await self._create_items(client, [watch])
            except (OSError, TimeoutError, ua.UaError) as exc:
                log.info("creating the items of %r failed (%s): restored on reconnection", watch, describe(exc))
            else:
                self.watches.deliver_refusals([watch])
        return watch

    async def unwatch(self, watch: Watch) -> None:
        """Stop watching (idempotent); the server deletes the monitored items."""
        ids = self.watches.remove(watch)
        if not ids or not self.connected or self._client is None or self._subscription_id is None:
            return
        params = ua.DeleteMonitoredItemsParameters(SubscriptionId=self._subscription_id, MonitoredItemIds=ids)
        try:
            await self._client.uaclient.delete_monitored_items(params)
        except (OSError, TimeoutError, ua.UaError) as exc:
            log.debug("deleting monitored items: %s", describe(exc))

    async def read(
        self, paths: Sequence[str | ua.NodeId], attribute: ua.AttributeIds = ua.AttributeIds.Value
    ) -> list[ua.DataValue]:
        """Read one attribute of many nodes (paths or NodeIds) in batched Read requests."""
        client = self._session()
        ids = [p if isinstance(p, ua.NodeId) else self.nodeid(p) for p in paths]
        out: list[ua.DataValue] = []
        step = self.options.reads_per_call
        for start in range(0, len(ids), step):
            params = ua.ReadParameters()
            params.NodesToRead = [
                ua.ReadValueId(NodeId=nid, AttributeId=attribute) for nid in ids[start : start + step]
            ]
            params.TimestampsToReturn = ua.TimestampsToReturn.Both
            out.extend(await client.uaclient.read(params))
        return out

    async def read_value(self, path: str) -> Any:
        """The value of one variable; ConsoleError with the status name when it is Bad."""
        [dv] = await self.read([path])
        if dv.StatusCode is not None and not dv.StatusCode.is_good():
            raise ConsoleError(f"{path}: {status_text(dv.StatusCode.value)}")
        return dv.Value.Value if dv.Value is not None else None

    async def method_id(self, object_path: str, method: str) -> ua.NodeId:
        """The NodeId of a method of an object (browsed once per session and kept)."""
        key = (object_path, method)
        found = self._methods.get(key)
        if found is None:
            client = self._session()
            node = await client.get_node(self.nodeid(object_path)).get_child(f"{self.ns}:{method}")
            found = self._methods[key] = node.nodeid
        return found

    async def call(self, object_path: str, method: str, *args: ua.Variant) -> CallAnswer:
        """Call a method of a city object; the answer carries the device's status code (never raises for Bad)."""
        try:
            method_id = await self.method_id(object_path, method)
        except _CALL_ERRORS as exc:
            return _call_failure(exc)
        return await self.call_node(self.nodeid(object_path), method_id, *args)

    def session(self) -> Client:
        """The asyncua Client of the current session (ConsoleError when not connected), for views that need more
        than watches and calls on city paths: event subscriptions (alarms), standard methods, event history."""
        return self._session()

    async def call_node(self, object_id: ua.NodeId, method_id: ua.NodeId, *args: ua.Variant) -> CallAnswer:
        """Call a method by NodeIds (e.g. the standard Acknowledge of a condition); never raises for Bad."""
        try:
            client = self._session()
            request = ua.CallMethodRequest(ObjectId=object_id, MethodId=method_id, InputArguments=list(args))
            [result] = await client.uaclient.call([request])
        except _CALL_ERRORS as exc:
            return _call_failure(exc)
        return CallAnswer(
            result.StatusCode.value,
            tuple(v.Value for v in result.OutputArguments or ()),
            tuple(s.value for s in result.InputArgumentResults or ()),
        )

    async def write(self, path: str, value: ua.Variant) -> CallAnswer:
        """Write a writable variable (a command); the answer carries the device's status code."""
        try:
            client = self._session()
            params = ua.WriteParameters()
            params.NodesToWrite = [
                ua.WriteValue(NodeId=self.nodeid(path), AttributeId=ua.AttributeIds.Value, Value=ua.DataValue(value))
            ]
            [status] = await client.uaclient.write(params)
        except ConsoleError as exc:
            return CallAnswer(NOT_CONNECTED, message=str(exc))
        except (OSError, TimeoutError, ua.UaError) as exc:
            return CallAnswer(NOT_CONNECTED, message=describe(exc))
        return CallAnswer(status.value)

    async def read_history(self, path: str, start: datetime, end: datetime, max_values: int = 0) -> list[ua.DataValue]:
        """Raw history of a variable between two times (continuation points followed); ConsoleError when refused."""
        details = ua.ReadRawModifiedDetails(
            IsReadModified=False, StartTime=start, EndTime=end, NumValuesPerNode=max_values, ReturnBounds=False
        )
        return await self.history_read(self.nodeid(path), details, f"history of {path}", limit=max_values)

    async def history_read(self, nodeid: ua.NodeId, details: Any, what: str, limit: int = 0) -> list[Any]:
        """Every item of one node's HistoryRead (DataValues, or HistoryEventFieldLists for ReadEventDetails),
        continuation points followed until done or `limit` items; ConsoleError naming `what` when refused."""
        client = self._session()
        items: list[Any] = []
        continuation: bytes | None = None
        while True:
            params = ua.HistoryReadParameters()
            params.HistoryReadDetails = details
            params.TimestampsToReturn = ua.TimestampsToReturn.Both
            params.ReleaseContinuationPoints = False
            params.NodesToRead = [ua.HistoryReadValueId(NodeId=nodeid, IndexRange="", ContinuationPoint=continuation)]
            [result] = await client.uaclient.history_read(params)
            if not result.StatusCode.is_good():
                raise ConsoleError(f"{what}: {status_text(result.StatusCode.value)}")
            data = result.HistoryData
            found = data.Events if isinstance(data, ua.HistoryEvent) else getattr(data, "DataValues", None)
            items.extend(found or [])
            previous, continuation = continuation, result.ContinuationPoint
            if not continuation or continuation == previous or (limit and len(items) >= limit):
                return items

    async def browse_methods(self, object_path: str) -> dict[str, ua.NodeId]:
        """The methods of an object (browse name -> method NodeId), e.g. the shared methods of a device's type."""
        client = self._session()
        node = client.get_node(self.nodeid(object_path))
        refs = await node.get_references(
            refs=ua.ObjectIds.HasComponent,
            direction=ua.BrowseDirection.Forward,
            nodeclassmask=ua.NodeClass.Method,
        )
        return {ref.BrowseName.Name: ref.NodeId for ref in refs}


_CALL_ERRORS = (ConsoleError, OSError, TimeoutError, ua.UaError)


def _call_failure(exc: BaseException) -> CallAnswer:
    """The answer of a call that did not get through: the server's status, or not connected."""
    if isinstance(exc, ua.UaStatusCodeError):
        return CallAnswer(exc.code)
    if isinstance(exc, ConsoleError):
        return CallAnswer(NOT_CONNECTED, message=str(exc))
    return CallAnswer(NOT_CONNECTED, message=describe(exc))


class _DropBenignCloseWarnings(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return record.getMessage() not in _BENIGN_CLOSE_WARNINGS


@contextlib.contextmanager
def _quiet_close() -> Iterator[None]:
    """While the console closes a session whose connection is gone, asyncua's expected warnings are not logged."""
    loggers = [logging.getLogger(name) for name in _CLOSE_LOGGERS]
    quiet = _DropBenignCloseWarnings()
    for logger in loggers:
        logger.addFilter(quiet)
    try:
        yield
    finally:
        for logger in loggers:
            logger.removeFilter(quiet)
