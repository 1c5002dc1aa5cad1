"""Run the simulator standalone: python -m drivers.sim (--site FOLDER | --synthetic dijon|small) [options]."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import signal
import sys
from datetime import datetime
from pathlib import Path

from drivers.sim.city import CityOptions
from drivers.sim.runner import CitySimulator
from drivers.sim.synthetic import dijon_site, small_site
from scada.site.model import Site


def _site(args: argparse.Namespace) -> Site:
    if args.site:
        from scada.site.loader import load_site  # type: ignore[import-not-found]

        return load_site(Path(args.site))  # type: ignore[no-any-return]
    return dijon_site() if args.synthetic == "dijon" else small_site()


async def _run(args: argparse.Namespace) -> None:
    start = datetime.fromisoformat(args.start) if args.start else None
    options = CityOptions(movers=args.movers, random_faults=not args.no_faults)
    sim = CitySimulator(
        _site(args),
        seed=args.seed,
        speed=args.speed,
        bind=args.bind,
        start_time=start,
        control_port=args.control_port,
        options=options,
    )
    await sim.start()
    endpoints = {k: {"host": e.host, "port": e.port, "unit": e.unit} for k, e in sim.endpoints.items()}
    document = json.dumps({"control": sim.control_url, "endpoints": endpoints})
    if args.endpoints_out:
        await asyncio.to_thread(Path(args.endpoints_out).write_text, document)
    print(f"READY {len(endpoints)} devices, control {sim.control_url}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(signum, stop.set)
    await stop.wait()
    await sim.stop()


def main(argv: list[str] | None = None) -> int:
    """Parse the command line and run until SIGINT/SIGTERM."""
    parser = argparse.ArgumentParser(prog="python -m drivers.sim", description=__doc__)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--site", help="site folder (scada.site.loader)")
    source.add_argument("--synthetic", choices=("dijon", "small"), help="a synthetic site built in code")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--speed", type=float, default=1.0)
    parser.add_argument("--bind", choices=("site", "free"), default="free")
    parser.add_argument("--start", help="sim start time, ISO 8601 with offset (default: now)")
    parser.add_argument("--control-port", type=int, default=None, help="HTTP control channel port (0: free)")
    parser.add_argument("--movers", type=float, default=1.0, help="scale of pedestrians/vehicles (0: none)")
    parser.add_argument("--no-faults", action="store_true", help="no random faults")
    parser.add_argument("--endpoints-out", help="write {control, endpoints} as JSON to this file once listening")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    asyncio.run(_run(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
