"""The disk journal: framing, order across segments, cursor across restarts, torn and corrupt frames."""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Any

from historian.journal import HEADER_SIZE, KIND_EVENTS, KIND_INCIDENTS, KIND_SAMPLES, Journal, encode_frame


def drain(journal: Journal) -> list[tuple[int, Any]]:
    """Replay everything, acknowledging each frame, and return (kind, items) in replay order."""
    seen: list[tuple[int, Any]] = []
    while frames := journal.pending(max_frames=3):
        for frame in frames:
            seen.append((frame.kind, frame.items))
            journal.acknowledge(frame)
    return seen


def test_frames_come_back_in_append_order_across_segments(tmp_path: Path) -> None:
    journal = Journal(tmp_path, segment_bytes=200)
    appended: list[tuple[int, Any]] = []
    for i in range(40):
        items = [["Lighting/CAB-0001/L-000001/Level", 1_000_000 * i, float(i), None, 0]]
        journal.append(KIND_SAMPLES, items, sync=i % 2 == 0)
        appended.append((KIND_SAMPLES, items))
    journal.append(KIND_INCIDENTS, [{"id": "INC-1", "contact": b"\x00\xffsecret"}])
    appended.append((KIND_INCIDENTS, [{"id": "INC-1", "contact": b"\x00\xffsecret"}]))
    assert len(list(tmp_path.glob("seg-*.jnl"))) > 5  # rotated
    assert journal.backlog_bytes > 0 and not journal.empty()
    assert drain(journal) == appended
    assert journal.empty() and journal.backlog_bytes == 0
    assert list(tmp_path.glob("seg-*.jnl")) == []  # replayed segments are deleted
    journal.close()


def test_cursor_survives_a_restart_and_appends_interleave_with_replay(tmp_path: Path) -> None:
    journal = Journal(tmp_path)
    for i in range(5):
        journal.append(KIND_EVENTS, [{"n": i}])
    first = journal.pending(max_frames=2)
    for frame in first:
        journal.acknowledge(frame)
    journal.append(KIND_EVENTS, [{"n": 5}])  # appended while replaying
    journal.close()  # the process stops (or dies) here

    again = Journal(tmp_path)
    assert [items[0]["n"] for _, items in drain(again)] == [2, 3, 4, 5]  # type: ignore[index]
    again.append(KIND_EVENTS, [{"n": 6}])
    assert [items[0]["n"] for _, items in drain(again)] == [6]  # type: ignore[index]
    again.close()


def test_a_torn_last_frame_is_ignored(tmp_path: Path) -> None:
    journal = Journal(tmp_path)
    for i in range(3):
        journal.append(KIND_EVENTS, [{"n": i}])
    journal.close()
    (segment,) = tmp_path.glob("seg-*.jnl")
    torn = encode_frame(KIND_EVENTS, [{"n": 3, "pad": "x" * 100}])
    with open(segment, "ab") as handle:  # the process died in the middle of this write
        handle.write(torn[: len(torn) // 2])

    reopened = Journal(tmp_path)
    assert [items[0]["n"] for _, items in drain(reopened)] == [0, 1, 2]  # type: ignore[index]
    assert reopened.torn_frames == 1
    assert reopened.empty()
    # the new process appends to a new segment, which replays normally after the torn one
    reopened.append(KIND_EVENTS, [{"n": 4}])
    assert [items[0]["n"] for _, items in drain(reopened)] == [4]  # type: ignore[index]
    reopened.close()


def test_a_corrupt_frame_ends_its_segment_only(tmp_path: Path) -> None:
    journal = Journal(tmp_path, segment_bytes=1)  # one frame per segment
    for i in range(3):
        journal.append(KIND_EVENTS, [{"n": i}])
    journal.close()
    segments = sorted(tmp_path.glob("seg-*.jnl"))
    assert len(segments) == 3
    data = bytearray(segments[1].read_bytes())
    data[HEADER_SIZE + 2] ^= 0xFF  # flip a payload bit: the CRC no longer matches
    segments[1].write_bytes(bytes(data))
    reopened = Journal(tmp_path)
    assert [items[0]["n"] for _, items in drain(reopened)] == [0, 2]  # type: ignore[index]
    assert reopened.torn_frames == 1


def test_frame_header_layout(tmp_path: Path) -> None:
    frame = encode_frame(KIND_SAMPLES, [["a", 1, 2.0, None, 0]])
    magic, length, _crc, kind = struct.unpack_from("<4sIIB", frame)
    assert magic == b"CSJ1" and kind == KIND_SAMPLES and length == len(frame) - HEADER_SIZE
