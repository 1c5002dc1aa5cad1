"""LampStates: one byte per lamp from the lamp variables' values and qualities, one record per changed cabinet."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from scada import lampstates as ls
from scada.model import Quality, ValueRecord
from scada.site.loader import load_site
from scada.site.model import Site

ROOT = Path(__file__).resolve().parents[2]
T0 = datetime(2026, 11, 3, 18, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def site() -> Site:
    return load_site(ROOT / "config" / "small")


class Sink:
    def __init__(self) -> None:
        self.batches: list[list[ValueRecord]] = []

    def __call__(self, records) -> None:  # type: ignore[no-untyped-def]
        self.batches.append(list(records))


def lamp_records(path: str, level: float, on: bool, quality: int = Quality.GOOD, **flags: bool) -> list[ValueRecord]:
    values = {
        "Level": level,
        "On": on,
        "LampFailure": flags.get("failure", False),
        "NodeFault": flags.get("node_fault", False),
        "PresenceDetected": flags.get("presence", False),
        "PowerW": 12.0,  # not a state field: ignored
    }
    return [ValueRecord(f"{path}/{name}", value, quality, T0) for name, value in values.items()]


@pytest.mark.parametrize(
    ("level", "on", "flags", "code"),
    [
        (100.0, True, {}, ls.ON),
        (99.6, True, {}, ls.ON),
        (50.0, True, {}, ls.DIMMED),
        (0.0, True, {}, ls.OFF),
        (80.0, False, {}, ls.OFF),
        (80.0, True, {"failure": True}, ls.FAILED),
        (80.0, True, {"failure": True, "node_fault": True}, ls.NODE_FAULT),
        (30.0, True, {"presence": True}, ls.DIMMED | ls.PRESENCE),
    ],
)
def test_code_of_one_lamp(level: float, on: bool, flags: dict[str, bool], code: int) -> None:
    assert (
        ls.lamp_code(
            level, on, flags.get("failure", False), flags.get("node_fault", False), flags.get("presence", False)
        )
        == code
    )


def test_unknown_until_values_then_bad_and_uncertain_quality() -> None:
    assert ls.lamp_code(None, None, False, False, False) == ls.UNKNOWN
    assert ls.lamp_code(70.0, True, False, False, True, bad=True) == ls.NO_COMM
    assert ls.lamp_code(70.0, True, False, False, False, uncertain=True) == ls.DIMMED | ls.UNCERTAIN


def test_array_per_cabinet_indexed_by_register_index(site: Site) -> None:
    sink = Sink()
    states = ls.LampStates(site, sink)
    cabinet = site.cabinets["CAB-0002"]
    assert states.codes("CAB-0002") == bytes([ls.UNKNOWN]) * len(cabinet.lamps)
    lamp = max(cabinet.lamps, key=lambda lamp: lamp.index)
    states(lamp_records(lamp.path, 40.0, True))
    [[record]] = sink.batches
    assert record.tag == "Lighting/CAB-0002/LampStates"
    assert record.quality == Quality.GOOD and record.source_ts == T0
    assert record.value[lamp.index] == ls.DIMMED
    assert record.value.count(ls.UNKNOWN) == len(cabinet.lamps) - 1


def test_one_record_per_changed_cabinet_and_none_when_nothing_changes(site: Site) -> None:
    sink = Sink()
    states = ls.LampStates(site, sink)
    batch = [r for lamp in site.lamps() for r in lamp_records(lamp.path, 100.0, True)]
    states(batch)
    assert sorted(r.tag for r in sink.batches[0]) == sorted(ls.state_tags(site))
    states(batch)  # the same values again: no record
    assert len(sink.batches) == 1
    lamp = next(iter(site.cabinets["CAB-0003"].lamps))
    states([ValueRecord(f"{lamp.path}/LampFailure", True, Quality.GOOD, T0 + timedelta(seconds=5))])
    [[record]] = sink.batches[1:]
    assert record.tag == "Lighting/CAB-0003/LampStates"
    assert record.value[lamp.index] == ls.FAILED
    assert record.source_ts == T0 + timedelta(seconds=5)


def test_communication_loss_and_recovery_keep_the_last_values(site: Site) -> None:
    sink = Sink()
    states = ls.LampStates(site, sink)
    lamp = next(site.lamps())
    states(lamp_records(lamp.path, 60.0, True))
    states(lamp_records(lamp.path, 60.0, True, Quality.UNCERTAIN_LAST_USABLE))
    assert sink.batches[-1][0].value[lamp.index] == ls.DIMMED | ls.UNCERTAIN
    states([ValueRecord(f"{lamp.path}/Level", None, Quality.BAD_COMM, T0)])
    assert sink.batches[-1][0].value[lamp.index] == ls.NO_COMM
    states([ValueRecord(f"{lamp.path}/Level", 60.0, Quality.GOOD, T0)])
    assert sink.batches[-1][0].value[lamp.index] == ls.DIMMED


def test_unrelated_and_unknown_tags_are_ignored(site: Site) -> None:
    sink = Sink()
    states = ls.LampStates(site, sink)
    states(
        [
            ValueRecord("Lighting/CAB-0001/Mode", 1, Quality.GOOD, T0),
            ValueRecord("Lighting/CAB-0001/L-999999/Level", 10.0, Quality.GOOD, T0),
            ValueRecord("Traffic/TLC-001/Fault", True, Quality.GOOD, T0),
            ValueRecord("Lighting/CAB-0001/LampStates", b"\x01", Quality.GOOD, T0),
        ]
    )
    assert sink.batches == []


def test_gaps_in_the_indices_are_absent(site: Site) -> None:
    from scada.site.model import Cabinet, Endpoint, Lamp

    cabinet = Cabinet(id="CAB-9", name="gappy", district="d", lat=47.0, lon=5.0, endpoint=Endpoint("modbus"))
    for index in (0, 3):
        cabinet.lamps.append(
            Lamp(id=f"L-9{index}", cabinet_id="CAB-9", index=index, lat=47.0, lon=5.0, rated_w=50, legacy_w=100)
        )
    gappy = Site(name="g", title="g", lat=47.0, lon=5.0, timezone="UTC", folder=Path("."), cabinets={"CAB-9": cabinet})
    assert ls.LampStates(gappy, Sink()).codes("CAB-9") == bytes([ls.UNKNOWN, ls.ABSENT, ls.ABSENT, ls.UNKNOWN])
