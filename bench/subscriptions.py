"""Benchmark: data changes per second delivered to a subscribed OPC UA client (CityServer vs stock asyncua).

For each case (items N, publishing interval P, queue size Q) a server-side loop changes every monitored value in
turn, in batches of 1,000, for a fixed window: as fast as the server lets it (yielding to the event loop between
batches), or at an offered rate (--rate); an asyncua client in another process (its own CPU) monitors the N
items and counts what arrives. At most N*Q/P changes/s can be delivered (the cap printed).

- ours: a CityServer on the Dijon site (config/dijon), N of its Double tags, values through the real value path
  (`AddressSpaceWriter.apply`) and the fast data-change path (scada.opcua.fastsub);
- stock: an asyncua Server with N Double variables created with its normal API (`add_folder`/`add_variable`,
  500 per folder), values through `Server.write_attribute_value` (asyncua's fast path), same run, same client;
- optionally (--servers ours,ours-asyncua-path,stock) our server with fast_subscriptions=False: our value path
  on asyncua's subscription machinery, i.e. what the fast path buys.

The client is a real asyncua Client (session, subscription, CreateMonitoredItems in batches of 5,000, publish
loop and acknowledgements), with one shortcut so that it is not the bottleneck: its `publish` reads the raw
PublishResponse (header, sequence number, PublishTime, the item count of each DataChangeNotification) instead of
decoding every notification into objects; the last DataChangeNotification of the window is fully decoded by
asyncua as a check (item count, values of the right type).

Printed per case: offered updates/s (server loop), delivered changes/s (client, within the window), the cap,
server CPU (% of one core, main process, which also builds the value records), client CPU, server CPU µs per
delivered change, and the time between publish responses at the client (median, p95, max; "server max" from
their PublishTime) against P.

Usage: .venv/bin/python bench/subscriptions.py [--seconds 10] [--rate 0] [--servers ours,stock]
       [--cases 10000:500:10,50000:500:2,100000:500:1]"""

from __future__ import annotations

import argparse
import asyncio
import gc
import itertools
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

BATCH = 1000
DEFAULT_CASES = "10000:500:10,50000:500:2,100000:500:1"


def read_json(path: str) -> Any:
    """The JSON document of a file (read before the client connects)."""
    return json.loads(Path(path).read_text())


def remove(path: str) -> None:
    """Delete a temporary file."""
    Path(path).unlink(missing_ok=True)


# -- client process ---------------------------------------------------------------------------------------------


