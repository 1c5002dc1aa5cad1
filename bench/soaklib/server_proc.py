"""The control server of a soak run, in its own process, with the probes the soak reads.

    python -m bench.soaklib.server_proc --site config/dijon --endpoints sim.json --port P --data-dir D
        --historian URL --produced produced.jsonl

Probes (nothing in the server is changed, only observed):
- every sample row the historian accepts (after its by-exception filter, before its queue) is appended to the
  `--produced` file as one JSON line [tag, ts_us, value, text, quality]: the soak's "samples produced";
- a logging handler counts ERROR/CRITICAL records and an event-loop exception handler counts unhandled
  exceptions (both keep the first messages);
- every `--every` seconds one line "STATS {json}" on stdout: poll-cycle statistics, historian counters, router
  counts, event-loop lag, errors.

SIGTERM: flush the historian (up to 120 s), stop the server, print the final STATS line and "STOPPED".
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import signal
import statistics
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

READY = "SOAK-SERVER-READY"
STATS = "STATS "
STOPPED = "SOAK-SERVER-STOPPED"
KEEP = 20  # messages kept of each kind of error


class ErrorCounter(logging.Handler):
    """Counts ERROR and CRITICAL log records (the server's own 'something went wrong')."""

    def __init__(self) -> None:
        super().__init__(level=logging.ERROR)
        self.count = 0
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.count += 1
        if len(self.messages) < KEEP:
            text = f"{record.levelname} {record.name}: {record.getMessage()}"
            if record.exc_info and record.exc_info[1] is not None:
                text += f" [{type(record.exc_info[1]).__name__}: {record.exc_info[1]}]"
            self.messages.append(text[:500])


class LoopExceptions:
    """The event loop's exception handler: counts what reached it (tasks never awaited, callbacks that raised)."""

    def __init__(self) -> None:
        self.count = 0
        self.messages: list[str] = []

    def __call__(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        self.count += 1
        if len(self.messages) < KEEP:
            exc = context.get("exception")
            self.messages.append(f"{context.get('message', '')} {exc!r}"[:500])
        loop.default_exception_handler(context)


class ProducedLog:
    """Appends every sample row the historian accepts to a JSON-lines file (buffered, flushed every second)."""

    def __init__(self, path: Path) -> None:
        self._file = path.open("w", encoding="utf-8", buffering=1 << 20)
        self.rows = 0

    def tap(self, historian: Any) -> None:
        """Wrap the historian's single queue entrance (every accepted row, sweeps and overflow included)."""
        enqueue = historian._enqueue_samples
        names = historian._names  # tag id -> name (rows carry the id once the writer has resolved the tag)
        write = self._file.write

        def logged(rows: list[Any]) -> None:
            for tag, *rest in rows:
                name = names[tag] if isinstance(tag, int) else tag
                write(json.dumps([name, *rest], separators=(",", ":")) + "\n")
            self.rows += len(rows)
            enqueue(rows)

        historian._enqueue_samples = logged

    def flush(self) -> None:
        self._file.flush()

    def close(self) -> None:
        self._file.close()


def _stats(server: Any, errors: ErrorCounter, loop_errors: LoopExceptions, produced: ProducedLog, lag: list[float]):
    """One snapshot of the probes (a JSON-able dict)."""
    snapshot: dict[str, Any] = {"t": time.time(), "produced": produced.rows, "router_records": server.router.records}
    for driver in server.drivers:
        if hasattr(driver, "cycle_stats"):
            cycle = asdict(driver.cycle_stats())
            cycle = {k: (v.value if hasattr(v, "value") else v) for k, v in cycle.items()}
            snapshot["cycle"] = cycle
            statuses = driver.device_status().values()
            last = sorted(s.last_cycle_s for s in statuses if s.cycles)
            if last:
                snapshot["last_cycle_s"] = {
                    "median": statistics.median(last),
                    "p99": last[min(len(last) - 1, int(0.99 * len(last)))],
                    "max": last[-1],
                }
    if server.historian is not None:
        snapshot["historian"] = server.historian.stats().as_dict()
    snapshot["errors"] = errors.count
    snapshot["error_messages"] = errors.messages
    snapshot["loop_exceptions"] = loop_errors.count
    snapshot["loop_exception_messages"] = loop_errors.messages
    snapshot["loop_lag_ms"] = {
        "max": max(lag) * 1e3 if lag else 0.0,
        "mean": statistics.fmean(lag) * 1e3 if lag else 0.0,
    }
    lag.clear()
    return snapshot


async def _lag_probe(lag: list[float], period: float = 0.1) -> None:
    """How late the loop wakes a 100 ms sleeper (its responsiveness)."""
    while True:
        started = time.perf_counter()
        await asyncio.sleep(period)
        lag.append(max(0.0, time.perf_counter() - started - period))


async def run(args: argparse.Namespace) -> None:
    from scada.app import ControlServer, ServerOptions
    from scada.site.loader import load_site, rebind_endpoints
    from scada.site.model import Endpoint

    loop = asyncio.get_running_loop()
    loop_errors = LoopExceptions()
    loop.set_exception_handler(loop_errors)
    errors = ErrorCounter()
    logging.getLogger().addHandler(errors)

    site = load_site(Path(args.site))
    document = json.loads(Path(args.endpoints).read_text())  # noqa: ASYNC240 (once, before anything runs)
    endpoints = {}
    for device_id, found in document["endpoints"].items():
        current = site.device(device_id).endpoint  # type: ignore[union-attr]
        fields = {name: getattr(current, name) for name in current.__dataclass_fields__}
        endpoints[device_id] = Endpoint(**{**fields, "host": found["host"], "port": found["port"]})
    rebind_endpoints(site, endpoints)

    options = ServerOptions(
        host="127.0.0.1",
        port=args.port,
        historian_url=args.historian,
        data_dir=Path(args.data_dir),
        insecure=True,
        public_api_port=args.public_port,
    )
    server = ControlServer(site, options)
    produced = ProducedLog(Path(args.produced))
    if server.historian is not None:
        produced.tap(server.historian)
    stopping = asyncio.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stopping.set)
    await server.start()
    print(f"{READY} {server.endpoint_url}", flush=True)
    lag: list[float] = []
    prober = asyncio.create_task(_lag_probe(lag))
    try:
        while not stopping.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), args.every)
            produced.flush()
            print(STATS + json.dumps(_stats(server, errors, loop_errors, produced, lag)), flush=True)
    finally:
        prober.cancel()
        flushed = None
        if server.historian is not None:
            flushed = await server.historian.flush(within_s=120.0)
        await server.stop()
        produced.close()
        final = _stats(server, errors, loop_errors, produced, lag)
        final["final"] = True
        final["flushed"] = flushed
        print(STATS + json.dumps(final), flush=True)
        print(STOPPED, flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.soaklib.server_proc", description=__doc__)
    parser.add_argument("--site", required=True)
    parser.add_argument("--endpoints", required=True, help="the simulators' {control, endpoints} JSON file")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--historian", required=True, help="historian URL")
    parser.add_argument("--produced", required=True, help="JSON-lines file of the accepted sample rows")
    parser.add_argument("--public-port", type=int, default=None)
    parser.add_argument("--every", type=float, default=5.0, help="seconds between STATS lines")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("asyncua", "pymodbus"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    asyncio.run(run(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
