"""What the console knows of an open incident (its watched variables, parsed), and how it is drawn on the map.

An incident's place is a star; the devices of the selected incident's actions get a ring coloured by the action's
state (proposed blue, sending white, confirmed green, failed red, cancelled grey).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import pyqtgraph as pg

from hmi import theme
from hmi.model import CityModel
from hmi.watches import Watch

DEFAULT_KINDS = ("accident", "roadworks", "congestion", "hazard")
"""The kinds the information model guarantees (used when the server documents none)."""
INCIDENT_VARIABLES = (
    "Kind",
    "Latitude",
    "Longitude",
    "Description",
    "Status",
    "CreatedAt",
    "Actions",
    "Timeline",
    "PendingActions",
    "FailedActions",
)
ACTION_COLOURS: dict[str, str] = {
    "proposed": theme.ACCENT,
    "sending": theme.TEXT,
    "confirmed": theme.GOOD,
    "failed": theme.BAD,
    "cancelled": theme.TEXT_DIM,
}


@dataclass(slots=True)
class OpenIncident:
    """One open incident as its watched variables describe it."""

    id: str
    values: dict[str, Any] = field(default_factory=dict)
    actions: list[dict[str, Any]] = field(default_factory=list)
    timeline: list[dict[str, Any]] = field(default_factory=list)
    watch: Watch | None = None

    @property
    def position(self) -> tuple[float, float] | None:
        """(latitude, longitude) once known."""
        lat, lon = self.values.get("Latitude"), self.values.get("Longitude")
        return (float(lat), float(lon)) if isinstance(lat, int | float) and isinstance(lon, int | float) else None

    def action(self, action_id: str) -> dict[str, Any] | None:
        """An action by id."""
        return next((a for a in self.actions if a.get("id") == action_id), None)


def parse_kinds(description: str) -> list[str]:
    """The kinds listed in a Kind argument's description ("accident, roadworks, congestion or hazard")."""
    words = [w.strip().strip(".") for w in re.split(r",|\bor\b|\band\b", description)]
    return [w for w in words if re.fullmatch(r"[a-z][a-z0-9_-]*", w)]


def action_summary(action: dict[str, Any]) -> str:
    """What an action does, for people ("ACCIDENT / A31 A 1 KM / RALENTIR, pictogram 1", "plan 9 for 1800 s")."""
    command = action.get("command") or {}
    args = command.get("args") or {}
    kind = action.get("kind")
    if kind == "sign":
        text = str(args.get("Text", "")).replace("\n", " / ")
        return f"{text}, pictogram {args.get('Pictogram', 0)}" + (", flashing" if args.get("Flashing") else "")
    if kind == "traffic":
        return f"plan {args.get('Plan')} for {args.get('DurationSeconds')} s"
    if kind == "parking":
        return f"display mode {args.get('Mode')}"
    return str(action.get("text") or action.get("message") or "")


def timeline_line(step: dict[str, Any]) -> str:
    """One timeline entry for people: "20:45:38 +0.0 s  reported  (operator) Accident reported at …"."""
    when = str(step.get("ts") or "")[11:19]
    offset = step.get("t")
    since = f" +{float(offset):.1f} s" if isinstance(offset, int | float) else ""
    who = f" ({step['user']})" if step.get("user") else ""
    return f"{when}{since}  {step.get('step', '')}{who}  {step.get('text', '')}".rstrip()


class IncidentMapLayer:
    """The incidents' places and the selected incident's action rings, two scatter items on the map's plot."""

    def __init__(self, plot: Any) -> None:
        self.places = pg.ScatterPlotItem(size=18, symbol="star", pen=pg.mkPen("#0b0d10", width=1), brush=theme.WARNING)
        self.places.setZValue(98)
        self.action_rings = pg.ScatterPlotItem(size=26, symbol="o", brush=None)
        self.action_rings.setZValue(97)
        plot.addItem(self.places)
        plot.addItem(self.action_rings)

    def draw(self, model: CityModel, incidents: list[OpenIncident], selected: OpenIncident | None) -> dict[str, str]:
        """Draw every incident's place (the selected one larger) and ring its action devices; device -> state."""
        xs: list[float] = []
        ys: list[float] = []
        sizes: list[int] = []
        for incident in incidents:
            position = incident.position
            if position is None:
                continue
            x, y = model.projection.to_xy(*position)
            xs.append(float(x))
            ys.append(float(y))
            sizes.append(26 if selected is not None and incident.id == selected.id else 18)
        self.places.setData(x=xs, y=ys, size=sizes)
        spots: list[dict[str, Any]] = []
        ringed: dict[str, str] = {}
        for action in selected.actions if selected is not None else []:
            ref = model.ref(str(action.get("device") or ""))
            if ref is None:
                continue
            x, y = model.position(ref)
            state = str(action.get("state", ""))
            ringed[ref.id] = state
            spots.append({"pos": (x, y), "pen": pg.mkPen(ACTION_COLOURS.get(state, theme.TEXT), width=3)})
        self.action_rings.setData(spots=spots)
        return ringed
