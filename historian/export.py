"""CSV export of historized values: tag, ISO 8601 UTC time, value, quality name; streamed with bounded memory."""

from __future__ import annotations

import csv
import math
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import TextIO

from asyncua.ua.status_codes import get_name_and_doc
from sqlalchemy import Engine, select
from sqlalchemy.engine import URL

from historian import queries as q
from historian.engine import make_engine
from historian.schema import US_PER_S, from_us

FETCH_ROWS = 5_000  # rows per round trip (server-side cursor on PostgreSQL)
HEADER = ("tag", "time", "value", "quality")
_INTEGER_TYPES = {"UInt16", "UInt32", "Int32"}


def quality_name(status: int) -> str:
    """The OPC UA name of a status code ("Good", "BadCommunicationError", ...; hex when unknown)."""
    status &= 0xFFFFFFFF
    name, doc = get_name_and_doc(status & 0xFFFF0000)
    if doc.startswith("Unknown StatusCode"):
        return f"0x{status:08X}"
    return name


def format_time(ts: int) -> str:
    """µs since the epoch as ISO 8601 UTC with microseconds: 2026-11-20T17:05:00.000000Z."""
    moment = from_us(ts)
    return f"{moment:%Y-%m-%dT%H:%M:%S}.{ts % US_PER_S:06d}Z"


def format_value(value: float | None, text: str | None, dtype: str) -> str:
    """A stored value as CSV text: true/false for Boolean, integers without '.0', repr for doubles, the text."""
    if text is not None:
        return text
    if value is None or math.isnan(value):
        return ""
    if dtype == "Boolean":
        return "true" if value else "false"
    if dtype in _INTEGER_TYPES and value.is_integer():
        return str(int(value))
    return repr(float(value))


@contextmanager
def _engine(engine_or_url: Engine | str | URL) -> Iterator[Engine]:
    """The given engine, or one made (and disposed) for a URL."""
    if isinstance(engine_or_url, Engine):
        yield engine_or_url
        return
    engine = make_engine(engine_or_url)
    try:
        yield engine
    finally:
        engine.dispose()


def export_csv(
    engine_or_url: Engine | str | URL,
    pattern: str | list[str],
    start: q.TimeLike,
    end: q.TimeLike,
    out: TextIO | Path | str,
    *,
    quality: bool = True,
) -> int:
    """Write the values of every tag matching `pattern` in [start, end) as CSV; returns the number of rows.

    Tags come in name order, each in time order. Rows are streamed (server-side cursor on PostgreSQL, fetched in
    batches of FETCH_ROWS on SQLite), so memory stays bounded whatever the range. With quality=False the quality
    column is left out. A Path or str `out` is written as UTF-8 with a header line.
    """
    lo, hi = q.as_us(start), q.as_us(end)
    if hi < lo:
        raise q.HistorianQueryError(f"export range ends before it starts ({end} < {start})")
    with ExitStack() as stack:
        if isinstance(out, str | Path):
            stream: TextIO = stack.enter_context(Path(out).open("w", encoding="utf-8", newline=""))
        else:
            stream = out
        engine = stack.enter_context(_engine(engine_or_url))
        writer = csv.writer(stream, lineterminator="\n")
        writer.writerow(HEADER if quality else HEADER[:3])
        rows = 0
        with engine.connect() as conn:
            streaming = conn.execution_options(stream_results=True, yield_per=FETCH_ROWS)
            for info in q.resolve_tags(conn, pattern):
                query = (
                    select(q.samples.c.ts, q.samples.c.value, q.samples.c.text, q.samples.c.quality)
                    .where(q.samples.c.tag_id == info.id, q.samples.c.ts >= lo, q.samples.c.ts < hi)
                    .order_by(q.samples.c.ts)
                )
                result = streaming.execute(query)
                for chunk in result.partitions():
                    if quality:
                        writer.writerows(
                            (info.name, format_time(ts), format_value(value, text, info.dtype), quality_name(status))
                            for ts, value, text, status in chunk
                        )
                    else:
                        writer.writerows(
                            (info.name, format_time(ts), format_value(value, text, info.dtype))
                            for ts, value, text, _status in chunk
                        )
                    rows += len(chunk)
                result.close()
    return rows
