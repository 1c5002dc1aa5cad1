"""Fault injection: the fault names, what they apply to, and how an injected fault reaches a simulated device.

Injected faults are independent of the city's random faults: a fault is active while either source holds it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from drivers.sim.base import INJECTED
from drivers.sim.city import City
from drivers.sim.errors import FaultError, UnknownSimDeviceError
from drivers.sim.traffic import ControllerSim

FAULTS: dict[str, str] = {
    "offline": "any field device: its listener stops and drops every connection; off listens again on the same port",
    "silent": "any field device: connections stay open but requests get no answer (client time-out)",
    "refuse": "any field device: every write answers exception 04 (server device failure) and changes nothing",
    "door": "cabinet, controller, sign, parking gateway: door open",
    "mains": "cabinet (lamps out, 0 V), controller (dark), sign (power fault), parking gateway: mains failure",
    "local": "cabinet: local/manual control at the cabinet (IR3 bit3)",
    "lamp_failure": "lamp id (or cabinet id with lamp=<index>): lamp failure",
    "node_fault": "lamp id (or cabinet id with lamp=<index>): node communication fault",
    "conflict": "controller: conflict detected, forces flashing amber (plan 10, mode 3)",
    "signal_lamp": "controller: signal lamp failure",
    "detector": "controller, detector=<0-7> (default 0): detector fault, its count freezes",
    "manual": "controller, plan=<1-10> (default: the local plan): manual panel in use, wins over the centre",
    "pixels": "sign: pixel failures above threshold",
    "temperature": "sign: over-temperature",
    "sensor": "parking sensor id (or parking site id with bay=<index>): bay sensor fault",
}


def _int(params: Mapping[str, Any], name: str, default: int | None = None) -> int | None:
    value = params.get(name, default)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise FaultError(f"parameter {name} must be an integer, not {value!r}")
    return value


def inject(city: City, device_id: str, fault: str, on: bool, params: Mapping[str, Any], t: float) -> None:
    """Raise (on) or clear an injected fault on a device, lamp or parking sensor ("offline" is the runner's)."""
    if fault not in FAULTS or fault == "offline":
        raise FaultError(f"unknown fault {fault!r}; known: {', '.join(sorted(FAULTS))}")
    if fault in ("lamp_failure", "node_fault"):
        if device_id in city.lamps:
            cabinet, index = city.lamps[device_id]
        elif device_id in city.cabinets:
            cabinet = city.cabinets[device_id]
            lamp = _int(params, "lamp")
            if lamp is None or not 0 <= lamp < cabinet.count:
                raise FaultError(f"{fault} on cabinet {device_id} needs lamp=<0-{cabinet.count - 1}>")
            index = lamp
        else:
            raise UnknownSimDeviceError(f"no lamp {device_id!r}")
        cabinet.set_lamp_fault(index, fault, on, INJECTED, t)
        return
    if fault == "sensor":
        if device_id in city.sensors:
            gateway, bay = city.sensors[device_id]
        elif device_id in city.parking:
            gateway = city.parking[device_id]
            number = _int(params, "bay")
            if number is None:
                raise FaultError(f"sensor fault on parking site {device_id} needs bay=<index>")
            bay = number
        else:
            raise UnknownSimDeviceError(f"no parking sensor {device_id!r}")
        gateway.set_sensor_fault(bay, on, INJECTED, t)
        return
    device = city.devices.get(device_id)
    if device is None:
        raise UnknownSimDeviceError(f"no simulated device {device_id!r}")
    if fault not in device.faults:
        raise FaultError(f"{device_id} ({type(device).__name__}) has no fault {fault!r}")
    if isinstance(device, ControllerSim) and fault == "detector":
        device.set_detector_fault(_int(params, "detector", 0) or 0, on, INJECTED, t)
    elif isinstance(device, ControllerSim) and fault == "manual":
        device.set_manual(on, INJECTED, t, _int(params, "plan"))
    else:
        device.set_flag(fault, on, INJECTED, t)


def set_occupancy(city: City, site_id: str, occupied: int, t: float) -> None:
    """Make a parking site report exactly `occupied` bays."""
    gateway = city.parking.get(site_id)
    if gateway is None:
        raise UnknownSimDeviceError(f"no parking site {site_id!r}")
    if isinstance(occupied, bool) or not isinstance(occupied, int):
        raise FaultError(f"occupancy must be an integer, not {occupied!r}")
    gateway.set_occupancy(occupied, t)


def fire_presence(city: City, lamp_id: str, t: float) -> None:
    """Fire one lamp's presence detector."""
    if lamp_id not in city.lamps:
        raise UnknownSimDeviceError(f"no lamp {lamp_id!r}")
    city.fire_presence(lamp_id, t)
