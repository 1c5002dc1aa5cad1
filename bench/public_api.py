"""Public parking feed benchmark: the API serving the Dijon parking sites under 500 req/s from a second process.

Goal: p99 <= 50 ms at 500 requests/s on loopback.

The server runs in a child process (`--serve`): the Dijon site's 10 parking sites in a ParkingFeed fed through a
TagRouter by a feeder that changes one site every 100 ms (car arrivals and departures, now and then a gateway
lost and back), behind the real PublicApi with its default rate limit (20 req/s, burst 60 per address). This
process is the load generator: open loop at a fixed rate (requests are scheduled at t0 + i/rate whatever the
answers, and latency counts from the scheduled time, so a slow server cannot hide its queueing), spread over
--clients loopback addresses 127.0.0.2... (each under the per-address limit, as many phones would be), with a
mix of endpoints: the list (45 %), one site (35 %), revalidations with If-None-Match (10 %), /healthz (5 %) and
/openapi.json (5 %); 70 % of requests accept gzip. The first --warmup seconds are not counted.

Usage: .venv/bin/python bench/public_api.py [--rate 500] [--duration 20] [--clients 50] [--site config/dijon]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import os
import random
import signal
import statistics
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import psutil  # noqa: E402

from scada.model import Quality, ValueRecord, utcnow  # noqa: E402
from scada.public.api import PublicApi, PublicApiOptions  # noqa: E402
from scada.public.feed import ParkingFeed  # noqa: E402
from scada.router import TagRouter  # noqa: E402
from scada.site.loader import load_site  # noqa: E402

GOAL_P99_MS = 50.0
READY = "public-api-ready"


# ---------------------------------------------------------------------------------------------------------
# Server side (child process)
# ---------------------------------------------------------------------------------------------------------


async def feeder(router: TagRouter, feed: ParkingFeed, capacities: dict[str, int], stop: asyncio.Event) -> int:
    """Change one site every 100 ms like a busy city centre; returns the number of batches published."""
    rnd = random.Random(7)
    occupied = {site_id: cap // 2 for site_id, cap in capacities.items()}
    comm = dict.fromkeys(capacities, True)
    batches = 0
    first = [
        ValueRecord(f"Parking/{site_id}/{name}", value, Quality.GOOD, utcnow())
        for site_id, cap in capacities.items()
        for name, value in (("Capacity", cap), ("DisplayMode", 0), ("FaultySensors", 0), ("CommunicationOk", True))
    ]
    router.publish(first)
    while not stop.is_set():
        site_id = rnd.choice(list(capacities))
        cap = capacities[site_id]
        now = utcnow()
        if rnd.random() < 0.01:
            comm[site_id] = not comm[site_id]
            router.publish([ValueRecord(f"Parking/{site_id}/CommunicationOk", comm[site_id], Quality.GOOD, now)])
        else:
            occupied[site_id] = max(0, min(cap, occupied[site_id] + rnd.randint(-3, 3)))
            free = cap - occupied[site_id]
            router.publish(
                [
                    ValueRecord(f"Parking/{site_id}/Occupied", occupied[site_id], Quality.GOOD, now),
                    ValueRecord(f"Parking/{site_id}/Free", free, Quality.GOOD, now),
                    ValueRecord(f"Parking/{site_id}/Full", free == 0, Quality.GOOD, now),
                ]
            )
        batches += 1
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 0.1)
    return batches


async def loop_lag(stop: asyncio.Event, lags: list[tuple[float, float]]) -> None:
    """How late a 10 ms timer fires (the time the event loop could not run), with the CPU the process used meanwhile.

    A late timer with little CPU used means the process was waiting for a CPU (other work on the machine); with
    the CPU used, the server itself was busy.
    """
    loop = asyncio.get_running_loop()
    while not stop.is_set():
        expected = loop.time() + 0.01
        cpu = time.process_time()
        await asyncio.sleep(0.01)
        lags.append((loop.time() - expected, time.process_time() - cpu))


async def serve(site_dir: str, port: int) -> None:
    """Run the API on 127.0.0.1 with a feeder until SIGTERM; prints the ready line with the port."""
    site = load_site(ROOT / site_dir)
    feed = ParkingFeed.from_site(site)
    capacities = {p.id: p.capacity for p in site.parking.values()}
    del site  # a sidecar keeps only the parking sites; the city's objects would only lengthen GC passes
    gc.collect()
    gc.freeze()
    router = TagRouter()
    router.add_sink("public-feed", feed)
    api = PublicApi(feed, PublicApiOptions(host="127.0.0.1", port=port))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await api.start()
    feeding = asyncio.create_task(feeder(router, feed, capacities, stop))
    lags: list[tuple[float, float]] = []
    lagging = asyncio.create_task(loop_lag(stop, lags))
    print(f"{READY} {api.port} {','.join(feed.ids())}", flush=True)
    await stop.wait()
    batches = await feeding
    await lagging
    await api.stop()
    lag_ms = sorted(lag * 1000 for lag, _ in lags)
    worst_lag, worst_cpu = max(lags)
    print(f"server: {batches} feed batches, feed version {feed.version}, {api.limiter.refused} rate-limited; "
          f"event-loop lag p99 {lag_ms[int(len(lag_ms) * 0.99)]:.1f} ms, max {worst_lag * 1000:.1f} ms "
          f"(the server used {worst_cpu * 1000:.1f} ms of CPU in that interval)", flush=True)  # fmt: skip


# ---------------------------------------------------------------------------------------------------------
# Load generator (this process)
# ---------------------------------------------------------------------------------------------------------


def pick_request(rnd: random.Random, ids: list[str], etags: dict[str, str]) -> tuple[str, dict[str, str]]:
    """One request of the mix: (path, headers)."""
    headers = {"Accept-Encoding": "gzip"} if rnd.random() < 0.7 else {"Accept-Encoding": "identity"}
    roll = rnd.random()
    if roll < 0.45:
        path = "/v1/parking"
    elif roll < 0.80:
        path = f"/v1/parking/{rnd.choice(ids)}"
    elif roll < 0.90:
        path = "/v1/parking" if rnd.random() < 0.5 else f"/v1/parking/{rnd.choice(ids)}"
        if path in etags:
            headers["If-None-Match"] = etags[path]
    elif roll < 0.95:
        path = "/healthz"
    else:
        path = "/openapi.json"
    return path, headers


class Client:
    """A minimal HTTP/1.1 keep-alive client bound to one loopback address (lighter than a full client library)."""

    def __init__(self, host: str, port: int, local_ip: str) -> None:
        self.host, self.port, self.local_ip = host, port, local_ip
        self.idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
        self.opened = 0

    async def get(self, path: str, headers: dict[str, str]) -> tuple[int, dict[str, str], float]:
        """GET path; (status, response headers, time the request was written) - the body is read and dropped.

        An idle connection the server has closed (keep-alive timeout) is replaced and the GET sent again, as
        HTTP clients do for idempotent requests.
        """
        lines = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
        request = f"GET {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n{lines}\r\n".encode()
        while True:
            reused = bool(self.idle)
            if reused:
                reader, writer = self.idle.pop()
            else:
                reader, writer = await asyncio.open_connection(self.host, self.port, local_addr=(self.local_ip, 0))
                self.opened += 1
            sent = asyncio.get_running_loop().time()
            writer.write(request)
            try:
                status_line = await reader.readline()
            except ConnectionError:
                status_line = b""
            if status_line or not reused:
                break
            writer.close()
        status = int(status_line.split()[1])
        answer: dict[str, str] = {}
        while (line := await reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode("latin-1").partition(":")
            answer[name.strip().lower()] = value.strip()
        await reader.readexactly(int(answer.get("content-length", "0")))
        if answer.get("connection", "").lower() == "close":
            writer.close()
        else:
            self.idle.append((reader, writer))
        return status, answer, sent

    def close(self) -> None:
        """Close the idle connections."""
        for _, writer in self.idle:
            writer.close()
        self.idle.clear()


async def load(port: int, ids: list[str], rate: float, duration: float, warmup: float, clients: int) -> dict:
    """Send rate x (warmup + duration) requests on a fixed schedule; the latencies of the measured part."""
    rnd = random.Random(1)
    pool = [Client("127.0.0.1", port, f"127.0.0.{2 + i}") for i in range(clients)]
    etags: dict[str, str] = {}
    from_schedule: list[float] = []
    from_send: list[float] = []
    statuses: Counter[str] = Counter()
    loop = asyncio.get_running_loop()
    total = int(rate * (warmup + duration))
    measured_from = int(rate * warmup)
    t0 = loop.time() + 0.2

    async def one(i: int, scheduled: float) -> None:
        path, headers = pick_request(rnd, ids, etags)
        sent = scheduled
        try:
            status_code, answer, sent = await asyncio.wait_for(pool[i % clients].get(path, headers), 5.0)
            status = str(status_code)
            if status_code == 200 and "etag" in answer:
                etags[path] = answer["etag"]
        except (OSError, TimeoutError, ValueError, IndexError, asyncio.IncompleteReadError) as exc:
            status = type(exc).__name__
        if i >= measured_from:
            done = loop.time()
            from_schedule.append(done - scheduled)
            from_send.append(done - sent)
            statuses[status] += 1

    tasks = []
    late = 0.0
    for i in range(total):
        scheduled = t0 + i / rate
        delay = scheduled - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        else:
            late = max(late, -delay)
        tasks.append(asyncio.create_task(one(i, scheduled)))
    started = t0 + measured_from / rate
    await asyncio.gather(*tasks)
    finished = loop.time()
    for client in pool:
        client.close()
    return {
        "from_schedule": from_schedule,
        "from_send": from_send,
        "statuses": statuses,
        "elapsed": finished - started,
        "generator_late_ms": late * 1000,
        "connections": sum(c.opened for c in pool),
    }


def cpu_pressure() -> str:
    """The kernel's CPU pressure (share of time some task waited for a CPU, last 10 s), if available."""
    try:
        with open("/proc/pressure/cpu") as handle:
            return handle.readline().split()[1].split("=")[1] + " %"
    except (OSError, IndexError):
        return "n/a"


