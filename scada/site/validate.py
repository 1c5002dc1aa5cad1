"""Whole-site checks across rows and files: unique ids, references, overlapping addresses and indices, counts."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from scada.model import ConfigIssue
from scada.site.model import Endpoint
from scada.site.schema import MAX_BAYS_PER_SITE, MAX_LAMPS_PER_CABINET, Section
from scada.site.sources import INVALID, Table


@dataclass(slots=True)
class Parsed:
    """One list section after field parsing: typed columns (INVALID where wrong) and, for field devices, endpoints."""

    section: Section
    table: Table
    values: dict[str, list[Any]]
    endpoints: list[Any] = field(default_factory=list)  # Endpoint or INVALID, per row

    @property
    def size(self) -> int:
        """Number of rows."""
        return self.table.size

    def where(self, row: int) -> str:
        """'file:line' of a row, as messages cite it."""
        line = self.table.lines[row]
        return f"{self.table.file}:{line}" if line is not None else self.table.file

    def issue(self, row: int, name: str, message: str) -> ConfigIssue:
        """An issue located at one cell."""
        line, path = self.table.locate(row, name)
        return ConfigIssue(self.table.file, line, path, message)

    def raw_ids(self, name: str = "id") -> set[str]:
        """Every text value of a column as written, valid or not (references are checked against these)."""
        column = self.table.columns.get(name, ())
        return {value for value in column if isinstance(value, str)}


def check_unique_ids(groups: Iterable[Parsed], issues: list[ConfigIssue]) -> None:
    """Ids must be unique across every section of one group (the device kinds share one namespace)."""
    groups = list(groups)
    every = [device_id for parsed in groups for device_id in parsed.values["id"]]
    if len(set(every)) == len(every) and INVALID not in every:  # the common case, at C speed
        return
    seen: dict[str, tuple[Parsed, int]] = {}
    for parsed in groups:
        for row, device_id in enumerate(parsed.values["id"]):
            if device_id is INVALID:
                continue
            first = seen.setdefault(device_id, (parsed, row))
            if first != (parsed, row):
                other, other_row = first
                message = f"duplicate id {device_id!r}, already defined at {other.where(other_row)}"
                issues.append(parsed.issue(row, "id", message))


def check_references(
    parsed: Parsed, name: str, targets: Parsed | None, what: str, issues: list[ConfigIssue], optional: bool = False
) -> None:
    """Every value of column `name` must be an id of `targets` (skipped when the target list could not be read)."""
    if targets is None:
        return
    known = targets.raw_ids()
    values = parsed.values[name]
    if set(values) <= known:  # the common case, at C speed
        return
    for row, value in enumerate(values):
        if value is INVALID or (optional and not value):
            continue
        if value not in known:
            issues.append(parsed.issue(row, name, f"unknown {what} {value!r}"))


def check_addresses(devices: Iterable[Parsed], issues: list[ConfigIssue]) -> None:
    """Two field devices may not share one Modbus host:port:unit."""
    used: dict[tuple[str, int, int], tuple[Parsed, int]] = {}
    for parsed in devices:
        for row, endpoint in enumerate(parsed.endpoints):
            if not isinstance(endpoint, Endpoint) or endpoint.protocol != "modbus":
                continue
            key = (endpoint.host.lower(), endpoint.port, endpoint.unit)
            first = used.setdefault(key, (parsed, row))
            if first != (parsed, row):
                other, other_row = first
                message = (
                    f"Modbus address {endpoint.host}:{endpoint.port} unit {endpoint.unit} is already used by "
                    f"{other.values['id'][other_row]} ({other.where(other_row)})"
                )
                issues.append(parsed.issue(row, "port", message))


def check_members(
    members: Parsed,
    owner_column: str,
    owners: Parsed | None,
    owner_what: str,
    member_what: str,
    limit: int,
    issues: list[ConfigIssue],
) -> dict[str, int]:
    """Members (lamps, sensors) of one owner need distinct indices and at most `limit` of them; returns counts per owner."""
    owner_ids = members.table.columns.get(owner_column, [])
    indices = members.values["index"]
    counts: dict[str, int] = Counter(owner_ids)
    for odd in [owner for owner in counts if not isinstance(owner, str) or not owner]:
        del counts[odd]
    keys = list(zip(owner_ids, indices, strict=True))
    if len(set(keys)) != len(keys) or max(counts.values(), default=0) > limit or INVALID in indices:
        _check_member_rows(members, owner_column, owner_what, member_what, limit, issues)
    if owners is not None:
        for row, owner in enumerate(owners.values["id"]):
            if owner is not INVALID and owner not in counts:
                message = f"{owner_what} {owner} has no {member_what}s (it must have 1..{limit})"
                issues.append(owners.issue(row, "id", message))
    return counts


def _check_member_rows(
    members: Parsed, owner_column: str, owner_what: str, member_what: str, limit: int, issues: list[ConfigIssue]
) -> None:
    """The row-by-row member check that locates repeated indices and the rows beyond the limit."""
    counts: dict[str, int] = {}
    taken: dict[tuple[str, int], int] = {}
    owner_ids = members.table.columns.get(owner_column, [])
    indices = members.values["index"]
    ids = members.values["id"]
    for row, owner in enumerate(owner_ids):
        if not isinstance(owner, str) or not owner:
            continue
        count = counts.get(owner, 0) + 1
        counts[owner] = count
        if count == limit + 1:
            message = f"{owner_what} {owner} has more than {limit} {member_what}s"
            issues.append(members.issue(row, owner_column, message))
        index = indices[row]
        if index is INVALID:
            continue
        first = taken.setdefault((owner, index), row)
        if first != row:
            message = (
                f"index {index} of {owner_what} {owner} is already used by {member_what} "
                f"{ids[first] if ids[first] is not INVALID else '?'} ({members.where(first)})"
            )
            issues.append(members.issue(row, "index", message))


def check_lamps(lamps: Parsed, cabinets: Parsed | None, issues: list[ConfigIssue]) -> None:
    """Lamp indices are unique per cabinet, and a cabinet drives 1..128 lamps."""
    check_members(lamps, "cabinet", cabinets, "cabinet", "lamp", MAX_LAMPS_PER_CABINET, issues)


def check_sensors(sensors: Parsed, sites: Parsed | None, issues: list[ConfigIssue]) -> None:
    """Bay indices are unique per parking site, a site has 1..2000 sensors and a capacity at least as large."""
    counts = check_members(sensors, "site", sites, "parking site", "sensor", MAX_BAYS_PER_SITE, issues)
    if sites is None:
        return
    for row, (site_id, capacity) in enumerate(zip(sites.values["id"], sites.values["capacity"], strict=True)):
        count = counts.get(site_id, 0)
        if capacity is not INVALID and site_id is not INVALID and capacity < count:
            message = f"capacity {capacity} is less than the {count} sensors of the site"
            issues.append(sites.issue(row, "capacity", message))
