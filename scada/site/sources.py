"""Readers for the files of a site folder (YAML with line numbers, CSV, GeoJSON), giving column tables that know where each value came from."""

from __future__ import annotations

import bisect
import csv
import io
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from scada.model import ConfigIssue

FILE_FIELD = "(file)"
"""The field named by issues about a whole file (missing, unreadable, bad syntax)."""

ROW_FIELD = "(row)"
"""The field named by issues about a whole row (wrong number of values, not a mapping)."""


class _Missing:
    """The type of MISSING: a key absent from a YAML mapping or a GeoJSON feature's properties."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()
"""An absent key (as opposed to a present but empty value)."""


class _Invalid:
    """The type of INVALID: a value already found wrong (and reported)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "INVALID"


INVALID: Any = _Invalid()
"""A value that is wrong and has been reported: later checks skip it."""


class SourceError(Exception):
    """A file cannot be read at all; carries the one issue that says why."""

    def __init__(self, issue: ConfigIssue) -> None:
        super().__init__(str(issue))
        self.issue = issue


@dataclass(slots=True)
class YamlDoc:
    """A parsed YAML document and the 1-based line of every node, keyed by dotted path ("cabinets[2].port")."""

    data: Any
    lines: dict[str, int]


@dataclass(slots=True)
class Table:
    """The rows of one list (inline YAML, CSV or GeoJSON), column by column, with each row's location."""

    section: str  # the site.yaml section, e.g. "lamps"
    file: str  # the file label used in issues
    style: Literal["yaml", "csv", "geojson"]
    size: int
    columns: dict[str, list[Any]]  # CSV: only the header's columns; YAML/GeoJSON: every known field (MISSING if absent)
    lines: list[int | None]  # 1-based line of each row
    prefixes: list[str] = field(default_factory=list)  # YAML: dotted path of each row, e.g. "cabinets[3]"
    field_lines: dict[str, int] = field(default_factory=dict)  # YAML: line of each field node
    text_only: bool = False  # every cell is a str (CSV): the fast column parsers apply
    header_line: int | None = None  # CSV: line of the header

    def locate(self, row: int, name: str) -> tuple[int | None, str]:
        """The line and field path of one cell, as an issue names them."""
        if self.style == "csv":
            return self.lines[row], name
        if self.style == "yaml":
            path = f"{self.prefixes[row]}.{name}"
            return self.field_lines.get(path, self.lines[row]), path
        if name in GEOMETRY_FIELDS:
            return self.lines[row], f"features[{row}].geometry.coordinates"
        return self.lines[row], f"features[{row}].properties.{name}"

    def row_field(self, row: int) -> str:
        """The field path naming a whole row."""
        if self.style == "yaml":
            return self.prefixes[row]
        if self.style == "geojson":
            return f"features[{row}]"
        return ROW_FIELD


GEOMETRY_FIELDS = frozenset({"lat", "lon", "points"})
"""Fields that a GeoJSON feature carries in its geometry rather than its properties."""


def read_text(path: Path, label: str) -> str:
    """The text of a UTF-8 file (a byte-order mark is dropped)."""
    try:
        return path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise SourceError(ConfigIssue(label, None, FILE_FIELD, "file not found")) from None
    except IsADirectoryError:
        raise SourceError(ConfigIssue(label, None, FILE_FIELD, "is a directory, not a file")) from None
    except UnicodeDecodeError as exc:
        raise SourceError(ConfigIssue(label, None, FILE_FIELD, f"not UTF-8 text ({exc.reason})")) from None
    except OSError as exc:
        raise SourceError(ConfigIssue(label, None, FILE_FIELD, f"cannot be read ({exc.strerror})")) from None


def parse_yaml(text: str, label: str, issues: list[ConfigIssue]) -> YamlDoc:
    """Parse one YAML document keeping node lines; duplicate keys become issues, syntax errors a SourceError."""
    loader = yaml.CSafeLoader(text) if hasattr(yaml, "CSafeLoader") else yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        problem = exc.problem or exc.context or "invalid YAML"
        raise SourceError(ConfigIssue(label, line, FILE_FIELD, f"YAML syntax error: {problem}")) from None
    except yaml.YAMLError as exc:
        raise SourceError(ConfigIssue(label, None, FILE_FIELD, f"YAML syntax error: {exc}")) from None
    finally:
        loader.dispose()
    lines: dict[str, int] = {}
    if node is not None:
        _walk(node, "", lines, label, issues)
    return YamlDoc(data, lines)


