"""Poll benchmark on the whole Dijon site: simulators in one process, the control server in this one.

Prints the time of one full poll sweep over every device and register, the values per second entering the
address space, the CPU of both processes, and the latency from a register change in a simulator to the OPC UA
client's data-change notification (median and p99) for lamps (5 s poll) and traffic controllers (1 s poll).

    python bench/poll.py [--site config/dijon] [--seconds 60] [--publish-ms 500]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import psutil
from asyncua import Client

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from scada.app import ControlServer, ServerOptions  # noqa: E402
from scada.catalog import NAMESPACE_URI  # noqa: E402
from scada.cli import READY_LINE  # noqa: E402
from scada.site.loader import load_site  # noqa: E402


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_simulators(site: str, control_port: int) -> subprocess.Popen[str]:
    """The simulators of the site in their own process, on the site's ports; returns once they listen."""
    command = [sys.executable, "-m", "scada.cli", "simulate", "--site", site, "--control-port", str(control_port)]
    child = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None
    for line in child.stdout:
        if line.startswith(READY_LINE):
            return child
    raise SystemExit(f"simulators exited with {child.wait()}")


def fault(control_port: int, device: str, name: str, on: bool) -> None:
    """Inject or clear a fault through the simulators' control channel."""
    body = json.dumps({"device": device, "fault": name, "on": on}).encode()
    request = urllib.request.Request(
        f"http://127.0.0.1:{control_port}/faults", body, {"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=5) as answer:
        answer.read()


class Arrivals:
    """Subscription handler: the arrival time of the first notification of each (node, value)."""

    def __init__(self) -> None:
        self.seen: dict[tuple[str, object], float] = {}

    def datachange_notification(self, node, value, data) -> None:  # type: ignore[no-untyped-def]
        self.seen.setdefault((node.nodeid.Identifier, value), time.perf_counter())


def percentile(values: list[float], q: float) -> float:
    """The q-quantile (0..1) of the values, nearest rank."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


async def measure_latency(
    control_port: int, client: Client, ns: int, targets: list[tuple[str, str, str]], publish_ms: int, seconds: float
) -> list[float]:
    """Inject a fault on a new target every 250 ms; latency = notification time - injection time."""
    arrivals = Arrivals()
    subscription = await client.create_subscription(publish_ms, arrivals)
    nodes = [client.get_node(f"ns={ns};s={tag}") for _, tag, _ in targets]
    await subscription.subscribe_data_change(nodes, queuesize=1, sampling_interval=0)
    await asyncio.sleep(2 * publish_ms / 1000 + 1)
    injected: list[tuple[str, float]] = []
    deadline = time.perf_counter() + seconds
    for device, tag, name in targets:
        if time.perf_counter() > deadline:
            break
        started = time.perf_counter()
        await asyncio.to_thread(fault, control_port, device, name, True)
        injected.append((tag, started))
        await asyncio.sleep(0.25)
    await asyncio.sleep(8)  # the last ones: a poll period + publishing interval
    latencies = [arrivals.seen[(tag, True)] - t0 for tag, t0 in injected if (tag, True) in arrivals.seen]
    missing = len(injected) - len(latencies)
    if missing:
        print(f"  WARNING: {missing} of {len(injected)} changes never notified")
    await subscription.delete()
    for device, _, name in targets[: len(injected)]:
        await asyncio.to_thread(fault, control_port, device, name, False)
    return latencies


async def main() -> None:
    """Run the benchmark and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--site", default="config/dijon")
    parser.add_argument("--seconds", type=float, default=30.0, help="steady-state window and latency run length")
    parser.add_argument("--publish-ms", type=int, default=500)
    args = parser.parse_args()

    site = load_site(ROOT / args.site)
    control_port = free_port()
    t0 = time.perf_counter()
    sim = start_simulators(args.site, control_port)
    print(f"simulators of {site.name} ready in {time.perf_counter() - t0:.1f} s (pid {sim.pid})")
    sim_proc = psutil.Process(sim.pid)
    me = psutil.Process()
    server = ControlServer(site, ServerOptions(host="127.0.0.1", port=free_port(), historian_url=""))
    try:
        t0 = time.perf_counter()
        await server.start()
        print(f"control server up in {time.perf_counter() - t0:.1f} s at {server.endpoint_url}")
        driver = server.drivers[0]
        t0 = time.perf_counter()
        while driver.cycle_stats().ok < len(list(site.field_devices())):
            await asyncio.sleep(0.1)
            if time.perf_counter() - t0 > 60:
                raise SystemExit(f"devices not all OK after 60 s: {driver.cycle_stats()}")
        first = time.perf_counter() - t0
        print(
            f"every device polled Good {first:.1f} s after start: first full publication of "
            f"{server.router.records:,} values = {server.router.records / first:,.0f} values/s into the address space"
        )

        sweeps = []
        for _ in range(3):
            sweeps.append(await driver.poll_all())
            await asyncio.sleep(1)
        stats = driver.cycle_stats()
        print(
            f"full poll sweep (every device, every register, {stats.reads_per_sweep} reads): "
            f"median {statistics.median(sweeps):.2f} s, max {max(sweeps):.2f} s  [goal <= 2 s]"
        )

        records0, t0 = server.router.records, time.perf_counter()
        cpu_me0, cpu_sim0 = me.cpu_times(), sim_proc.cpu_times()
        await asyncio.sleep(args.seconds)
        elapsed = time.perf_counter() - t0
        cpu_me1, cpu_sim1 = me.cpu_times(), sim_proc.cpu_times()
        rate = (server.router.records - records0) / elapsed
        stats = driver.cycle_stats()
        server_cpu = (cpu_me1.user + cpu_me1.system - cpu_me0.user - cpu_me0.system) / elapsed
        sim_cpu = (cpu_sim1.user + cpu_sim1.system - cpu_sim0.user - cpu_sim0.system) / elapsed
        print(
            f"steady state over {elapsed:.0f} s: {rate:,.0f} values/s into the address space (changes only), "
            f"{stats.reads_per_s:,.0f} reads/s, errors {stats.errors}"
        )
        print(f"CPU: server {server_cpu * 100:.0f} % of a core, simulators {sim_cpu * 100:.0f} % of a core")
        print(
            f"server RSS {me.memory_info().rss / 2**20:.0f} MB, simulators RSS {sim_proc.memory_info().rss / 2**20:.0f} MB"
        )

        rng = random.Random(3)
        client = Client(server.endpoint_url, timeout=30)
        client.watchdog_intervall = 60  # a busy server is not a dead one
        await client.connect()
        try:
            ns = await client.get_namespace_index(NAMESPACE_URI)
            lamps = rng.sample(list(site.lamps()), 400)
            lamp_targets = [(lamp.id, f"{lamp.path}/LampFailure", "lamp_failure") for lamp in lamps]
            poll_s = next(iter(site.cabinets.values())).endpoint.poll_ms / 1000
            latencies = await measure_latency(control_port, client, ns, lamp_targets, args.publish_ms, args.seconds)
            goal = poll_s + args.publish_ms / 1000 + 0.25
            print(
                f"lamp failure -> client notification ({len(latencies)} changes, poll {poll_s:g} s, publishing "
                f"{args.publish_ms} ms): median {statistics.median(latencies) * 1000:.0f} ms, "
                f"p99 {percentile(latencies, 0.99) * 1000:.0f} ms  [goal p99 <= {goal * 1000:.0f} ms]"
            )
            controllers = list(site.controllers.values())
            ctl_targets = [(c.id, f"{c.path}/SignalLampFailure", "signal_lamp") for c in controllers]
            ctl_poll = controllers[0].endpoint.poll_ms / 1000
            latencies = await measure_latency(control_port, client, ns, ctl_targets, args.publish_ms, args.seconds)
            goal = ctl_poll + args.publish_ms / 1000 + 0.25
            print(
                f"controller fault -> client notification ({len(latencies)} changes, poll {ctl_poll:g} s): "
                f"median {statistics.median(latencies) * 1000:.0f} ms, "
                f"p99 {percentile(latencies, 0.99) * 1000:.0f} ms  [goal p99 <= {goal * 1000:.0f} ms]"
            )
        finally:
            await client.disconnect()
    finally:
        await server.stop()
        sim.terminate()
        sim.wait(timeout=10)


if __name__ == "__main__":
    asyncio.run(main())
