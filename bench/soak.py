"""Soak run of the whole stack: simulators, drivers, server, historian, alarms, automation, clients, faults.

    .venv/bin/python bench/soak.py [--site config/dijon] [--minutes 30] [--historian sqlite|postgresql|URL]
                                   [--out docs/soak/<date>] [--workdir DIR]

Runs the site's simulators (own process, free ports, no random faults) and the control server (own process,
historian in a temporary SQLite file or a scratch PostgreSQL database, alarms and lighting/parking automation on)
with two consoles' worth of subscriptions, a third-party client (reads, method calls, HistoryRead), and faults
on a schedule (devices killed and restarted, a cabinet losing mains, the database away for a minute, a client
killed abruptly). Prints the report and writes <out>.md, <out>.json and <out>.csv when --out is given.
What is measured and how "lost" and "duplicated" are defined: bench/soaklib/figures.py.

Exit status 1 when an assertion fails (samples lost or duplicated, unhandled exceptions, an expected alarm
missing, server RSS growth from minute 5 to the end >= 5 %).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.soaklib import report  # noqa: E402
from bench.soaklib.run import SoakConfig, run_soak  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="bench/soak.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--site", default="config/dijon", help="site folder (config/small for a quick run)")
    parser.add_argument("--minutes", type=float, default=30.0, help="duration (default 30)")
    parser.add_argument(
        "--historian", default="sqlite", help="sqlite (default), postgresql (scratch database) or a URL"
    )
    parser.add_argument("--consoles", type=int, default=2, help="console subscriptions (default 2)")
    parser.add_argument("--out", default=None, help="write the report to OUT.md, OUT.json, OUT.csv")
    parser.add_argument("--workdir", default=None, help="keep the run's files (logs, database) in this folder")
    parser.add_argument("--no-rss-check", action="store_true", help="report RSS growth without asserting it")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    logging.getLogger("asyncua").setLevel(logging.WARNING)
    config = SoakConfig(
        site=args.site,
        minutes=args.minutes,
        historian=args.historian,
        workdir=Path(args.workdir) if args.workdir else None,
        consoles=args.consoles,
        check_rss=not args.no_rss_check,
    )
    result = asyncio.run(run_soak(config))
    print(report.markdown(result.figures))
    if args.out:
        for path in report.write(result.figures, Path(args.out)):
            print(f"wrote {path}")
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