async def client_main(url: str, ns_file: str, interval: float, queue: int) -> None:
    """Subscribe to the items, report 'ready' once their initial values arrived, count between start and stop."""
    from asyncua import Client, ua
    from asyncua.common.utils import Buffer
    from asyncua.ua.ua_binary import Primitives, nodeid_from_binary, struct_from_binary

    spec = read_json(ns_file)
    ns, identifiers = spec["ns"], spec["ids"]
    counted = 0
    initial = asyncio.Event()
    arrivals: list[float] = []
    publish_times: list[int] = []
    last_body: list[bytes] = []
    uint32, int32, int64 = Primitives.UInt32.unpack, Primitives.Int32.unpack, Primitives.Int64.unpack

    client = Client(url, timeout=60, watchdog_intervall=600.0)
    await client.connect()
    session = client.uaclient.session

    async def light_publish(acks: list[Any]) -> Any:
        nonlocal counted
        request = ua.PublishRequest()
        request.Parameters.SubscriptionAcknowledgements = acks or []
        data = await session._send_request(request, timeout=0)
        arrived = time.monotonic()
        nodeid_from_binary(data)
        header = struct_from_binary(ua.ResponseHeader, data)
        header.ServiceResult.check()
        response = ua.PublishResponse()
        result = response.Parameters
        result.SubscriptionId = uint32(data)
        available = int32(data)
        data.skip(4 * max(available, 0))
        data.skip(1)  # MoreNotifications
        result.NotificationMessage.SequenceNumber = uint32(data)
        publish_time = int64(data)
        items = 0
        for _ in range(max(int32(data), 0)):
            typeid = nodeid_from_binary(data)
            data.skip(1)
            length = int32(data)
            if typeid.Identifier == ua.ObjectIds.DataChangeNotification_Encoding_DefaultBinary:
                body = data.read(length)
                items += int.from_bytes(body[:4], "little", signed=True)
                last_body[:] = [body]
            else:
                data.skip(length)
        if items:
            counted += items
            initial.set()
            arrivals.append(arrived)
            publish_times.append(publish_time)
            result.NotificationMessage.NotificationData = [True]  # acknowledged by asyncua's publish loop
        return response

    session.publish = light_publish
    subscription = await client.create_subscription(interval, object())
    session._subscription_callbacks[subscription.subscription_id] = lambda result: None
    nodes = [client.get_node(ua.NodeId(identifier, ns)) for identifier in identifiers]
    for start in range(0, len(nodes), 5000):
        await subscription.subscribe_data_change(nodes[start : start + 5000], queuesize=queue, sampling_interval=0)
    reader = asyncio.StreamReader()
    await asyncio.get_running_loop().connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while counted < len(nodes):  # the initial values
        await asyncio.wait_for(initial.wait(), 120)
        initial.clear()
    print(json.dumps({"ready": counted}), flush=True)
    await reader.readline()  # start
    start_count, start_at, cpu = counted, time.monotonic(), time.process_time()
    first_arrival = len(arrivals)
    await reader.readline()  # stop
    stop_count, stop_at, cpu = counted, time.monotonic(), time.process_time() - cpu
    window = arrivals[first_arrival:]
    gaps = [b - a for a, b in itertools.pairwise(window)]
    server_gaps = [(b - a) / 10_000_000 for a, b in itertools.pairwise(publish_times[first_arrival:])]
    check = "-"
    if last_body:
        notification = struct_from_binary(ua.DataChangeNotification, Buffer(last_body[0]))
        values = [item.Value.Value.Value for item in notification.MonitoredItems]
        check = f"{len(values)} items decoded, {sum(isinstance(v, float) for v in values)} Double"
    print(
        json.dumps(
            {
                "delivered": stop_count - start_count,
                "seconds": stop_at - start_at,
                "cpu": cpu,
                "gaps": gaps,
                "server_gaps": server_gaps,
                "check": check,
            }
        ),
        flush=True,
    )
    await reader.readline()  # quit
    await subscription.delete()
    await client.disconnect()


# -- server side ------------------------------------------------------------------------------------------------


class Pacer:
    """Spaces the update batches to an offered rate (0: only yields to the event loop between batches)."""

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self.started = time.perf_counter()
        self.done = 0

    async def __call__(self, count: int) -> None:
        """`count` updates were just made: wait until the schedule allows the next batch."""
        self.done += count
        ahead = self.done / self.rate - (time.perf_counter() - self.started) if self.rate else 0.0
        await asyncio.sleep(max(ahead, 0.0))


class Case:
    """One measured configuration."""

    def __init__(self, text: str) -> None:
        items, interval, queue = (int(part) for part in text.split(":"))
        self.items, self.interval, self.queue = items, interval, queue

    def __str__(self) -> str:
        return f"{self.items:,} items, {self.interval} ms, queue {self.queue}"


