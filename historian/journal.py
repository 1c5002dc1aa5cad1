"""The historian's local disk journal: append-only segment files of framed, checksummed batches, replayed in order.

Layout of `journal_dir`:
- ``seg-<12 digits>.jnl``: segments, numbered in append order. A process never appends to a segment it did not
  create: at open, the segments left by a previous run are sealed and a new one is started on the first append,
  so a torn tail (crash mid-write) is always the *last* frame of a sealed segment.
- ``cursor``: ``<segment number> <offset>`` of the next frame to replay (written by rename after each replayed
  frame; losing it only replays frames again, which the database ignores: every write is idempotent).
- ``rejected.jnl``: frames the database refused for a reason other than being away (kept for inspection).

Frame: ``b"CSJ1" | u32 payload length | u32 CRC-32 of (kind + payload) | u8 kind | payload (UTF-8 JSON)``.
A frame whose length runs past the end of the file or whose CRC does not match ends its segment: it and
anything after it in that segment are ignored (and counted in `torn_frames`).

Fsync policy: ``append(..., sync=True)`` (the writer thread, for batches the database refused) writes, flushes
and fsyncs before returning, so a journaled batch survives a power loss. ``append(..., sync=False)`` (queue
overflow from the event loop) only flushes to the OS (survives a process crash); ``sync()`` — called by the writer
at least every flush interval — fsyncs it. A new segment's directory entry is fsynced when it is created.
"""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import os
import struct
import threading
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

log = logging.getLogger(__name__)

MAGIC = b"CSJ1"
_HEADER = struct.Struct("<4sIIB")  # magic, payload length, crc32, kind
HEADER_SIZE = _HEADER.size
MAX_PAYLOAD = 256 * 1024 * 1024

KIND_SAMPLES = 1
KIND_EVENTS = 2
KIND_COMMANDS = 3
KIND_INCIDENTS = 4
KINDS = {KIND_SAMPLES: "samples", KIND_EVENTS: "events", KIND_COMMANDS: "commands", KIND_INCIDENTS: "incidents"}


class JournalError(Exception):
    """The journal directory cannot be used (not writable, full disk)."""


@dataclass(frozen=True, slots=True)
class Frame:
    """One replayable frame: where it is, what it holds."""

    segment: int
    offset: int  # of the frame's header
    end: int  # offset just after the frame
    kind: int
    items: list[Any]


def encode_frame(kind: int, items: list[Any]) -> bytes:
    """One frame's bytes: header, CRC and the items as compact JSON (bytes values as {"$b64": ...})."""
    payload = json.dumps(items, separators=(",", ":"), default=_default).encode()
    body = bytes((kind,)) + payload
    return _HEADER.pack(MAGIC, len(payload), zlib.crc32(body), kind) + payload


