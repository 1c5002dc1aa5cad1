"""The OPC UA server of the control post: the city's information model on asyncua, values in, commands out."""

from scada.opcua.builder import BuildStats, SpaceBuilder, build_address_space
from scada.opcua.incidents import (
    INCIDENT_KINDS,
    Incident,
    IncidentHandler,
    IncidentRegistry,
    IncidentReport,
    IncidentsSpace,
)
from scada.opcua.methods import CURRENT_USER, CommandExecutor
from scada.opcua.server import CityServer
from scada.opcua.values import AddressSpaceWriter

__all__ = [
    "CURRENT_USER",
    "INCIDENT_KINDS",
    "AddressSpaceWriter",
    "BuildStats",
    "CityServer",
    "CommandExecutor",
    "Incident",
    "IncidentHandler",
    "IncidentRegistry",
    "IncidentReport",
    "IncidentsSpace",
    "SpaceBuilder",
    "build_address_space",
]
