"""A small asyncio Modbus TCP server: MBAP framing, FC 1/2/3/4/5/6/15/16, one listener per endpoint.

Checks follow the Modbus application protocol order: function code (01), quantity and byte count (03), address
inside the device's map (02), then the value check of the device (03). A request for a unit id that the
listener does not serve is answered with exception 0x0B (gateway target device failed to respond) so that a
misconfigured client fails fast; it is logged at debug level only. A frame with a protocol id other than 0 or an
MBAP length outside 2-254 is garbage: the connection is closed (the listener keeps running). Partial frames are
buffered; several frames in one segment are answered in order.
"""

from __future__ import annotations

import asyncio
import logging
import struct
from collections.abc import Mapping

from drivers.modbus.registers import MAX_BITS_PER_READ, MAX_REGISTERS_PER_READ, MAX_REGISTERS_PER_WRITE
from drivers.sim.base import SimDevice, covered
from drivers.sim.errors import (
    GATEWAY_TARGET_FAILED,
    ILLEGAL_DATA_ADDRESS,
    ILLEGAL_DATA_VALUE,
    ILLEGAL_FUNCTION,
    SERVER_DEVICE_FAILURE,
    ModbusError,
)

log = logging.getLogger(__name__)

MAX_COILS_PER_WRITE = 0x7B0
_MBAP = struct.Struct(">HHHB")
_ADDR_COUNT = struct.Struct(">HH")


def handle_pdu(device: SimDevice, pdu: bytes) -> bytes:
    """The response PDU of one request PDU (an exception response for any error)."""
    fc = pdu[0]
    try:
        return _dispatch(device, fc, pdu)
    except ModbusError as error:
        return bytes((fc | 0x80, error.code))
    except Exception:
        log.exception("device %s failed on function %d", device.id, fc)
        return bytes((fc | 0x80, SERVER_DEVICE_FAILURE))


def _dispatch(device: SimDevice, fc: int, pdu: bytes) -> bytes:
    if fc in (3, 4):
        address, count = _address_count(pdu)
        if not 1 <= count <= MAX_REGISTERS_PER_READ:
            raise ModbusError(ILLEGAL_DATA_VALUE)
        if not (covered(device.ir_spans, address, count) if fc == 4 else device.hr_covered(address, count)):
            raise ModbusError(ILLEGAL_DATA_ADDRESS)
        if fc == 4:
            data = device.read_input_registers(address, count)
        else:
            data = device.read_holding_registers(address, count)
        return bytes((fc, 2 * count)) + data
    if fc in (1, 2):
        address, count = _address_count(pdu)
        if not 1 <= count <= MAX_BITS_PER_READ:
            raise ModbusError(ILLEGAL_DATA_VALUE)
        if fc == 1 or not covered(device.di_spans, address, count):
            raise ModbusError(ILLEGAL_DATA_ADDRESS)  # no kind has coils
        data = device.read_discrete_inputs(address, count)
        return bytes((fc, len(data))) + data
    if fc == 6:
        address, value = _address_count(pdu)
        if not device.hr_covered(address, 1):
            raise ModbusError(ILLEGAL_DATA_ADDRESS)
        device.write_holding(address, [value])
        return pdu
    if fc == 16:
        if len(pdu) < 6:
            raise ModbusError(ILLEGAL_DATA_VALUE)
        address, count = _ADDR_COUNT.unpack_from(pdu, 1)
        size = pdu[5]
        if not 1 <= count <= MAX_REGISTERS_PER_WRITE or size != 2 * count or len(pdu) != 6 + size:
            raise ModbusError(ILLEGAL_DATA_VALUE)
        if not device.hr_covered(address, count):
            raise ModbusError(ILLEGAL_DATA_ADDRESS)
        values = list(struct.unpack_from(f">{count}H", pdu, 6))
        device.write_holding(address, values)
        return pdu[:5]
    if fc == 5:
        _address, value = _address_count(pdu)
        if value not in (0x0000, 0xFF00):
            raise ModbusError(ILLEGAL_DATA_VALUE)
        raise ModbusError(ILLEGAL_DATA_ADDRESS)
    if fc == 15:
        if len(pdu) < 6:
            raise ModbusError(ILLEGAL_DATA_VALUE)
        _address, count = _ADDR_COUNT.unpack_from(pdu, 1)
        size = pdu[5]
        if not 1 <= count <= MAX_COILS_PER_WRITE or size != (count + 7) // 8 or len(pdu) != 6 + size:
            raise ModbusError(ILLEGAL_DATA_VALUE)
        raise ModbusError(ILLEGAL_DATA_ADDRESS)
    raise ModbusError(ILLEGAL_FUNCTION)


