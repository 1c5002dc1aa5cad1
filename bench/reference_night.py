"""Benchmark: the lighting energy saving over a simulated reference night of a site (Dijon by default).

The simulated city (drivers.sim: 34,000 lamps with their rated and legacy wattages, cabinet meters with controller
and line losses, presence detectors) runs on its own event clock, as fast as the CPU allows, from local noon to
the next noon. The automation's decisions are taken by the real lighting code and written into the cabinets'
registers as the actuators would (mode automatic, HR1 local boost, HR2 hold, HR100+i setpoints):
- the switching times from the astronomical clock and the district night profiles (scada.lighting.schedule);
- the cabinets' local presence boost, configured from the profiles (a lamp under a pedestrian rises, then falls
  back after the hold);
- the central follow-me (scada.lighting.followme.FollowMe: the next lamps along the street are raised ahead of
  the pedestrian, across cabinet boundaries, and fall back after their hold).
The Modbus hop is left out (its delays are a fraction of a second against holds of 60-90 s): this measures what
the automation's policy saves, not the field bus. tests/integration/test_energy_night.py checks on the small site,
through Modbus and the server, that the published savings equal the meters.

Pedestrian profile (drivers/sim/profiles.py): presence-detector passes per lamp per hour, by local hour,

    17 13   18 14   19 12   20 9   21 7   22 6   23 5   00 4   01 2   02 0.5   03 0.3   04 0.3   05 1   06 4
    07 10   08 12

movers are pedestrians (60 %, 1.3 m/s), cyclists (25 %, 4.5 m/s) and vehicles (15 %, 9 m/s), each walking a
geometric number of lamps (mean 12) along a street. `--movers` scales the profile (0: an empty city).

Energy = the increase of every cabinet meter over the window (lamps + 12 W controller + 3 % line losses); baseline
= each lamp's legacy wattage x the hours it burned (the historian's definition: what the legacy lamp would have used
for the same burning time). Variants, same seed and night, explain where the saving comes from:

- led-100: LED lamps at 100 % all night (the conversion alone);
- profiles: the district night profiles, no presence response;
- profiles+local: with the cabinets' local boost;
- automation: with the central follow-me as well (what cityscada runs).

Usage: .venv/bin/python bench/reference_night.py [--site config/dijon] [--date 2026-01-15] [--movers 1.0]
`reference_night(site, day, variant, movers)` is what bench/operations.py calls.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from drivers.sim.city import City, CityOptions  # noqa: E402
from drivers.sim.clock import SimClock  # noqa: E402
from drivers.sim.env import SimEnv  # noqa: E402
from drivers.sim.lighting import LAMP_HR_BASE, LIGHT_HR_BOOST, LIGHT_HR_COMMAND, LIGHT_HR_HOLD, CabinetSim  # noqa: E402
from scada.lighting.astro import AstroClock  # noqa: E402
from scada.lighting.clock import SiteClock  # noqa: E402
from scada.lighting.config import WILDCARD, load_lighting_config  # noqa: E402
from scada.lighting.followme import FollowMe  # noqa: E402
from scada.lighting.profiles import ProfileState  # noqa: E402
from scada.lighting.schedule import LightingSchedule  # noqa: E402
from scada.site.loader import load_site  # noqa: E402
from scada.site.model import Lamp, Site  # noqa: E402

VARIANTS = ("led-100", "profiles", "profiles+local", "automation")


@dataclass(frozen=True, slots=True)
class NightResult:
    """One variant over one night."""

    variant: str
    night_on: str
    night_off: str
    energy_kwh: float
    baseline_kwh: float
    burning_hours: float  # lamp-hours
    detections: int
    follow_me_raises: int
    seconds: float

    @property
    def savings_percent(self) -> float:
        return 100.0 * (self.baseline_kwh - self.energy_kwh) / self.baseline_kwh


class _Model:
    """The simulated city driven by the lighting policy of one variant."""

    def __init__(self, site: Site, day: date, variant: str, movers: float, seed: int) -> None:
        tz = ZoneInfo(site.timezone)
        self.site = site
        self.variant = variant
        self.config = load_lighting_config(site)
        self.schedule = LightingSchedule(self.config, AstroClock(site.lat, site.lon, site.timezone))
        self.window = self.schedule.night(day)
        start = datetime.combine(day, datetime.min.time(), tz).replace(hour=12)
        self.start, self.end = start.astimezone(UTC), (start + timedelta(days=1)).astimezone(UTC)
        self.clock = SimClock(self.start, manual=True)
        self.env = SimEnv(self.clock, timezone=site.timezone, seed=seed)
        presence = movers if variant not in ("led-100", "profiles") else 0.0
        self.city = City(site, self.env, CityOptions(movers=presence, cars=False, random_faults=False))
        self.followme: FollowMe | None = None
        if variant == "automation":
            self.followme = FollowMe(
                site,
                self.config.presence,
                SiteClock(self.now),
                raise_lamp=self._raise,
                base_level=self._base,
            )
            for cabinet in self.city.cabinets.values():
                cabinet.fire_presence = self._hooked(cabinet)  # type: ignore[method-assign]
        self.states: dict[str, ProfileState] = {}
        self.legacy = {lamp.id: float(lamp.legacy_w) for lamp in site.lamps()}

    def _hooked(self, cabinet: CabinetSim) -> Callable[[int, float], None]:
        """The cabinet's detector also reaches the central follow-me (as the server's presence edges do)."""
        fire = cabinet.fire_presence
        lamp_ids = cabinet.lamp_ids
        followme = self.followme
        assert followme is not None

        def hooked(i: int, t: float) -> None:
            fire(i, t)
            followme.detect(lamp_ids[i], datetime.fromtimestamp(t, UTC))

        return hooked

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.clock.now(), UTC)

    def _district_state(self, district: str) -> ProfileState:
        return self.states.get(district) or self.states[WILDCARD]

    def _base(self, lamp: Lamp) -> float | None:
        state = self._district_state(self.site.cabinets[lamp.cabinet_id].district)
        return state.level if state.lit else None

    def _raise(self, lamp: Lamp, level: float | None) -> None:
        cabinet, i = self.city.lamps[lamp.id]
        base = self._base(lamp)
        cabinet.hr[LAMP_HR_BASE + i] = round(level if level is not None else (base or 0.0))
        cabinet.on_write(LAMP_HR_BASE + i, LAMP_HR_BASE + i + 1, self.clock.now())

    def apply_profiles(self) -> None:
        """What the cabinet actuators write when a profile step begins."""
        t = self.clock.now()
        self.states = self.schedule.district_states(self.now())
        held = {hold.lamp.id for hold in self.followme.holds()} if self.followme else set()
        if self.followme is not None and not any(s.lit for s in self.states.values()):
            self.followme.release()
        for cabinet in self.city.cabinets.values():
            state = self._district_state(cabinet.cabinet.district)
            level = state.level if state.lit else 0.0
            if self.variant == "led-100" and state.lit:
                level = 100.0
            boost = state.boost if state.lit and self.variant in ("profiles+local", "automation") else 0.0
            cabinet.hr[LIGHT_HR_COMMAND] = 0
            cabinet.hr[LIGHT_HR_BOOST] = round(boost)
            cabinet.hr[LIGHT_HR_HOLD] = int(self.config.presence.hold_seconds)
            for i, lamp_id in enumerate(cabinet.lamp_ids):
                if lamp_id not in held:
                    cabinet.hr[LAMP_HR_BASE + i] = round(level)
            cabinet.on_write(LIGHT_HR_COMMAND, LIGHT_HR_HOLD + 1, t)
            cabinet.on_write(LAMP_HR_BASE, LAMP_HR_BASE + cabinet.count, t)

    def meters(self) -> tuple[float, float, float]:
        """(cabinet meters Wh, legacy baseline Wh, lamp burning hours) now, summed over the site."""
        t = self.env.sync()
        energy = baseline = hours = 0.0
        for cabinet in self.city.cabinets.values():
            energy += cabinet.cabinet_energy_wh(t)
            for i in range(cabinet.count):
                burned = cabinet.lamp_state(i)["burning_hours"]
                hours += burned
                baseline += self.legacy.get(cabinet.lamp_ids[i], 0.0) * burned
        return energy, baseline, hours

    def run(self, step_s: float = 1.0) -> NightResult:
        started = time.perf_counter()
        self.city.start(self.clock.now())
        self.apply_profiles()
        before = self.meters()
        changes = [c for c in self.schedule.changes(self.schedule.astro.window_day(self.start)) if c > self.start]
        end = self.end.timestamp()
        next_change = changes.pop(0).timestamp() if changes else end + 1
        while self.clock.now() < end:
            self.clock.advance(min(step_s, end - self.clock.now()))
            t = self.env.sync()
            if t >= next_change:
                self.apply_profiles()
                next_change = changes.pop(0).timestamp() if changes else end + 1
            if self.followme is not None:
                self.followme.expire(self.now())
        after = self.meters()
        return NightResult(
            variant=self.variant,
            night_on=str(self.window.on),
            night_off=str(self.window.off),
            energy_kwh=(after[0] - before[0]) / 1000.0,
            baseline_kwh=(after[1] - before[1]) / 1000.0,
            burning_hours=after[2] - before[2],
            detections=self.followme.detections if self.followme else 0,
            follow_me_raises=self.followme.raised if self.followme else 0,
            seconds=time.perf_counter() - started,
        )


def reference_night(
    site: Site, day: date, variant: str = "automation", movers: float = 1.0, seed: int = 1
) -> NightResult:
    """Run one variant over the night of `day` (local noon to noon)."""
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}: one of {', '.join(VARIANTS)}")
    return _Model(site, day, variant, movers, seed).run()


def summary_line(result: NightResult) -> str:
    return (
        f"{result.variant:15s} energy {result.energy_kwh:9.1f} kWh  baseline {result.baseline_kwh:9.1f} kWh  "
        f"saving {result.savings_percent:5.1f} %  ({result.burning_hours:,.0f} lamp-hours, "
        f"{result.detections:,} detections, {result.follow_me_raises:,} follow-me raises, {result.seconds:.0f} s)"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--site", default=str(ROOT / "config" / "dijon"))
    parser.add_argument("--date", default="2026-01-15", help="the night that starts at local noon of this day")
    parser.add_argument("--movers", type=float, default=1.0, help="scale of the pedestrian profile")
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--follow-level", type=float, help="follow-me level, %% (default: the site's)")
    parser.add_argument("--lamps-ahead", type=int, help="follow-me lamps ahead (default: the site's)")
    parser.add_argument("--json", help="write the results to this file")
    args = parser.parse_args(argv)
    site = load_site(args.site)
    follow_me = site.settings["lighting"].setdefault("presence", {}).setdefault("follow_me", {})
    if args.follow_level is not None:
        follow_me["level"] = args.follow_level
    if args.lamps_ahead is not None:
        follow_me["lamps_ahead"] = args.lamps_ahead
    day = date.fromisoformat(args.date)
    results = []
    for variant in args.variants.split(","):
        result = reference_night(site, day, variant, args.movers)
        results.append(result)
        print(summary_line(result), flush=True)
    if args.json:
        Path(args.json).write_text(
            json.dumps([{**asdict(r), "savings_percent": r.savings_percent} for r in results], indent=2)
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
