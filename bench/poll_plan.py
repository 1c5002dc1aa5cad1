"""Poll-plan benchmark of the Modbus driver: reads needed at city scale, decode cost per cabinet, live sweeps.

    .venv/bin/python bench/poll_plan.py                  # plan + decode cost + live sweep of 50 cabinets
    .venv/bin/python bench/poll_plan.py --cabinets 340   # live sweep of every Dijon cabinet (128 lamps each)

The live part polls an independent pyModbusTCP server running in a child process (one thread per connection),
so client and server do not share the interpreter lock; every cabinet has its own connection, as in the field.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import socket
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from drivers.modbus.client import Backoff, DeviceConnection
from drivers.modbus.driver import ModbusDriver
from drivers.modbus.poller import DI, HR, IR, CabinetPoller, build_plan
from scada.model import ValueRecord
from scada.site.model import (
    Cabinet,
    Endpoint,
    FieldDevice,
    Lamp,
    ParkingSensor,
    ParkingSite,
    Sign,
    TrafficController,
)


def cabinet(index: int, lamps: int, port: int = 502, unit: int = 1, poll_ms: int = 5000) -> Cabinet:
    """A synthetic cabinet."""
    cid = f"CAB-{index:04d}"
    return Cabinet(
        id=cid,
        name=cid,
        district="D",
        lat=0,
        lon=0,
        endpoint=Endpoint("modbus", "127.0.0.1", port, unit, poll_ms),
        lamps=[
            Lamp(id=f"{cid}-L{i:03d}", cabinet_id=cid, index=i, lat=0, lon=0, rated_w=50, legacy_w=150)
            for i in range(lamps)
        ],
    )


def dijon() -> list[FieldDevice]:
    """Dijon scale: 340 cabinets of 100 lamps (5 s), 113 controllers (1 s), 40 signs (5 s), 10 sites of 300 bays (2 s)."""
    devices: list[FieldDevice] = [cabinet(i, 100) for i in range(340)]
    devices += [
        TrafficController(
            id=f"TLC-{i:03d}", name="", district="D", lat=0, lon=0, endpoint=Endpoint("modbus", poll_ms=1000)
        )
        for i in range(113)
    ]
    devices += [
        Sign(id=f"VMS-{i:02d}", name="", district="D", lat=0, lon=0, endpoint=Endpoint("modbus", poll_ms=5000))
        for i in range(40)
    ]
    for i in range(10):
        sid = f"PK-{i:02d}"
        devices.append(
            ParkingSite(
                id=sid,
                name="",
                district="D",
                site_type="carpark",
                lat=0,
                lon=0,
                capacity=300,
                endpoint=Endpoint("modbus", poll_ms=2000),
                sensors=[ParkingSensor(id=f"{sid}-{b:04d}", site_id=sid, index=b, lat=0, lon=0) for b in range(300)],
            )
        )
    return devices


def plan_report() -> None:
    """Requests per sweep and per second for the Dijon-scale site."""
    devices = dijon()
    per_sweep = 0
    per_second = 0.0
    kinds: dict[str, list[int]] = {}
    for device in devices:
        plan = build_plan(device)
        per_sweep += plan.reads
        per_second += plan.reads / (device.endpoint.poll_ms / 1000)
        kinds.setdefault(type(device).__name__, []).append(plan.reads)
    print("== read plan, Dijon scale ==")
    for kind, reads in kinds.items():
        print(f"  {kind:18s} {len(reads):4d} devices, {reads[0]:3d} reads per cycle")
    print(f"  {per_sweep} reads per sweep of every device; {per_second:.0f} reads/s at the configured periods")


def decode_cost(repeat: int = 200) -> None:
    """CPU cost of one cabinet cycle's decoding (128 lamps): full, nothing changed, 10 % of lamps changed."""
    cab = cabinet(1, 128)
    connection = DeviceConnection("127.0.0.1", 502, 1, timeout=1, backoff=Backoff(), label="bench")
    published: list[int] = []
    poller = CabinetPoller(cab, connection, lambda records: published.append(len(records)))
    plan = poller.plan
    ir = [0] * plan.size(IR)
    ir[0:5] = [1, 1, 0, 0, 128]
    for i in range(128):
        ir[100 + 8 * i : 108 + 8 * i] = [50, 1, 250, 0, 1000 + i, 3, 100, 0]
    hr = [0] * plan.size(HR)
    hr[100:228] = [50] * 128
    images = {IR: ir, HR: hr, DI: []}

    def run(mutate_every: int) -> float:
        times = []
        for n in range(repeat):
            if mutate_every:
                for i in range(0, 128, mutate_every):
                    ir[104 + 8 * i] = (ir[104 + 8 * i] + 1) & 0xFFFF  # energy low word of some lamps
            out: list[ValueRecord] = []
            started = time.perf_counter()
            poller.decode(images, poller.clock(), out, full=mutate_every < 0)
            times.append(time.perf_counter() - started)
            assert n or out or mutate_every == 0
        return statistics.median(times) * 1e6

    full = run(-1)
    unchanged = run(0)
    tenth = run(10)
    print("== decode cost per 128-lamp cabinet (median) ==")
    print(f"  full publication (1,291 records) {full:8.0f} us")
    print(f"  nothing changed (0 records)      {unchanged:8.0f} us")
    print(f"  13 lamps changed (13 records)    {tenth:8.0f} us")
    print(f"  => 34,000 lamps every 5 s, nothing changed: {unchanged * 340 / 5 / 1e4:.2f} % of one core")


