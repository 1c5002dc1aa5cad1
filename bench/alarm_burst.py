"""Benchmark: a burst of alarm conditions (a district blackout) reaching a subscribed OPC UA client.

A CityServer of the Dijon site (config/dijon) with the alarm engine and its Part 9 conditions; an asyncua client
in another process (its own core, as a control-room console would be) subscribes to events of the Server object
with an EventFilter built from AlarmConditionType (its where clause keeps the AlarmConditionType subtypes):

- "console" filter: the 16 fields an alarm list shows (EventId, EventType, SourceName, Time, Message, Severity,
  ConditionName, ConditionId, Retain, Active/Acked/Confirmed/Suppressed ids, ShelvingState, Quality, Comment);
- "full" filter: every field asyncua derives from AlarmConditionType (85 select clauses).

1. Flood suppression OFF: LampFailure goes True on 10,000 lamps at once (100 cabinets x 100 lamps, one batch per
   cabinet as the pollers publish them, value path + alarm engine as the router feeds them). Measured: time from
   the first record to the client holding an event of every one of the 10,000 sources (unique SourceName),
   nothing lost, and the CPU time of the server and of the client process.
2. Flood suppression ON (the site's configuration): the same cabinets report MainsFailure and their lamps
   LampFailure; what the client receives: one event per cabinet whose message counts the suppressed lamp alarms,
   no lamp event.

Usage: .venv/bin/python bench/alarm_burst.py [--site config/dijon] [--count 10000] [--fields console|full|both]
`measure_alarm_burst(site, count, flood=..., fields=...)` is what bench/operations.py calls.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

SCRIPT = Path(__file__).resolve()
ROOT = SCRIPT.parents[1]
sys.path.insert(0, str(ROOT))

CONSOLE_FIELDS = (
    "EventId",
    "EventType",
    "SourceName",
    "Time",
    "Message",
    "Severity",
    "ConditionName",
    "Retain",
    "ActiveState/Id",
    "AckedState/Id",
    "ConfirmedState/Id",
    "ShelvingState/CurrentState",
    "SuppressedState/Id",
    "Quality",
    "Comment",
)


@dataclass
class BurstResult:
    """What one burst measured."""

    scenario: str
    conditions: int  # alarms raised in the field
    received_events: int  # condition events the client received
    unique_sources: int  # distinct SourceName among them
    lamp_events: int
    cabinet_events: int
    seconds_to_client: float  # first record fed -> last expected event received by the client
    feed_seconds: float  # time to push the records through the value path and the engine
    server_cpu_seconds: float
    client_cpu_seconds: float  # the client process, from its subscription made to its last event
    select_clauses: int
    sample_messages: list[str]
    lost: int


# -- the client process ----------------------------------------------------------------------------------------


async def run_client(url: str, expect: int, fields: str, quiet_s: float, timeout_s: float) -> dict[str, Any]:
    """Subscribe to condition events; return what was received (until `expect` sources, or quiet_s of silence)."""
    from asyncua import Client, ua
    from asyncua.common.events import get_filter_from_event_type

    received: list[tuple[float, str, str]] = []
    cpu_ready = time.process_time()
    sources: set[str] = set()
    done = asyncio.Event()
    last_at = [time.time()]

    class Handler:
        def event_notification(self, event: Any) -> None:
            now = time.time()
            name = getattr(event, "SourceName", None) or ""
            message = getattr(event, "Message", None)
            received.append((now, name, message.Text if message is not None else ""))
            sources.add(name)
            last_at[0] = now
            if expect and len(sources) >= expect:
                done.set()

    client = Client(url, timeout=60, watchdog_intervall=120.0)
    await client.connect()
    try:
        alarm_type = client.get_node(ua.NodeId(ua.ObjectIds.AlarmConditionType))
        evfilter = await get_filter_from_event_type([alarm_type])
        if fields == "console":
            wanted = set(CONSOLE_FIELDS)
            evfilter.SelectClauses = [
                clause
                for clause in evfilter.SelectClauses
                if "/".join(q.Name for q in clause.BrowsePath) in wanted or not clause.BrowsePath
            ]
        sub = await client.create_subscription(
            ua.CreateSubscriptionParameters(
                RequestedPublishingInterval=100,
                RequestedLifetimeCount=6000,
                RequestedMaxKeepAliveCount=50,
                MaxNotificationsPerPublish=0,
                PublishingEnabled=True,
                Priority=0,
            ),
            Handler(),
        )
        await sub.subscribe_events(ua.ObjectIds.Server, ua.ObjectIds.AlarmConditionType, evfilter, queuesize=0)
        print(json.dumps({"ready": True, "select_clauses": len(evfilter.SelectClauses)}), flush=True)
        cpu_ready = time.process_time()
        deadline = time.time() + timeout_s
        while time.time() < deadline:
            if expect:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(done.wait(), 0.2)
                if done.is_set():
                    break
            else:
                await asyncio.sleep(0.2)
                if received and time.time() - last_at[0] > quiet_s:
                    break
    finally:
        with contextlib.suppress(Exception):
            await client.disconnect()
    return {
        "events": len(received),
        "unique": len(sources),
        "first": received[0][0] if received else None,
        "last": received[-1][0] if received else None,
        "lamp_events": sum(1 for _, name, _ in received if name.startswith("L-")),
        "cabinet_events": sum(1 for _, name, _ in received if name.startswith("CAB-")),
        "messages": [message for _, name, message in received if name.startswith("CAB-")][:3],
        "cpu": time.process_time() - cpu_ready,
    }


def client_main(argv: list[str]) -> int:
    """Entry point of the client process."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--client", required=True)
    parser.add_argument("--expect", type=int, default=0)
    parser.add_argument("--fields", default="full")
    parser.add_argument("--quiet", type=float, default=3.0)
    parser.add_argument("--timeout", type=float, default=120.0)
    args = parser.parse_args(argv)
    result = asyncio.run(run_client(args.client, args.expect, args.fields, args.quiet, args.timeout))
    print(json.dumps({"result": result}), flush=True)
    return 0