def _walk(node: yaml.Node, path: str, lines: dict[str, int], label: str, issues: list[ConfigIssue]) -> None:
    """Record the line of `node` and its children under their dotted paths."""
    lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key_node, value_node in node.value:
            key = str(key_node.value) if isinstance(key_node, yaml.ScalarNode) else "?"
            child = f"{path}.{key}" if path else key
            if key in seen:
                issues.append(ConfigIssue(label, key_node.start_mark.line + 1, child, "duplicate key"))
                continue
            seen.add(key)
            _walk(value_node, child, lines, label, issues)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _walk(item, f"{path}[{i}]", lines, label, issues)


def describe(value: Any) -> str:
    """How an unexpected value is shown in a message."""
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, (int, float)):
        return f"the number {value}"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return type(value).__name__


def table_from_yaml(
    section: str,
    prefix: str,
    items: Sequence[Any],
    doc: YamlDoc,
    label: str,
    known: Sequence[str],
    issues: list[ConfigIssue],
) -> Table:
    """A table from an inline YAML list of mappings at dotted path `prefix`; unknown keys become issues."""
    prefixes = [f"{prefix}[{i}]" for i in range(len(items))]
    return _mapping_rows(section, prefixes, items, doc, label, known, issues)


def table_from_mapping(
    section: str, path: str, mapping: Any, doc: YamlDoc, label: str, known: Sequence[str], issues: list[ConfigIssue]
) -> Table:
    """A one-row table from the YAML mapping at dotted path `path` (e.g. the `site` section)."""
    return _mapping_rows(section, [path], [mapping], doc, label, known, issues)


def _mapping_rows(
    section: str,
    prefixes: list[str],
    items: Sequence[Any],
    doc: YamlDoc,
    label: str,
    known: Sequence[str],
    issues: list[ConfigIssue],
) -> Table:
    """Build a YAML table from mappings (shared by lists and single sections)."""
    known_set = set(known)
    columns: dict[str, list[Any]] = {name: [] for name in known}
    lines: list[int | None] = []
    for prefix, item in zip(prefixes, items, strict=True):
        line = doc.lines.get(prefix)
        lines.append(line)
        if not isinstance(item, dict):
            issues.append(ConfigIssue(label, line, prefix, f"expected a mapping of fields, got {describe(item)}"))
            for name in known:
                columns[name].append(INVALID)
            continue
        for key in item:
            if str(key) not in known_set:
                path = f"{prefix}.{key}"
                issues.append(ConfigIssue(label, doc.lines.get(path, line), path, "unknown field"))
        for name in known:
            columns[name].append(item.get(name, MISSING))
    return Table(section, label, "yaml", len(items), columns, lines, prefixes=prefixes, field_lines=doc.lines)


def read_csv_table(path: Path, label: str, section: str, known: Sequence[str], issues: list[ConfigIssue]) -> Table:
    """A table from a CSV file with a header line; unknown or repeated columns and ragged rows become issues."""
    text = read_text(path, label)
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        rows = list(reader)
    except csv.Error as exc:
        raise SourceError(ConfigIssue(label, reader.line_num, FILE_FIELD, f"CSV syntax error: {exc}")) from None
    if reader.line_num == len(rows) and [] not in rows:  # one line per row, no blank line: row k is on line k + 1
        lines: list[int | None] = list(range(1, len(rows) + 1))
    else:  # blank lines, or quoted values spanning lines: number rows by the line each one starts on
        lines, kept, end = [], [], 0
        reader = csv.reader(io.StringIO(text, newline=""))
        for row in reader:
            if row:
                lines.append(end + 1)
                kept.append(row)
            end = reader.line_num
        rows = kept
    if not rows:
        raise SourceError(ConfigIssue(label, None, FILE_FIELD, "file is empty (expected a header line)"))
    header_line, header = lines[0], rows[0]
    names = [name.strip() for name in header]
    known_set = set(known)
    keep: list[tuple[int, str]] = []
    seen: set[str] = set()
    for position, name in enumerate(names):
        if name in seen:
            issues.append(ConfigIssue(label, header_line, name, "duplicate column"))
        elif name not in known_set:
            issues.append(ConfigIssue(label, header_line, name or f"column {position + 1}", "unknown column"))
        else:
            keep.append((position, name))
        seen.add(name)
    cells = rows[1:]
    lines = lines[1:]
    width = len(names)
    if set(map(len, cells)) - {width}:
        for k, row in enumerate(cells):
            if len(row) != width:
                message = f"row has {len(row)} values, the header has {width} columns"
                issues.append(ConfigIssue(label, lines[k], ROW_FIELD, message))
                cells[k] = (row + [""] * width)[:width]
    transposed = list(zip(*cells, strict=True)) if cells else [() for _ in names]
    columns = {name: list(transposed[position]) for position, name in keep}
    return Table(section, label, "csv", len(cells), columns, lines, text_only=True, header_line=header_line)


_WS = re.compile(r"[ \t\n\r]*")


