"""Alarm slots: every (device, alarm kind) pair of a site that can become a condition, with what evaluation needs.

Built once when the engine starts: the hot path looks a tag up and finds its slots, already holding the condition
id, the evaluation function (shared per kind), the message label, the district and the flood parent.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from scada.alarms.config import AlarmsConfig
from scada.alarms.definitions import ALARM_KINDS, AlarmKind, evaluator
from scada.catalog import Kind
from scada.site.model import Device, Site


@dataclass(frozen=True, slots=True)
class AlarmSlot:
    """One possible condition: an alarm kind on one device, with everything the hot path needs precomputed."""

    kind: AlarmKind
    device: Device
    path: str  # the condition's id (its NodeId string)
    tag: str  # the watched tag
    evaluate: Callable[[Any, bool], bool]
    label: str
    district: str
    parent: str | None  # the cabinet whose flood alarms suppress it (lamp alarms), else None
    severity: int


def slots_of(site: Site, config: AlarmsConfig) -> Iterator[AlarmSlot]:
    """Every alarm slot of the site, in site order."""
    kinds: dict[Kind, list[AlarmKind]] = {}
    for kind in ALARM_KINDS:
        if kind.key in config.disabled:
            continue
        for device_kind in kind.devices:
            kinds.setdefault(device_kind, []).append(kind)
    park = config.car_park_full
    evaluators = {kind.key: evaluator(kind, park.full_at_free, park.clear_at_free) for kind in ALARM_KINDS}

    def slots(device: Device, label: str, district: str, parent: str | None = None) -> Iterator[AlarmSlot]:
        for kind in kinds.get(device.kind, ()):
            if kind.key == "car_park_full" and getattr(device, "site_type", "") not in park.site_types:
                continue
            yield AlarmSlot(
                kind=kind,
                device=device,
                path=f"{device.path}/Alarms/{kind.condition}",
                tag=f"{device.path}/{kind.variable}",
                evaluate=evaluators[kind.key],
                label=label,
                district=district,
                parent=parent,
                severity=config.severity(kind.key),
            )

    for cabinet in site.cabinets.values():
        yield from slots(cabinet, f"cabinet {cabinet.id} ({cabinet.name})", cabinet.district)
        for lamp in cabinet.lamps:
            street = site.streets.get(lamp.street_id)
            where = f", {street.name}" if street is not None else ""
            yield from slots(lamp, f"lamp {lamp.id} (cabinet {cabinet.id}{where})", cabinet.district, cabinet.id)
    for controller in site.controllers.values():
        yield from slots(controller, f"controller {controller.id} ({controller.name})", controller.district)
    for sign in site.signs.values():
        yield from slots(sign, f"sign {sign.id} ({sign.name})", sign.district)
    for parking in site.parking.values():
        yield from slots(parking, f"car park {parking.id} ({parking.name})", parking.district)
