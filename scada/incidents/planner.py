"""The response a playbook proposes for an incident at a location: one action per device, plus the notification.

Pure: no I/O, no clock. Signs come nearest first (upstream ones only unless the rule says otherwise), then the
controllers and the car parks within their distances, then the operator notification.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from scada.incidents.geometry import upstream_signs, within
from scada.incidents.playbook import Playbook
from scada.site.model import Site


class ActionKind(enum.StrEnum):
    """What an action does."""

    SIGN = "sign"  # display a message on a sign
    TRAFFIC = "traffic"  # run a plan on a traffic controller
    PARKING = "parking"  # set a car park's entrance display mode
    NOTIFY = "notify"  # notify the operators (an event)


@dataclass(frozen=True, slots=True)
class Command:
    """A catalog action with its arguments (the shape of a WriteRequest without device, user and origin)."""

    action: str
    args: Mapping[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """JSON-able form."""
        return {"action": self.action, "args": dict(self.args)}


@dataclass(frozen=True, slots=True)
class PlannedAction:
    """One proposed action: on a device (device_id) or the notification (device_id None)."""

    kind: ActionKind
    device_id: str | None
    command: Command | None  # None for the notification
    distance_m: float | None = None
    message: str = ""  # the notification text
    severity: int = 0


def plan_response(
    playbook: Playbook, site: Site, incident_id: str, lat: float, lon: float, description: str = ""
) -> list[PlannedAction]:
    """Every action of `playbook` for an incident at (lat, lon), signs first, nearest first within each kind."""
    actions: list[PlannedAction] = []
    rule = playbook.signs
    if rule is not None:
        if rule.upstream_only:
            chosen = list(upstream_signs(site.signs.values(), lat, lon, rule.within_m, rule.cone_deg))
        else:
            chosen = within(site.signs.values(), lat, lon, rule.within_m)
        for near in chosen:
            text = rule.render(near.device.road, near.distance_m, playbook.kind)
            command = Command("display", {"Text": text, "Pictogram": rule.pictogram, "Flashing": rule.flashing})
            actions.append(PlannedAction(ActionKind.SIGN, near.device.id, command, near.distance_m))
    traffic = playbook.traffic
    if traffic is not None:
        for controller in within(site.controllers.values(), lat, lon, traffic.within_m):
            command = Command("select_plan", {"Plan": traffic.plan, "DurationSeconds": traffic.duration_s})
            actions.append(PlannedAction(ActionKind.TRAFFIC, controller.device.id, command, controller.distance_m))
    parking = playbook.parking
    if parking is not None and parking.display_mode is not None:
        for car_park in within(site.parking.values(), lat, lon, parking.within_m):
            command = Command("set_display_mode", {"Mode": parking.display_mode})
            actions.append(PlannedAction(ActionKind.PARKING, car_park.device.id, command, car_park.distance_m))
    notify = playbook.notify
    if notify is not None:
        message = notify.render(incident_id, playbook.kind, lat, lon, description)
        actions.append(PlannedAction(ActionKind.NOTIFY, None, None, message=message, severity=notify.severity))
    return actions
