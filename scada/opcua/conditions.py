"""OPC UA Part 9 Alarms & Conditions for the alarm engine: condition nodes, events, methods, ConditionRefresh.

asyncua 2.1 has the A&C types but no server-side conditions; this module provides them on a started CityServer:

- Notifiers: the Server object, Objects/City and its area folders and every device object with alarms get
  EventNotifier SubscribeToEvents; Server -HasNotifier-> City -HasNotifier-> Lighting/Traffic/Signs/Parking,
  Lighting -HasNotifier-> each cabinet -HasEventSource-> its lamps, and the other areas -HasEventSource-> their
  devices. An event is reported through every notifier on the way from the Server object to its source.
- Conditions: a condition object s=<device path>/Alarms/<ConditionName> is added, with a HasCondition reference
  from its source, the first time the condition is reported; it then stays (its variables are made on first
  browse, see scada.opcua.conditions_nodes). A condition that never was worth reporting (never active, or only
  while suppressed by design) has no node: the node count follows the alarms that happened, not the 35,000
  conditions the city could raise.
- Events: every change the engine announces is queued; every `coalesce_ms` the queue is emitted, one event (with
  a new EventId) per changed condition carrying its latest state. A condition suppressed by design emits nothing,
  except the one event that tells clients it is no longer retained. Emission pauses while an event queue of a
  subscribed monitored item is nearly full, and goes on after `stall_s` (a stuck client never blocks the others
  for long); the value path only marks conditions as changed.
- Methods: the standard method nodes get one dispatcher each (scada.opcua.conditions_methods).
- ConditionRefresh(SubscriptionId) / ConditionRefresh2(SubscriptionId, MonitoredItemId): RefreshStartEvent, the
  last event of every retained condition reported through the item's notifier, RefreshEndEvent, sent to the
  event monitored items of that subscription only (RefreshStart/End whatever the item's where clause, as Part 9
  requires; the conditions through it).

Dispatch to the subscriptions and pacing: scada.opcua.conditions_dispatch.
"""

from __future__ import annotations

import asyncio
import gc
import itertools
import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from asyncua import ua

from scada.alarms.engine import AlarmEngine
from scada.alarms.state import ConditionState
from scada.catalog import Kind
from scada.model import Quality
from scada.opcua.conditions_dispatch import Dispatcher, Pacer, deliver
from scada.opcua.conditions_events import (
    EVENT_TYPES,
    SERVER_NODE,
    ConditionEvent,
    dynamic_fields,
    own_fields,
    refresh_event,
    shared_fields,
)
from scada.opcua.conditions_methods import ACKNOWLEDGE_PERMISSION, SHELVE_PERMISSION, Authorize, ConditionMethods
from scada.opcua.conditions_nodes import (
    HAS_CONDITION,
    ConditionNode,
    ConditionVariable,
    build_children,
    remove_children,
    typedef_ref,
)
from scada.opcua.methods import status_result
from scada.opcua.nodes import (
    NULL_NODEID,
    A,
    ObjectNode,
    Shape,
    constant,
    link,
    names_of,
    ns0,
    reference,
    string_nodeid,
    typedef_of,
)

log = logging.getLogger(__name__)

HAS_NOTIFIER = ns0(ua.ObjectIds.HasNotifier)
HAS_EVENT_SOURCE = ns0(ua.ObjectIds.HasEventSource)
SUBSCRIBE_TO_EVENTS = int(ua.EventNotifier.SubscribeToEvents.mask)
AREAS: dict[Kind, str] = {
    Kind.CABINET: "Lighting",
    Kind.CONTROLLER: "Traffic",
    Kind.SIGN: "Signs",
    Kind.PARKING_SITE: "Parking",
}
_SC = ua.StatusCodes
_OBJECT = ua.NodeClass.Object


def _names(node: Any) -> tuple[ua.QualifiedName, ua.LocalizedText, ua.NodeClass]:
    """BrowseName, DisplayName, NodeClass of a node (device objects: without building attribute values)."""
    if isinstance(node, ObjectNode):
        return node.browse_name, node.display_name, _OBJECT
    return names_of(node)


def _subscribe_to_events(attributes: Any) -> None:
    """Set the SubscribeToEvents bit of an EventNotifier attribute (other bits, e.g. HistoryRead, are kept)."""
    current = attributes.get(A.EventNotifier) if hasattr(attributes, "get") else None
    bits = current.value.Value.Value if current is not None and current.value is not None else 0
    attributes[A.EventNotifier] = constant(int(bits or 0) | SUBSCRIBE_TO_EVENTS, ua.VariantType.Byte)


