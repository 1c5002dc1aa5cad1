"""AlarmEngine: value records in, Part 9 condition states out, every transition journaled.

The engine is a router sink (sync and cheap: a precomputed dict from the alarm-relevant tags to their alarm
slots; the other tags cost one failed dict lookup). Condition states are created the first time their value is
abnormal. Listeners (the OPC UA layer) are told of every condition that changed; the journal callback gets one
AlarmTransition per transition. Operator methods (acknowledge, confirm, comment, shelve, enable/disable) raise
AlarmError subclasses carrying the Part 9 status code. Timers (shelving expiry, flood release) run in `tick()`,
called by the engine's own task once started, or by tests with an injected clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

from scada.alarms.config import AlarmsConfig, load_alarms_config
from scada.alarms.definitions import ALARM_KINDS
from scada.alarms.flood import FloodGuard
from scada.alarms.journal import AlarmTransition, Journal
from scada.alarms.shelving import Deadlines, Shelving
from scada.alarms.slots import AlarmSlot, slots_of
from scada.alarms.state import ConditionState, UnknownConditionError
from scada.alarms.summary import AlarmSummary, summarize
from scada.catalog import Kind
from scada.model import ValueRecord, utcnow
from scada.site.model import Site

log = logging.getLogger(__name__)

Listener = Callable[[ConditionState], None]
_BAD = 0x80000000
_UNSHELVE = "unshelve"
_RELEASE = "release"


class AlarmEngine:
    """The alarms of one site: evaluation of value records, Part 9 states, flood suppression, shelving timers."""

    def __init__(
        self,
        site: Site,
        config: AlarmsConfig | None = None,
        *,
        journal: Journal | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.site = site
        self.config = config if config is not None else load_alarms_config(site)
        self._journal = journal
        self._journal_failed = False
        self._clock = clock or utcnow
        self._slots: dict[str, AlarmSlot] = {}
        self._watch: dict[str, tuple[AlarmSlot, ...]] = {}
        children: dict[str, list[str]] = {}
        for slot in slots_of(site, self.config):
            self._slots[slot.path] = slot
            self._watch[slot.tag] = (*self._watch.get(slot.tag, ()), slot)
            if slot.parent is not None:
                children.setdefault(slot.parent, []).append(slot.path)
        self._conditions: dict[str, ConditionState] = {}
        self._last: dict[str, ValueRecord] = {}
        self._listeners: list[Listener] = []
        self._flood = FloodGuard(self.config.flood, children)
        self._deadlines = Deadlines()
        self._dirty_cabinets: set[str] = set()
        self._release_now: list[str] = []
        self._event_prefix = os.urandom(8)
        self._event_seq = itertools.count(1)
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self.transitions = 0
        """How many transitions were journaled since start."""

    # -- wiring --------------------------------------------------------------------------------------------

    def add_listener(self, listener: Listener) -> None:
        """Call `listener(condition)` (sync, must not block) after every change of a condition."""
        self._listeners.append(listener)

    def remove_listener(self, listener: Listener) -> None:
        """Stop calling `listener`."""
        with contextlib.suppress(ValueError):
            self._listeners.remove(listener)

    def now(self) -> datetime:
        """The engine's clock."""
        return self._clock()

    @property
    def watched_tags(self) -> int:
        """How many tags the engine evaluates."""
        return len(self._watch)

    # -- the value path --------------------------------------------------------------------------------------

    def apply(self, records: Sequence[ValueRecord]) -> None:
        """Evaluate a batch of value records (a TagRouter sink: sync, never blocks)."""
        watch = self._watch
        last = self._last
        for record in records:
            slots = watch.get(record[0])
            if slots is None:
                continue
            last[record[0]] = record
            for slot in slots:
                self._evaluate(slot, record)
        self._end_batch()

    __call__ = apply

    def _evaluate(self, slot: AlarmSlot, record: ValueRecord) -> None:
        _tag, value, quality, source_ts = record
        cond = self._conditions.get(slot.path)
        bad = quality & _BAD
        if cond is None:
            if bad or not slot.evaluate(value, False):
                return  # the common case: a normal value of a condition that never was abnormal
            cond = self._create(slot)
        if not cond.enabled:
            return
        changed = False
        if quality != cond.quality:
            cond.set_quality(quality, self._clock())
            changed = True
        if not bad:
            active = slot.evaluate(value, cond.active)
            if active != cond.active:
                self._set_active(cond, slot, active, value, source_ts or self._clock())
                changed = True
            else:
                cond.value = value
        if changed:
            self._notify(cond)

    def _create(self, slot: AlarmSlot) -> ConditionState:
        cond = ConditionState(
            slot.kind,
            device_id=slot.device.id,
            source_path=slot.device.path,
            label=slot.label,
            district=slot.district,
            severity=slot.severity,
            now=self._clock(),
            parent=slot.parent,
        )
        if slot.parent is not None and self._flood.suppressing(slot.parent):
            cond.suppressed = True  # born during a flood: suppressed from the start
        self._conditions[slot.path] = cond
        return cond

    def _set_active(self, cond: ConditionState, slot: AlarmSlot, active: bool, value: Any, now: datetime) -> None:
        cond.set_active(active, now, value)
        if active:
            detail = "suppressed by design: its cabinet has a flood alarm" if cond.suppressed else ""
            self._record(cond, "raised", now, detail=detail)
        else:
            self._record(cond, "cleared", now)
            if cond.suppressed and (not cond.acked or not cond.confirmed):
                cond.reset_unannounced(now)
            if cond.shelving is Shelving.ONE_SHOT:
                cond.end_shelving(now)
                self._deadlines.cancel(_UNSHELVE, cond.path)
                self._record(cond, "unshelved", now, detail="one-shot shelving ends: back to normal")
        if slot.parent is not None and cond.suppressed:
            self._dirty_cabinets.add(slot.parent)
        if slot.device.kind is Kind.CABINET and self._flood.is_parent_kind(slot.kind.key):
            self._parent_changed(slot.device.id, slot.kind.key, active)

    def _parent_changed(self, cabinet_id: str, kind: str, active: bool) -> None:
        action = self._flood.parent_changed(cabinet_id, kind, active)
        now = self._clock()
        if action == "suppress":
            for path in self._flood.children.get(cabinet_id, ()):
                child = self._conditions.get(path)
                if child is None or child.suppressed:
                    continue
                interesting = child.active or not child.acked or not child.confirmed
                child.set_suppressed(True, now)
                if interesting:
                    self._record(child, "suppressed", now, detail=f"{kind} on cabinet {cabinet_id}")
                self._notify(child)
        elif action == "release":
            delay = self._flood.config.release_delay_s
            if delay <= 0:
                self._release_now.append(cabinet_id)
            else:
                self._schedule(now + timedelta(seconds=delay), _RELEASE, cabinet_id)
        self._dirty_cabinets.add(cabinet_id)

    def _release(self, cabinet_id: str) -> None:
        """The release delay is over: un-suppress the cabinet's lamp alarms and evaluate their latest values."""
        if not self._flood.release(cabinet_id):
            return
        now = self._clock()
        for path in self._flood.children.get(cabinet_id, ()):
            child = self._conditions.get(path)
            if child is None or not child.suppressed:
                continue
            child.set_suppressed(False, now)
            if child.active:
                self._record(child, "unsuppressed", now, detail=f"cabinet {cabinet_id} back to normal")
            slot = self._slots[path]
            record = self._last.get(slot.tag)
            if child.enabled and record is not None and not record[2] & _BAD:
                active = slot.evaluate(record[1], child.active)
                if active != child.active:
                    self._set_active(child, slot, active, record[1], now)
            self._notify(child)
        self._dirty_cabinets.add(cabinet_id)

    def _end_batch(self) -> None:
        """After a batch: pending releases, then the suppressed counts in the flood parents' messages."""
        while self._release_now:
            self._release(self._release_now.pop())
        if not self._dirty_cabinets:
            return
        dirty, self._dirty_cabinets = self._dirty_cabinets, set()
        conditions = self._conditions
        now = self._clock()
        for cabinet_id in dirty:
            count = 0
            for path in self._flood.children.get(cabinet_id, ()):
                child = conditions.get(path)
                if child is not None and child.suppressed and child.active:
                    count += 1
            if not self._flood.update_count(cabinet_id, count):
                continue
            cabinet = self.site.cabinets[cabinet_id]
            for kind in self._flood.config.suppress_children_on:
                parent = conditions.get(f"{cabinet.path}/Alarms/{_CONDITION_NAMES[kind]}")
                if parent is not None and parent.enabled:
                    parent.set_message(self._parent_message(parent, count), now)
                    self._notify(parent)

    @staticmethod
    def _parent_message(parent: ConditionState, count: int) -> str:
        base = parent.kind.message(parent.active, parent.label, parent.value)
        if count:
            return f"{base} (+{count} lamp alarm{'s' if count != 1 else ''} suppressed)"
        return base

    # -- notifications and journal --------------------------------------------------------------------------

    def _notify(self, cond: ConditionState) -> None:
        for listener in self._listeners:
            try:
                listener(cond)
            except Exception:
                log.exception("alarm listener %r failed", listener)

    def _record(
        self,
        cond: ConditionState,
        transition: str,
        ts: datetime,
        *,
        user: str | None = None,
        comment: str | None = None,
        detail: str = "",
    ) -> None:
        self.transitions += 1
        if self._journal is None:
            return
        entry = AlarmTransition(
            ts=ts,
            source=cond.device_id,
            path=cond.source_path,
            condition=cond.kind.condition,
            kind=cond.kind.key,
            event_type=cond.kind.event_type,
            transition=transition,
            severity=cond.severity,
            active=cond.active,
            acked=cond.acked,
            confirmed=cond.confirmed,
            shelved=cond.shelved,
            suppressed=cond.suppressed,
            user=user,
            comment=comment,
            message=cond.message,
            detail=detail,
        )
        try:
            self._journal(entry)
        except Exception:
            if not self._journal_failed:
                self._journal_failed = True
                log.exception("the alarm journal failed; further failures are not logged")

    def stamp(self, cond: ConditionState) -> bytes:
        """A new EventId (16 bytes, unique per server run) for an event about to be reported for `cond`."""
        event_id = self._event_prefix + next(self._event_seq).to_bytes(8, "big")
        cond.note_event(event_id)
        return event_id

    # -- queries ---------------------------------------------------------------------------------------------

    def condition(self, path: str) -> ConditionState:
        """The condition with that id (created in its normal state if it is a known slot never yet active)."""
        cond = self._conditions.get(path)
        if cond is None:
            slot = self._slots.get(path)
            if slot is None:
                raise UnknownConditionError(f"no alarm condition {path!r}")
            cond = self._create(slot)
        return cond

    def find(self, path: str) -> ConditionState | None:
        """The condition with that id if it exists, else None."""
        return self._conditions.get(path)

    def conditions(self) -> Iterable[ConditionState]:
        """Every condition that exists (was once abnormal or acted upon)."""
        return self._conditions.values()

    def retained(self) -> list[ConditionState]:
        """The conditions with Retain true."""
        return [cond for cond in self._conditions.values() if cond.retain]

    def slot(self, path: str) -> AlarmSlot | None:
        """The slot of a condition id."""
        return self._slots.get(path)

    def suppressed_count(self, cabinet_id: str) -> int:
        """How many lamp alarms of a cabinet are suppressed by design right now."""
        return self._flood.count(cabinet_id)

    def summary(self) -> AlarmSummary:
        """Counts of conditions by state, in total, per alarm kind and per district."""
        return summarize(self._conditions.values())

    # -- operator methods ------------------------------------------------------------------------------------

    def acknowledge(
        self, path: str, event_id: bytes | None = None, comment: str | None = None, user: str | None = None
    ) -> ConditionState:
        """Acknowledge a condition (event_id None: no EventId check, for the server's own callers)."""
        cond = self.condition(path)
        now = self._clock()
        cond.acknowledge(event_id, comment, user, now, confirm=self.config.confirm)
        self._record(cond, "acknowledged", now, user=user, comment=comment)
        self._notify(cond)
        return cond

    def confirm(
        self, path: str, event_id: bytes | None = None, comment: str | None = None, user: str | None = None
    ) -> ConditionState:
        """Confirm an acknowledged condition."""
        cond = self.condition(path)
        now = self._clock()
        cond.confirm(event_id, comment, user, now)
        self._record(cond, "confirmed", now, user=user, comment=comment)
        self._notify(cond)
        return cond

    def add_comment(
        self, path: str, event_id: bytes | None = None, comment: str | None = None, user: str | None = None
    ) -> ConditionState:
        """Attach a comment to a condition."""
        cond = self.condition(path)
        now = self._clock()
        cond.add_comment(event_id, comment, user, now)
        self._record(cond, "commented", now, user=user, comment=comment)
        self._notify(cond)
        return cond

    def enable(self, path: str, user: str | None = None, comment: str | None = None) -> ConditionState:
        """Enable a condition and evaluate its latest value."""
        cond = self.condition(path)
        now = self._clock()
        cond.enable(now)
        self._record(cond, "enabled", now, user=user, comment=comment)
        slot = self._slots[path]
        record = self._last.get(slot.tag)
        if record is not None:
            if record[2] != cond.quality:
                cond.set_quality(record[2], now)
            if not record[2] & _BAD and slot.evaluate(record[1], False):
                self._set_active(cond, slot, True, record[1], now)
        self._notify(cond)
        self._end_batch()
        return cond

    def disable(self, path: str, user: str | None = None, comment: str | None = None) -> ConditionState:
        """Disable a condition: it returns to normal and ignores its value until enabled again."""
        cond = self.condition(path)
        now = self._clock()
        was_active = cond.active
        cond.disable(now)
        self._record(cond, "disabled", now, user=user, comment=comment)
        slot = self._slots[path]
        if was_active and slot.device.kind is Kind.CABINET and self._flood.is_parent_kind(slot.kind.key):
            self._parent_changed(slot.device.id, slot.kind.key, False)
        if was_active and slot.parent is not None:
            self._dirty_cabinets.add(slot.parent)
        self._notify(cond)
        self._end_batch()
        return cond

    def timed_shelve(
        self, path: str, seconds: float, user: str | None = None, comment: str | None = None
    ) -> ConditionState:
        """Shelve for `seconds` (at most alarms.shelving.max_hours); it unshelves itself when the time is up."""
        cond = self.condition(path)
        now = self._clock()
        cond.timed_shelve(seconds, self.config.max_shelve_s, now)
        assert cond.unshelve_at is not None
        self._schedule(cond.unshelve_at, _UNSHELVE, path)
        self._record(cond, "shelved", now, user=user, comment=comment, detail=f"timed {seconds:g} s")
        self._notify(cond)
        return cond

    def one_shot_shelve(self, path: str, user: str | None = None, comment: str | None = None) -> ConditionState:
        """Shelve until the alarm returns to normal (at most alarms.shelving.max_hours)."""
        cond = self.condition(path)
        now = self._clock()
        cond.one_shot_shelve(self.config.max_shelve_s, now)
        assert cond.unshelve_at is not None
        self._schedule(cond.unshelve_at, _UNSHELVE, path)
        self._record(cond, "shelved", now, user=user, comment=comment, detail="one-shot")
        self._notify(cond)
        return cond

    def unshelve(self, path: str, user: str | None = None, comment: str | None = None) -> ConditionState:
        """End the shelving of a condition."""
        cond = self.condition(path)
        now = self._clock()
        cond.unshelve(now)
        self._deadlines.cancel(_UNSHELVE, path)
        self._record(cond, "unshelved", now, user=user, comment=comment)
        self._notify(cond)
        return cond

    # -- timers ----------------------------------------------------------------------------------------------

    def _schedule(self, due: datetime, action: str, target: str) -> None:
        self._deadlines.schedule(due, action, target)
        if self._wake is not None:
            self._wake.set()

    def next_deadline(self) -> datetime | None:
        """When tick() next has something to do (None: nothing planned)."""
        return self._deadlines.next_due()

    def tick(self, now: datetime | None = None) -> None:
        """Run what is due: shelving expiries (an event each) and flood releases."""
        now = now or self._clock()
        for action, target in self._deadlines.pop_due(now):
            if action == _UNSHELVE:
                cond = self._conditions.get(target)
                if cond is None or not cond.shelved or cond.unshelve_at is None or cond.unshelve_at > now:
                    continue
                cond.end_shelving(now)
                self._record(cond, "unshelved", now, detail="shelving time expired")
                self._notify(cond)
            elif action == _RELEASE:
                self._release(target)
        self._end_batch()

    async def start(self) -> None:
        """Run the timers in a task (idempotent)."""
        if self._task is not None:
            return
        self._wake = asyncio.Event()
        self._task = asyncio.get_running_loop().create_task(self._run(), name="alarm-timers")

    async def stop(self) -> None:
        """Stop the timer task (idempotent)."""
        task, self._task = self._task, None
        self._wake = None
        if task is not None:
            task.cancel()
            await asyncio.wait({task})

    async def _run(self) -> None:
        wake = self._wake
        assert wake is not None
        while True:
            due = self._deadlines.next_due()
            timeout = None if due is None else max(0.0, (due - self._clock()).total_seconds())
            wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wake.wait(), timeout)
            try:
                self.tick()
            except Exception:
                log.exception("alarm timers failed")


_CONDITION_NAMES = {kind.key: kind.condition for kind in ALARM_KINDS}
