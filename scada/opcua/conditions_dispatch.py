"""How condition events reach the subscriptions: dispatch to event monitored items, and pacing to their queues.

asyncua keeps no public per-subscription event API, so this module reaches into its server-side subscriptions
(asyncua 2.1): `subscription_service.subscriptions[id]` (an InternalSubscription), its `monitored_item_srv`
(`_monitored_events`: notifier NodeId -> item ids, `_monitored_items`: id -> item with `filter`,
`where_clause_evaluator`, `client_handle`, `queue_size`) and its queues (`_triggered_events`). Where one of them
is missing (another asyncua), events go through the public `trigger_event` and emission is not paced.

Pacing (the rate guard): a monitored item's event queue holds `queue_size` events between two publish responses
and asyncua drops the oldest beyond that. `Pacer.room_for(n)` answers how many events may be queued now without
dropping any, waiting while the fullest queue is full; an item whose queue stays full for `stall_s` (a client that
stopped publishing) is then ignored until it drains, so that it holds nobody else back.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from asyncua import ua

from scada.opcua.conditions_events import ConditionEvent

log = logging.getLogger(__name__)


class Dispatcher:
    """Hands condition events to the event monitored items of the notifiers of their source.

    It does what asyncua's MonitoredItemService.trigger_event does for each item (where clause, select clauses,
    enqueue), with one shortcut: a where clause that only looks at EventType (what clients built from event types
    send) is evaluated once per event type and item, not once per event. Any other where clause is evaluated by
    asyncua's evaluator for every event.
    """

    def __init__(self) -> None:
        self._where: dict[int, tuple[Any, dict[ua.NodeId, bool] | None]] = {}

    def passes(self, evaluator: Any, event: ConditionEvent) -> bool:
        """The item's where clause on this event."""
        if evaluator is None:
            return False
        entry = self._where.get(id(evaluator))
        if entry is None or entry[0] is not evaluator:
            entry = (evaluator, {} if _only_event_type(evaluator) else None)
            if len(self._where) > 4096:
                self._where.clear()
            self._where[id(evaluator)] = entry
        by_type = entry[1]
        if by_type is None:
            return bool(evaluator.eval(event))
        event_type = event.field("EventType").Value
        found = by_type.get(event_type)
        if found is None:
            found = by_type[event_type] = bool(evaluator.eval(event))
        return found

    async def dispatch(self, services: list[Any], event: ConditionEvent, chain: tuple[ua.NodeId, ...]) -> None:
        """Queue the event for every matching event item of every subscription."""
        for service in services:
            monitored = getattr(service, "_monitored_events", None)
            items = getattr(service, "_monitored_items", None)
            if monitored is None or items is None:  # another asyncua: its own path
                for notifier in chain:
                    event.emitting_node = notifier
                    await service.trigger_event(event)
                continue
            for notifier in chain:
                mids = monitored.get(notifier)
                if not mids:
                    continue
                event.emitting_node = notifier
                for mid in list(mids):
                    item = items.get(mid)
                    if item is None or item.filter is None or not self.passes(item.where_clause_evaluator, event):
                        continue
                    fields = ua.EventFieldList(
                        ClientHandle=item.client_handle, EventFields=event.to_event_fields(item.filter.SelectClauses)
                    )
                    await service.isub.enqueue_event(mid, fields, item.queue_size)


def _only_event_type(evaluator: Any) -> bool:
    """True when a where clause reads no field but EventType (its result then depends on the event type only)."""
    for element in getattr(evaluator, "elements", None) or ():
        for operand in element.FilterOperands:
            if isinstance(operand, ua.SimpleAttributeOperand):
                path = operand.BrowsePath
                if (
                    operand.AttributeId != ua.AttributeIds.Value
                    or len(path) != 1
                    or path[0].Name != "EventType"
                    or path[0].NamespaceIndex != 0
                ):
                    return False
            elif not isinstance(operand, ua.LiteralOperand | ua.ElementOperand):
                return False
    return True


async def deliver(service: Any, mid: int, event: ConditionEvent) -> None:
    """Queue an event for one monitored item whatever its where clause (RefreshStart/End, as Part 9 requires)."""
    item = service._monitored_items.get(mid)
    if item is None or item.filter is None:
        return
    fields = ua.EventFieldList(
        ClientHandle=item.client_handle, EventFields=event.to_event_fields(item.filter.SelectClauses)
    )
    await service.isub.enqueue_event(mid, fields, item.queue_size)


class Pacer:
    """The rate guard of the emitter: how many events the event monitored items can take now."""

    def __init__(self, subscriptions: Any, stall_s: float) -> None:
        self._subscriptions = subscriptions  # asyncua's SubscriptionService
        self._stall_s = stall_s
        self._stuck: set[tuple[int, int]] = set()  # (subscription, item) whose queue stayed full for stall_s
        self.stalls = 0
        """How many times an item was given up on after stall_s."""

    def event_items(self) -> list[tuple[tuple[int, int], int, int]]:
        """Every event monitored item: ((subscription, item) ids, queue size, events queued)."""
        found: list[tuple[tuple[int, int], int, int]] = []
        for sub_id, sub in list(self._subscriptions.subscriptions.items()):
            service = sub.monitored_item_srv
            events = getattr(service, "_monitored_events", None)
            items = getattr(service, "_monitored_items", None)
            queued = getattr(sub, "_triggered_events", None)
            if events is None or items is None or queued is None:
                continue  # not the asyncua this was written for: no pacing
            for mids in events.values():
                for mid in mids:
                    item = items.get(mid)
                    size = getattr(item, "queue_size", 0) if item is not None else 0
                    if size > 0:
                        found.append(((sub_id, mid), size, len(queued.get(mid, ()))))
        return found

    def room(self) -> int | None:
        """Free places in the fullest event queue of a monitored item that drains (None: no such item)."""
        room: int | None = None
        stuck = self._stuck
        for key, size, queued in self.event_items():
            if key in stuck:
                if queued > size // 2:
                    continue  # a client that stopped publishing does not hold the others back
                stuck.discard(key)
            free = size - queued
            room = free if room is None else min(room, free)
        return room

    async def room_for(self, wanted: int) -> int:
        """How many events may be emitted now (waits while a monitored item's queue is full, up to stall_s)."""
        loop = asyncio.get_running_loop()
        give_up: float | None = None
        while True:
            room = self.room()
            if room is None or room >= wanted:
                return wanted
            if room > 0:
                return room
            now = loop.time()
            if give_up is None:
                give_up = now + self._stall_s
            elif now >= give_up:
                full = {key for key, size, queued in self.event_items() if queued >= size}
                log.warning(
                    "%d event monitored item(s) stayed full for %g s: no longer waiting for them (oldest events lost)",
                    len(full),
                    self._stall_s,
                )
                self._stuck |= full
                self.stalls += 1
                give_up = None
                continue  # the room of the others
            await asyncio.sleep(0.01)
