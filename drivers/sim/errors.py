"""Errors of the simulators: Modbus exceptions answered to clients and typed errors of the runner API."""

from __future__ import annotations

from scada.model import CityScadaError

ILLEGAL_FUNCTION = 0x01
ILLEGAL_DATA_ADDRESS = 0x02
ILLEGAL_DATA_VALUE = 0x03
SERVER_DEVICE_FAILURE = 0x04
GATEWAY_TARGET_FAILED = 0x0B


class ModbusError(Exception):
    """A Modbus exception the device answers with (code 01, 02, 03, 04 or 0B)."""

    def __init__(self, code: int) -> None:
        super().__init__(f"modbus exception {code:#04x}")
        self.code = code


class SimulatorError(CityScadaError):
    """The simulator cannot do what it was asked."""


class UnknownSimDeviceError(SimulatorError):
    """No simulated device, lamp or parking sensor has that id."""


class FaultError(SimulatorError):
    """A fault name, its target or its parameters are not valid."""


class BindError(SimulatorError):
    """A device listener could not be bound to its endpoint."""
