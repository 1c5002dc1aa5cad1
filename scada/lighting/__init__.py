"""Lighting automation: astronomical switching, night profiles per district, presence response, overrides."""

from scada.lighting.clock import AcceleratedClock
from scada.lighting.config import LightingConfig, load_lighting_config, parse_lighting
from scada.lighting.overrides import NoOverrideError, Override
from scada.lighting.service import DistrictStatus, HoldStatus, LightingService, LightingStatus

__all__ = [
    "AcceleratedClock",
    "DistrictStatus",
    "HoldStatus",
    "LightingConfig",
    "LightingService",
    "LightingStatus",
    "NoOverrideError",
    "Override",
    "load_lighting_config",
    "parse_lighting",
]
