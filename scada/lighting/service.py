"""LightingService: astronomical switching, night profiles, presence response and maintenance overrides.

Wiring: the schedule says what each district's profile asks for; APScheduler date jobs fire at every change of
the current night window (switch-on, each step, switch-off) and at local noon, when the next window is planned
(so dusk and dawn are recomputed daily); the cabinet actuators turn wishes into commands through the one command
path (CommandService, origin "automation" or "maintenance"); a router sink feeds presence edges to follow-me and
cabinet recoveries to the actuators. start() catches up: it applies the state in force now (mode 0 unless an
override is active, the current step's level and local boost), so a restart mid-night is right. Overrides are
kept in memory only: after a server restart every cabinet is back to automatic.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from apscheduler.jobstores.base import JobLookupError
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.date import DateTrigger

from scada.commands import CommandService
from scada.lighting.actuator import ORIGIN, ActuatorStats, CabinetActuator, ModeWish, RateLimiter
from scada.lighting.astro import AstroClock
from scada.lighting.clock import SiteClock
from scada.lighting.config import LightingConfig, load_lighting_config
from scada.lighting.followme import FollowMe, PresenceEdges
from scada.lighting.overrides import ORIGIN as MAINTENANCE
from scada.lighting.overrides import NoOverrideError, Override, OverrideBook
from scada.lighting.profiles import ProfileState
from scada.lighting.schedule import LightingSchedule
from scada.model import CommandError, InvalidArgumentError, Quality, ValueRecord, WriteRequest
from scada.router import TagRouter
from scada.site.model import Lamp, Site

log = logging.getLogger(__name__)

SINK = "lighting"
JOB_PREFIX = "lighting:"


@dataclass(frozen=True, slots=True)
class DistrictStatus:
    """What a district's lamps are asked to do now."""

    district: str
    profile: str
    lit: bool
    level: float
    boost: float  # the cabinets' local presence boost (0: none)
    step: str  # the step's label ("on", "23:00", ...), "day" outside the night
    since: datetime | None
    until: datetime | None  # the next change


@dataclass(frozen=True, slots=True)
class HoldStatus:
    """A lamp raised by follow-me."""

    lamp_id: str
    cabinet_id: str
    level: float
    until: datetime


@dataclass(frozen=True, slots=True)
class LightingStatus:
    """A snapshot of the lighting automation."""

    now: datetime
    running: bool
    districts: dict[str, DistrictStatus]
    next_on: datetime | None
    next_off: datetime | None
    next_change: datetime | None
    holds: list[HoldStatus]
    overrides: list[Override]
    pending_cabinets: list[str]  # cabinets with commands still to send
    failing_cabinets: dict[str, str]  # cabinet -> last failure, while its commands fail
    commands: int
    lamp_commands: int
    failures: int
    detections: int


