"""The soak report: markdown for people, with the raw figures beside it (JSON, and the timeline as CSV)."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any


def _mb(value: float) -> str:
    return f"{value:,.0f} MB"


def markdown(data: dict[str, Any]) -> str:
    """The report of one soak run."""
    rss, poll, notes = data["rss"], data["poll"], data["notifications"]
    samples, alarms, errors = data["samples"], data["alarms"], data["errors"]
    historian, cpu, cpu_max = data["historian_final"], data["cpu_pct_mean"], data["cpu_pct_max"]
    machine = data["machine"]
    final = poll.get("final", {})
    lat = notes["latency"]
    lines = [
        f"# Soak run {data['started']}: {data['site']}, {data['minutes']:g} minutes, historian {data['historian']}",
        "",
        f"**Result: {'PASSED' if data['passed'] else 'FAILED'}**"
        + ("" if data["passed"] else " — " + "; ".join(data["failures"])),
        "",
        f"Machine: {machine['cpus']} cores shared with other work; load average {machine['load_avg_mean']:.2f} on "
        f"average, {machine['load_avg_max']:.2f} at most during the run. CPU is % of one core.",
        "",
        "| figure | value | goal |",
        "|---|---|---|",
        f"| server RSS, from {rss['server'].get('from_s', 0) / 60:.1f} min to the end | {_mb(rss['server']['start_mb'])} → "
        f"{_mb(rss['server']['end_mb'])} ({rss['server']['growth_pct']:+.2f} %), peak {_mb(rss['server']['max_mb'])} | < 5 % |",
        f"| simulators RSS, same window | {_mb(rss['simulators']['start_mb'])} → {_mb(rss['simulators']['end_mb'])} "
        f"({rss['simulators']['growth_pct']:+.2f} %) | — |",
        f"| CPU mean (max): server / simulators / soak clients | {cpu['server']:.0f} % ({cpu_max['server']:.0f} %) / "
        f"{cpu['simulators']:.0f} % ({cpu_max['simulators']:.0f} %) / {cpu['soak']:.0f} % ({cpu_max['soak']:.0f} %) | — |",
        f"| poll cycle after warm-up, last cycle of each device (median / worst p99 / max) | {poll['last_cycle_median_s'] * 1e3:.0f} ms / "
        f"{poll['last_cycle_p99_s_worst'] * 1e3:.0f} ms / {poll['last_cycle_max_s'] * 1e3:.0f} ms | — |",
        f"| poll totals | {final.get('cycles', 0):,} cycles, {final.get('failed_cycles', 0):,} failed, "
        f"{final.get('reads', 0):,} reads ({final.get('reads_per_s', 0):.0f}/s), {final.get('errors', 0):,} errors | — |",
        f"| notification latency, source timestamp → console ({notes['consoles']} consoles × "
        f"{notes['items_per_console']:,} items) | median {lat['median_ms']:.0f} ms, p99 {lat['p99_ms']:.0f} ms, max "
        f"{lat['max_ms']:.0f} ms ({lat['count']:,} notifications) | — |",
        f"| samples produced / stored | {samples['produced_keys']:,} / {samples['stored']:,} | equal |",
        f"| samples lost / duplicated / altered / unexplained | {samples['lost']} / {samples['duplicated']} / "
        f"{samples['altered']} / {samples['unexplained']} | 0 |",
        f"| journal during outages: journaled / replayed / rejected | {historian.get('journaled', 0):,} / "
        f"{historian.get('replayed', 0):,} / {historian.get('rejected', 0)} | replayed = journaled, 0 rejected |",
        f"| events stored (duplicates) | {samples['events']:,} ({samples['event_duplicates']}) | 0 duplicates |",
        f"| unhandled exceptions: ERROR records / loop handler | {errors['logged']} / {errors['loop_exceptions']} | 0 |",
        f"| alarms expected / raised / cleared | {alarms['expected']} / {alarms['raised']} / {alarms['cleared']} | all |",
        f"| event-loop lag of the server, max after warm-up (during start-up) | {data['loop_lag_ms_max']:.0f} ms "
        f"({data['loop_lag_ms_max_startup']:.0f} ms) | — |",
        "",
        "## Faults injected",
        "",
        "| at | fault | target | lasting | expects |",
        "|---|---|---|---|---|",
    ]
    for fault in data["faults"]:
        lines.append(
            f"| +{fault['at_s']:.0f} s | {fault['kind']} | {fault['target'] or '—'} | "
            f"{fault['duration_s']:.0f} s | {', '.join(fault['expects']) or '—'} |"
        )
    third = data["third_party"]
    lines += [
        "",
        "## Alarm transitions stored",
        "",
        ", ".join(f"{k}: {v}" for k, v in sorted(alarms["transitions"].items())) or "none",
        "",
        f"Not injected, after the warm-up (the living city): {alarms['unexpected'] or 'none'}.",
        "",
        f"During the warm-up (server start, consoles subscribing; not asserted): {alarms['startup'] or 'none'}.",
        "",
        "## Third-party client",
        "",
        f"Succeeded: {third['ok']}; failed: {third['failed']} ({third['history_values']:,} history values read). "
        "Failures are expected while the device commanded is killed or the database is away:",
        "",
        *[f"- `{line}`" for line in third["failures"][:10]],
        "",
        "## Server errors",
        "",
        *([f"- `{m}`" for m in errors["messages"]] or ["none"]),
        "",
        "## Run log",
        "",
        "```",
        *data["events"],
        "```",
        "",
    ]
    return "\n".join(lines)


def write(data: dict[str, Any], stem: Path) -> list[Path]:
    """Write <stem>.md, <stem>.json (every figure) and <stem>.csv (the CPU/RSS timeline); returns the paths."""
    stem.parent.mkdir(parents=True, exist_ok=True)
    md, raw, timeline = stem.with_suffix(".md"), stem.with_suffix(".json"), stem.with_suffix(".csv")
    md.write_text(markdown(data), encoding="utf-8")
    stats = data["server_stats"]
    thinned = {**data, "server_stats": stats[::6] if len(stats) > 120 else stats}  # every 30 s on long runs
    raw.write_text(json.dumps(thinned, separators=(",", ":"), default=str) + "\n", encoding="utf-8")
    with timeline.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(["elapsed_s", "load", "server_cpu_pct", "server_rss_mb", "sim_cpu_pct", "sim_rss_mb"])
        for s in data["timeline"]:
            server, sim = s.get("server", {}), s.get("simulators", {})
            writer.writerow([f"{s['elapsed_s']:.1f}", f"{s['load']:.2f}", server.get("cpu_pct", ""),
                             f"{server.get('rss_mb', 0):.1f}", sim.get("cpu_pct", ""), f"{sim.get('rss_mb', 0):.1f}"])  # fmt: skip
    return [md, raw, timeline]