@dataclass(slots=True)
class ConditionStats:
    """What the A&C layer did."""

    events: int = 0  # condition events reported
    refreshes: int = 0
    stalls: int = 0  # times emission went on although a monitored item's queue stayed full for stall_s
    conditions: int = 0  # conditions with a node


class OpcUaConditions:
    """The alarm engine's conditions in a started CityServer: a Service (start() installs, stop() removes)."""

    def __init__(
        self,
        city_server: Any,
        engine: AlarmEngine,
        *,
        authorize: Authorize | None = None,
        coalesce_ms: float | None = None,
        chunk: int = 500,
        stall_s: float = 10.0,
        freeze_gc: bool = True,
    ) -> None:
        self._city = city_server
        self._engine = engine
        self._authorize = authorize
        ms = engine.config.coalesce_ms if coalesce_ms is None else coalesce_ms
        self._coalesce_s = max(0.0, ms / 1000.0)
        self._chunk = max(1, chunk)
        self._stall_s = stall_s
        self._freeze_gc = freeze_gc
        self._reported: dict[str, ConditionNode] = {}
        self._shared: dict[str, tuple[dict[str, ua.Variant], ua.QualifiedName, ua.LocalizedText, Shape]] = {}
        self._since = datetime.now(UTC)
        self._dirty: dict[str, ConditionState] = {}
        self._pending: asyncio.Event | None = None
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self._methods: ConditionMethods | None = None
        self._pacer: Pacer | None = None
        self._notifier_ids: dict[str, ua.NodeId] = {}
        self._dispatcher = Dispatcher()
        self._prefix = os.urandom(8)
        self._aspace: Any = None
        self._ns = 0
        self._subs: Any = None
        self._shapes: dict[str, Shape] = {}
        self.stats = ConditionStats()

    # -- lifecycle -----------------------------------------------------------------------------------------

    async def start(self) -> None:
        """Install notifiers, method dispatchers and the event emitter on the running server (idempotent)."""
        if self._task is not None:
            return
        server = self._city.asyncua_server
        iserver = server.iserver
        self._aspace = iserver.aspace
        self._subs = iserver.subscription_service
        self._ns = self._city.namespace_index
        self._install_notifiers()
        self._methods = ConditionMethods(self._aspace, self._ns, self._engine, self.refresh, self._authorize)
        self._methods.bind()
        self._pacer = Pacer(self._subs, self._stall_s)
        self._pending = asyncio.Event()
        self._engine.add_listener(self._changed)
        self._task = asyncio.get_running_loop().create_task(self._run(), name="alarm-events")
        for cond in self._engine.conditions():  # conditions raised before the server was there
            self._changed(cond)
        if self._freeze_gc:
            # what exists now (the city's nodes, the engine's slots, the notifier references) lives as long as the
            # server: out of the collector's way, or every full collection walks it (0.45 s each on Dijon)
            gc.freeze()
        log.info("alarms & conditions installed (%d notifier areas)", len(AREAS))

    async def stop(self) -> None:
        """Stop emitting, give the method nodes back and remove the condition nodes (idempotent)."""
        task, self._task = self._task, None
        if task is None:
            return
        self._engine.remove_listener(self._changed)
        task.cancel()
        await asyncio.wait({task})
        if self._methods is not None:
            self._methods.unbind()
            self._methods = None
        for node in self._reported.values():
            self._remove_node(node)
        self._reported.clear()
        self._dirty.clear()
        self.stats.conditions = 0

    # -- notifiers -------------------------------------------------------------------------------------------

    def _nid(self, path: str) -> ua.NodeId:
        return string_nodeid(path, self._ns)

    def _install_notifiers(self) -> None:
        aspace = self._aspace
        server = aspace[SERVER_NODE]
        city = aspace[self._nid("City")]
        if any(ref.ReferenceTypeId == HAS_NOTIFIER and ref.NodeId == city.nodeid for ref in server.references):
            return  # installed before (start after stop)
        _subscribe_to_events(city.attributes)
        link(server, city, HAS_NOTIFIER)
        site = self._engine.site
        shapes_done: set[int] = set()

        def make_notifier(node: Any) -> None:
            shape = node.shape
            if id(shape) not in shapes_done:  # every object of a type shares its shape: set it once
                _subscribe_to_events(shape.attrs)
                shapes_done.add(id(shape))

        groups: dict[Kind, Any] = {
            Kind.CABINET: site.cabinets.values(),
            Kind.CONTROLLER: site.controllers.values(),
            Kind.SIGN: site.signs.values(),
            Kind.PARKING_SITE: site.parking.values(),
        }
        for kind, area in AREAS.items():
            folder = aspace[self._nid(area)]
            _subscribe_to_events(folder.attributes)
            link(city, folder, HAS_NOTIFIER)
            devices: list[Any] = list(groups[kind])
            for device in devices:
                node = aspace[self._nid(device.path)]
                make_notifier(node)
                link(folder, node, HAS_NOTIFIER if kind is Kind.CABINET else HAS_EVENT_SOURCE)
                if kind is Kind.CABINET:
                    self._lamp_sources(node, device.lamps, make_notifier)

    def _lamp_sources(self, cabinet: Any, lamps: Sequence[Any], make_notifier: Callable[[Any], None]) -> None:
        """Cabinet -HasEventSource-> each lamp (both directions, names taken once per cabinet)."""
        aspace = self._aspace
        browse, display, nodeclass = names_of(cabinet)
        back = reference(HAS_EVENT_SOURCE, False, cabinet.nodeid, browse, display, nodeclass, typedef_of(cabinet))
        typedef: ua.NodeId | None = None
        for lamp in lamps:
            node = aspace[self._nid(lamp.path)]
            make_notifier(node)
            if typedef is None:
                typedef = typedef_of(node)
            cabinet.references.append(
                reference(HAS_EVENT_SOURCE, True, node.nodeid, node.browse_name, node.display_name, nodeclass, typedef)
            )
            node.references.append(back)

    def _chain(self, source: ua.NodeId, source_path: str) -> tuple[ua.NodeId, ...]:
        """The notifiers of a source: the Server object, City, its area, its cabinet (lamps), itself."""
        parts = source_path.split("/")
        notifiers = self._notifier_ids
        chain = [SERVER_NODE]
        for path in ("City", *("/".join(parts[: i + 1]) for i in range(len(parts) - 1))):
            nodeid = notifiers.get(path)
            if nodeid is None:
                nodeid = notifiers[path] = self._nid(path)
            chain.append(nodeid)
        chain.append(source)
        return tuple(chain)

    # -- condition nodes -------------------------------------------------------------------------------------

    def _shape(self, event_type: str) -> Shape:
        shape = self._shapes.get(event_type)
        if shape is None:
            shape = self._shapes[event_type] = Shape(
                {
                    A.NodeClass: constant(int(ua.NodeClass.Object), ua.VariantType.Int32),
                    A.WriteMask: constant(0, ua.VariantType.UInt32),
                    A.UserWriteMask: constant(0, ua.VariantType.UInt32),
                    A.EventNotifier: constant(0, ua.VariantType.Byte),
                },
                meta={"type": event_type, "kind": None, "condition": True},
            )
        return shape

    def _announce(self, cond: ConditionState) -> ConditionNode:
        """Add the condition's node (HasCondition from its source) and prepare its constant event fields."""
        aspace = self._aspace
        kind = cond.kind
        shared = self._shared.get(kind.key)
        if shared is None:
            browse = ua.QualifiedName(kind.condition, self._ns)
            shared = self._shared[kind.key] = (
                shared_fields(kind, cond.severity, self._engine.config.max_shelve_s * 1000.0, self._since),
                browse,
                ua.LocalizedText(kind.condition),
                self._shape(kind.event_type),
            )
        fields, browse, display, shape = shared
        nodeid = self._nid(cond.path)
        source = aspace[self._nid(cond.source_path)]
        s_browse, s_display, s_class = _names(source)
        back = reference(HAS_CONDITION, False, source.nodeid, s_browse, s_display, s_class, typedef_of(source))
        input_node = aspace.get(self._nid(cond.input_tag))
        own = own_fields(nodeid, source.nodeid, cond.device_id, input_node.nodeid if input_node else NULL_NODEID)
        node = ConditionNode(
            nodeid, shape, browse, display, back, self, cond, own, fields, self._chain(source.nodeid, cond.source_path)
        )
        aspace[nodeid] = node
        event_type = EVENT_TYPES[kind.event_type]
        source.references.append(reference(HAS_CONDITION, True, nodeid, browse, display, _OBJECT, event_type))
        self._reported[cond.path] = node
        self.stats.conditions = len(self._reported)
        return node

    def materialize(self, node: ConditionNode) -> list[ua.ReferenceDescription]:
        """Make the children of a condition node (called by the node on the first read of its references)."""
        event_type = EVENT_TYPES[node.cond.kind.event_type]
        return [typedef_ref(event_type, self._aspace), *build_children(node, self._aspace, self._ns)]

    def now(self) -> datetime:
        """The engine's clock (UnshelveTime of condition variables)."""
        return self._engine.now()

    def _remove_node(self, node: ConditionNode) -> None:
        aspace = self._aspace
        if node.materialized:
            remove_children(node, aspace)
        if node.nodeid in aspace:
            del aspace[node.nodeid]
        source = aspace.get(self._nid(node.cond.source_path))
        if source is not None:
            source.references[:] = [
                ref
                for ref in source.references
                if not (ref.ReferenceTypeId == HAS_CONDITION and ref.NodeId == node.nodeid)
            ]

    def node_of(self, path: str) -> ConditionNode | None:
        """The node of a reported condition (None: never reported)."""
        return self._reported.get(path)

    # -- events ----------------------------------------------------------------------------------------------

    def _changed(self, cond: ConditionState) -> None:
        """The engine's listener: mark the condition for the next emission (never blocks)."""
        self._dirty[cond.path] = cond
        pending = self._pending
        if pending is not None and not pending.is_set():
            pending.set()

    async def _run(self) -> None:
        pending = self._pending
        assert pending is not None
        while True:
            await pending.wait()
            if self._coalesce_s:
                await asyncio.sleep(self._coalesce_s)
            pending.clear()
            try:
                await self.flush()
            except Exception:
                log.exception("alarm event emission failed")

    async def _room_for(self, wanted: int) -> int:
        if self._pacer is None:
            return wanted
        room = await self._pacer.room_for(wanted)
        self.stats.stalls = self._pacer.stalls
        return room

    async def flush(self) -> int:
        """Emit one event per changed condition now (the emitter does this every coalesce_ms); returns the count."""
        emitted = 0
        dirty = self._dirty
        while dirty:
            count = await self._room_for(min(len(dirty), self._chunk))
            batch = [dirty.pop(path) for path in list(itertools.islice(dirty, count))]
            now = datetime.now(UTC)  # ReceiveTime: one per chunk (events of a chunk share the Variant)
            async with self._lock:
                services = [sub.monitored_item_srv for sub in list(self._subs.subscriptions.values())]
                for cond in batch:
                    try:
                        emitted += await self._emit(cond, now, services)
                    except Exception:  # one condition's failure never costs the others their events
                        log.exception("event of %s not reported", cond.path)
            await asyncio.sleep(0)
        return emitted

    async def _emit(self, cond: ConditionState, now: datetime, services: list[Any]) -> bool:
        node = self._reported.get(cond.path)
        retain = cond.retain
        if node is None:
            if not retain:
                return False  # never worth reporting: no node, no event
            node = self._announce(cond)
        elif cond.suppressed and not node.retained:
            return False  # suppressed by design, and clients already dropped it
        previous = node.last
        fields = dynamic_fields(cond, self._engine.stamp(cond), now, previous.fields if previous else None)
        event = ConditionEvent(fields, node.own_fields, node.shared)
        node.last = event
        node.retained = retain
        await self._dispatcher.dispatch(services, event, node.chain)
        if node.materialized:
            await self._notify_children(node)
        self.stats.events += 1
        return True

    async def _notify_children(self, node: ConditionNode) -> None:
        for child in node.children:
            if not isinstance(child, ConditionVariable):
                continue
            callbacks = child.value._callbacks  # type: ignore[attr-defined]
            if not callbacks:
                continue
            dv = child.value.value
            for handle, callback in list(callbacks.items()):
                try:
                    await callback(handle, dv)
                except Exception:
                    log.exception("datachange callback %s of %s failed", handle, child.nodeid)

    # -- ConditionRefresh ------------------------------------------------------------------------------------

    async def refresh(self, subscription_id: int, monitored_item_id: int | None = None) -> ua.CallMethodResult:
        """ConditionRefresh(2): Start, the retained conditions, End, to the event items of one subscription."""
        sub = self._subs.subscriptions.get(subscription_id)
        if sub is None:
            return status_result(_SC.BadSubscriptionIdInvalid)
        service = sub.monitored_item_srv
        events: dict[ua.NodeId, list[int]] = getattr(service, "_monitored_events", {})
        targets = [(notifier, mid) for notifier, mids in events.items() for mid in mids]
        if monitored_item_id is not None:
            targets = [(notifier, mid) for notifier, mid in targets if mid == monitored_item_id]
            if not targets:
                return status_result(_SC.BadMonitoredItemIdInvalid)
        self.stats.refreshes += 1
        async with self._lock:
            for notifier, mid in targets:
                await deliver(service, mid, refresh_event(True, self._prefix))
                sent = 0
                for node in list(self._reported.values()):
                    last = node.last
                    if not node.retained or last is None or notifier not in node.chain:
                        continue
                    if sent % self._chunk == self._chunk - 1:
                        await self._room_for(self._chunk)  # a late client with thousands of alarms: paced too
                    last.emitting_node = notifier
                    await service.trigger_event(last, mid)
                    sent += 1
                await deliver(service, mid, refresh_event(False, self._prefix))
        return status_result(Quality.GOOD)


__all__ = ["ACKNOWLEDGE_PERMISSION", "SHELVE_PERMISSION", "Authorize", "ConditionStats", "OpcUaConditions"]