def serve(port: int, lamps: int, ready: multiprocessing.synchronize.Event) -> None:  # type: ignore[name-defined]
    """Child process: a pyModbusTCP server whose data bank looks like a lighting controller on every unit id."""
    import socketserver

    from pyModbusTCP.server import DataBank, ModbusServer

    socketserver.ThreadingTCPServer.request_queue_size = 1024  # pyModbusTCP's backlog of 5 drops connect storms
    bank = DataBank()
    bank.set_input_registers(0, [1, 1, 0, 0, lamps, 0, 0, 2300])
    for i in range(lamps):
        bank.set_input_registers(100 + 8 * i, [50, 1, 250, 0, 1000 + i, 3, 100, 0])
    bank.set_holding_registers(100, [50] * lamps)
    server = ModbusServer("127.0.0.1", port, no_block=True, data_bank=bank)
    server.start()
    ready.set()
    while True:
        time.sleep(3600)


async def live(cabinets: int, lamps: int, sweeps: int) -> None:
    """Sweeps of `cabinets` cabinets, one connection each, against pyModbusTCP in a child process."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    ready = multiprocessing.Event()
    child = multiprocessing.Process(target=serve, args=(port, lamps, ready), daemon=True)
    child.start()
    try:
        if not ready.wait(10):
            raise RuntimeError("server did not start")
        records = 0

        def publish(batch: object) -> None:
            nonlocal records
            records += len(batch)  # type: ignore[arg-type]

        devices = [cabinet(i, lamps, port, unit=1 + i % 247) for i in range(cabinets)]
        driver = ModbusDriver(devices, publish, timeout=5.0)
        await driver.start()  # the loops sleep for their jittered first slot; the sweeps below run the cycles
        first = await driver.poll_all()
        first_records = records
        cpu = time.process_time()
        times = [await driver.poll_all() for _ in range(sweeps)]
        cpu = (time.process_time() - cpu) / sweeps
        stats = driver.cycle_stats()
        await driver.stop()
        reads = stats.reads_per_sweep
        best = min(times)
        print(f"== live sweep: {cabinets} cabinets x {lamps} lamps, pyModbusTCP in a child process ==")
        print(f"  first sweep (connect + full publication of {first_records} records): {first * 1000:.0f} ms")
        print(
            f"  steady sweep: median {statistics.median(times) * 1000:.0f} ms, best {best * 1000:.0f} ms, "
            f"{reads} reads per sweep -> {reads / best:.0f} reads/s, {stats.errors} errors, "
            f"{records - first_records} records after the first sweep"
        )
        print(f"  driver process CPU per steady sweep: {cpu * 1000:.0f} ms ({cpu / reads * 1e6:.0f} us per read)")
        print(f"  device cycle: mean {stats.mean_cycle_s * 1000:.1f} ms, max {stats.max_cycle_s * 1000:.1f} ms")
    finally:
        child.terminate()
        child.join()


def main() -> None:
    """Run the three parts."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cabinets", type=int, default=50)
    parser.add_argument("--lamps", type=int, default=128)
    parser.add_argument("--sweeps", type=int, default=5)
    args = parser.parse_args()
    plan_report()
    decode_cost()
    asyncio.run(live(args.cabinets, args.lamps, args.sweeps))


if __name__ == "__main__":
    main()
