"""Maintenance overrides: a cabinet forced on or off for a limited time, by a named maintainer, for a stated reason.

The book only holds and checks overrides; the lighting service commands the cabinet (set_mode through the
command service, origin "maintenance", user the maintainer) and schedules the return to automatic at expiry.
Overrides live in memory: a server restart returns every cabinet to automatic (mode 0, current profile).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from scada.model import CommandError, InvalidArgumentError, OutOfRangeError, Quality, UnknownDeviceError
from scada.site.model import Site

ORIGIN = "maintenance"
MODES = {1: "forced on", 2: "forced off"}


class NoOverrideError(CommandError):
    """The cabinet has no maintenance override to cancel."""

    status = Quality.BAD_INVALID_STATE


@dataclass(frozen=True, slots=True)
class Override:
    """One maintenance override in force."""

    cabinet_id: str
    mode: int  # 1 forced on, 2 forced off
    user: str
    reason: str
    started: datetime  # site time (UTC)
    expires: datetime

    @property
    def mode_name(self) -> str:
        """ "forced on" or "forced off"."""
        return MODES[self.mode]


class OverrideBook:
    """The overrides in force, one per cabinet at most, checked against the site and the configured maximum."""

    def __init__(self, site: Site, max_minutes: int) -> None:
        self._site = site
        self.max_minutes = max_minutes
        self._items: dict[str, Override] = {}

    def make(self, cabinet_id: str, mode: int, minutes: float, user: str, reason: str, now: datetime) -> Override:
        """A checked override starting `now`; CommandError subclasses (nothing is changed) when it is not allowed."""
        if cabinet_id not in self._site.cabinets:
            raise UnknownDeviceError(f"no cabinet {cabinet_id!r} in site {self._site.name}")
        if isinstance(mode, bool) or mode not in MODES:
            raise OutOfRangeError(f"override mode must be 1 (forced on) or 2 (forced off), got {mode!r}")
        if isinstance(minutes, bool) or not isinstance(minutes, int | float) or minutes != minutes:
            raise InvalidArgumentError(f"override minutes must be a number, got {minutes!r}")
        if not 0 < minutes <= self.max_minutes:
            raise OutOfRangeError(
                f"an override lasts more than 0 and at most {self.max_minutes} minutes, got {minutes:g}"
            )
        if not isinstance(user, str) or not user.strip():
            raise InvalidArgumentError("an override needs the maintainer's user name")
        if not isinstance(reason, str) or not reason.strip():
            raise InvalidArgumentError("an override needs a reason")
        return Override(cabinet_id, mode, user.strip(), reason.strip(), now, now + timedelta(minutes=minutes))

    def put(self, override: Override) -> Override | None:
        """Record an override (replacing the cabinet's previous one, returned)."""
        previous = self._items.get(override.cabinet_id)
        self._items[override.cabinet_id] = override
        return previous

    def get(self, cabinet_id: str) -> Override | None:
        """The cabinet's override in force, or None."""
        return self._items.get(cabinet_id)

    def pop(self, cabinet_id: str, expected: Override | None = None) -> Override | None:
        """Remove and return the cabinet's override (only if it is still `expected`, when given)."""
        current = self._items.get(cabinet_id)
        if current is None or (expected is not None and current != expected):
            return None
        return self._items.pop(cabinet_id)

    def expired(self, now: datetime) -> list[Override]:
        """The overrides whose end has passed."""
        return [item for item in self._items.values() if item.expires <= now]

    def list(self) -> list[Override]:
        """Every override in force, soonest ending first."""
        return sorted(self._items.values(), key=lambda item: (item.expires, item.cabinet_id))

    def __contains__(self, cabinet_id: object) -> bool:
        return cabinet_id in self._items
