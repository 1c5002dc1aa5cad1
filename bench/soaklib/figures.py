"""The soak's figures and checks: produced against stored samples, alarms against expected, CPU/RSS, latency.

Samples, defined precisely: a sample is *produced* when the historian accepts a value record after its
by-exception filter (server_proc's probe logs it: tag, source timestamp in µs, value, text, quality). It is
*stored* when the samples table holds a row with that tag and timestamp. At the end, after the last outage was
replayed from the journal and the historian flushed:
- lost = produced (tag, ts) keys with no row;
- duplicated = rows beyond one per key (the primary key forbids it; counted anyway from count(*) against the
  distinct keys) plus produced keys logged more than once;
- altered = rows whose value, text or quality differ from what was produced;
- unexplained = rows in the table that were never produced.
Events: rows beyond one per exactly-once uid are duplicates.
"""

from __future__ import annotations

import json
import statistics
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text

from bench.soaklib.faults import Fault


@dataclass
class SampleCheck:
    """Produced against stored samples."""

    produced_rows: int = 0
    produced_keys: int = 0
    produced_twice: int = 0
    stored: int = 0
    lost: int = 0
    duplicated: int = 0
    altered: int = 0
    unexplained: int = 0
    events: int = 0
    event_duplicates: int = 0
    examples: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.lost or self.duplicated or self.altered or self.unexplained or self.event_duplicates)


def _same(a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return a is b
    return a == b or abs(a - b) <= 1e-9 * max(1.0, abs(a))


def check_samples(produced_file: Path, url: str) -> SampleCheck:
    """Compare the producer's log with the samples table (the whole table: the database is the run's own)."""
    check = SampleCheck()
    produced: dict[tuple[str, int], tuple[Any, Any, int]] = {}
    with produced_file.open(encoding="utf-8") as lines:
        for line in lines:
            tag, ts, value, txt, quality = json.loads(line)
            check.produced_rows += 1
            key = (tag, ts)
            if key in produced:
                check.produced_twice += 1
            produced[key] = (value, txt, quality)
    check.produced_keys = len(produced)
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                text("SELECT t.name, s.ts, s.value, s.text, s.quality FROM samples s JOIN tags t ON t.id = s.tag_id")
            )
            seen: set[tuple[str, int]] = set()
            for name, ts, value, txt, quality in rows:
                check.stored += 1
                key = (name, ts)
                if key in seen:
                    check.duplicated += 1
                    continue
                seen.add(key)
                expected = produced.get(key)
                if expected is None:
                    check.unexplained += 1
                    if len(check.examples) < 10:
                        check.examples.append(f"unexplained {name} @ {ts}")
                elif not (_same(expected[0], value) and expected[1] == txt and expected[2] == quality):
                    check.altered += 1
                    if len(check.examples) < 10:
                        check.examples.append(f"altered {name} @ {ts}: {expected} != {(value, txt, quality)}")
            missing = [key for key in produced if key not in seen]
            check.lost = len(missing)
            check.examples.extend(f"lost {name} @ {ts}" for name, ts in missing[:10])
            check.events = int(conn.execute(text("SELECT count(*) FROM events")).scalar_one())
            distinct = conn.execute(text("SELECT count(DISTINCT uid) FROM events WHERE uid IS NOT NULL")).scalar_one()
            with_uid = conn.execute(text("SELECT count(*) FROM events WHERE uid IS NOT NULL")).scalar_one()
            check.event_duplicates = int(with_uid) - int(distinct)
    finally:
        engine.dispose()
    check.duplicated += check.produced_twice
    return check


@dataclass
class AlarmCheck:
    """Alarm transitions against the injected faults."""

    expected: int = 0
    raised: int = 0
    cleared: int = 0
    missing: list[str] = field(default_factory=list)
    not_cleared: list[str] = field(default_factory=list)
    unexpected: Counter[str] = field(default_factory=Counter)
    startup: Counter[str] = field(default_factory=Counter)  # transitions before the first fault (warm-up)
    by_condition: Counter[str] = field(default_factory=Counter)

    @property
    def ok(self) -> bool:
        return not self.missing and not self.not_cleared


