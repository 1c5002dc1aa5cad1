"""Objects/City/Incidents: ReportIncident/CloseIncident and one IncidentType object per open incident.

The OPC UA side validates the arguments and delegates to an `IncidentHandler` (the incident-response service of
a later issue plugs in here); the default handler is `IncidentRegistry`, a minimal in-memory registry. The
reporter's contact is personal data: it reaches the handler, never the address space.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Protocol, runtime_checkable
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from asyncua import ua

from scada.catalog import ArgSpec
from scada.model import CommandError, InvalidArgumentError, OutOfRangeError, Quality, utcnow
from scada.opcua.builder import SpaceBuilder
from scada.opcua.methods import CURRENT_USER, check_arguments, status_result, user_name
from scada.opcua.nodes import ORGANIZES, VariableNode, data_value, string_nodeid
from scada.opcua.types import INCIDENT_TYPE, TypeBuilder
from scada.opcua.values import AddressSpaceWriter

log = logging.getLogger(__name__)

INCIDENT_KINDS = ("accident", "roadworks", "congestion", "hazard")
MAX_DESCRIPTION = 1000
MAX_CONTACT = 200

REPORT_INPUTS = (
    ArgSpec("Kind", "String", description="accident, roadworks, congestion or hazard"),
    ArgSpec("Latitude", "Double", -90.0, 90.0, "WGS84"),
    ArgSpec("Longitude", "Double", -180.0, 180.0, "WGS84"),
    ArgSpec("Description", "String", 0, MAX_DESCRIPTION, "what happened"),
    ArgSpec("ReporterContact", "String", 0, MAX_CONTACT, "how to reach the reporter (kept private)"),
)
REPORT_OUTPUTS = (ArgSpec("IncidentId", "String", description="the id of the new incident"),)
CLOSE_INPUTS = (ArgSpec("IncidentId", "String", description="the id ReportIncident answered"),)


class NotFoundError(CommandError):
    """No open incident has that id."""

    status = Quality.BAD_NOT_FOUND


@dataclass(frozen=True, slots=True)
class IncidentReport:
    """A checked ReportIncident call."""

    kind: str
    latitude: float
    longitude: float
    description: str
    reporter_contact: str  # personal data: never published in the address space
    user: str | None
    reported_at: datetime


@dataclass(slots=True)
class Incident:
    """An open incident as the address space shows it."""

    id: str
    kind: str
    latitude: float
    longitude: float
    description: str
    created_at: datetime
    status: str = "open"


@runtime_checkable
class IncidentHandler(Protocol):
    """Who decides about incidents: returns the new incident's id, closes one (CommandError when it cannot)."""

    async def report(self, report: IncidentReport) -> str:
        """Register a reported incident and return its id."""
        ...

    async def close(self, incident_id: str, user: str | None) -> None:
        """Close an open incident; raises NotFoundError (or another CommandError) when it cannot."""
        ...


def report_errors(
    kind: object, latitude: object, longitude: object, description: object, contact: object
) -> list[CommandError | None]:
    """Per ReportIncident argument, what is wrong with it (None when it is fine)."""
    errors: list[CommandError | None] = []
    if not isinstance(kind, str) or kind not in INCIDENT_KINDS:
        errors.append(InvalidArgumentError(f"Kind must be one of {', '.join(INCIDENT_KINDS)}, got {kind!r}"))
    else:
        errors.append(None)
    for name, value, limit in (("Latitude", latitude, 90.0), ("Longitude", longitude, 180.0)):
        if not isinstance(value, int | float) or isinstance(value, bool) or not math.isfinite(value):
            errors.append(InvalidArgumentError(f"{name} must be a finite number"))
        elif not -limit <= value <= limit:
            errors.append(OutOfRangeError(f"{name}={value} is outside -{limit:g}..{limit:g}"))
        else:
            errors.append(None)
    for name, text, limit in (("Description", description, MAX_DESCRIPTION), ("ReporterContact", contact, MAX_CONTACT)):
        if not isinstance(text, str):
            errors.append(InvalidArgumentError(f"{name} must be a string"))
        elif len(text) > limit:
            errors.append(OutOfRangeError(f"{name} is longer than {limit} characters"))
        else:
            errors.append(None)
    return errors


