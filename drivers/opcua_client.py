"""Entry point of the OPC UA client driver (the implementation lives in the drivers.opcua package)."""

from drivers.opcua import OpcUaClientDriver

__all__ = ["OpcUaClientDriver"]