async def measure(
    label: str,
    url: str,
    ns: int,
    ids: list[str],
    case: Case,
    seconds: float,
    update: Callable[[int, int, Pacer], Awaitable[int]],
    rate: float,
) -> dict[str, Any]:
    """Start a client process on the first case.items ids, run the update loop for `seconds`, collect figures."""
    ids = ids[: case.items]
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as spec:
        json.dump({"ns": ns, "ids": ids}, spec)
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        __file__,
        "--client",
        url,
        spec.name,
        str(case.interval),
        str(case.queue),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    assert proc.stdin is not None and proc.stdout is not None
    try:
        ready = json.loads(await asyncio.wait_for(proc.stdout.readline(), 600))
        proc.stdin.write(b"start\n")
        await proc.stdin.drain()
        wall, cpu = time.perf_counter(), time.process_time()
        pacer = Pacer(rate)
        offered = 0
        step = 0
        while time.perf_counter() - wall < seconds:
            step += 1
            offered += await update(step, case.items, pacer)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        proc.stdin.write(b"stop\n")
        await proc.stdin.drain()
        result = json.loads(await asyncio.wait_for(proc.stdout.readline(), 120))
        proc.stdin.write(b"quit\n")
        await proc.stdin.drain()
        await asyncio.wait_for(proc.wait(), 120)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        remove(spec.name)
    delivered = result["delivered"] / result["seconds"]
    gaps = sorted(result["gaps"]) or [0.0]
    figures = {
        "label": label,
        "case": str(case),
        "initial": ready["ready"],
        "offered": offered / wall,
        "delivered": delivered,
        "cap": case.items * case.queue / (case.interval / 1000),
        "server_cpu": 100 * cpu / wall,
        "client_cpu": 100 * result["cpu"] / result["seconds"],
        "us_per_change": 1e6 * cpu / max(result["delivered"], 1),
        "gap_median": 1000 * statistics.median(gaps),
        "gap_p95": 1000 * gaps[int(0.95 * (len(gaps) - 1))],
        "gap_max": 1000 * gaps[-1],
        "publishes": len(result["gaps"]) + 1,
        "server_gap_max": 1000 * max(result["server_gaps"] or [0.0]),
        "check": result["check"],
    }
    print(
        f"{label:<14} {figures['case']:<30} offered {figures['offered']:>9,.0f}/s  delivered {delivered:>9,.0f}/s "
        f"(cap {figures['cap']:,.0f})  CPU server {figures['server_cpu']:>3.0f}% client {figures['client_cpu']:>3.0f}%  "
        f"{figures['us_per_change']:.1f} µs/change  publish gaps median {figures['gap_median']:.0f} "
        f"p95 {figures['gap_p95']:.0f} max {figures['gap_max']:.0f} ms (server max {figures['server_gap_max']:.0f}); "
        f"check: {figures['check']}",
        flush=True,
    )
    return figures


async def run_ours(cases: list[Case], seconds: float, rate: float, fast: bool) -> list[dict[str, Any]]:
    """CityServer on Dijon, its Double tags, values through AddressSpaceWriter.apply."""
    from scada.model import Quality, ValueRecord, WriteRequest, WriteResult, utcnow
    from scada.opcua import CityServer
    from scada.site.loader import load_site

    class NoCommands:
        async def execute(self, request: WriteRequest) -> WriteResult:
            return WriteResult()

    server = CityServer(load_site(ROOT / "config" / "dijon"), NoCommands(), "127.0.0.1", 0, fast_subscriptions=fast)
    await server.start()
    gc.collect()
    gc.freeze()
    try:
        tags = server._builder.tags  # type: ignore[union-attr]
        doubles = [
            tag
            for tag, node in tags.items()
            if node.shape.meta.get("spec") and node.shape.meta["spec"].dtype == "Double"
        ]
        writer = server.writer

        async def update(step: int, count: int, pace: Pacer) -> int:
            good = Quality.GOOD
            for start in range(0, count, BATCH):
                now = utcnow()
                value = float(step)
                writer.apply(
                    [ValueRecord(tag, value + i, good, now) for i, tag in enumerate(doubles[start : start + BATCH])]
                )
                await pace(BATCH)
            return count

        label = "ours" if fast else "ours/asyncua"
        return [
            await measure(label, server.endpoint_url, server.namespace_index, doubles, case, seconds, update, rate)
            for case in cases
        ]
    finally:
        await server.stop()
        gc.unfreeze()


