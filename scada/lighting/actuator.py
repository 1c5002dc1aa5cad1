"""Per-cabinet command writer: drives one cabinet towards the state the automation wants, through the command service.

The automation only states what it wants (a base level for the cabinet, raised levels for some lamps, the local
presence boost, the mode); one worker task per cabinet compares that with what it last commanded and sends the
difference through CommandService.execute, one batch at a time. So commands for a cabinet are coalesced (a change
that is overtaken before it is sent is never sent), there is never more than one command in flight per lamp,
lamp commands of the whole site share a token bucket, and batches of one cabinet are spaced by a minimum
interval. A failed command leaves its target unknown and is retried with exponential backoff (logged once on
failure, once on recovery).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from dataclasses import dataclass, field

from scada.commands import CommandService
from scada.model import CommandError, DeviceCommunicationError, Quality, WriteRequest, WriteResult
from scada.site.model import Cabinet

log = logging.getLogger(__name__)

ORIGIN = "automation"


def register_level(level: float) -> int:
    """The integer % a cabinet stores for a level (rounded half up, as the driver does)."""
    return math.floor(level + 0.5)


class RateLimiter:
    """A token bucket on real time: `rate` acquisitions per second, bursts up to `burst`."""

    def __init__(self, rate: float, burst: float | None = None) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.rate = float(rate)
        self.burst = float(burst if burst is not None else max(1.0, rate))
        self._tokens = self.burst
        self._stamp = time.monotonic()
        self._lock = asyncio.Lock()
        self.waited_s = 0.0  # total time callers spent waiting for a token

    async def acquire(self) -> None:
        """Take one token, waiting for it when the bucket is empty (callers are served in order)."""
        async with self._lock:
            while True:
                now = time.monotonic()
                self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate)
                self._stamp = now
                if self._tokens >= 1.0:
                    self._tokens -= 1.0
                    return
                wait = (1.0 - self._tokens) / self.rate
                self.waited_s += wait
                await asyncio.sleep(wait)


@dataclass(frozen=True, slots=True)
class ModeWish:
    """The cabinet mode wanted, and on whose behalf it is commanded."""

    mode: int
    user: str | None
    origin: str


@dataclass(slots=True)
class ActuatorStats:
    """Counters shared by every actuator of a service."""

    commands: int = 0  # commands sent (every kind)
    lamp_commands: int = 0  # set_level commands
    cabinet_commands: int = 0  # set_all_levels, set_presence, set_mode
    failures: int = 0
    in_flight: set[str] = field(default_factory=set)  # lamp ids with a set_level in flight
    max_in_flight: int = 0
    overlaps: int = 0  # set_level sent to a lamp that already had one in flight (must stay 0)


class CabinetActuator:
    """Drives one cabinet towards the wanted state; at most one batch of commands in flight."""

    def __init__(
        self,
        cabinet: Cabinet,
        commands: CommandService,
        limiter: RateLimiter,
        stats: ActuatorStats,
        *,
        cabinet_rate: float | None = None,
        min_interval_s: float = 0.2,
        retry_min_s: float = 1.0,
        retry_max_s: float = 60.0,
    ) -> None:
        self.cabinet = cabinet
        self.id = cabinet.id
        self._commands = commands
        self._limiter = limiter  # lamp commands of the whole site
        self._cabinet_limiter = RateLimiter(cabinet_rate) if cabinet_rate is not None else None  # this cabinet's bus
        self._stats = stats
        self._min_interval_s = min_interval_s
        self._retry_min_s = retry_min_s
        self._retry_max_s = retry_max_s
        self._lamp_ids = {lamp.index: lamp.id for lamp in cabinet.lamps}
        # wanted
        self._base: float | None = None
        self._boosts: dict[int, float] = {}
        self._presence: tuple[float, int] | None = None
        self._mode: ModeWish | None = None
        # last commanded (None: unknown)
        self._cmd: dict[int, int | None] = dict.fromkeys(self._lamp_ids)
        self._cmd_presence: tuple[int, int] | None = None
        self._cmd_mode: int | None = None
        # machinery
        self._lock = asyncio.Lock()
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.failing: str | None = None  # the last failure while commands fail, None when they succeed
        self.last_ok: float | None = None  # monotonic time of the last successful batch

    # -- what is wanted -------------------------------------------------------------------------------------

    def set_base(self, level: float) -> None:
        """Every lamp's level when not raised (the profile level)."""
        if self._base != level:
            self._base = level
            self._poke()

    def set_boost(self, index: int, level: float | None) -> None:
        """Raise lamp `index` to `level` (None: back to the base level)."""
        if index not in self._lamp_ids:
            raise KeyError(f"{self.id} has no lamp index {index}")
        if level is None:
            if self._boosts.pop(index, None) is not None:
                self._poke()
        elif self._boosts.get(index) != level:
            self._boosts[index] = level
            self._poke()

    def clear_boosts(self) -> None:
        """Every lamp back to the base level."""
        if self._boosts:
            self._boosts.clear()
            self._poke()

    def set_presence(self, boost: float, hold_s: int) -> None:
        """The cabinet's local presence response (boost level 0: disabled)."""
        if self._presence != (boost, hold_s):
            self._presence = (boost, hold_s)
            self._poke()

    def set_mode(self, wish: ModeWish) -> None:
        """The cabinet mode (0 automatic, 1 forced on, 2 forced off) and who asks for it."""
        if self._mode != wish:
            self._mode = wish
            self._poke()

    def invalidate(self) -> None:
        """Forget what was commanded (the cabinet restarted or was unreachable): everything is sent again."""
        self._cmd = dict.fromkeys(self._lamp_ids)
        self._cmd_presence = None
        self._cmd_mode = None
        self._poke()

    @property
    def base(self) -> float | None:
        """The base level wanted."""
        return self._base

    @property
    def boosts(self) -> dict[int, float]:
        """Lamp index -> raised level wanted."""
        return dict(self._boosts)

    @property
    def mode(self) -> ModeWish | None:
        """The mode wanted."""
        return self._mode

    def target(self, index: int) -> int | None:
        """The level (register %) wanted for lamp `index`, None before the first base level."""
        if self._base is None:
            return None
        return max(register_level(self._base), register_level(self._boosts.get(index, 0.0)))

    def pending(self) -> bool:
        """True when what was commanded differs from what is wanted."""
        if self._mode is not None and self._mode.mode != self._cmd_mode:
            return True
        if self._presence is not None and self._wanted_presence() != self._cmd_presence:
            return True
        if self._base is not None:
            return any(self._cmd[i] != self.target(i) for i in self._lamp_ids)
        return False

    def _wanted_presence(self) -> tuple[int, int] | None:
        if self._presence is None:
            return None
        return register_level(self._presence[0]), self._presence[1]

    def _poke(self) -> None:
        self._idle.clear()
        self._wake.set()

    # -- life cycle -----------------------------------------------------------------------------------------

    def start(self) -> None:
        """Start the worker task (idempotent)."""
        if self._task is None or self._task.done():
            self._idle.clear()
            self._task = asyncio.create_task(self._run(), name=f"lighting-{self.id}")

    async def stop(self) -> None:
        """Stop the worker task (idempotent); a batch in flight is cancelled."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def wait_idle(self) -> None:
        """Return once everything wanted has been commanded successfully."""
        await self._idle.wait()

    @property
    def idle(self) -> bool:
        """True when nothing is pending."""
        return self._idle.is_set()

    async def command(self, request: WriteRequest) -> WriteResult:
        """Send one command now, serialized with the worker's batches (for maintenance overrides); may raise."""
        async with self._lock:
            result = await self._execute(request)
            if request.action == "set_mode" and result.ok:
                self._cmd_mode = int(request.args["Mode"])
        return result

    # -- the worker -----------------------------------------------------------------------------------------

    async def _run(self) -> None:
        delay = self._retry_min_s
        while True:
            if not self.pending() and not self._wake.is_set():
                self._idle.set()
            await self._wake.wait()
            self._wake.clear()
            if not self.pending():
                continue
            async with self._lock:
                try:
                    ok = await self._step()
                except Exception:
                    log.exception("%s: lighting command batch failed", self.id)
                    ok = False
            if ok:
                delay = self._retry_min_s
                self.last_ok = time.monotonic()
                if self.pending():
                    self._wake.set()
                if self._min_interval_s > 0:
                    await asyncio.sleep(self._min_interval_s)
            else:
                await asyncio.sleep(delay)
                delay = min(self._retry_max_s, delay * 2)
                self._wake.set()

    async def _step(self) -> bool:
        """Send one batch: mode, local boost, then levels; False when a command failed."""
        mode = self._mode
        if mode is not None and mode.mode != self._cmd_mode:
            request = WriteRequest(self.id, "set_mode", {"Mode": mode.mode}, user=mode.user, origin=mode.origin)
            if not await self._send(request):
                self._cmd_mode = None
                return False
            self._cmd_mode = mode.mode
        # A boost being enabled or raised goes before the levels (it catches pedestrians under lamps being
        # dimmed), one being lowered or disabled after them (lamps being brightened do not dip meanwhile).
        wanted = self._wanted_presence()
        lowering = wanted is not None and self._cmd_presence is not None and wanted[0] < self._cmd_presence[0]
        if not lowering and not await self._send_presence():
            return False
        if self._base is not None and not await self._send_levels():
            return False
        return not lowering or await self._send_presence()

    async def _send_presence(self) -> bool:
        wanted = self._wanted_presence()
        if wanted is None or wanted == self._cmd_presence:
            return True
        args = {"BoostLevel": float(wanted[0]), "HoldSeconds": wanted[1]}
        if not await self._send(WriteRequest(self.id, "set_presence", args, origin=ORIGIN)):
            self._cmd_presence = None
            return False
        self._cmd_presence = wanted
        return True

    async def _send_levels(self) -> bool:
        assert self._base is not None
        base = register_level(self._base)
        targets = {i: self.target(i) for i in self._lamp_ids}
        to_base = [i for i, t in targets.items() if t == base and self._cmd[i] != base]
        raised = sum(1 for t in targets.values() if t != base)
        if len(to_base) > 1 and (raised == 0 or 2 * len(to_base) >= len(targets)):
            request = WriteRequest(self.id, "set_all_levels", {"Level": float(base)}, origin=ORIGIN)
            if not await self._send(request):
                self._cmd = dict.fromkeys(self._lamp_ids)
                return False
            self._cmd = dict.fromkeys(self._lamp_ids, base)
        wrong = [(i, t) for i, t in targets.items() if self._cmd[i] != t and t is not None]
        if not wrong:
            return True
        results = await asyncio.gather(*(self._send_level(i, t) for i, t in wrong))
        return all(results)

    async def _send_level(self, index: int, level: int) -> bool:
        lamp_id = self._lamp_ids[index]
        if self._cabinet_limiter is not None:
            await self._cabinet_limiter.acquire()
        await self._limiter.acquire()
        latest = self.target(index)  # the wish may have moved on while waiting for the tokens
        if latest is None or latest == self._cmd[index]:
            return True
        level = latest
        stats = self._stats
        if lamp_id in stats.in_flight:
            stats.overlaps += 1
        stats.in_flight.add(lamp_id)
        stats.max_in_flight = max(stats.max_in_flight, len(stats.in_flight))
        try:
            ok = await self._send(WriteRequest(lamp_id, "set_level", {"Level": float(level)}, origin=ORIGIN))
        finally:
            stats.in_flight.discard(lamp_id)
        self._cmd[index] = level if ok else None
        return ok

    async def _send(self, request: WriteRequest) -> bool:
        """Execute through the command service; True when the device accepted it (failures logged once)."""
        try:
            result = await self._execute(request)
        except CommandError as exc:
            self._failed(request, f"{type(exc).__name__}: {exc}", exc.status)
            return False
        if not result.ok:
            self._failed(request, result.message, result.status)
            return False
        if self.failing is not None:
            log.info("%s: lighting commands succeed again", self.id)
            self.failing = None
        return True

    async def _execute(self, request: WriteRequest) -> WriteResult:
        stats = self._stats
        stats.commands += 1
        if request.action == "set_level":
            stats.lamp_commands += 1
        else:
            stats.cabinet_commands += 1
        return await self._commands.execute(request)

    def _failed(self, request: WriteRequest, message: str, status: int) -> None:
        self._stats.failures += 1
        if self.failing is None:
            level = logging.WARNING if status in (Quality.BAD_COMM, Quality.BAD_TIMEOUT) else logging.ERROR
            if status == DeviceCommunicationError.status:
                level = logging.WARNING
            log.log(level, "%s: %s %s failed (%s); retrying with backoff", self.id, request.action,
                    request.device_id, message)  # fmt: skip
        self.failing = message
