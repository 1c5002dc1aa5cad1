"""Who holds a device, what it showed before, and what it goes back to: the arbiter of signs, plans and car parks.

Incident response and parking guidance command the same signs; two incidents may want the same device. Every
such command passes through DeviceHolds, one asyncio lock per device, so that they never interleave:

- `apply(owner, device, command)` puts the owner's claim on top of the device's stack and sends the command.
  The first claim on a free device captures its state before (sign: message, pictogram, flashing; controller:
  the plan requested by the centre; car park: entrance display mode) from the live values.
- `release(owner, device)` removes the claim. If it was on top, the device goes back to the claim below (an
  older incident's message, a plan for the rest of its duration), or, when none is left, to the base: what the
  base provider gives (parking guidance shows the current free places) or else the captured state before. A claim
  that is not on top goes silently: the claim above restores the device when it leaves.
- `write_free(device, command)` is for lower-priority writers (guidance): it writes only while nobody holds it.

A failed restore keeps the device marked dirty and is retried in the background until it succeeds or another
claim takes the device. Refused commands (out of range, access denied, device refusal) leave the device as it
was: the claim is dropped (or its previous command kept). Ambiguous failures (no answer, connection lost) keep
the claim, so that a later release restores the device in any case.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, Protocol

from scada.catalog import Kind
from scada.incidents.planner import Command
from scada.model import CommandError, Quality, WriteRequest, WriteResult, utcnow
from scada.site.model import ParkingSite, Sign, Site, TrafficController

log = logging.getLogger(__name__)

AMBIGUOUS = frozenset({Quality.BAD_COMM, Quality.BAD_TIMEOUT, Quality.BAD_INTERNAL, Quality.BAD_NO_COMMUNICATION})
"""Failures after which the device may or may not have taken the command."""

MIN_PLAN_S = 10  # the catalog's shortest DurationSeconds
DEFAULT_RESTORE_PLAN_S = 900


class CommandExecutor(Protocol):
    """What DeviceHolds needs of the command service."""

    async def execute(self, request: WriteRequest) -> WriteResult:
        """Carry out a command; raises a CommandError subclass when refused or failed."""
        ...


@dataclass(frozen=True, slots=True)
class DeviceState:
    """What a device showed or ran before a claim took it (known False: it had never been read)."""

    kind: Kind
    values: dict[str, Any]
    known: bool = True

    def as_dict(self) -> dict[str, Any]:
        """JSON-able form."""
        return {**self.values, "known": self.known}


@dataclass(frozen=True, slots=True)
class Outcome:
    """What happened on one device: the command sent (None: nothing sent), its status and when."""

    device_id: str
    command: Command | None
    status: int = Quality.GOOD
    message: str = ""
    sent_at: datetime | None = None
    answered_at: datetime | None = None
    note: str = ""

    @property
    def ok(self) -> bool:
        """True when nothing needed sending or the device accepted the command."""
        return (self.status & 0xC0000000) == 0

    def as_dict(self) -> dict[str, Any]:
        """JSON-able form."""
        return {
            "device": self.device_id,
            "command": None if self.command is None else self.command.as_dict(),
            "status": int(self.status),
            "message": self.message,
            "sent_at": None if self.sent_at is None else self.sent_at.isoformat(),
            "answered_at": None if self.answered_at is None else self.answered_at.isoformat(),
            "note": self.note,
        }


@dataclass(slots=True)
class _Claim:
    owner: str
    command: Command
    user: str | None
    expires_at: datetime | None = None  # plans: when the driver lets the plan lapse
    restore_plan_s: int = DEFAULT_RESTORE_PLAN_S


@dataclass(slots=True)
class _Slot:
    device_id: str
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    claims: list[_Claim] = field(default_factory=list)  # bottom -> top
    base: DeviceState | None = None
    restore_plan_s: int = DEFAULT_RESTORE_PLAN_S
    dirty: bool = False  # a restore failed: retry
    dirty_user: str | None = None


BaseProvider = Callable[[], Command | None]
FreedListener = Callable[[str, Outcome], None]


def capture_state(device: Any, value: Callable[[str], Any]) -> DeviceState:
    """The state of a sign, controller or car park now, from the live values (known False if never read)."""
    if isinstance(device, Sign):
        message = value(f"{device.path}/Message")
        pictogram = value(f"{device.path}/Pictogram")
        flashing = value(f"{device.path}/Flashing")
        known = isinstance(message, str)
        return DeviceState(
            Kind.SIGN,
            {
                "message": message if isinstance(message, str) else "",
                "pictogram": int(pictogram) if isinstance(pictogram, int) else 0,
                "flashing": bool(flashing) if isinstance(flashing, bool) else False,
            },
            known,
        )
    if isinstance(device, TrafficController):
        plan = value(f"{device.path}/RequestedPlan")
        known = isinstance(plan, int)
        return DeviceState(Kind.CONTROLLER, {"requested_plan": int(plan) if known else 0}, known)
    if isinstance(device, ParkingSite):
        mode = value(f"{device.path}/DisplayMode")
        known = isinstance(mode, int)
        return DeviceState(Kind.PARKING_SITE, {"display_mode": int(mode) if known else 0}, known)
    raise TypeError(f"{type(device).__name__} {getattr(device, 'id', '?')} cannot be held")


def restore_command(state: DeviceState, restore_plan_s: int = DEFAULT_RESTORE_PLAN_S) -> Command:
    """The command that puts a device back in `state` (an unknown sign is blanked, an unknown plan released)."""
    values = state.values
    if state.kind is Kind.SIGN:
        if not values["message"] and not values["pictogram"]:
            return Command("blank")
        return Command(
            "display", {"Text": values["message"], "Pictogram": values["pictogram"], "Flashing": values["flashing"]}
        )
    if state.kind is Kind.CONTROLLER:
        plan = values["requested_plan"]
        if not plan:
            return Command("release_plan")
        return Command("select_plan", {"Plan": plan, "DurationSeconds": max(MIN_PLAN_S, restore_plan_s)})
    if state.kind is Kind.PARKING_SITE:
        return Command("set_display_mode", {"Mode": values["display_mode"]})
    raise TypeError(f"no restore for a {state.kind}")


class DeviceHolds:
    """The per-device claim stacks (see the module docstring); start() runs the restore retries."""

    def __init__(
        self,
        site: Site,
        commands: CommandExecutor,
        values: Callable[[str], Any],
        *,
        clock: Callable[[], datetime] = utcnow,
        origin: str = "incident",
        retry_s: float = 15.0,
    ) -> None:
        self._site = site
        self._commands = commands
        self._values = values
        self._clock = clock
        self._origin = origin
        self.retry_s = retry_s
        self._slots: dict[str, _Slot] = {}
        self._providers: dict[str, BaseProvider] = {}
        self._freed: list[FreedListener] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    # -- lifecycle -----------------------------------------------------------------------------------------

    async def start(self) -> None:
        """Start retrying failed restores (idempotent)."""
        if self._task is None:
            self._task = asyncio.create_task(self._retry_loop(), name="incident-restore-retry")

    async def stop(self) -> None:
        """Stop the retries (idempotent); claims stay as they are."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    # -- queries -------------------------------------------------------------------------------------------

    def holder(self, device_id: str) -> str | None:
        """The owner whose claim is on top of the device, or None."""
        slot = self._slots.get(device_id)
        return slot.claims[-1].owner if slot is not None and slot.claims else None

    def owners(self, device_id: str) -> list[str]:
        """Every owner holding the device, bottom to top."""
        slot = self._slots.get(device_id)
        return [claim.owner for claim in slot.claims] if slot is not None else []

    def base(self, device_id: str) -> DeviceState | None:
        """The state the device goes back to when every claim has gone (None while free)."""
        slot = self._slots.get(device_id)
        return slot.base if slot is not None else None

    def dirty(self) -> list[str]:
        """Devices whose restore failed and is being retried."""
        return sorted(device_id for device_id, slot in self._slots.items() if slot.dirty)

    def busy(self, device_id: str) -> bool:
        """True while a claim holds the device or its restore is still pending."""
        slot = self._slots.get(device_id)
        return slot is not None and (bool(slot.claims) or slot.dirty)

    # -- lower-priority writers ----------------------------------------------------------------------------

    def set_base_provider(self, device_id: str, provider: BaseProvider | None) -> None:
        """What the device shows when no claim holds it (parking guidance); None removes the provider."""
        if provider is None:
            self._providers.pop(device_id, None)
        else:
            self._providers[device_id] = provider

    def add_freed_listener(self, listener: FreedListener) -> None:
        """Call `listener(device_id, outcome)` each time a device goes back to its base after the last claim."""
        self._freed.append(listener)

    async def write_free(self, device_id: str, command: Command, *, user: str | None, origin: str) -> Outcome | None:
        """Send a command only while no claim holds the device (None: held, nothing sent)."""
        slot = self._slot(device_id)
        async with slot.lock:
            if slot.claims or slot.dirty:
                return None
            return await self._send(device_id, command, user, origin)

    # -- claims --------------------------------------------------------------------------------------------

    async def apply(
        self,
        owner: str,
        device_id: str,
        command: Command,
        *,
        user: str | None,
        restore_plan_s: int = DEFAULT_RESTORE_PLAN_S,
    ) -> tuple[Outcome, DeviceState]:
        """Put the owner's claim on top and send its command; returns the outcome and the device's state before."""
        device = self._site.device(device_id)
        slot = self._slot(device_id)
        async with slot.lock:
            before = capture_state(device, self._values)
            fresh_base = slot.base is None
            if fresh_base:
                slot.base = before
                slot.restore_plan_s = restore_plan_s
            previous = next((c for c in slot.claims if c.owner == owner), None)
            position = slot.claims.index(previous) if previous is not None else None
            if previous is not None:
                slot.claims.remove(previous)
            claim = _Claim(owner, command, user, restore_plan_s=restore_plan_s)
            slot.claims.append(claim)
            slot.dirty = False  # a new command supersedes a pending restore
            outcome = await self._send(device_id, command, user, self._origin)
            if outcome.ok:
                claim.expires_at = _expiry(command, outcome.answered_at or self._clock())
            elif outcome.status not in AMBIGUOUS:
                slot.claims.remove(claim)  # the device did not take it: it shows what it showed
                if previous is not None and position is not None:
                    slot.claims.insert(position, previous)
                if not slot.claims and fresh_base:
                    slot.base = None
            return outcome, before

    async def release(self, owner: str, device_id: str, *, user: str | None) -> Outcome | None:
        """Remove the owner's claim and restore the device if it was on top; None if the owner held nothing."""
        slot = self._slots.get(device_id)
        if slot is None:
            return None
        async with slot.lock:
            claim = next((c for c in slot.claims if c.owner == owner), None)
            if claim is None:
                return None
            top = slot.claims[-1] is claim
            slot.claims.remove(claim)
            if not top:
                above = slot.claims[-1].owner
                return Outcome(device_id, None, note=f"{above} holds the device and restores it when it leaves")
            return await self._fall_back(slot, user)

    async def _fall_back(self, slot: _Slot, user: str | None) -> Outcome:
        """Put the device back to the claim now on top, else to its base (lock held); dirty when it fails."""
        now = self._clock()
        while slot.claims:
            below = slot.claims[-1]
            command = below.command
            if below.expires_at is not None:
                remaining = int((below.expires_at - now).total_seconds())
                if remaining < MIN_PLAN_S:
                    slot.claims.pop()  # its plan has lapsed by now
                    continue
                command = replace(command, args={**command.args, "DurationSeconds": remaining})
            outcome = await self._send(slot.device_id, command, below.user, self._origin)
            self._mark(slot, outcome, user)
            return replace(outcome, note=f"back to {below.owner}'s command")
        return await self._restore_base(slot, user)

    def _mark(self, slot: _Slot, outcome: Outcome, user: str | None) -> None:
        """Remember a failed fall-back for the retries (logged once), or that it is done."""
        if outcome.ok:
            if slot.dirty:
                log.info("%s is back to what it should show", slot.device_id)
            slot.dirty = False
            return
        if not slot.dirty:
            log.warning("restore of %s failed (%s); retrying every %g s", slot.device_id, outcome.message, self.retry_s)
        slot.dirty = True
        slot.dirty_user = user
        self._wake.set()

    async def _restore_base(self, slot: _Slot, user: str | None) -> Outcome:
        """Send the base command (provider first, else the state before); marks the slot dirty on failure."""
        provider = self._providers.get(slot.device_id)
        command: Command | None = None
        note = "restored the state before"
        if provider is not None:
            try:
                command = provider()
            except Exception:
                log.exception("base provider of %s failed", slot.device_id)
            if command is not None:
                note = "handed back to its base provider (guidance)"
        if command is None:
            if slot.base is None:
                return Outcome(slot.device_id, None, note="nothing to restore")
            command = restore_command(slot.base, slot.restore_plan_s)
            if not slot.base.known:
                note = "the state before was unknown: cleared"
        outcome = replace(await self._send(slot.device_id, command, user, self._origin), note=note)
        if outcome.ok:
            slot.base = None
            slot.dirty = False
            for listener in self._freed:
                try:
                    listener(slot.device_id, outcome)
                except Exception:
                    log.exception("freed listener %r failed", listener)
        else:
            if not slot.dirty:
                log.warning(
                    "restore of %s failed (%s); retrying every %g s", slot.device_id, outcome.message, self.retry_s
                )
            slot.dirty = True
            slot.dirty_user = user
            self._wake.set()
        return outcome

    async def _send(self, device_id: str, command: Command, user: str | None, origin: str) -> Outcome:
        """One command through the command service, timed."""
        sent = self._clock()
        request = WriteRequest(device_id, command.action, dict(command.args), user=user, origin=origin)
        try:
            result = await self._commands.execute(request)
        except CommandError as exc:
            return Outcome(device_id, command, int(exc.status), str(exc), sent, self._clock())
        return Outcome(device_id, command, int(result.status), result.message, sent, self._clock())

    def _slot(self, device_id: str) -> _Slot:
        slot = self._slots.get(device_id)
        if slot is None:
            if self._site.device(device_id) is None:
                raise KeyError(f"no device {device_id!r} in site {self._site.name}")
            slot = self._slots[device_id] = _Slot(device_id)
        return slot

    async def _retry_loop(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while any(slot.dirty for slot in self._slots.values()):
                await asyncio.sleep(self.retry_s)
                for slot in [s for s in self._slots.values() if s.dirty]:
                    async with slot.lock:
                        if slot.dirty:
                            await self._fall_back(slot, slot.dirty_user)


def _expiry(command: Command, at: datetime) -> datetime | None:
    """When a select_plan lapses (None for other commands)."""
    if command.action != "select_plan":
        return None
    return at + timedelta(seconds=float(command.args.get("DurationSeconds", 0)))