def _address_count(pdu: bytes) -> tuple[int, int]:
    if len(pdu) != 5:
        raise ModbusError(ILLEGAL_DATA_VALUE)
    return _ADDR_COUNT.unpack_from(pdu, 1)  # type: ignore[return-value]


class _Connection(asyncio.Protocol):
    """One client connection: reassembles MBAP frames and answers them in order."""

    __slots__ = ("_buffer", "_listener", "_paused", "_transport")

    def __init__(self, listener: Listener) -> None:
        self._listener = listener
        self._buffer = b""
        self._transport: asyncio.Transport | None = None
        self._paused = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        self._listener.connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self._listener.connections.discard(self)
        self._transport = None

    def pause_writing(self) -> None:
        """The client does not read its answers: stop reading its requests."""
        if self._transport is not None and not self._paused:
            self._paused = True
            self._transport.pause_reading()

    def resume_writing(self) -> None:
        """The client caught up."""
        if self._transport is not None and self._paused:
            self._paused = False
            self._transport.resume_reading()

    def abort(self) -> None:
        """Drop the connection at once."""
        if self._transport is not None:
            self._transport.abort()

    def data_received(self, data: bytes) -> None:
        buffer = self._buffer + data if self._buffer else data
        size = len(buffer)
        position = 0
        answers: list[bytes] = []
        units = self._listener.units
        while size - position >= 7:
            tid, protocol, length, unit = _MBAP.unpack_from(buffer, position)
            if protocol != 0 or not 2 <= length <= 254:
                log.debug(
                    "%s: garbage from a client (protocol %d, length %d): closing", self._listener, protocol, length
                )
                self._buffer = b""
                if answers and self._transport is not None:
                    self._transport.write(b"".join(answers))
                self.abort()
                return
            end = position + 6 + length
            if end > size:
                break
            pdu = buffer[position + 7 : end]
            position = end
            device = units.get(unit)
            if device is None:
                log.debug("%s: request for unit %d, which it does not serve", self._listener, unit)
                answer = bytes((pdu[0] | 0x80, GATEWAY_TARGET_FAILED))
            elif device.silent:
                continue
            else:
                device.requests += 1
                answer = handle_pdu(device, pdu)
            answers.append(_MBAP.pack(tid, 0, len(answer) + 1, unit) + answer)
        self._buffer = buffer[position:] if position < size else b""
        if answers and self._transport is not None:
            self._transport.write(answers[0] if len(answers) == 1 else b"".join(answers))


class Listener:
    """One TCP endpoint serving one or more devices by unit id; can be killed and restarted on the same port."""

    def __init__(self, host: str, port: int, units: Mapping[int, SimDevice]) -> None:
        self.host = host
        self.port = port
        self.units: dict[int, SimDevice] = dict(units)
        self.connections: set[_Connection] = set()
        self._server: asyncio.Server | None = None

    def __repr__(self) -> str:
        return f"Listener({self.host}:{self.port}, units={sorted(self.units)})"

    @property
    def listening(self) -> bool:
        """True while it accepts connections."""
        return self._server is not None

    async def start(self) -> None:
        """Listen (port 0 picks a free port, kept for restarts); idempotent."""
        if self._server is not None:
            return
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: _Connection(self), self.host, self.port, reuse_address=True, backlog=64
        )
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        """Stop accepting and drop every connection; idempotent."""
        server, self._server = self._server, None
        if server is not None:
            server.close()
        for connection in list(self.connections):
            connection.abort()
        self.connections.clear()
        if server is not None:
            await server.wait_closed()
