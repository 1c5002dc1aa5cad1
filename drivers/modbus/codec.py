"""Pure encoding and decoding of Modbus register values: 32-bit words, bits, text, counters, read plans."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from drivers.modbus.registers import SIGN_COLUMNS, SIGN_LINES, SIGN_TEXT_REGISTERS
from scada.catalog import sign_lines


def u32(high: int, low: int) -> int:
    """A 32-bit unsigned value from two registers, high word first."""
    return ((high & 0xFFFF) << 16) | (low & 0xFFFF)


def u32_words(value: int) -> tuple[int, int]:
    """The two registers (high, low) of a 32-bit unsigned value."""
    if not 0 <= value <= 0xFFFFFFFF:
        raise ValueError(f"{value} does not fit in 32 bits")
    return (value >> 16) & 0xFFFF, value & 0xFFFF


def bit(word: int, mask: int) -> bool:
    """True when any bit of `mask` is set in `word`."""
    return (word & mask) != 0


def counter_delta(previous: int, current: int, modulus: int = 0x10000) -> int:
    """How far a wrapping counter advanced from `previous` to `current` (one wrap at most)."""
    return (current - previous) % modulus


def valid_text_byte(byte: int) -> bool:
    """True for a byte a sign accepts: printable ASCII 0x20-0x7E or the 0x00 padding."""
    return byte == 0 or 0x20 <= byte <= 0x7E


def valid_text_register(word: int) -> bool:
    """True when both bytes of a text register are acceptable to a sign."""
    return valid_text_byte(word >> 8) and valid_text_byte(word & 0xFF)


def text_to_registers(text: str, registers: int) -> list[int]:
    """ASCII text, two characters per register (first in the high byte), padded with 0x00."""
    raw = text.encode("ascii")
    if len(raw) > 2 * registers:
        raise ValueError(f"text of {len(raw)} characters does not fit in {registers} registers")
    for position, byte in enumerate(raw):
        if not 0x20 <= byte <= 0x7E:
            raise ValueError(f"character {chr(byte)!r} at position {position} is not printable ASCII")
    raw = raw.ljust(2 * registers, b"\x00")
    return [(raw[i] << 8) | raw[i + 1] for i in range(0, len(raw), 2)]


def registers_to_text(words: Sequence[int]) -> str:
    """The text held in registers, two characters each; 0x00 bytes are padding and are dropped."""
    raw = bytearray()
    for word in words:
        raw.append((word >> 8) & 0xFF)
        raw.append(word & 0xFF)
    return raw.replace(b"\x00", b"").decode("ascii", errors="replace")


def sign_text_registers(message: str) -> list[int]:
    """The 27 text registers of a sign message: line after line, each line padded to 18 with 0x00."""
    words: list[int] = []
    for line in sign_lines(message):
        raw = line.encode("ascii").ljust(SIGN_COLUMNS, b"\x00")
        words.extend((raw[i] << 8) | raw[i + 1] for i in range(0, SIGN_COLUMNS, 2))
    assert len(words) == SIGN_TEXT_REGISTERS
    return words


def sign_message(words: Sequence[int]) -> str:
    """The message shown by a sign from its 27 text registers: lines joined by "\\n", trailing blanks cut."""
    per_line = SIGN_COLUMNS // 2
    lines = [registers_to_text(words[i * per_line : (i + 1) * per_line]).rstrip() for i in range(SIGN_LINES)]
    while lines and not lines[-1]:
        lines.pop()
    return "\n".join(lines)


def plan_reads(ranges: Iterable[range], limit: int) -> list[tuple[int, int]]:
    """The fewest reads (start, count) of at most `limit` that cover `ranges`, never reading outside them.

    Overlapping or touching ranges merge; a gap between them is never bridged, since a device answers
    exception 02 for any address outside its map.
    """
    merged: list[list[int]] = []
    for block in sorted((r for r in ranges if len(r)), key=lambda r: r.start):
        if merged and block.start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], block.stop)
        else:
            merged.append([block.start, block.stop])
    reads: list[tuple[int, int]] = []
    for start, stop in merged:
        while start < stop:
            count = min(limit, stop - start)
            reads.append((start, count))
            start += count
    return reads


def contiguous_runs(items: dict[int, int]) -> list[tuple[int, list[int]]]:
    """Group address -> value pairs into runs of consecutive addresses: [(start, [values...]), ...]."""
    runs: list[tuple[int, list[int]]] = []
    for address in sorted(items):
        if runs and address == runs[-1][0] + len(runs[-1][1]):
            runs[-1][1].append(items[address])
        else:
            runs.append((address, [items[address]]))
    return runs
