"""Benchmark: value updates per second into the Dijon address space (AddressSpaceWriter vs write_attribute_value).

Runs a CityServer on the site (config/dijon, or a synthetic Dijon-sized site when it is missing) and feeds every
tag in batches of 1,000 records, as pollers do:

- first pass: every variable gets its first value (allocation and garbage-collector promotion of ~700k objects);
- steady passes: every tag again, values changing; wall-clock and CPU rates (the machine may be shared);
- Bad quality pass: every tag BadCommunicationError (value null, last good source timestamp);
- baseline in the same run: `Server.write_attribute_value(nodeid, DataValue)` awaited per update (NodeIds
  precomputed, DataValue built per update as any caller must);
- with a subscriber: an asyncua client monitoring 1,000 variables; rate of `apply` and notifications received.

Usage: .venv/bin/python bench/updates.py [--site config/dijon] [--passes 5]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

BATCH = 1000


def load(site_arg: str) -> tuple[Any, str]:
    """The site to feed and where it comes from."""
    folder = ROOT / site_arg
    if (folder / "site.yaml").exists():
        from scada.site.loader import load_site

        return load_site(folder), str(site_arg)
    sys.path.insert(0, str(ROOT / "tests" / "opcua"))
    from uasites import synthetic_dijon  # type: ignore[import-not-found]

    return synthetic_dijon(), f"synthetic Dijon-sized site ({site_arg} not found)"


def timed(fn: Any, count: int) -> tuple[float, float]:
    """Run fn(); return (updates per second wall clock, updates per second of CPU time)."""
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    return count / (time.perf_counter() - wall), count / max(time.process_time() - cpu, 1e-9)


async def main(site_arg: str, passes: int) -> None:
    """Run the measurements and print them."""
    from asyncua import Client, ua

    from scada.model import Quality, ValueRecord, WriteRequest, WriteResult, utcnow
    from scada.opcua import CityServer

    class NoCommands:
        async def execute(self, request: WriteRequest) -> WriteResult:
            return WriteResult()

    site, origin = load(site_arg)
    server = CityServer(site, NoCommands(), "127.0.0.1", 0)
    await server.start()
    writer = server.writer
    tags = server._builder.tags  # type: ignore[union-attr]
    dtypes = {tag: node.shape.meta["spec"].dtype for tag, node in tags.items() if "spec" in node.shape.meta}

    def value(dtype: str, step: int) -> Any:
        return {
            "Double": 10.0 + step,
            "Boolean": bool(step % 2),
            "UInt16": step % 60000,
            "UInt32": step,
            "Int32": step % 3,
            "String": f"m{step}",
        }[dtype]

    def batches(step: int, quality: int = Quality.GOOD) -> list[list[ValueRecord]]:
        now = utcnow()
        records = [ValueRecord(tag, value(dtype, step), quality, now) for tag, dtype in dtypes.items()]
        return [records[i : i + BATCH] for i in range(0, len(records), BATCH)]

    def feed(groups: list[list[ValueRecord]]) -> None:
        for group in groups:
            writer.apply(group)

    count = len(dtypes)
    print(f"site: {origin}; {count:,} tags, batches of {BATCH}")
    first = timed(lambda: feed(batches(1)), count)
    print(f"first pass (first values)      {first[0]:>12,.0f} /s wall  {first[1]:>12,.0f} /s CPU")
    walls, cpus = [], []
    for step in range(2, passes + 2):
        groups = batches(step)
        wall, cpu = timed(lambda groups=groups: feed(groups), count)
        walls.append(wall)
        cpus.append(cpu)
    print(
        f"steady passes (median of {passes})    {statistics.median(walls):>12,.0f} /s wall  "
        f"{statistics.median(cpus):>12,.0f} /s CPU   (goal >= 200,000 /s)"
    )
    bad = batches(0, Quality.BAD_COMM)
    wall, cpu = timed(lambda: feed(bad), count)
    print(f"Bad quality pass               {wall:>12,.0f} /s wall  {cpu:>12,.0f} /s CPU")
    assert writer.unknown_count == 0 and writer.rejected_count == 0

    # baseline: asyncua's fast path, one awaited call per update
    aserver = server.asyncua_server
    ns = server.namespace_index
    subset = [record for group in batches(passes + 2) for record in group][:100_000]
    vtypes = {tag: node.shape.vtype for tag, node in tags.items()}
    nodeids = [ua.NodeId(record.tag, ns) for record in subset]
    wall, cpu = time.perf_counter(), time.process_time()
    for record, nodeid in zip(subset, nodeids, strict=True):
        dv = ua.DataValue(
            ua.Variant(record.value, vtypes[record.tag]), ua.StatusCode(record.quality), record.source_ts, utcnow()
        )
        await aserver.write_attribute_value(nodeid, dv)
    base_wall = len(subset) / (time.perf_counter() - wall)
    base_cpu = len(subset) / (time.process_time() - cpu)
    print(
        f"baseline write_attribute_value {base_wall:>12,.0f} /s wall  {base_cpu:>12,.0f} /s CPU   ({len(subset):,} updates)"
    )
    print(
        f"ratio (steady / baseline)      {statistics.median(walls) / base_wall:>12.1f}x wall {statistics.median(cpus) / base_cpu:>12.1f}x CPU"
    )

    # with a subscriber: 1,000 monitored Level variables
    levels = [tag for tag in dtypes if tag.endswith("/Level")][:1000]
    received = 0
    expected = 0
    all_received = asyncio.Event()

    class Handler:
        def datachange_notification(self, node: Any, val: Any, data: Any) -> None:
            nonlocal received
            received += 1
            if expected and received >= expected:
                all_received.set()

    async with Client(server.endpoint_url, watchdog_intervall=30.0) as client:
        subscription = await client.create_subscription(100, Handler())
        await subscription.subscribe_data_change([client.get_node(ua.NodeId(tag, ns)) for tag in levels], queuesize=1)
        await asyncio.sleep(0.5)  # let the initial notifications arrive
        received = 0
        rounds = 3
        expected = rounds * len(levels)
        spent = 0.0
        for step in range(rounds):
            groups = batches(1000 + step)
            wall = time.perf_counter()
            feed(groups)
            spent += time.perf_counter() - wall
            await asyncio.sleep(0.3)  # more than one publishing interval: queue size 1 keeps every round
        applied = rounds * count / spent
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(all_received.wait(), 10)
        print(
            f"with 1,000 monitored items     {applied:>12,.0f} /s apply; "
            f"{received:,} of {rounds * len(levels):,} data changes notified"
        )
        await subscription.delete()
    await server.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--site", default="config/dijon")
    parser.add_argument("--passes", type=int, default=5)
    arguments = parser.parse_args()
    asyncio.run(main(arguments.site, arguments.passes))
