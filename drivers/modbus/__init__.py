"""Modbus TCP: the register maps of field-devices.md, pure codecs and the polling driver."""
