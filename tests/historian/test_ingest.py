"""Storage by exception: deadbands (absolute, percent, per pattern), quality changes, max interval, sweep."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pytest

from historian.ingest import Deadband, SampleFilter, SampleRow, TagResolver, catalog_spec
from historian.schema import from_us, to_us
from scada.model import Quality, ValueRecord

T0 = datetime(2026, 1, 1, tzinfo=UTC)
LEVEL = "Lighting/CAB-0001/L-000001/Level"  # catalog deadband 1.0 %
POWER = "Lighting/CAB-0001/L-000001/PowerW"  # catalog deadband 0.5 W, EU range 0..1000
ON = "Lighting/CAB-0001/L-000001/On"
MESSAGE = "Signs/VMS-01/Message"
COUNT = "Lighting/CAB-0001/L-000001/PresenceCount"  # not historized
BAD = int(Quality.BAD_COMM)


def rec(tag: str, value: object, seconds: float, quality: int = 0) -> ValueRecord:
    """A record at T0 + seconds."""
    return ValueRecord(tag, value, quality, T0 + timedelta(seconds=seconds))


def run(flt: SampleFilter, records: list[ValueRecord]) -> list[SampleRow]:
    """Filter records one by one (as separate submits) and return the kept rows."""
    out: list[SampleRow] = []
    for record in records:
        flt.filter([record], out)
    return out


def values(rows: list[SampleRow]) -> list[object]:
    """The stored values (value or text)."""
    return [row[2] if row[3] is None else row[3] for row in rows]


def test_catalog_decides_what_is_historized_and_its_class() -> None:
    resolver = TagResolver()
    assert resolver.resolve(LEVEL).historized and resolver.resolve(LEVEL).tag_class == "lamp"
    assert resolver.resolve("Lighting/CAB-0001/EnergyKWh").tag_class == "cabinet"
    assert resolver.resolve("Parking/PK-01/PS-01-0001/Occupied").tag_class == "parking_sensor"
    assert resolver.resolve("Parking/PK-01/Free").tag_class == "parking_site"
    assert resolver.resolve("Traffic/TLC-001/Stage").dtype == "UInt16"
    assert not resolver.resolve(COUNT).historized
    assert not resolver.resolve("Signs/VMS-01/Luminance").historized
    assert not resolver.resolve("Energy/LightingPowerKW").historized
    assert catalog_spec("Lighting/CAB-0001/L-1/Nope") is None
    info = resolver.register("Energy/LightingPowerKW", tag_class="energy", unit="kW", deadband=Deadband(0.5))
    assert info.historized and resolver.resolve("Energy/LightingPowerKW").threshold == 0.5


def test_absolute_deadband_from_the_catalog() -> None:
    flt = SampleFilter(TagResolver())
    kept = run(flt, [rec(LEVEL, v, i) for i, v in enumerate([50.0, 50.5, 51.0, 51.01, 50.5, 49.9, 52.0])])
    # 50 stored; 50.5 and 51.0 within 1.0 of 50; 51.01 beyond; 50.5 within of 51.01; 49.9 beyond (1.11); 52 beyond
    assert values(kept) == [50.0, 51.01, 49.9, 52.0]
    assert flt.counters.received == 7 and flt.counters.filtered == 3 and flt.counters.accepted == 4


def test_percent_deadband_per_pattern_first_match_wins() -> None:
    resolver = TagResolver({"*/PowerW": Deadband(percent=1.0), "*": Deadband(absolute=100.0)})
    assert resolver.resolve(POWER).threshold == pytest.approx(10.0)  # 1 % of 0..1000 W
    assert resolver.resolve(LEVEL).threshold == 100.0
    flt = SampleFilter(resolver)
    kept = run(flt, [rec(POWER, v, i) for i, v in enumerate([100.0, 109.0, 110.5, 120.0, 121.0])])
    assert values(kept) == [100.0, 110.5, 121.0]


def test_quality_change_always_stored_even_with_the_last_good_timestamp() -> None:
    now = {"us": to_us(T0 + timedelta(seconds=100))}
    flt = SampleFilter(TagResolver(), clock=lambda: now["us"])
    kept = run(
        flt,
        [
            rec(LEVEL, 50.0, 0),
            rec(LEVEL, 50.0, 0, BAD),  # the driver's Bad value stamped with the last good (= stored) time
            rec(LEVEL, 50.0, 0, BAD),  # same again: nothing new
            rec(LEVEL, 50.0, 150),  # Good again, same value
            rec(LEVEL, 50.2, 160),  # within deadband
            rec(LEVEL, 50.2, 160, BAD),  # Bad stamped with a last good time that was not stored: kept as is
        ],
    )
    assert [(row[1], row[4]) for row in kept] == [
        (to_us(T0), 0),
        (now["us"], BAD),  # moved to the receive time: (tag, ts) must not collide with the Good sample
        (to_us(T0 + timedelta(seconds=150)), 0),
        (to_us(T0 + timedelta(seconds=160)), BAD),
    ]


def test_booleans_and_strings_on_change_and_stale_values_dropped() -> None:
    flt = SampleFilter(TagResolver())
    kept = run(flt, [rec(ON, v, i) for i, v in enumerate([False, False, True, True, False])])
    assert values(kept) == [0.0, 1.0, 0.0]
    kept = run(flt, [rec(MESSAGE, m, i) for i, m in enumerate(["A", "A", "B\nC", "B\nC"])])
    assert values(kept) == ["A", "B\nC"]
    assert run(flt, [rec(MESSAGE, "Z", 1)]) == []  # older than the last stored: stale
    assert run(flt, [rec(COUNT, 5, 10)]) == [] and flt.counters.not_historized == 1


def test_nan_is_a_change_both_ways() -> None:
    flt = SampleFilter(TagResolver())
    kept = run(flt, [rec(POWER, v, i) for i, v in enumerate([10.0, math.nan, math.nan, 10.0])])
    value = kept[1][2]
    assert len(kept) == 3 and value is not None and math.isnan(value)


def test_max_interval_stores_an_unchanged_value() -> None:
    flt = SampleFilter(TagResolver(), max_interval_s=60)
    kept = run(flt, [rec(LEVEL, 50.0, s) for s in (0, 30, 59, 60, 61, 119, 120)])
    assert [from_us(row[1]) - T0 for row in kept] == [timedelta(0), timedelta(seconds=60), timedelta(seconds=120)]


def test_sweep_stores_the_held_value_of_silent_tags() -> None:
    now = {"us": to_us(T0)}
    flt = SampleFilter(TagResolver(), max_interval_s=60, clock=lambda: now["us"])
    run(flt, [rec(LEVEL, 50.0, 0), rec(LEVEL, 50.4, 10), rec(ON, True, 0)])  # 50.4 held (within deadband)
    out: list[SampleRow] = []
    now["us"] = to_us(T0 + timedelta(seconds=59))
    assert flt.sweep(out) == 0
    now["us"] = to_us(T0 + timedelta(seconds=61))
    assert flt.sweep(out) == 2
    # Level: the held record itself (real timestamp); On: nothing newer was seen, so the value again at now
    assert sorted((row[0], row[1], row[2]) for row in out) == sorted(
        [(LEVEL, to_us(T0 + timedelta(seconds=10)), 50.4), (ON, now["us"], 1.0)]
    )
    out.clear()
    now["us"] = to_us(T0 + timedelta(seconds=100))
    assert flt.sweep(out) == 1  # Level, stored again at 10 s, is due at 70 s: its value again, at now
    assert out == [(LEVEL, now["us"], 50.4, None, 0)]
    assert flt.sweep(out, now_us=to_us(T0 + timedelta(seconds=121))) == 1  # On (stored at 61 s)
    assert flt.counters.repeated == 4


def test_deadband_must_be_sane() -> None:
    with pytest.raises(ValueError):
        Deadband(absolute=-1.0)
    with pytest.raises(ValueError):
        SampleFilter(TagResolver(), max_interval_s=0)
