"""Parking: guidance signs that show the free places of the car parks."""

from scada.parking.guidance import (
    GuidanceLine,
    GuidanceRule,
    ParkingGuidance,
    load_guidance,
    parse_guidance,
    render_line,
)

__all__ = ["GuidanceLine", "GuidanceRule", "ParkingGuidance", "load_guidance", "parse_guidance", "render_line"]