def validate_report(kind: object, latitude: object, longitude: object, description: object, contact: object) -> None:
    """Raise the first InvalidArgumentError/OutOfRangeError of the ReportIncident arguments, if any."""
    for error in report_errors(kind, latitude, longitude, description, contact):
        if error is not None:
            raise error


class IncidentRegistry:
    """The default IncidentHandler: open incidents in memory, ids INC-<local date>-<daily sequence>."""

    def __init__(self, timezone: str = "UTC") -> None:
        try:
            self._tz: ZoneInfo = ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError):
            log.warning("unknown time zone %r: incident ids use UTC dates", timezone)
            self._tz = ZoneInfo("UTC")
        self._day: date | None = None
        self._sequence = 0
        self.open: dict[str, IncidentReport] = {}

    async def report(self, report: IncidentReport) -> str:
        """Register the incident; its id counts incidents of the local day."""
        day = report.reported_at.astimezone(self._tz).date()
        if day != self._day:
            self._day, self._sequence = day, 0
        while True:
            self._sequence += 1
            incident_id = f"INC-{day:%Y%m%d}-{self._sequence:04d}"
            if incident_id not in self.open:
                break
        self.open[incident_id] = report
        return incident_id

    async def close(self, incident_id: str, user: str | None) -> None:
        """Forget an open incident; NotFoundError if there is none with that id."""
        if self.open.pop(incident_id, None) is None:
            raise NotFoundError(f"no open incident {incident_id!r}")


class IncidentsObserver(Protocol):
    """Told when an incident object appears and just before it is removed (to add or drop nodes of its own)."""

    def shown(self, incident: Incident, nodeid: ua.NodeId) -> None:
        """The object of an open incident was added under Incidents."""
        ...

    def withdrawing(self, incident_id: str) -> None:
        """The object of a closed incident is about to be removed."""
        ...


@dataclass(slots=True)
class _Shown:
    incident: Incident
    nodeid: ua.NodeId
    variables: dict[str, VariableNode] = field(default_factory=dict)