def percentile(values: list[float], p: float) -> float:
    """The p-th percentile (nearest rank)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))]


def main() -> int:
    """Run the server child and the load; print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--site", default="config/dijon")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--rate", type=float, default=500.0, help="requests per second (default 500)")
    parser.add_argument("--duration", type=float, default=20.0, help="measured seconds (default 20)")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds not counted (default 2)")
    parser.add_argument("--clients", type=int, default=50, help="client addresses 127.0.0.2.. (default 50)")
    args = parser.parse_args()
    if args.serve:
        asyncio.run(serve(args.site, args.port))
        return 0

    command = [sys.executable, __file__, "--serve", "--site", args.site, "--port", str(args.port)]
    child = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None
        line = child.stdout.readline()
        if not line.startswith(READY):
            raise SystemExit(f"server did not start: {line!r} (exit {child.poll()})")
        port, ids = int(line.split()[1]), line.split()[2].split(",")
        server = psutil.Process(child.pid)
        server.cpu_percent()
        print(f"server pid {child.pid} on 127.0.0.1:{port} with {len(ids)} parking sites; load: {args.rate:g} req/s "
              f"for {args.duration:g} s (+{args.warmup:g} s warm-up) from {args.clients} client addresses")  # fmt: skip
        cpu_start = time.process_time()
        load_before, pressure_before = os.getloadavg()[0], cpu_pressure()
        result = asyncio.run(load(port, ids, args.rate, args.duration, args.warmup, args.clients))
        generator_cpu = time.process_time() - cpu_start
        server_cpu = server.cpu_percent()
        pressure_after = cpu_pressure()
    finally:
        child.send_signal(signal.SIGTERM)
        try:
            out, _ = child.communicate(timeout=20)
            print(out.strip())
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
    lat = [x * 1000 for x in result["from_schedule"]]
    service = [x * 1000 for x in result["from_send"]]
    statuses = result["statuses"]
    ok = sum(n for s, n in statuses.items() if s in ("200", "304"))
    errors = sum(statuses.values()) - ok
    p50, p90, p99 = (percentile(lat, p) for p in (50, 90, 99))
    print(
        f"requests measured: {len(lat)}, achieved {len(lat) / result['elapsed']:.1f} req/s over {result['elapsed']:.1f} s"
    )
    print(f"status: {dict(sorted(statuses.items()))}; errors (not 200/304): {errors}")
    print(f"latency from scheduled send (ms): p50 {p50:.2f}  p90 {p90:.2f}  p99 {p99:.2f}  max {max(lat):.2f}  "
          f"mean {statistics.fmean(lat):.2f}")  # fmt: skip
    print(f"latency from actual send (ms):    p50 {percentile(service, 50):.2f}  p90 {percentile(service, 90):.2f}  "
          f"p99 {percentile(service, 99):.2f}  max {max(service):.2f}")  # fmt: skip
    print(f"server CPU {server_cpu:.0f} % of one core; generator CPU {generator_cpu:.1f} s; "
          f"generator max lateness {result['generator_late_ms']:.1f} ms; {result['connections']} connections; "
          f"machine load average {load_before:.2f} at start on {os.cpu_count()} CPUs")  # fmt: skip
    print(f"CPU pressure (some, avg10): {pressure_before} before, {pressure_after} after: other work on the machine "
          "delays both processes")  # fmt: skip
    verdict = "MET" if p99 <= GOAL_P99_MS and errors == 0 else "NOT MET"
    print(f"goal p99 <= {GOAL_P99_MS:g} ms at {args.rate:g} req/s with no errors: {verdict}")
    return 0 if verdict == "MET" else 1


if __name__ == "__main__":
    sys.exit(main())
