"""City scale: the whole Dijon site in one simulator process; identification of every device; one full sweep.

Prints start time, RSS and the simulator's CPU for one poll-like sweep of every register (measured from /proc of
the simulator process while this process polls it).
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path

import pytest

from drivers.sim.sweep import connect, process_stats, sweep
from drivers.sim.synthetic import dijon_site
from scada.site.model import Site

ROOT = Path(__file__).resolve().parents[2]
DIJON = ROOT / "config" / "dijon"
KIND = {"cabinets": 1, "parking": 2, "controllers": 3, "signs": 4}


def _site() -> tuple[Site, list[str]]:
    if (DIJON / "site.yaml").is_file():
        from scada.site.loader import load_site

        return load_site(DIJON), ["--site", str(DIJON)]
    return dijon_site(), ["--synthetic", "dijon"]


@pytest.mark.slow
async def test_dijon_in_one_process(tmp_path: Path) -> None:
    site, source = _site()
    expected = {device.id: KIND[table] for table in KIND for device in getattr(site, table).values()}
    assert len(expected) > 450
    out = tmp_path / "endpoints.json"
    command = [sys.executable, "-m", "drivers.sim", *source, "--bind", "free", "--endpoints-out", str(out)]
    started = time.perf_counter()
    child = await asyncio.create_subprocess_exec(
        *command, cwd=ROOT, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL
    )
    links = []
    try:
        assert child.stdout is not None
        line = await asyncio.wait_for(child.stdout.readline(), 120)
        start_s = time.perf_counter() - started
        assert line.startswith(b"READY"), line
        endpoints = json.loads(out.read_text())["endpoints"]
        assert set(endpoints) == set(expected)
        start_cpu, start_rss = process_stats(child.pid)
        for device_id, endpoint in endpoints.items():
            links.append(await connect(device_id, endpoint["host"], endpoint["port"], endpoint["unit"]))
        idents = await asyncio.gather(*(link.identify() for link in links))
        for link, ident in zip(links, idents, strict=True):
            assert ident[0] == expected[link.device_id] and ident[1] == 1, link.device_id
        requests = sum(len(link.reads) for link in links)
        cpu0, _ = process_stats(child.pid)
        t0 = time.perf_counter()
        done = await sweep(links)
        wall = time.perf_counter() - t0
        cpu1, rss = process_stats(child.pid)
        assert done == requests > 3000
        print(
            f"\nDijon ({' '.join(source)}): {len(endpoints)} devices, "
            f"{sum(len(c.lamps) for c in site.cabinets.values())} lamps; start {start_s:.2f} s "
            f"(simulator CPU {start_cpu:.2f} s, RSS {start_rss:.0f} MB); one sweep of {requests} reads: "
            f"wall {wall:.2f} s, simulator CPU {cpu1 - cpu0:.2f} s, RSS {rss:.0f} MB"
        )
        # generous bounds: regressions by an order of magnitude, not noise of a shared machine
        assert start_s < 60 and rss < 600 and cpu1 - cpu0 < 10
    finally:
        for link in links:
            link.close()
        child.terminate()
        await child.wait()