async def run_stock(cases: list[Case], seconds: float, rate: float) -> list[dict[str, Any]]:
    """An asyncua Server with N Double variables made by add_variable, values through write_attribute_value."""
    from asyncua import Server, ua

    from scada.model import utcnow

    count = max(case.items for case in cases)
    server = Server()
    await server.init()
    server.set_endpoint("opc.tcp://127.0.0.1:0/stock")
    ns = await server.register_namespace("urn:bench:stock")
    built = time.perf_counter()
    gc.disable()
    ids: list[str] = []
    objects = server.nodes.objects
    for first in range(0, count, 500):
        folder = await objects.add_folder(ua.NodeId(f"f{first}", ns), f"f{first}")
        for i in range(first, min(first + 500, count)):
            await folder.add_variable(ua.NodeId(f"v{i}", ns), f"v{i}", 0.0, ua.VariantType.Double)
            ids.append(f"v{i}")
    gc.enable()
    gc.collect()
    gc.freeze()
    print(f"stock server: {count:,} variables by add_variable in {time.perf_counter() - built:.1f} s", flush=True)
    nodeids = [ua.NodeId(identifier, ns) for identifier in ids]
    await server.start()
    url = f"opc.tcp://127.0.0.1:{server.bserver.port}/stock"  # type: ignore[union-attr]
    try:

        async def update(step: int, count: int, pace: Pacer) -> int:
            write = server.write_attribute_value
            good = ua.StatusCode()
            for start in range(0, count, BATCH):
                now = utcnow()
                for i, nodeid in enumerate(nodeids[start : start + BATCH]):
                    dv = ua.DataValue(ua.Variant(float(step) + i, ua.VariantType.Double), good, now, now)
                    await write(nodeid, dv)
                await pace(BATCH)
            return count

        return [await measure("stock asyncua", url, ns, ids, case, seconds, update, rate) for case in cases]
    finally:
        await server.stop()
        gc.unfreeze()


async def main(cases: list[Case], seconds: float, rate: float, servers: list[str]) -> None:
    """Run every case on each server and print the comparison."""
    import os

    offered = f"{rate:,.0f} updates/s offered" if rate else "updates as fast as the server allows"
    print(
        f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}; window {seconds:.0f} s per case; {offered}"
    )
    ours = await run_ours(cases, seconds, rate, fast=True) if "ours" in servers else []
    if "ours-asyncua-path" in servers:
        await run_ours(cases, seconds, rate, fast=False)
    stock = await run_stock(cases, seconds, rate) if "stock" in servers else []
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print("summary (goal: >= 50,000 changes/s delivered and >= 2.5x stock, publishing intervals honoured)")
    for mine, base in zip(ours, stock, strict=False):
        print(
            f"  {mine['case']:<30} ours {mine['delivered']:>9,.0f}/s  stock {base['delivered']:>9,.0f}/s  "
            f"ratio {mine['delivered'] / max(base['delivered'], 1):.1f}x  CPU/change {mine['us_per_change']:.1f} vs "
            f"{base['us_per_change']:.1f} µs  max publish gap {mine['gap_max']:.0f} vs {base['gap_max']:.0f} ms"
        )


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--client":
        asyncio.run(client_main(sys.argv[2], sys.argv[3], float(sys.argv[4]), int(sys.argv[5])))
        sys.exit(0)
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="measurement window per case")
    parser.add_argument("--cases", default=DEFAULT_CASES, help="items:publishing_ms:queue_size, comma separated")
    parser.add_argument("--rate", type=float, default=0.0, help="offered updates/s (0: as fast as the server allows)")
    parser.add_argument(
        "--servers",
        default="ours,stock",
        help="comma separated: ours, stock, ours-asyncua-path (our server with fast_subscriptions=False)",
    )
    arguments = parser.parse_args()
    cases = [Case(text) for text in arguments.cases.split(",")]
    asyncio.run(main(cases, arguments.seconds, arguments.rate, arguments.servers.split(",")))
