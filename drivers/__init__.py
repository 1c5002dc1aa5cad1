"""Field protocols (Modbus TCP, OPC UA client) and the field-device simulators."""