# -- the server side -------------------------------------------------------------------------------------------


async def _start_client(url: str, expect: int, fields: str) -> tuple[asyncio.subprocess.Process, dict[str, Any]]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        str(SCRIPT),
        "--client",
        url,
        "--expect",
        str(expect),
        "--fields",
        fields,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    assert proc.stdout is not None
    line = await asyncio.wait_for(proc.stdout.readline(), 60)
    return proc, json.loads(line)


async def _client_result(proc: asyncio.subprocess.Process) -> dict[str, Any]:
    assert proc.stdout is not None
    while True:
        line = await asyncio.wait_for(proc.stdout.readline(), 180)
        if not line:
            raise RuntimeError("the client process ended without a result")
        message = json.loads(line)
        if "result" in message:
            await proc.wait()
            return dict(message["result"])


def blackout(site: Any, count: int, *, mains: bool) -> list[list[Any]]:
    """Poll batches of a blackout: per cabinet (in site order) its lamps' LampFailure (and its MainsFailure)."""
    from scada.model import Quality, ValueRecord, utcnow

    batches: list[list[Any]] = []
    left = count
    now = utcnow()
    for cabinet in site.cabinets.values():
        if left <= 0:
            break
        lamps = cabinet.lamps[:left]
        left -= len(lamps)
        batch = [ValueRecord(f"{cabinet.path}/MainsFailure", True, Quality.GOOD, now)] if mains else []
        batch.extend(ValueRecord(f"{lamp.path}/LampFailure", True, Quality.GOOD, now) for lamp in lamps)
        batches.append(batch)
    return batches


