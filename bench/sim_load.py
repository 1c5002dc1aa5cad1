"""Load the city simulator like the control server does and report start time, RSS and CPU.

    .venv/bin/python bench/sim_load.py [--site config/dijon | --synthetic dijon] [--sweeps 5] [--speed 1]

Starts `python -m drivers.sim` in a child process (all devices on free ports of 127.0.0.1), waits until it listens,
opens one connection per device, then runs full sweeps (every register of every map) back to back and measures the
child's CPU time and RSS from /proc around each sweep, and its idle CPU over a few seconds with the city running.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from drivers.sim.sweep import connect, process_stats, sweep  # noqa: E402


async def main() -> None:
    """Run the benchmark."""
    parser = argparse.ArgumentParser(description=__doc__)
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--site", default=None)
    source.add_argument("--synthetic", choices=("dijon", "small"), default=None)
    parser.add_argument("--sweeps", type=int, default=5)
    parser.add_argument("--speed", type=float, default=1.0)
    parser.add_argument("--idle", type=float, default=5.0, help="seconds of idle CPU measurement")
    args = parser.parse_args()
    if args.site is None and args.synthetic is None:
        args.site = str(ROOT / "config" / "dijon") if (ROOT / "config" / "dijon" / "site.yaml").is_file() else None
        args.synthetic = None if args.site else "dijon"
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "endpoints.json"
        source_args = ["--site", args.site] if args.site else ["--synthetic", args.synthetic]
        command = [sys.executable, "-m", "drivers.sim", *source_args, "--bind", "free", "--speed", str(args.speed)]
        command += ["--endpoints-out", str(out)]
        started = time.perf_counter()
        child = await asyncio.create_subprocess_exec(*command, cwd=ROOT, stdout=asyncio.subprocess.PIPE)
        try:
            assert child.stdout is not None
            line = await asyncio.wait_for(child.stdout.readline(), 120)
            ready = time.perf_counter() - started
            if not line.startswith(b"READY"):
                raise SystemExit(f"simulator did not start: {line!r}")
            endpoints = json.loads(out.read_text())["endpoints"]
            cpu, rss = process_stats(child.pid)
            print(f"source: {' '.join(source_args)}, {len(endpoints)} devices, speed {args.speed}")
            print(f"start (spawn to listening): {ready:.2f} s, child CPU {cpu:.2f} s, RSS {rss:.0f} MB")
            links = [await connect(d, e["host"], e["port"], e["unit"]) for d, e in endpoints.items()]
            for link in links:
                await link.identify()
            requests = sum(len(link.reads) for link in links)
            print(f"identified {len(links)} devices; one sweep = {requests} requests")
            for number in range(1, args.sweeps + 1):
                cpu0, _ = process_stats(child.pid)
                t0 = time.perf_counter()
                await sweep(links)
                wall = time.perf_counter() - t0
                cpu1, rss = process_stats(child.pid)
                print(
                    f"sweep {number}: wall {wall:.2f} s, simulator CPU {cpu1 - cpu0:.2f} s "
                    f"({(cpu1 - cpu0) / requests * 1e6:.0f} µs/request), RSS {rss:.0f} MB"
                )
            cpu0, _ = process_stats(child.pid)
            await asyncio.sleep(args.idle)
            cpu1, rss = process_stats(child.pid)
            print(f"idle city (no reads) over {args.idle:.0f} s: {100 * (cpu1 - cpu0) / args.idle:.1f} % of one core")
            for link in links:
                link.close()
        finally:
            child.terminate()
            await child.wait()
    print(f"(bench pid {os.getpid()})")


if __name__ == "__main__":
    asyncio.run(main())
