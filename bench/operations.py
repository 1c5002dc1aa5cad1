"""What the single control post is for, on the Dijon site: three figures in one run.

1. ReportIncident -> every device of the playbook confirming (bench/incident_response.py: simulators in their own
   process over Modbus TCP, the control stack and an OPC UA client here). Goal <= 3 s.
2. A burst of 10,000 alarm conditions (a district blackout) reaching a subscribed client in another process with
   nothing lost (bench/alarm_burst.py, flood suppression off so that every lamp alarm is an event). Goal <= 5 s.
3. The lighting energy saving over a simulated reference night against the legacy baseline, with the pedestrian
   profile of drivers/sim/profiles.py (bench/reference_night.py: the variants say where the saving comes from).
   The city's promise is 65 %.

Usage: .venv/bin/python bench/operations.py [--site config/dijon] [--trials 5] [--skip incident,alarms,night]
       [--date 2026-01-15] [--movers 1.0] [--json out.json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
from dataclasses import asdict
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
for path in (ROOT, ROOT / "bench"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

import alarm_burst  # noqa: E402
import incident_response  # noqa: E402
import reference_night  # noqa: E402

from scada.site.loader import load_site  # noqa: E402

PROMISE_PERCENT = 65.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--site", type=Path, default=ROOT / "config" / "dijon")
    parser.add_argument("--trials", type=int, default=5)
    parser.add_argument("--bind", choices=("site", "free"), default="free")
    parser.add_argument("--count", type=int, default=10_000, help="alarm conditions in the burst")
    parser.add_argument("--date", default="2026-01-15", help="the reference night starts at local noon of this day")
    parser.add_argument("--movers", type=float, default=1.0, help="scale of the pedestrian profile")
    parser.add_argument("--skip", default="", help="comma-separated parts to leave out: incident, alarms, night")
    parser.add_argument("--json", type=Path, help="write the raw figures to this file")
    args = parser.parse_args(argv)
    skip = {part.strip() for part in args.skip.split(",") if part.strip()}
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("asyncua").setLevel(logging.ERROR)
    site = load_site(args.site)
    print(f"site {site.name}: {sum(1 for _ in site.lamps())} lamps, {len(site.cabinets)} cabinets, "
          f"load average {os.getloadavg()[0]:.2f}", flush=True)  # fmt: skip
    raw: dict[str, object] = {"site": site.name}
    failed = False

    if "incident" not in skip:
        timing = asyncio.run(incident_response.measure(args.site, bind=args.bind, trials=args.trials, quiet=True))
        print("1. " + incident_response.summary_line(timing), flush=True)
        raw["incident"] = [asdict(t) for t in timing.trials]
        failed |= not timing.trials or max(t.response_s for t in timing.trials) > incident_response.GOAL_S

    if "alarms" not in skip:
        burst = asyncio.run(alarm_burst.measure_alarm_burst(load_site(args.site), args.count, flood=False))
        verdict = "OK" if burst.seconds_to_client <= 5.0 and burst.lost == 0 else "MISSED"
        print(
            f"2. {args.count:,} alarm conditions -> subscribed client: {burst.seconds_to_client:.2f} s, "
            f"{burst.unique_sources:,} sources received, {burst.lost} lost (goal <= 5 s, nothing lost: {verdict}); "
            f"server CPU {burst.server_cpu_seconds:.2f} s, client CPU {burst.client_cpu_seconds:.2f} s",
            flush=True,
        )
        raw["alarms"] = asdict(burst)
        failed |= verdict != "OK"

    if "night" not in skip:
        day = date.fromisoformat(args.date)
        results = [reference_night.reference_night(site, day, v, args.movers) for v in reference_night.VARIANTS]
        final = results[-1]
        print(
            f"3. reference night {args.date} ({final.night_on[11:16]}-{final.night_off[11:16]} UTC), pedestrian profile "
            f"x{args.movers:g}: the automation saves {final.savings_percent:.1f} % against the legacy baseline "
            f"(city promise {PROMISE_PERCENT:g} %: {'met' if final.savings_percent >= PROMISE_PERCENT else 'not met'})",
            flush=True,
        )
        for result in results:
            print("   " + reference_night.summary_line(result), flush=True)
        raw["night"] = [{**asdict(r), "savings_percent": r.savings_percent} for r in results]

    if args.json:
        args.json.write_text(json.dumps(raw, indent=2, default=str))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