class IncidentsSpace:
    """The Incidents folder of the address space: its two methods and the objects of open incidents."""

    def __init__(self, builder: SpaceBuilder, writer: AddressSpaceWriter, handler: IncidentHandler) -> None:
        self._builder = builder
        self._writer = writer
        self.handler = handler
        self._folder = builder.folders["Incidents"]
        self._inverse = builder.inverse_to(self._folder, ORGANIZES)
        self._shown: dict[str, _Shown] = {}
        self.observers: list[IncidentsObserver] = []

    def install(self) -> None:
        """Add ReportIncident and CloseIncident to the folder and bind them."""
        types = TypeBuilder(self._builder.aspace, self._builder.ns)
        report = types.method(
            self._folder,
            ("Incidents", "ReportIncident"),
            "ReportIncident",
            REPORT_INPUTS,
            REPORT_OUTPUTS,
            "report an incident; answers its id",
            mandatory=False,
        )
        close = types.method(
            self._folder,
            ("Incidents", "CloseIncident"),
            "CloseIncident",
            CLOSE_INPUTS,
            description="close an open incident",
            mandatory=False,
        )
        report.node.call = self._report
        close.node.call = self._close

    @property
    def incidents(self) -> list[Incident]:
        """The incidents shown, oldest first."""
        return [shown.incident for shown in self._shown.values()]

    def show(self, incident: Incident) -> ua.NodeId:
        """Add the object of an open incident under Incidents (its variables carry Good values)."""
        if not incident.id or "/" in incident.id:
            raise ValueError(f"incident id {incident.id!r} cannot name a node (empty or containing '/')")
        if incident.id in self._shown:
            raise ValueError(f"incident {incident.id} is already shown")
        now = utcnow()
        values = {
            "Kind": ua.Variant(incident.kind, ua.VariantType.String),
            "Latitude": ua.Variant(float(incident.latitude), ua.VariantType.Double),
            "Longitude": ua.Variant(float(incident.longitude), ua.VariantType.Double),
            "Description": ua.Variant(incident.description, ua.VariantType.String),
            "Status": ua.Variant(incident.status, ua.VariantType.String),
            "CreatedAt": ua.Variant(incident.created_at, ua.VariantType.DateTime),
        }
        path = f"Incidents/{incident.id}"
        obj = self._builder.add_object(
            self._folder,
            ORGANIZES,
            self._inverse,
            INCIDENT_TYPE,
            path,
            incident.id,
            None,
            values={name: data_value(v, None, incident.created_at, now) for name, v in values.items()},
            tagged=False,
        )
        shown = _Shown(incident, obj.nodeid)
        for name in values:
            node = self._builder.aspace.get(string_nodeid(f"{path}/{name}", self._builder.ns))
            assert isinstance(node, VariableNode)
            shown.variables[name] = node
        self._shown[incident.id] = shown
        for observer in self.observers:
            try:
                observer.shown(incident, obj.nodeid)
            except Exception:
                log.exception("incidents observer %r failed", observer)
        return obj.nodeid

    def withdraw(self, incident_id: str) -> bool:
        """Mark an incident closed (subscribers see Status "closed"), then remove its object; False if not shown."""
        shown = self._shown.pop(incident_id, None)
        if shown is None:
            return False
        shown.incident.status = "closed"
        now = utcnow()
        self._writer.set_value(
            shown.variables["Status"],
            data_value(ua.Variant("closed", ua.VariantType.String), None, now, now),
        )
        for observer in self.observers:
            try:
                observer.withdrawing(incident_id)
            except Exception:
                log.exception("incidents observer %r failed", observer)
        for node in shown.variables.values():
            self._writer.forget(node, self._builder.aspace)
        self._builder.remove_object(self._folder, shown.nodeid)
        return True

    async def _report(self, object_id: ua.NodeId, *args: ua.Variant) -> ua.CallMethodResult:
        refused = check_arguments(REPORT_INPUTS, args)
        if refused is not None:
            return refused
        kind, latitude, longitude, description, contact = (arg.Value for arg in args)
        errors = report_errors(kind, latitude, longitude, description, contact)
        first = next((error for error in errors if error is not None), None)
        if first is not None:
            log.info("ReportIncident refused: %s", first)
            return status_result(int(first.status), [Quality.GOOD if e is None else int(e.status) for e in errors])
        report = IncidentReport(
            kind=kind,
            latitude=float(latitude),
            longitude=float(longitude),
            description=description,
            reporter_contact=contact,
            user=user_name(CURRENT_USER.get()),
            reported_at=utcnow(),
        )
        try:
            incident_id = await self.handler.report(report)
        except CommandError as exc:
            log.info("ReportIncident refused: %s", exc)
            return status_result(int(exc.status))
        except Exception:
            log.exception("ReportIncident failed")
            return status_result(Quality.BAD_INTERNAL)
        incident = Incident(
            incident_id, report.kind, report.latitude, report.longitude, report.description, report.reported_at
        )
        try:
            self.show(incident)
        except ValueError:
            log.exception("the incident handler answered an id that cannot be shown")
            return status_result(Quality.BAD_INTERNAL)
        log.info("incident %s reported (%s)", incident_id, report.kind)
        return status_result(Quality.GOOD, outputs=[ua.Variant(incident_id, ua.VariantType.String)])

    async def _close(self, object_id: ua.NodeId, *args: ua.Variant) -> ua.CallMethodResult:
        refused = check_arguments(CLOSE_INPUTS, args)
        if refused is not None:
            return refused
        incident_id = args[0].Value
        try:
            await self.handler.close(incident_id, user_name(CURRENT_USER.get()))
        except CommandError as exc:
            log.info("CloseIncident %r refused: %s", incident_id, exc)
            return status_result(int(exc.status))
        except Exception:
            log.exception("CloseIncident failed")
            return status_result(Quality.BAD_INTERNAL)
        self.withdraw(incident_id)
        log.info("incident %s closed", incident_id)
        return status_result(Quality.GOOD)