async def measure_alarm_burst(
    site: Any, count: int = 10_000, *, flood: bool = False, fields: str = "console", coalesce_ms: float = 100.0
) -> BurstResult:
    """One burst on a fresh server: `count` lamp failures (flood off) or cabinet mains failures (flood on).

    `fields`: "console" (16 select clauses) or "full" (the 85 of AlarmConditionType). The server, its engine and
    the client process are started and stopped here; the figures are in the BurstResult.
    """
    from scada.alarms import AlarmEngine, load_alarms_config
    from scada.alarms.config import FloodConfig
    from scada.commands import CommandService
    from scada.opcua import CityServer
    from scada.opcua.conditions import OpcUaConditions
    from scada.router import TagRouter

    config = load_alarms_config(site)
    if not flood:
        config = replace(config, flood=FloodConfig(suppress_children_on=frozenset()))
    config = replace(config, coalesce_ms=coalesce_ms)
    server = CityServer(site, CommandService(site), "127.0.0.1", 0)
    await server.start()
    engine = AlarmEngine(site, config)
    conditions = OpcUaConditions(server, engine)
    router = TagRouter()
    router.add_sink("address-space", server.writer.apply)
    router.add_sink("alarms", engine)
    proc = None
    try:
        await engine.start()
        await conditions.start()
        batches = blackout(site, count, mains=flood)
        cabinets = len(batches)
        expect = count if not flood else 0
        proc, ready = await _start_client(server.endpoint_url, expect, fields)
        cpu0 = time.process_time()
        t0 = time.time()
        for batch in batches:
            router.publish(batch)
            await asyncio.sleep(0)  # pollers publish from their own tasks
        feed = time.time() - t0
        result = await _client_result(proc)
        proc = None
        cpu = time.process_time() - cpu0
        seconds = (result["last"] - t0) if result["last"] else float("nan")
        expected_sources = count if not flood else cabinets
        return BurstResult(
            scenario=(
                f"flood suppression OFF: lamp failures ({fields} filter)"
                if not flood
                else f"flood suppression ON: mains failures ({fields} filter)"
            ),
            conditions=count + (cabinets if flood else 0),
            received_events=result["events"],
            unique_sources=result["unique"],
            lamp_events=result["lamp_events"],
            cabinet_events=result["cabinet_events"],
            seconds_to_client=seconds,
            feed_seconds=feed,
            server_cpu_seconds=cpu,
            client_cpu_seconds=result["cpu"],
            select_clauses=ready["select_clauses"],
            sample_messages=result["messages"],
            lost=max(0, expected_sources - result["unique"]),
        )
    finally:
        if proc is not None and proc.returncode is None:
            proc.kill()
            await proc.wait()
        await conditions.stop()
        await engine.stop()
        await server.stop()
        # the builder and the conditions froze the server's objects out of the collector's way: give them back
        gc.unfreeze()
        gc.collect()


def load(site_arg: str) -> tuple[Any, str]:
    """The site to use and where it comes from."""
    from scada.site.loader import load_site

    folder = ROOT / site_arg
    return load_site(folder), str(site_arg)


async def main(site_arg: str, count: int, fields: tuple[str, ...]) -> None:
    """Run the scenarios and print the figures."""
    site, origin = load(site_arg)
    lamps = sum(len(c.lamps) for c in site.cabinets.values())
    print(f"site: {origin} ({lamps} lamps in {len(site.cabinets)} cabinets)")
    for which in fields:
        result = await measure_alarm_burst(site, count, flood=False, fields=which)
        print_result(result, goal_s=5.0)
    print_result(await measure_alarm_burst(site, count, flood=True, fields=fields[0]), goal_s=None)


def print_result(result: BurstResult, goal_s: float | None) -> None:
    """Print one scenario."""
    print(f"\n{result.scenario}")
    print(f"  alarms raised in the field        {result.conditions}")
    print(f"  select clauses of the client      {result.select_clauses}")
    print(f"  events received by the client     {result.received_events}")
    print(f"  distinct sources received         {result.unique_sources} (lost: {result.lost})")
    print(f"  lamp / cabinet events             {result.lamp_events} / {result.cabinet_events}")
    verdict = (
        ""
        if goal_s is None
        else f"  (goal <= {goal_s:g} s: {'met' if result.seconds_to_client <= goal_s else 'MISSED'})"
    )
    print(f"  first record -> last event        {result.seconds_to_client:.2f} s{verdict}")
    print(f"  feeding the records               {result.feed_seconds * 1000:.0f} ms")
    print(f"  server CPU during the burst       {result.server_cpu_seconds:.2f} s")
    print(f"  client CPU during the burst       {result.client_cpu_seconds:.2f} s")
    for message in result.sample_messages:
        print(f"  e.g. {message}")


if __name__ == "__main__":
    if "--client" in sys.argv:
        sys.exit(client_main(sys.argv[1:]))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--site", default="config/dijon")
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument(
        "--fields",
        choices=("console", "full", "both"),
        default="both",
        help="the client's select clauses: 16 console fields, the 85 of AlarmConditionType, or both runs",
    )
    arguments = parser.parse_args()
    chosen = ("console", "full") if arguments.fields == "both" else (arguments.fields,)
    asyncio.run(main(arguments.site, arguments.count, chosen))