class LightingService:
    """The lighting automation of one site (idempotent start()/stop())."""

    def __init__(
        self,
        site: Site,
        commands: CommandService,
        router: TagRouter,
        *,
        scheduler: AsyncIOScheduler | None = None,
        clock: Callable[[], datetime] | None = None,
        config: LightingConfig | None = None,
        retry_min_s: float = 1.0,
        retry_max_s: float = 60.0,
        stop_flush_s: float = 2.0,
    ) -> None:
        """Validate the site's lighting section (ConfigError with every issue) and prepare; no I/O until start()."""
        self.site = site
        self.config = config if config is not None else load_lighting_config(site)
        self._commands = commands
        self._router = router
        self._scheduler = scheduler if scheduler is not None else AsyncIOScheduler(timezone=site.timezone)
        self._started_scheduler = False
        self.clock = SiteClock(clock)
        self.astro = AstroClock(site.lat, site.lon, site.timezone, depression=self.config.depression)
        self.schedule = LightingSchedule(self.config, self.astro)
        follow = self.config.presence.follow_me
        self.stats = ActuatorStats()
        self._limiter = RateLimiter(follow.max_commands_per_second)
        self._actuators = {
            cabinet.id: CabinetActuator(
                cabinet,
                commands,
                self._limiter,
                self.stats,
                cabinet_rate=follow.cabinet_commands_per_second,
                min_interval_s=follow.min_interval_ms / 1000.0,
                retry_min_s=retry_min_s,
                retry_max_s=retry_max_s,
            )
            for cabinet in site.cabinets.values()
        }
        self._edges = PresenceEdges(site)
        self.followme = FollowMe(
            site, self.config.presence, self.clock, raise_lamp=self._raise_lamp, base_level=self._follow_base
        )
        self.overrides_book = OverrideBook(site, self.config.max_override_minutes)
        self._states: dict[str, ProfileState] = {}
        self._jobs: set[str] = set()
        self._stop_flush_s = stop_flush_s
        self._running = False

    # -- life cycle -----------------------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        """True between start() and stop()."""
        return self._running

    async def start(self) -> None:
        """Subscribe to the value stream, start the workers, apply the state in force now and plan the jobs."""
        if self._running:
            return
        self._running = True
        if not self._scheduler.running:
            self._scheduler.start()
            self._started_scheduler = True
        self._router.add_sink(SINK, self._on_records)
        for actuator in self._actuators.values():
            actuator.invalidate()  # whatever was commanded before, the cabinets get the state in force now
            actuator.start()
        self.followme.start()
        self.resync()
        log.info(
            "lighting: %d cabinets in %d districts, switch on at %s, off at %s",
            len(self._actuators),
            len(self.site.districts),
            self.config.on,
            self.config.off,
        )

    async def stop(self) -> None:
        """Unsubscribe, drop the jobs, put raised lamps back to their profile level (briefly), stop the workers."""
        if not self._running:
            return
        self._running = False
        self._router.remove_sink(SINK)
        self._remove_jobs()
        if self._started_scheduler:
            self._started_scheduler = False
            self._scheduler.shutdown(wait=False)  # AsyncIOScheduler shuts down in a loop callback: let it run
            for _ in range(100):
                if not self._scheduler.running:
                    break
                await asyncio.sleep(0)
        await self.followme.stop()
        self.followme.release()
        try:
            await asyncio.wait_for(self.wait_idle(), self._stop_flush_s)
        except TimeoutError:
            log.warning("lighting: stopped with commands still pending for %s", ", ".join(self._pending()))
        for actuator in self._actuators.values():
            await actuator.stop()

    async def wait_idle(self) -> None:
        """Return once every cabinet has been commanded what is wanted now."""
        await asyncio.gather(*(actuator.wait_idle() for actuator in self._actuators.values()))

    def resync(self) -> None:
        """Apply the state in force now and plan the jobs again (at start, and after the clock jumped)."""
        now = self.clock.now()
        for ended in self.overrides_book.expired(now):
            self._end_override(ended)
        for cabinet_id, actuator in self._actuators.items():
            override = self.overrides_book.get(cabinet_id)
            if override is not None:
                actuator.set_mode(ModeWish(override.mode, override.user, MAINTENANCE))
                self._schedule_expiry(override)
            elif actuator.mode is None or actuator.mode.mode != 0:
                actuator.set_mode(ModeWish(0, None, ORIGIN))
        self._apply(now)
        self._plan(now)

    # -- the schedule ---------------------------------------------------------------------------------------

    def _apply(self, t: datetime) -> None:
        """Ask every cabinet for the level and local boost its district's profile gives at `t`."""
        states = self.schedule.district_states(t)
        hold_s = self.config.presence.hold_seconds
        by_district: dict[str, list[CabinetActuator]] = {}
        for actuator in self._actuators.values():
            by_district.setdefault(actuator.cabinet.district, []).append(actuator)
        for district, state in states.items():
            previous = self._states.get(district)
            if previous is None or (previous.level, previous.boost, previous.lit, previous.step) != (
                state.level,
                state.boost,
                state.lit,
                state.step,
            ):
                log.info(
                    "lighting %s: profile %s, step %s: %g %% (local boost %g %%)",
                    district,
                    state.profile,
                    state.step,
                    state.level,
                    state.boost,
                )
            for actuator in by_district.get(district, ()):
                actuator.set_base(state.level)
                actuator.set_presence(state.boost, hold_s)
        self._states = states
        level = self.followme.level
        self.followme.release(
            hold.lamp.id
            for hold in self.followme.holds()
            if (base := self._follow_base(hold.lamp)) is None or level <= base
        )

    def _plan(self, now: datetime) -> None:
        """Date jobs for every change left in the current window, and the planning job at its end."""
        for job_id in [j for j in self._jobs if not j.startswith(f"{JOB_PREFIX}override:")]:
            self._remove_job(job_id)
        day = self.astro.window_day(now)
        for at in self.schedule.changes(day):
            if at > now:
                self._add_job(f"{JOB_PREFIX}change:{at.isoformat()}", self._on_change, at)
        self._add_job(f"{JOB_PREFIX}plan", self._on_plan, self.schedule.window_end(now))

    async def _on_change(self, at: datetime) -> None:
        """A job: a profile step, switch-on or switch-off is due."""
        self._jobs.discard(f"{JOB_PREFIX}change:{at.isoformat()}")
        self._apply(max(at, self.clock.now()))

    async def _on_plan(self, at: datetime) -> None:
        """A job at local noon: the next night window begins; compute its dusk and dawn and plan its jobs."""
        self._jobs.discard(f"{JOB_PREFIX}plan")
        t = max(at, self.clock.now())
        self._apply(t)
        self._plan(t)

    def _add_job(self, job_id: str, func: Callable[..., object], at: datetime, *args: object) -> None:
        self._scheduler.add_job(
            func,
            DateTrigger(run_date=self.clock.real_time(at)),
            args=[at, *args],
            id=job_id,
            name=job_id,
            replace_existing=True,
            misfire_grace_time=None,
            coalesce=True,
        )
        self._jobs.add(job_id)

    def _remove_job(self, job_id: str) -> None:
        self._jobs.discard(job_id)
        with contextlib.suppress(JobLookupError):
            self._scheduler.remove_job(job_id)

    def _remove_jobs(self) -> None:
        for job_id in list(self._jobs):
            self._remove_job(job_id)

    # -- presence -------------------------------------------------------------------------------------------

    def _on_records(self, records: Sequence[ValueRecord]) -> None:
        """Router sink (on the event loop, never blocks): presence edges and cabinet recoveries."""
        edges = self._edges.feed(records)
        if edges.detections:
            now = self.clock.now()
            for lamp_id in edges.detections:
                self.followme.detect(lamp_id, now)
        for cabinet_id in edges.recovered:
            log.info("lighting: %s answers again, sending its state again", cabinet_id)
            self._actuators[cabinet_id].invalidate()

    def _raise_lamp(self, lamp: Lamp, level: float | None) -> None:
        self._actuators[lamp.cabinet_id].set_boost(lamp.index, level)

    def _follow_base(self, lamp: Lamp) -> float | None:
        """The profile level of a lamp now; None when follow-me must leave it alone (day, override)."""
        if lamp.cabinet_id in self.overrides_book:
            return None
        state = self._states.get(self.site.cabinets[lamp.cabinet_id].district)
        if state is None or not state.lit:
            return None
        return state.level

    # -- maintenance overrides ------------------------------------------------------------------------------

    async def override(self, cabinet_id: str, mode: int, minutes: float, user: str, reason: str) -> Override:
        """Force a cabinet on (1) or off (2) for `minutes` (≤ max_minutes); audited as the maintainer's command."""
        if not self._running:
            raise CommandError("the lighting service is not running", Quality.BAD_INVALID_STATE)
        override = self.overrides_book.make(cabinet_id, mode, minutes, user, reason, self.clock.now())
        actuator = self._actuators[cabinet_id]
        request = WriteRequest(cabinet_id, "set_mode", {"Mode": mode}, user=override.user, origin=MAINTENANCE)
        result = await actuator.command(request)
        if not result.ok:
            raise CommandError(f"{cabinet_id} refused mode {mode}: {result.message}", result.status)
        self.overrides_book.put(override)
        actuator.set_mode(ModeWish(mode, override.user, MAINTENANCE))
        self.followme.release(lamp.id for lamp in actuator.cabinet.lamps)
        self._schedule_expiry(override)
        log.info(
            "lighting: %s %s by %s until %s (%s)",
            cabinet_id,
            override.mode_name,
            override.user,
            override.expires.isoformat(timespec="seconds"),
            override.reason,
        )
        return override

    async def cancel_override(self, cabinet_id: str, user: str) -> Override:
        """End a cabinet's override now (back to automatic, audited as `user`'s command); returns it."""
        override = self.overrides_book.get(cabinet_id)
        if override is None:
            raise NoOverrideError(f"{cabinet_id} has no maintenance override")
        if not isinstance(user, str) or not user.strip():
            raise InvalidArgumentError("cancelling an override needs the user's name")
        actuator = self._actuators[cabinet_id]
        request = WriteRequest(cabinet_id, "set_mode", {"Mode": 0}, user=user.strip(), origin=MAINTENANCE)
        result = await actuator.command(request)
        if not result.ok:
            raise CommandError(f"{cabinet_id} refused mode 0: {result.message}", result.status)
        self.overrides_book.pop(cabinet_id, override)
        actuator.set_mode(ModeWish(0, user.strip(), MAINTENANCE))
        self._remove_job(f"{JOB_PREFIX}override:{cabinet_id}")
        log.info("lighting: override of %s cancelled by %s", cabinet_id, user)
        return override

    def overrides(self) -> list[Override]:
        """The overrides in force, soonest ending first."""
        return self.overrides_book.list()

    def _schedule_expiry(self, override: Override) -> None:
        if self._running:
            self._add_job(f"{JOB_PREFIX}override:{override.cabinet_id}", self._on_expiry, override.expires, override)

    async def _on_expiry(self, at: datetime, override: Override) -> None:
        """A job: an override's time is up."""
        self._jobs.discard(f"{JOB_PREFIX}override:{override.cabinet_id}")
        self._end_override(override)

    def _end_override(self, override: Override) -> None:
        """Back to automatic (mode 0, commanded and retried by the actuator on the maintainer's behalf)."""
        if self.overrides_book.pop(override.cabinet_id, override) is None:
            return  # replaced or cancelled meanwhile
        self._actuators[override.cabinet_id].set_mode(ModeWish(0, override.user, MAINTENANCE))
        log.info("lighting: override of %s by %s expired, back to automatic", override.cabinet_id, override.user)

    # -- status ---------------------------------------------------------------------------------------------

    def _pending(self) -> list[str]:
        return [cabinet_id for cabinet_id, actuator in self._actuators.items() if not actuator.idle]

    def status(self) -> LightingStatus:
        """Current step per district, next switching times, follow-me holds, overrides and command counters."""
        now = self.clock.now()
        states = self.schedule.district_states(now)
        districts = {
            district: DistrictStatus(
                district, state.profile, state.lit, state.level, state.boost, state.step, state.since, state.until
            )
            for district, state in states.items()
        }
        next_on, next_off = self.schedule.next_switch(now)
        changes = [state.until for state in states.values() if state.until is not None and state.until > now]
        holds = [
            HoldStatus(hold.lamp.id, hold.lamp.cabinet_id, hold.level, hold.until) for hold in self.followme.holds()
        ]
        failing = {cid: a.failing for cid, a in self._actuators.items() if a.failing is not None}
        return LightingStatus(
            now=now,
            running=self._running,
            districts=districts,
            next_on=next_on,
            next_off=next_off,
            next_change=min(changes) if changes else None,
            holds=holds,
            overrides=self.overrides_book.list(),
            pending_cabinets=self._pending(),
            failing_cabinets=failing,
            commands=self.stats.commands,
            lamp_commands=self.stats.lamp_commands,
            failures=self.stats.failures,
            detections=self.followme.detections,
        )
