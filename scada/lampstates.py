"""Per-cabinet lamp state arrays: one byte per lamp, so a client watches 34,000 lamps with 340 monitored items.

`LampStates` is a router sink. It follows the lamp variables the drivers publish (Level, On, LampFailure,
NodeFault, PresenceDetected and their quality) and, after every batch, publishes for each cabinet that changed one
value record `Lighting/<CabinetId>/LampStates`: a ByteString whose byte k is the state of the cabinet's lamp of
register index k (0xFF where no lamp has that index). Wiring (scada/app.py):

    lamp_states = LampStates(site, to_address_space)
    router.add_sink("lamp-states", lamp_states)

A byte holds a state code in its low nibble and two flags (the information model's LampStates contract):

    0 unknown (no value yet)   1 off   2 dimmed   3 on (level >= 99.5 %)   4 lamp failure
    5 node fault (the luminaire's node does not answer)   6 no communication (the cabinet's values are Bad)
    0x10 presence detected     0x20 uncertain (the cabinet missed a poll: last usable values)
    0xFF no lamp at this index
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from scada.model import Publish, ValueRecord
from scada.site.model import Cabinet, Site

UNKNOWN = 0
OFF = 1
DIMMED = 2
ON = 3
FAILED = 4
NODE_FAULT = 5
NO_COMM = 6
CODE_MASK = 0x0F
PRESENCE = 0x10
UNCERTAIN = 0x20
ABSENT = 0xFF

VARIABLE = "LampStates"
FULL_LEVEL = 99.5  # a level at or above this (%) is "on", below it "dimmed"

_BAD = 0x80000000
_UNCERTAIN = 0x40000000

# Fields of a lamp kept here, by variable name.
_LEVEL, _ON, _FAILURE, _NODE_FAULT, _PRESENCE = range(5)
FIELDS: dict[str, int] = {
    "Level": _LEVEL,
    "On": _ON,
    "LampFailure": _FAILURE,
    "NodeFault": _NODE_FAULT,
    "PresenceDetected": _PRESENCE,
}


def lamp_code(
    level: float | None,
    on: bool | None,
    failure: bool,
    node_fault: bool,
    presence: bool,
    *,
    bad: bool = False,
    uncertain: bool = False,
) -> int:
    """The state byte of one lamp from its latest values and their quality."""
    if bad:
        code = NO_COMM
    elif node_fault:
        code = NODE_FAULT
    elif failure:
        code = FAILED
    elif level is None and on is None:
        code = UNKNOWN
    elif on is False or (level is not None and level <= 0.0):
        code = OFF
    elif level is None or level >= FULL_LEVEL:
        code = ON
    else:
        code = DIMMED
    if presence and not bad:
        code |= PRESENCE
    if uncertain and not bad:
        code |= UNCERTAIN
    return code


class _Lamp:
    """The latest values of one lamp and where its byte lives."""

    __slots__ = ("bad", "cabinet", "index", "uncertain", "values")

    def __init__(self, cabinet: _Cabinet, index: int) -> None:
        self.cabinet = cabinet
        self.index = index
        self.values: list[object] = [None, None, False, False, False]
        self.bad = False
        self.uncertain = False

    def code(self) -> int:
        level, on, failure, node_fault, presence = self.values
        return lamp_code(
            float(level) if isinstance(level, int | float) else None,
            bool(on) if on is not None else None,
            bool(failure),
            bool(node_fault),
            bool(presence),
            bad=self.bad,
            uncertain=self.uncertain,
        )


class _Cabinet:
    """The state array of one cabinet."""

    __slots__ = ("codes", "tag")

    def __init__(self, cabinet: Cabinet) -> None:
        self.tag = f"{cabinet.path}/{VARIABLE}"
        size = max((lamp.index for lamp in cabinet.lamps), default=-1) + 1
        self.codes = bytearray([ABSENT]) * size
        for lamp in cabinet.lamps:
            self.codes[lamp.index] = UNKNOWN


def state_tags(site: Site) -> list[str]:
    """The LampStates tag of every cabinet of the site."""
    return [f"{cabinet.path}/{VARIABLE}" for cabinet in site.cabinets.values()]


class LampStates:
    """Router sink keeping a state byte per lamp and publishing each changed cabinet's array once per batch."""

    def __init__(self, site: Site, publish: Publish) -> None:
        self._publish = publish
        self._cabinets: dict[str, _Cabinet] = {}
        self._lamps: dict[str, _Lamp] = {}
        for cabinet in site.cabinets.values():
            entry = _Cabinet(cabinet)
            self._cabinets[cabinet.id] = entry
            for lamp in cabinet.lamps:
                self._lamps[lamp.path] = _Lamp(entry, lamp.index)
        self.published = 0
        """How many LampStates records were published."""

    def codes(self, cabinet_id: str) -> bytes:
        """The current state array of a cabinet (KeyError for an unknown cabinet)."""
        return bytes(self._cabinets[cabinet_id].codes)

    def initial_records(self, ts: datetime) -> list[ValueRecord]:
        """One record per cabinet with its current array (every lamp unknown until values arrive)."""
        return [ValueRecord(cab.tag, bytes(cab.codes), 0, ts) for cab in self._cabinets.values()]

    def __call__(self, records: Sequence[ValueRecord]) -> None:
        """Take a batch of value records; publish the arrays that changed (one record per cabinet)."""
        lamps = self._lamps
        fields = FIELDS
        changed: dict[_Cabinet, datetime] = {}
        for tag, value, quality, source_ts in records:
            head, _, name = tag.rpartition("/")
            field = fields.get(name)
            if field is None:
                continue
            lamp = lamps.get(head)
            if lamp is None:
                continue
            if quality & _BAD:
                lamp.bad, lamp.uncertain = True, False
            else:
                lamp.bad = False
                lamp.uncertain = bool(quality & _UNCERTAIN)
                lamp.values[field] = value
            code = lamp.code()
            cabinet = lamp.cabinet
            if cabinet.codes[lamp.index] != code:
                cabinet.codes[lamp.index] = code
                changed[cabinet] = source_ts
            elif cabinet in changed and source_ts > changed[cabinet]:
                changed[cabinet] = source_ts
        if changed:
            out = [ValueRecord(cab.tag, bytes(cab.codes), 0, ts) for cab, ts in changed.items()]
            self.published += len(out)
            self._publish(out)
