"""CSV export: content, formats, quality names, file and stream outputs, and bounded memory on a large range."""

from __future__ import annotations

import csv
import io
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, insert

from historian import queries as q
from historian.engine import make_engine
from historian.export import export_csv, format_time, format_value, quality_name
from historian.migrations import upgrade_to_head

S = 1_000_000
T0 = 1_767_225_600 * S  # 2026-01-01T00:00:00Z


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    """A migrated historian database."""
    upgrade_to_head(db_url)
    engine = make_engine(db_url)
    yield engine
    engine.dispose()


def fill(engine: Engine) -> None:
    """Four tags of different types (and one outside the pattern), values inside and outside the range."""
    tags = [
        (1, "Lighting/CAB-0001/L-000001/PowerW", "Double"),
        (2, "Lighting/CAB-0001/L-000001/On", "Boolean"),
        (3, "Lighting/CAB-0001/L-000001/BurningHours", "UInt32"),
        (4, "Lighting/CAB-0001/Message", "String"),
        (5, "Traffic/TLC-001/Stage", "UInt16"),
    ]
    samples = [
        (1, T0 - S, 1.0, None, 0),  # before the range
        (1, T0, 42.5, None, 0),
        (1, T0 + 1_500_000, 43.25, None, 0x40900000),
        (1, T0 + 2 * S, None, None, 0x80050000),
        (1, T0 + 60 * S, 44.0, None, 0),  # at the (excluded) end
        (2, T0 + 5 * S, 1.0, None, 0),
        (2, T0 + 6 * S, 0.0, None, 0),
        (3, T0 + 7 * S, 1234.0, None, 0),
        (4, T0 + 8 * S, None, 'line one\n"quoted", comma', 0),
        (5, T0 + 9 * S, 3.0, None, 0),
    ]
    with engine.begin() as conn:
        conn.execute(insert(q.tags), [{"id": i, "name": n, "dtype": d, "tag_class": "t"} for i, n, d in tags])
        conn.execute(
            insert(q.samples),
            [{"tag_id": t, "ts": ts, "value": v, "text": x, "quality": qual} for t, ts, v, x, qual in samples],
        )


def test_export_content_and_formats(engine: Engine, tmp_path: Path) -> None:
    fill(engine)
    out = tmp_path / "export.csv"
    rows = export_csv(engine, "Lighting/CAB-0001/**", T0, T0 + 60 * S, out)
    with out.open(encoding="utf-8", newline="") as handle:
        table = list(csv.reader(handle))
    assert rows == 7 == len(table) - 1
    assert table[0] == ["tag", "time", "value", "quality"]
    assert table[1:] == [
        ["Lighting/CAB-0001/L-000001/BurningHours", "2026-01-01T00:00:07.000000Z", "1234", "Good"],
        ["Lighting/CAB-0001/L-000001/On", "2026-01-01T00:00:05.000000Z", "true", "Good"],
        ["Lighting/CAB-0001/L-000001/On", "2026-01-01T00:00:06.000000Z", "false", "Good"],
        ["Lighting/CAB-0001/L-000001/PowerW", "2026-01-01T00:00:00.000000Z", "42.5", "Good"],
        ["Lighting/CAB-0001/L-000001/PowerW", "2026-01-01T00:00:01.500000Z", "43.25", "UncertainLastUsableValue"],
        ["Lighting/CAB-0001/L-000001/PowerW", "2026-01-01T00:00:02.000000Z", "", "BadCommunicationError"],
        ["Lighting/CAB-0001/Message", "2026-01-01T00:00:08.000000Z", 'line one\n"quoted", comma', "Good"],
    ]


def test_export_to_a_stream_from_a_url_without_quality(engine: Engine, db_url: str) -> None:
    fill(engine)
    buffer = io.StringIO()
    rows = export_csv(
        db_url, ["Traffic/*/Stage", "Lighting/CAB-0001/L-000001/On"], T0, T0 + 60 * S, buffer, quality=False
    )
    assert rows == 3
    assert buffer.getvalue().splitlines() == [
        "tag,time,value",
        "Lighting/CAB-0001/L-000001/On,2026-01-01T00:00:05.000000Z,true",
        "Lighting/CAB-0001/L-000001/On,2026-01-01T00:00:06.000000Z,false",
        "Traffic/TLC-001/Stage,2026-01-01T00:00:09.000000Z,3",
    ]
    empty = io.StringIO()
    assert export_csv(engine, "Nothing/**", T0, T0 + 60 * S, empty) == 0
    assert empty.getvalue() == "tag,time,value,quality\n"
    with pytest.raises(q.HistorianQueryError):
        export_csv(engine, "Traffic/**", T0 + S, T0, io.StringIO())


def test_format_helpers() -> None:
    assert format_time(T0 + 123) == "2026-01-01T00:00:00.000123Z"
    assert format_value(2.0, None, "Double") == "2.0"
    assert format_value(7.0, None, "Int32") == "7"
    assert format_value(None, None, "Double") == ""
    assert format_value(float("nan"), None, "Double") == ""
    assert quality_name(0) == "Good"
    assert quality_name(0x80340000) == "BadNodeIdUnknown"
    assert quality_name(0x00A50000 | 0x405) == "GoodNoData"  # info bits ignored
    assert quality_name(0x8FFF0000) == "0x8FFF0000"  # not a known code


def test_export_streams_with_bounded_memory(engine: Engine, tmp_path: Path) -> None:
    count = 40_000  # materialised at once, these rows take about 8 MiB; streamed, about 2
    with engine.begin() as conn:
        conn.execute(insert(q.tags), [{"id": 1, "name": "A/B/Big", "dtype": "Double", "tag_class": "t"}])
        for start in range(0, count, 20_000):
            conn.execute(
                insert(q.samples),
                [
                    {"tag_id": 1, "ts": T0 + i * S, "value": i * 0.5, "text": None, "quality": 0}
                    for i in range(start, start + 20_000)
                ],
            )
    out = tmp_path / "big.csv"
    tracemalloc.start()
    try:
        rows = export_csv(engine, "A/B/Big", T0, T0 + count * S, out)
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert rows == count
    assert peak < 5 * 2**20, f"peak {peak / 2**20:.1f} MiB: the export is not streaming"
    with out.open(encoding="utf-8") as handle:
        lines = handle.readlines()
    assert len(lines) == count + 1
    assert lines[-1] == f"A/B/Big,{format_time(T0 + (count - 1) * S)},{(count - 1) * 0.5!r},Good\n"
