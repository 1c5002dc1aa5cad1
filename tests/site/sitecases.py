"""The minimal valid site of the loader tests, and helpers to break it in one precise way."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from scada.model import ConfigError, ConfigIssue
from scada.site.loader import load_site

# Line numbers matter: tests name the line of every field they break (see the comments).
BASE_YAML = """\
site:
  name: t
  title: Test site
  latitude: 47.3
  longitude: 5.0
  timezone: Europe/Paris
defaults:
  modbus: {host: 127.0.0.1, unit: 1}
districts:
  - {id: d1, name: One}
streets:
  - {id: S1, name: Main, district: d1, points: [[5.0, 47.3], [5.001, 47.3]]}
cabinets:
  - {id: C1, name: Cab, district: d1, lat: 47.3, lon: 5.0, port: 21001}
lamps: lamps.csv
controllers:
  - {id: T1, name: Ctl, district: d1, lat: 47.3, lon: 5.0, port: 21002}
signs:
  - {id: V1, name: Sign, district: d1, lat: 47.3, lon: 5.0, port: 21003, bearing_deg: 90}
parking:
  - {id: P1, name: Park, district: d1, type: carpark, lat: 47.3, lon: 5.0, capacity: 10, port: 21004}
parking_sensors: sensors.csv
"""
# line  1 site, 4 latitude, 5 longitude, 6 timezone, 8 defaults.modbus, 10 districts[0], 12 streets[0],
# line 14 cabinets[0], 15 lamps, 17 controllers[0], 19 signs[0], 21 parking[0], 22 parking_sensors

BASE_LAMPS = """\
id,cabinet,index,lat,lon,rated_w,legacy_w,street,seq
L1,C1,0,47.3,5.0,30,70,S1,1
L2,C1,1,47.3,5.0005,30,70,S1,2
"""

BASE_SENSORS = """\
id,site,index,lat,lon
B1,P1,0,47.3,5.0
B2,P1,1,47.3,5.0001
"""

Y = "site/site.yaml"  # how issues name the files of the folder "site"
LAMPS = "site/lamps.csv"
SENSORS = "site/sensors.csv"


MakeSite = Callable[..., Path]


def issues_of(folder: Path) -> list[ConfigIssue]:
    """The issues of a site that must not load."""
    with pytest.raises(ConfigError) as caught:
        load_site(folder)
    return caught.value.issues


def replace_once(text: str, old: str, new: str) -> str:
    """text with the single occurrence of old replaced (fails loudly if old is not there exactly once)."""
    assert text.count(old) == 1, f"{old!r} occurs {text.count(old)} times"
    return text.replace(old, new)