# Conditions the living city raises by itself (cars fill the car parks; presence boosts are not alarms).
NATURAL = {"CarParkFull"}


def check_alarms(url: str, faults: list[Fault], slack_s: float = 5.0) -> AlarmCheck:
    """Each injected fault must have raised its conditions on its device during the fault and cleared them after.

    Transitions before the first fault (the warm-up: server start, consoles subscribing) are counted apart in
    `startup`; any other transition that no fault explains (and that the living city does not make) is unexpected.
    """
    check = AlarmCheck()
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                text("SELECT ts, source, condition, state FROM events WHERE condition IS NOT NULL ORDER BY ts")
            ).all()
    finally:
        engine.dispose()
    transitions = [(ts / 1e6, source, condition, state) for ts, source, condition, state in rows]
    explained: set[int] = set()
    first = min((f.started for f in faults if f.started is not None), default=float("inf"))
    for fault in faults:
        if fault.started is None or not fault.expects:
            continue
        end = (fault.ended or fault.started + fault.duration_s) + 60.0
        for condition in fault.expects:
            check.expected += 1
            label = f"{condition} on {fault.path} ({fault.kind} at +{fault.at_s:.0f} s)"
            raised = [
                i for i, (ts, src, cond, state) in enumerate(transitions)
                if src == fault.path and cond == condition and state == "raised" and fault.started - slack_s <= ts <= end
            ]  # fmt: skip
            cleared = [
                i for i, (ts, src, cond, state) in enumerate(transitions)
                if src == fault.path and cond == condition and state == "cleared" and fault.started - slack_s <= ts <= end + 60
            ]  # fmt: skip
            if raised:
                check.raised += 1
            else:
                check.missing.append(label)
            if cleared:
                check.cleared += 1
            else:
                check.not_cleared.append(label)
            explained.update(raised + cleared)
    raised_early: set[tuple[str, str]] = set()
    for i, (ts, source, condition, state) in enumerate(transitions):
        check.by_condition[f"{condition} {state}"] += 1
        if i in explained or state not in ("raised", "cleared"):
            continue
        if ts < first - slack_s or (state == "cleared" and (source, condition) in raised_early):
            check.startup[f"{condition} {state}"] += 1
            raised_early.add((source, condition))
        else:
            check.unexpected[
                f"{condition} {state} {source}" if condition not in NATURAL else f"{condition} {state}"
            ] += 1
    return check


def percentile(values: list[float], q: float) -> float:
    """The q-quantile (0..1) by nearest rank (0 for no values)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def latency_summary(latencies: list[float]) -> dict[str, float]:
    """Median, p99, max and count of notification latencies (ms)."""
    if not latencies:
        return {"count": 0, "median_ms": 0.0, "p99_ms": 0.0, "max_ms": 0.0}
    return {
        "count": len(latencies),
        "median_ms": statistics.median(latencies) * 1e3,
        "p99_ms": percentile(latencies, 0.99) * 1e3,
        "max_ms": max(latencies) * 1e3,
    }


def rss_growth(samples: list[dict[str, Any]], process: str, from_s: float) -> dict[str, float]:
    """RSS of a process at `from_s` (median of the minute after it) and at the end (median of the last minute)."""
    points = [(s["elapsed_s"], s[process]["rss_mb"]) for s in samples if process in s]
    if not points:
        return {"start_mb": 0.0, "end_mb": 0.0, "growth_pct": 0.0, "max_mb": 0.0}
    end_t = points[-1][0]
    start_from = min(from_s, max(0.0, end_t * 0.4))  # short runs: the window starts at 40 % of the run
    first = [rss for t, rss in points if start_from <= t < start_from + 60.0] or [points[0][1]]
    last = [rss for t, rss in points if t >= end_t - 60.0]
    start_mb, end_mb = statistics.median(first), statistics.median(last)
    return {
        "from_s": start_from,
        "start_mb": start_mb,
        "end_mb": end_mb,
        "growth_pct": 100.0 * (end_mb - start_mb) / start_mb if start_mb else 0.0,
        "max_mb": max(rss for _t, rss in points),
    }
