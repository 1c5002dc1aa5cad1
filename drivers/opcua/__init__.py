"""OPC UA client driver: variables of remote OPC UA servers mapped onto the site's tags."""

from drivers.opcua.driver import OpcUaClientDriver

__all__ = ["OpcUaClientDriver"]
