"""The lighting schedule of the site: for any instant, the state each district's profile asks for, and when it changes.

Pure computation over the astronomical clock and the validated configuration (no I/O, no timers): the service
asks it for the state in force now (catch-up at start, after a clock jump) and for the instants of the current
window where something changes (the APScheduler jobs). Plans are cached per window.
"""

from __future__ import annotations

from collections import OrderedDict
from datetime import date, datetime, timedelta

from scada.lighting.astro import AstroClock, Night
from scada.lighting.config import LightingConfig
from scada.lighting.profiles import NightPlan, ProfileState, plan_night

_CACHE_WINDOWS = 8
_SEARCH_WINDOWS = 400  # a polar summer or winter lasts months: look that far for the next switch


class LightingSchedule:
    """District profiles placed on the nights of the site's astronomical clock."""

    def __init__(self, config: LightingConfig, astro: AstroClock) -> None:
        self.config = config
        self.astro = astro
        self._plans: OrderedDict[date, dict[str, NightPlan]] = OrderedDict()

    def night(self, day: date) -> Night:
        """The switching night of the window starting at local noon of `day`."""
        return self.astro.night(day, self.config.on, self.config.off)

    def plans(self, day: date) -> dict[str, NightPlan]:
        """Every profile placed on the night of `day` (cached for the last few windows)."""
        plans = self._plans.get(day)
        if plans is None:
            night = self.night(day)
            boost = self.config.presence.boost_level
            tz = self.astro.tz
            plans = {name: plan_night(profile, night, tz, boost) for name, profile in self.config.profiles.items()}
            self._plans[day] = plans
            while len(self._plans) > _CACHE_WINDOWS:
                self._plans.popitem(last=False)
        else:
            self._plans.move_to_end(day)
        return plans

    def state(self, profile: str, t: datetime) -> ProfileState:
        """What `profile` asks for at instant `t`."""
        return self.plans(self.astro.window_day(t))[profile].state_at(t)

    def district_states(self, t: datetime) -> dict[str, ProfileState]:
        """What every district's profile asks for at instant `t`."""
        plans = self.plans(self.astro.window_day(t))
        by_profile = {name: plan.state_at(t) for name, plan in plans.items()}
        return {district: by_profile[profile] for district, profile in self.config.districts.items()}

    def changes(self, day: date) -> list[datetime]:
        """Every instant of window `day` where some profile in use changes state (sorted, unique)."""
        used = set(self.config.districts.values())
        instants = {t for name, plan in self.plans(day).items() if name in used for t in plan.changes()}
        return sorted(instants)

    def window_end(self, t: datetime) -> datetime:
        """The end of the window holding `t` (local noon): when the next window's jobs are planned."""
        return self.astro.noon(self.astro.window_day(t) + timedelta(days=1))

    def next_switch(self, t: datetime) -> tuple[datetime | None, datetime | None]:
        """The next switch-on and switch-off strictly after `t` (None when none within about a year)."""
        day = self.astro.window_day(t)
        next_on: datetime | None = None
        next_off: datetime | None = None
        for k in range(_SEARCH_WINDOWS):
            night = self.night(day + timedelta(days=k))
            if next_on is None and night.on is not None and night.on > t and night.on > night.start:
                next_on = night.on
            if next_off is None and night.off is not None and night.off > t and night.off < night.end:
                next_off = night.off
            if next_on is not None and next_off is not None:
                break
        return next_on, next_off
