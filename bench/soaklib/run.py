"""The soak orchestrator: starts the processes, runs clients and faults for the duration, then checks everything.

run_soak(SoakConfig) -> SoakResult (figures as a JSON-able dict, and the failed assertions); bench/soak.py is the
command line, tests/integration/test_soak.py the short run in CI.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import socket
import sys
import tempfile
import time
import uuid
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil

from bench.soaklib import figures
from bench.soaklib.clients import Console, ThirdParty, console_paths
from bench.soaklib.faults import DatabaseOutage, Fault, create_pg_database, drop_pg_database, schedule, sim_fault
from bench.soaklib.server_proc import READY, STATS, STOPPED
from bench.soaklib.victim import READY as VICTIM_READY
from scada.site.loader import load_site

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[2]
PG_DEFAULT = "postgresql+psycopg://postgres@127.0.0.1:5432"


@dataclass
class SoakConfig:
    """What to run."""

    site: str = "config/dijon"
    minutes: float = 30.0
    historian: str = "sqlite"  # "sqlite", "postgresql" (a scratch database) or a full URL
    workdir: Path | None = None  # default: a temporary folder, removed at the end
    consoles: int = 2
    sample_every_s: float = 5.0
    rss_from_s: float = 300.0  # RSS growth is measured from this time to the end
    rss_growth_max_pct: float = 5.0
    check_rss: bool = True


@dataclass
class SoakResult:
    """The figures (JSON-able) and the assertions that failed (empty: the soak passed)."""

    figures: dict[str, Any]
    failures: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _python(*args: str) -> list[str]:
    return [sys.executable, *args]


async def _spawn(command: list[str], ready: str, stderr: Path, timeout_s: float = 300.0) -> tuple[Any, str]:
    """Start a child (stderr to a file) and wait for the stdout line starting with `ready`; returns (child, line)."""
    with stderr.open("ab") as err:
        child = await asyncio.create_subprocess_exec(
            *command, cwd=ROOT, stdout=asyncio.subprocess.PIPE, stderr=err, env={**os.environ, "PYTHONPATH": str(ROOT)}
        )
    assert child.stdout is not None
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        line = await asyncio.wait_for(child.stdout.readline(), max(1.0, deadline - time.monotonic()))
        if not line:
            break
        text = line.decode().strip()
        if text.startswith(ready):
            return child, text
    code = await child.wait()
    tail = (await asyncio.to_thread(stderr.read_text, errors="replace"))[-3000:]
    raise RuntimeError(f"{' '.join(command[1:4])} exited ({code}) before it was ready:\n{tail}")


async def _stop_child(child: Any, timeout_s: float = 30.0) -> None:
    if child.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            child.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(child.wait(), timeout_s)
        except TimeoutError:
            child.kill()
            await child.wait()


class Soak:
    """One soak run (see run_soak)."""

    def __init__(self, config: SoakConfig, folder: Path) -> None:
        self.config = config
        self.folder = folder
        self.site = load_site(ROOT / config.site if not Path(config.site).is_absolute() else Path(config.site))
        self.faults = schedule(self.site, config.minutes)
        self.stats: list[dict[str, Any]] = []
        self.samples: list[dict[str, Any]] = []
        self.events: list[str] = []
        self.victims = 0
        self.t0 = 0.0
        self.pg_created = False
        self.url = self._historian_url()

    def _historian_url(self) -> str:
        choice = self.config.historian
        if choice == "sqlite":
            return f"sqlite:///{self.folder / 'history.sqlite'}"
        if choice == "postgresql":
            return f"{PG_DEFAULT}/cityscada_soak_{uuid.uuid4().hex[:10]}"
        return choice

    def note(self, text: str) -> None:
        """A line of the run's event log (elapsed time first)."""
        line = f"+{time.monotonic() - self.t0:7.1f} s  {text}"
        self.events.append(line)
        log.info("%s", line)

    # -- processes -------------------------------------------------------------------------------------------

    async def _read_stats(self, child: Any) -> None:
        assert child.stdout is not None
        while line := await child.stdout.readline():
            text = line.decode()
            if text.startswith(STATS):
                self.stats.append(json.loads(text[len(STATS) :]))
            elif text.startswith(STOPPED):
                self.note("server stopped")

    async def _sample(self, pids: dict[str, int]) -> None:
        procs = {name: psutil.Process(pid) for name, pid in pids.items()}
        for proc in procs.values():
            proc.cpu_percent(None)
        while True:
            await asyncio.sleep(self.config.sample_every_s)
            sample: dict[str, Any] = {"elapsed_s": time.monotonic() - self.t0, "load": os.getloadavg()[0]}
            for name, proc in procs.items():
                with contextlib.suppress(psutil.Error):
                    sample[name] = {"cpu_pct": proc.cpu_percent(None), "rss_mb": proc.memory_info().rss / 2**20}
            self.samples.append(sample)

    # -- faults ----------------------------------------------------------------------------------------------

    async def _fault(self, fault: Fault, control_url: str, outage: DatabaseOutage, url: str, paths: list[str]) -> None:
        await asyncio.sleep(max(0.0, fault.at_s - (time.monotonic() - self.t0)))
        fault.started = time.time()
        if fault.kind == "kill":
            await asyncio.to_thread(sim_fault, control_url, fault.target, "offline", True)
            self.note(f"killed {fault.target} for {fault.duration_s:.0f} s")
            await asyncio.sleep(fault.duration_s)
            await asyncio.to_thread(sim_fault, control_url, fault.target, "offline", False)
            self.note(f"restarted {fault.target}")
        elif fault.kind == "mains":
            await asyncio.to_thread(sim_fault, control_url, fault.target, "mains", True)
            self.note(f"mains lost at {fault.target} for {fault.duration_s:.0f} s")
            await asyncio.sleep(fault.duration_s)
            await asyncio.to_thread(sim_fault, control_url, fault.target, "mains", False)
            self.note(f"mains back at {fault.target}")
        elif fault.kind == "db":
            await outage.cut()
            self.note(f"database away for {fault.duration_s:.0f} s ({outage.backend})")
            await asyncio.sleep(fault.duration_s)
            await outage.restore()
            self.note("database back")
        elif fault.kind == "client":
            victim, _ = await _spawn(
                _python("-m", "bench.soaklib.victim", url, *paths[:300]), VICTIM_READY, self.folder / "victim.log", 120
            )
            await asyncio.sleep(3.0)
            victim.kill()  # SIGKILL: the socket closes without CloseSession
            await victim.wait()
            self.victims += 1
            self.note(f"client killed abruptly (pid {victim.pid}, 300 monitored items)")
        fault.ended = time.time()

    # -- the run ---------------------------------------------------------------------------------------------

    async def run(self) -> SoakResult:
        config = self.config
        folder = self.folder
        if config.historian == "postgresql":
            await asyncio.to_thread(create_pg_database, self.url)
            self.pg_created = True
        self.t0 = time.monotonic()
        started_at = datetime.now(UTC)
        endpoints = folder / "endpoints.json"
        sim, _ = await _spawn(
            _python("-m", "drivers.sim", "--site", str(ROOT / config.site), "--bind", "free", "--control-port", "0",
                    "--no-faults", "--endpoints-out", str(endpoints)),
            "READY", folder / "simulators.log",
        )  # fmt: skip
        control_url = json.loads(endpoints.read_text())["control"]
        self.note(f"simulators ready (control {control_url})")
        port = free_port()
        server, line = await _spawn(
            _python("-m", "bench.soaklib.server_proc", "--site", str(ROOT / config.site), "--endpoints", str(endpoints),
                    "--port", str(port), "--data-dir", str(folder / "var"), "--historian", self.url,
                    "--produced", str(folder / "produced.jsonl"), "--every", str(config.sample_every_s)),
            READY, folder / "server.log",
        )  # fmt: skip
        url = line.split()[-1].replace("0.0.0.0", "127.0.0.1")
        self.note(f"server ready at {url}")
        reader = asyncio.create_task(self._read_stats(server))
        sampler = asyncio.create_task(self._sample({"server": server.pid, "simulators": sim.pid, "soak": os.getpid()}))
        paths = console_paths(self.site)
        consoles = [Console(f"console-{i + 1}", url, paths) for i in range(config.consoles)]
        third = ThirdParty(url, self.site)
        outage = DatabaseOutage(self.url)
        failures: list[str] = []
        subscribe_s: list[float] = []
        try:
            for console in consoles:
                subscribe_s.append(await console.start())
            self.note(f"{len(consoles)} consoles subscribed to {len(paths)} items each")
            await third.start()
            await asyncio.sleep(10.0)
            for console in consoles:
                console.reset()  # the initial values are not steady-state latency
            tasks = [asyncio.create_task(self._fault(f, control_url, outage, url, paths)) for f in self.faults]
            await asyncio.sleep(max(0.0, config.minutes * 60.0 - (time.monotonic() - self.t0)))
            results = await asyncio.gather(*tasks, return_exceptions=True)
            failures += [f"fault task failed: {r!r}" for r in results if isinstance(r, BaseException)]
            self.note("duration reached; stopping clients")
        finally:
            with contextlib.suppress(Exception):
                await outage.restore()
            await third.stop()
            for console in consoles:
                await console.stop()
            sampler.cancel()
            await _stop_child(server, 240.0)
            await reader
            await _stop_child(sim)
        state = {
            "stats": self.stats,
            "samples": self.samples,
            "events": self.events,
            "faults": [asdict(f) for f in self.faults],
        }
        await asyncio.to_thread(
            (folder / "state.json").write_text, json.dumps(state, default=str)
        )  # raw, before checks
        result = self._figures(started_at, consoles, third, subscribe_s)
        result.failures[:0] = failures
        if self.pg_created:
            with contextlib.suppress(Exception):
                await asyncio.to_thread(drop_pg_database, self.url)
        return result

    def _figures(
        self, started_at: datetime, consoles: list[Console], third: ThirdParty, subscribe_s: list[float]
    ) -> SoakResult:
        config = self.config
        final = self.stats[-1] if self.stats else {}
        running = [s for s in self.stats if not s.get("final")]
        last_running = running[-1] if running else final
        samples = figures.check_samples(self.folder / "produced.jsonl", self.url)
        alarms = figures.check_alarms(self.url, self.faults)
        latencies = [x for console in consoles for x in console.latencies]
        rss = {name: figures.rss_growth(self.samples, name, config.rss_from_s) for name in ("server", "simulators")}
        # steady state: after the warm-up (the first fault), the start-up burst of the server left out
        first = min((f.started for f in self.faults if f.started is not None), default=0.0)
        steady = [s for s in self.stats if s["t"] >= first and not s.get("final")]
        cycles = [s["last_cycle_s"] for s in steady if "last_cycle_s" in s]
        cpu = {
            name: [s[name]["cpu_pct"] for s in self.samples if name in s] for name in ("server", "simulators", "soak")
        }
        loads = [s["load"] for s in self.samples]
        historian = final.get("historian", {})
        data: dict[str, Any] = {
            "started": started_at.isoformat(timespec="seconds"),
            "site": config.site,
            "minutes": config.minutes,
            "historian": self.url.split("@")[-1] if "postgresql" in self.url else "sqlite (temporary file)",
            "machine": {"cpus": os.cpu_count(), "load_avg_mean": sum(loads) / len(loads) if loads else 0.0,
                        "load_avg_max": max(loads, default=0.0)},
            "cpu_pct_mean": {k: (sum(v) / len(v) if v else 0.0) for k, v in cpu.items()},
            "cpu_pct_max": {k: max(v, default=0.0) for k, v in cpu.items()},
            "rss": rss,
            "poll": {
                "final": last_running.get("cycle", {}),
                "last_cycle_median_s": figures.percentile([c["median"] for c in cycles], 0.5),
                "last_cycle_p99_s_worst": max((c["p99"] for c in cycles), default=0.0),
                "last_cycle_max_s": max((c["max"] for c in cycles), default=0.0),
            },
            "loop_lag_ms_max": max((s.get("loop_lag_ms", {}).get("max", 0.0) for s in steady), default=0.0),
            "loop_lag_ms_max_startup": max(
                (s.get("loop_lag_ms", {}).get("max", 0.0) for s in self.stats if s["t"] < first), default=0.0
            ),
            "notifications": {
                "consoles": len(consoles),
                "items_per_console": len(consoles[0].paths) if consoles else 0,
                "subscribe_s": subscribe_s,
                "received": sum(c.notifications for c in consoles),
                "bad_quality": sum(c.bad for c in consoles),
                "latency": figures.latency_summary(latencies),
            },
            "third_party": {"ok": dict(third.ok), "failed": dict(third.failed), "failures": third.failures[:20],
                            "history_values": third.history_values},
            "samples": asdict(samples),
            "historian_final": historian,
            "flushed": final.get("flushed"),
            "errors": {"logged": final.get("errors", -1), "loop_exceptions": final.get("loop_exceptions", -1),
                       "messages": final.get("error_messages", []) + final.get("loop_exception_messages", [])},
            "alarms": {"expected": alarms.expected, "raised": alarms.raised, "cleared": alarms.cleared,
                       "missing": alarms.missing, "not_cleared": alarms.not_cleared,
                       "unexpected": dict(alarms.unexpected), "startup": dict(alarms.startup),
                       "transitions": dict(alarms.by_condition)},
            "faults": [{"at_s": f.at_s, "kind": f.kind, "target": f.target, "duration_s": f.duration_s,
                        "expects": f.expects, "applied": f.started is not None} for f in self.faults],
            "victims_killed": self.victims,
            "events": self.events,
            "timeline": self.samples,
            "server_stats": [{k: v for k, v in s.items() if k not in ("error_messages", "loop_exception_messages")}
                             for s in self.stats],
        }  # fmt: skip
        failures: list[str] = []
        if not samples.ok:
            failures.append(
                f"samples: {samples.lost} lost, {samples.duplicated} duplicated, {samples.altered} altered, "
                f"{samples.unexplained} unexplained, {samples.event_duplicates} duplicated events "
                f"(of {samples.produced_keys} produced): {samples.examples[:5]}"
            )
        if samples.produced_keys == 0:
            failures.append("no sample was produced")
        if historian.get("journal_backlog_bytes", 0) or historian.get("rejected", 0):
            failures.append(f"historian ended with a journal backlog or rejected rows: {historian}")
        if historian and historian.get("replayed", 0) == 0 and any(f.kind == "db" and f.started for f in self.faults):
            failures.append("the database outage left nothing to replay (was the database really away?)")
        errors = data["errors"]
        if errors["logged"] != 0 or errors["loop_exceptions"] != 0:
            failures.append(f"unhandled exceptions / ERROR records in the server: {errors}")
        if not alarms.ok:
            failures.append(f"alarms: missing {alarms.missing}, not cleared {alarms.not_cleared}")
        odd = {k: v for k, v in alarms.unexpected.items() if k.split()[0] not in figures.NATURAL}
        if odd:
            failures.append(f"alarms nobody injected: {odd}")
        if not latencies:
            failures.append("the consoles received no notification")
        if config.check_rss and rss["server"]["growth_pct"] > config.rss_growth_max_pct:
            failures.append(
                f"server RSS grew {rss['server']['growth_pct']:.1f} % (goal < {config.rss_growth_max_pct} %)"
            )
        missed = [f"{f.kind} {f.target}" for f in self.faults if f.started is None or f.ended is None]
        if missed:
            failures.append(f"faults not applied: {missed}")
        data["failures"] = failures
        data["passed"] = not failures
        return SoakResult(data, failures)


async def run_soak(config: SoakConfig) -> SoakResult:
    """Run one soak and return its figures and failed assertions."""
    if config.workdir is not None:
        config.workdir.mkdir(parents=True, exist_ok=True)
        return await Soak(config, config.workdir).run()
    with tempfile.TemporaryDirectory(prefix="cityscada-soak-") as folder:
        return await Soak(config, Path(folder)).run()