def _default(value: Any) -> Any:
    """JSON encoding of bytes (incident contacts)."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        return {"$b64": base64.b64encode(bytes(value)).decode()}
    raise TypeError(f"cannot journal {type(value).__name__}")


def _hook(obj: dict[str, Any]) -> Any:
    """JSON decoding of bytes (inverse of _default)."""
    if len(obj) == 1 and "$b64" in obj:
        return base64.b64decode(obj["$b64"])
    return obj


def read_frames(path: Path, segment: int = 0, start: int = 0, limit: int | None = None) -> Iterator[Frame | int]:
    """The frames of a segment file from `start` (up to `limit`), in order; a final int is where a torn tail begins."""
    with open(path, "rb") as handle:
        size = os.fstat(handle.fileno()).st_size if limit is None else limit
        offset = start
        handle.seek(offset)
        while offset < size:
            header = handle.read(HEADER_SIZE)
            if len(header) < HEADER_SIZE:
                yield offset
                return
            magic, length, crc, kind = _HEADER.unpack(header)
            end = offset + HEADER_SIZE + length
            if magic != MAGIC or length > MAX_PAYLOAD or end > size:
                yield offset
                return
            payload = handle.read(length)
            if len(payload) < length or zlib.crc32(bytes((kind,)) + payload) != crc:
                yield offset
                return
            try:
                items = json.loads(payload, object_hook=_hook)
            except ValueError:
                yield offset
                return
            yield Frame(segment, offset, end, kind, items)
            offset = end


class Journal:
    """Append-only segmented journal with a replay cursor; thread-safe (appends come from two threads)."""

    def __init__(self, directory: Path, *, segment_bytes: int = 64 * 1024 * 1024) -> None:
        self.directory = Path(directory)
        self.segment_bytes = segment_bytes
        self._lock = threading.Lock()
        self._handle: BinaryIO | None = None
        self._active: int | None = None  # segment number being appended to
        self._active_size = 0
        self._dirty = False
        self.torn_frames = 0
        self.appended_frames = 0
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise JournalError(f"journal directory {self.directory}: {exc}") from exc
        self._limits: dict[int, int] = {}  # segment -> offset of its torn tail
        numbers = self._segments()
        self._next = (numbers[-1] + 1) if numbers else 1
        self._cursor = self._read_cursor()
        segment, offset = self._cursor
        self._backlog = sum(self._size(n) for n in numbers if n >= segment) - (offset if segment in numbers else 0)

    # -- files ------------------------------------------------------------------------------------------

    def _path(self, number: int) -> Path:
        """The file of segment `number`."""
        return self.directory / f"seg-{number:012d}.jnl"

    def _segments(self) -> list[int]:
        """Segment numbers present on disk, ascending."""
        numbers = []
        for path in self.directory.glob("seg-*.jnl"):
            try:
                numbers.append(int(path.stem[4:]))
            except ValueError:
                continue
        return sorted(numbers)

    def _size(self, number: int) -> int:
        """Size of a segment file (0 if gone)."""
        try:
            return self._path(number).stat().st_size
        except FileNotFoundError:
            return 0

    def _read_cursor(self) -> tuple[int, int]:
        """The saved replay position (segment, offset), or the start."""
        try:
            segment, offset = (self.directory / "cursor").read_text().split()
            return int(segment), int(offset)
        except (FileNotFoundError, ValueError):
            return 0, 0

    def _write_cursor(self, segment: int, offset: int) -> None:
        """Save the replay position (atomic rename; not fsynced: losing it only causes idempotent re-replay)."""
        tmp = self.directory / "cursor.tmp"
        tmp.write_text(f"{segment} {offset}\n")
        os.replace(tmp, self.directory / "cursor")

    def _fsync_dir(self) -> None:
        """Make a new directory entry durable."""
        try:
            fd = os.open(self.directory, os.O_RDONLY)
        except OSError:
            return
        try:
            os.fsync(fd)
        except OSError:
            pass
        finally:
            os.close(fd)

    # -- appending --------------------------------------------------------------------------------------

    def append(self, kind: int, items: list[Any], *, sync: bool = True) -> int:
        """Append one frame of items; returns its size in bytes. Raises JournalError if the disk refuses it."""
        frame = encode_frame(kind, items)
        with self._lock:
            try:
                if self._handle is None or self._active_size >= self.segment_bytes:
                    self._open_new()
                assert self._handle is not None
                self._handle.write(frame)
                self._handle.flush()
                if sync:
                    os.fsync(self._handle.fileno())
                else:
                    self._dirty = True
            except OSError as exc:
                raise JournalError(f"cannot append to the journal in {self.directory}: {exc}") from exc
            self._active_size += len(frame)
            self._backlog += len(frame)
            self.appended_frames += 1
        return len(frame)

    def _open_new(self) -> None:
        """Seal the active segment and start the next one (lock held)."""
        self._close_active()
        number = self._next
        self._next += 1
        self._handle = open(self._path(number), "ab")  # noqa: SIM115 - kept open across appends
        self._active = number
        self._active_size = 0
        self._fsync_dir()

    def _close_active(self) -> None:
        """Fsync and close the active segment (lock held)."""
        if self._handle is not None:
            try:
                self._handle.flush()
                os.fsync(self._handle.fileno())
            finally:
                self._handle.close()
            self._handle = None
            self._active = None
            self._dirty = False

    def sync(self) -> None:
        """Fsync frames appended with sync=False."""
        with self._lock:
            if self._handle is not None and self._dirty:
                try:
                    os.fsync(self._handle.fileno())
                except OSError as exc:
                    log.error("journal fsync failed: %s", exc)
                self._dirty = False

    # -- replaying --------------------------------------------------------------------------------------

    @property
    def backlog_bytes(self) -> int:
        """Bytes appended and not yet replayed (including torn tails until they are passed)."""
        return max(self._backlog, 0)

    def empty(self) -> bool:
        """True when nothing waits for replay."""
        return self._backlog <= 0

    def pending(self, max_frames: int = 16) -> list[Frame]:
        """The next frames to replay, in append order, all from one segment (seals the active one if it is next)."""
        with self._lock:
            numbers = self._segments()
            if not numbers:
                return []
            if numbers == [self._active] and self._active_size > 0:
                self._close_active()
            sealed = [n for n in numbers if n != self._active]
        cursor_segment, cursor_offset = self._cursor
        for number in sealed:
            if number < cursor_segment:
                self._drop_segment(number)
                continue
            start = cursor_offset if number == cursor_segment else 0
            frames: list[Frame] = []
            for item in read_frames(self._path(number), number, start, self._limits.get(number)):
                if isinstance(item, int):
                    self._torn(number, item)
                    break
                frames.append(item)
                if len(frames) >= max_frames:
                    break
            if frames:
                return frames
            self._drop_segment(number)  # nothing (more) to replay in it
            self._cursor = (number + 1, 0)
            cursor_offset = 0
        return []

    def _torn(self, number: int, offset: int) -> None:
        """Note a torn or corrupt tail of a sealed segment: it ends there."""
        if number in self._limits:
            return
        lost = self._size(number) - offset
        self._limits[number] = offset
        self.torn_frames += 1
        with self._lock:
            self._backlog -= lost
        log.warning("journal segment %d: torn or corrupt frame at offset %d, %d bytes ignored", number, offset, lost)

    def acknowledge(self, frame: Frame) -> None:
        """Record that `frame` is safely in the database: advance the cursor, delete fully replayed segments."""
        with self._lock:
            self._backlog -= frame.end - frame.offset
        self._cursor = (frame.segment, frame.end)
        if frame.end >= self._limits.get(frame.segment, self._size(frame.segment)):
            self._drop_segment(frame.segment)
            self._cursor = (frame.segment + 1, 0)
        self._write_cursor(*self._cursor)

    def _drop_segment(self, number: int) -> None:
        """Delete a replayed segment (never the active one)."""
        if number == self._active:
            return
        self._limits.pop(number, None)
        with contextlib.suppress(FileNotFoundError):
            self._path(number).unlink()

    def reject(self, frame: Frame, *, acknowledge: bool = True) -> None:
        """Keep a frame the database refused in rejected.jnl, then (if it came from the journal) acknowledge it."""
        with self._lock, open(self.directory / "rejected.jnl", "ab") as handle:
            handle.write(encode_frame(frame.kind, frame.items))
            handle.flush()
            os.fsync(handle.fileno())
        if acknowledge:
            self.acknowledge(frame)

    def close(self) -> None:
        """Fsync and close the active segment."""
        with self._lock:
            self._close_active()
