"""Incident response on the Dijon site: time from ReportIncident to every device of the playbook confirming.

    .venv/bin/python bench/incident_response.py [--site config/dijon] [--bind site|free] [--trials 5]

The simulators run in a SEPARATE process (`python -m drivers.sim`, every device on the site's configured ports
with --bind site, or on free ports with --bind free). This process runs the control stack: the Modbus driver
polling every field device of the site (34,000 lamps included), the command service, the OPC UA server with the
IncidentService as its incident handler and IncidentObjects, and an OPC UA client. Each trial calls ReportIncident
(an accident at the site's centre) through the client and measures:

- server side: from the call's arrival to every device of the playbook confirming (IncidentRecord.response_seconds:
  the last command's Good answer, i.e. the device accepted it and its registers were read back);
- client side: from sending ReportIncident to the client seeing ResponseSeconds turn Good (subscription, 50 ms);
- per device: report -> that device's confirmation (median, max);
then checks that every sign's read-back message is the playbook's text, and closes the incident (CloseIncident,
restore timed). Goal: <= 3 s from report to every device confirming.

`measure()` and `summary_line()` are what bench/operations.py prints as its ReportIncident line.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from asyncua import Client, ua  # noqa: E402

from drivers.modbus.driver import ModbusDriver  # noqa: E402
from scada.catalog import NAMESPACE_URI  # noqa: E402
from scada.commands import CommandService  # noqa: E402
from scada.incidents import IncidentService, TagCache, Vault, load_playbooks  # noqa: E402
from scada.incidents.opcua import IncidentObjects  # noqa: E402
from scada.incidents.planner import ActionKind  # noqa: E402
from scada.opcua import CityServer  # noqa: E402
from scada.opcua.nodes import string_nodeid  # noqa: E402
from scada.router import TagRouter  # noqa: E402
from scada.site.loader import load_site, rebind_endpoints  # noqa: E402
from scada.site.model import Site  # noqa: E402

GOAL_S = 3.0


@dataclass
class Trial:
    """One ReportIncident ... CloseIncident round."""

    devices: int
    signs: int
    controllers: int
    response_s: float  # server side: report -> every device confirmed
    client_s: float  # client side: call -> ResponseSeconds Good seen
    call_s: float  # the ReportIncident call itself
    per_device_s: list[float]
    verified: int  # signs whose read-back message is the playbook's text
    close_s: float  # CloseIncident call (every device restored)
    failed: int


@dataclass
class IncidentTiming:
    """Every trial of a run."""

    site: str
    trials: list[Trial] = field(default_factory=list)
    setup_s: float = 0.0


async def spawn_simulators(site_dir: Path, bind: str, out: Path) -> asyncio.subprocess.Process:
    """Start `python -m drivers.sim` and wait until it listens."""
    command = [sys.executable, "-m", "drivers.sim", "--site", str(site_dir), "--bind", bind, "--no-faults"]
    command += ["--endpoints-out", str(out)]
    child = await asyncio.create_subprocess_exec(*command, cwd=ROOT, stdout=asyncio.subprocess.PIPE)
    assert child.stdout is not None
    line = await asyncio.wait_for(child.stdout.readline(), 120)
    if not line.startswith(b"READY"):
        await stop_child(child)
        hint = " (are the site's ports in use? try --bind free)" if bind == "site" else ""
        raise SystemExit(f"the simulators did not start{hint}: {line!r}")
    return child


async def stop_child(child: asyncio.subprocess.Process) -> None:
    """Terminate the simulator process (kill it after 10 s)."""
    if child.returncode is None:
        child.terminate()
        try:
            await asyncio.wait_for(child.wait(), 10)
        except TimeoutError:
            child.kill()
            await child.wait()


def rebind(site: Site, endpoints_file: Path) -> None:
    """Point the site's endpoints at the simulators' real ports (--bind free)."""
    endpoints = json.loads(endpoints_file.read_text())["endpoints"]
    rebind_endpoints(
        site,
        {
            device_id: replace(site.device(device_id).endpoint, host=e["host"], port=e["port"], unit=e["unit"])  # type: ignore[union-attr]
            for device_id, e in endpoints.items()
        },
    )


class _Seen:
    """Subscription handler: the time ResponseSeconds first turned Good."""

    def __init__(self) -> None:
        self.good = asyncio.Event()
        self.at = 0.0

    def datachange_notification(self, node: Any, value: Any, data: Any) -> None:
        if data.monitored_item.Value.StatusCode.is_good() and not self.good.is_set():
            self.at = time.perf_counter()
            self.good.set()


async def measure(site_dir: Path, *, bind: str = "site", trials: int = 5, quiet: bool = False) -> IncidentTiming:
    """Run the benchmark (simulators in a child process, the control stack here) and return every trial."""
    site = load_site(site_dir)
    timing = IncidentTiming(site.name)
    lat, lon = site.lat, site.lon
    with tempfile.TemporaryDirectory() as tmp:
        setup = time.perf_counter()
        out = Path(tmp) / "endpoints.json"
        child = await spawn_simulators(site_dir, bind, out)
        if bind == "free":
            rebind(site, out)
        router = TagRouter()
        cache = TagCache.for_site(site)
        router.add_sink("incident-values", cache)
        driver = ModbusDriver(list(site.field_devices()), router.publish)
        commands = CommandService(site)
        commands.register_driver(driver)
        service = IncidentService(
            site, commands, playbooks=load_playbooks(site), values=cache.value, vault=Vault(Path(tmp) / "data")
        )
        server = CityServer(site, commands, "127.0.0.1", 0, incident_handler=service)
        objects = IncidentObjects(server, service)
        client: Client | None = None
        try:
            await server.start()
            router.add_sink("address-space", server.writer.apply)
            await objects.start()
            await service.start()
            await driver.start()
            await driver.poll_all()  # every device read once: the states before are known
            client = Client(server.endpoint_url, timeout=30, watchdog_intervall=60.0)
            await client.connect()
            ns = await client.get_namespace_index(NAMESPACE_URI)
            timing.setup_s = time.perf_counter() - setup
            if not quiet:
                print(f"{site.name}: simulators + control stack ready in {timing.setup_s:.1f} s", flush=True)
            for number in range(1, trials + 1):
                trial = await one_trial(client, ns, service, cache, site, lat, lon)
                timing.trials.append(trial)
                if not quiet:
                    print(
                        f"  trial {number}: {trial.devices} devices ({trial.signs} signs, {trial.controllers} "
                        f"controllers), all confirmed {trial.response_s:.3f} s after the report (client saw it at "
                        f"{trial.client_s:.3f} s), per device median {statistics.median(trial.per_device_s):.3f} s "
                        f"max {max(trial.per_device_s):.3f} s, signs verified {trial.verified}/{trial.signs}, "
                        f"failed {trial.failed}, close {trial.close_s:.3f} s",
                        flush=True,
                    )
                await asyncio.sleep(1.0)
        finally:
            if client is not None:
                with contextlib.suppress(Exception):
                    await client.disconnect()
            await service.stop()
            await driver.stop()
            await objects.stop()
            await server.stop()
            await stop_child(child)
    return timing


async def one_trial(
    client: Client, ns: int, service: IncidentService, cache: TagCache, site: Site, lat: float, lon: float
) -> Trial:
    """ReportIncident, wait for every device, check the signs, CloseIncident."""
    incidents = client.get_node(string_nodeid("Incidents", ns))
    seen = _Seen()
    started = time.perf_counter()
    incident_id = await incidents.call_method(
        string_nodeid("Incidents/ReportIncident", ns),
        ua.Variant("accident", ua.VariantType.String),
        ua.Variant(lat, ua.VariantType.Double),
        ua.Variant(lon, ua.VariantType.Double),
        ua.Variant("benchmark: two cars, lane blocked", ua.VariantType.String),
        ua.Variant("bench@example.org", ua.VariantType.String),
    )
    call_s = time.perf_counter() - started
    subscription = await client.create_subscription(50, seen)
    await subscription.subscribe_data_change(
        [client.get_node(string_nodeid(f"Incidents/{incident_id}/ResponseSeconds", ns))], queuesize=1
    )
    record = service.get(incident_id)
    async with asyncio.timeout(30):
        await service.wait_settled(incident_id)
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(5):
            await seen.good.wait()
    client_s = (seen.at - started) if seen.good.is_set() else float("nan")
    actions = record.device_actions()
    per_device = [(a.confirmed_at - record.reported_at).total_seconds() for a in actions if a.confirmed_at is not None]
    signs = [a for a in actions if a.kind is ActionKind.SIGN]
    verified = sum(
        1
        for a in signs
        if a.command is not None
        and cache.value(f"{site.signs[a.device_id or ''].path}/Message") == a.command.args["Text"]
    )
    await subscription.delete()
    closing = time.perf_counter()
    await incidents.call_method(
        string_nodeid("Incidents/CloseIncident", ns), ua.Variant(incident_id, ua.VariantType.String)
    )
    close_s = time.perf_counter() - closing
    response = record.response_seconds
    return Trial(
        devices=len(actions),
        signs=len(signs),
        controllers=sum(1 for a in actions if a.kind is ActionKind.TRAFFIC),
        response_s=response if response is not None else float("nan"),
        client_s=client_s,
        call_s=call_s,
        per_device_s=per_device or [float("nan")],
        verified=verified,
        close_s=close_s,
        failed=len(record.failed),
    )


def summary_line(timing: IncidentTiming) -> str:
    """One line: ReportIncident -> every playbook device confirming on the site, against the 3 s goal."""
    trials = timing.trials
    if not trials:
        return f"ReportIncident -> every device confirmed ({timing.site}): no trial ran"
    responses = [t.response_s for t in trials]
    devices = [d for t in trials for d in t.per_device_s]
    worst = max(responses)
    verdict = "OK" if worst <= GOAL_S and all(t.failed == 0 for t in trials) else "MISSED"
    return (
        f"ReportIncident -> every device confirmed ({timing.site}, {trials[0].devices} devices: {trials[0].signs} signs, "
        f"{trials[0].controllers} controllers): median {statistics.median(responses):.3f} s, max {worst:.3f} s over "
        f"{len(trials)} trials (goal <= {GOAL_S:g} s: {verdict}); per device median {statistics.median(devices):.3f} s, "
        f"max {max(devices):.3f} s; client saw ResponseSeconds at median "
        f"{statistics.median(t.client_s for t in trials):.3f} s"
    )


def main() -> None:
    """Parse the arguments, run, print."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--site", type=Path, default=ROOT / "config" / "dijon")
    parser.add_argument(
        "--bind", choices=("site", "free"), default="site", help="simulator ports (default: the site's)"
    )
    parser.add_argument("--trials", type=int, default=5)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("asyncua").setLevel(logging.ERROR)  # subscription revision notices
    timing = asyncio.run(measure(args.site, bind=args.bind, trials=args.trials))
    print(summary_line(timing))


if __name__ == "__main__":
    main()