def _json_features(text: str) -> tuple[dict[str, Any], list[tuple[Any, int]]]:
    """Parse a GeoJSON document, returning its other members and each feature with its 1-based start line."""
    decoder = json.JSONDecoder()
    newlines = [m.start() for m in re.finditer("\n", text)]

    def line_of(pos: int) -> int:
        return bisect.bisect_left(newlines, pos) + 1

    def skip(pos: int) -> int:
        return _WS.match(text, pos).end()  # type: ignore[union-attr]

    def expect(pos: int, chars: str) -> str:
        if pos >= len(text) or text[pos] not in chars:
            wanted = " or ".join(repr(c) for c in chars)
            raise json.JSONDecodeError(f"Expecting {wanted}", text, pos)
        return text[pos]

    top: dict[str, Any] = {}
    features: list[tuple[Any, int]] = []
    pos = skip(0)
    expect(pos, "{")
    pos = skip(pos + 1)
    if text.startswith("}", pos):
        return top, features
    while True:
        expect(pos, '"')
        key, pos = decoder.raw_decode(text, pos)
        pos = skip(pos)
        expect(pos, ":")
        pos = skip(pos + 1)
        if key == "features" and text.startswith("[", pos):
            top[key] = None
            pos = skip(pos + 1)
            if text.startswith("]", pos):
                pos += 1
            else:
                while True:
                    start = pos
                    value, pos = decoder.raw_decode(text, pos)
                    features.append((value, line_of(start)))
                    pos = skip(pos)
                    if expect(pos, ",]") == "]":
                        pos += 1
                        break
                    pos = skip(pos + 1)
        else:
            top[key], pos = decoder.raw_decode(text, pos)
        pos = skip(pos)
        if expect(pos, ",}") == "}":
            break
        pos = skip(pos + 1)
    if skip(pos + 1) != len(text):
        raise json.JSONDecodeError("Extra data", text, skip(pos + 1))
    return top, features


def read_geojson_table(
    path: Path,
    label: str,
    section: str,
    known: Sequence[str],
    geometry: Literal["Point", "LineString"],
    issues: list[ConfigIssue],
) -> Table:
    """A table from a GeoJSON FeatureCollection: fields from each feature's properties, position from its geometry."""
    text = read_text(path, label)
    try:
        top, features = _json_features(text)
    except json.JSONDecodeError as exc:
        raise SourceError(ConfigIssue(label, exc.lineno, FILE_FIELD, f"JSON syntax error: {exc.msg}")) from None
    if top.get("type") != "FeatureCollection" or "features" not in top:
        raise SourceError(ConfigIssue(label, 1, FILE_FIELD, "expected a GeoJSON FeatureCollection with features"))
    known_set = set(known)
    prop_names = [name for name in known if name not in GEOMETRY_FIELDS]
    columns: dict[str, list[Any]] = {name: [] for name in known}
    lines: list[int | None] = []
    for i, (feature, line) in enumerate(features):
        lines.append(line)
        props: Any = {}
        coords: Any = INVALID
        if not isinstance(feature, dict) or feature.get("type") != "Feature":
            issues.append(ConfigIssue(label, line, f"features[{i}]", "expected a GeoJSON Feature"))
        else:
            props = feature.get("properties") or {}
            geom = feature.get("geometry")
            if not isinstance(props, dict):
                issues.append(ConfigIssue(label, line, f"features[{i}].properties", "expected a mapping"))
                props = {}
            if not isinstance(geom, dict) or geom.get("type") != geometry:
                got = geom.get("type") if isinstance(geom, dict) else None
                issues.append(
                    ConfigIssue(label, line, f"features[{i}].geometry", f"expected a {geometry} geometry, got {got!r}")
                )
            else:
                coords = geom.get("coordinates", MISSING)
        for key in props:
            if key in GEOMETRY_FIELDS:
                message = "unknown field (the position comes from the geometry)"
                issues.append(ConfigIssue(label, line, f"features[{i}].properties.{key}", message))
            elif key not in known_set:
                issues.append(ConfigIssue(label, line, f"features[{i}].properties.{key}", "unknown field"))
        for name in prop_names:
            columns[name].append(props.get(name, MISSING))
        if geometry == "LineString":
            if "points" in columns:
                columns["points"].append(coords)
        else:
            if coords is MISSING or coords is INVALID:
                lon = lat = coords
            elif isinstance(coords, list) and len(coords) in (2, 3):
                lon, lat = coords[0], coords[1]
            else:
                where = f"features[{i}].geometry.coordinates"
                issues.append(ConfigIssue(label, line, where, "expected [longitude, latitude]"))
                lon = lat = INVALID
            columns["lat"].append(lat)
            columns["lon"].append(lon)
    return Table(section, label, "geojson", len(features), columns, lines)
