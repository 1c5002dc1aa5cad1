"""One Modbus TCP connection per field device: timeouts, typed errors, reconnection with jittered exponential backoff.

pymodbus's own reconnection and retries are disabled (reconnect_delay=0, retries=0): this class decides when to
reconnect, so that backoff, "lost"/"recovered" and the poll schedule stay in one place. Every request runs under
our own timeout; a timeout, a dropped connection or a garbled answer closes the connection (a late answer can
never be taken for the next request's) and schedules the next connection attempt.
"""

from __future__ import annotations

import asyncio
import logging
import random
import struct
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from pymodbus.client import AsyncModbusTcpClient
from pymodbus.exceptions import ConnectionException, ModbusException, ModbusIOException
from pymodbus.pdu import ModbusPDU
from pymodbus.pdu.register_message import ReadHoldingRegistersResponse, ReadInputRegistersResponse

FC_READ_DISCRETE_INPUTS = 0x02
FC_READ_HOLDING_REGISTERS = 0x03
FC_READ_INPUT_REGISTERS = 0x04
FC_WRITE_SINGLE_REGISTER = 0x06
FC_WRITE_MULTIPLE_REGISTERS = 0x10

EXCEPTION_NAMES = {
    1: "illegal function",
    2: "illegal data address",
    3: "illegal data value",
    4: "server device failure",
    5: "acknowledge",
    6: "server device busy",
    8: "memory parity error",
    10: "gateway path unavailable",
    11: "gateway target device failed to respond",
}


class _QuietReconnects(logging.Filter):
    """Drop pymodbus's "Failed to connect" warning (and its "Repeating...." echo): the poller logs a loss once.

    pymodbus 3.16 warns on every failed connection attempt; with hundreds of devices behind a dead network link
    that is hundreds of lines per backoff period, which would defeat "logged once when lost, once when recovered".
    """

    def __init__(self) -> None:
        super().__init__()
        self._dropped_last = False

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if message.startswith("Failed to connect"):
            self._dropped_last = True
            return False
        if message == "Repeating...." and self._dropped_last:
            return False
        self._dropped_last = False
        return True


if not any(isinstance(f, _QuietReconnects) for f in logging.getLogger("pymodbus.logging").filters):
    logging.getLogger("pymodbus.logging").addFilter(_QuietReconnects())


class FastHoldingRegisters(ReadHoldingRegistersResponse):
    """FC03 answer decoded with one struct call (pymodbus 3.16 unpacks register by register), with a short str()."""

    def decode(self, data: bytes) -> None:
        """Registers of the answer: byte count, then big-endian words."""
        size = data[0]
        if size >= len(data) or size % 2:
            raise ModbusIOException(f"byte count {size} does not match a packet of {len(data)}", self.function_code)
        self.registers = list(struct.unpack(f">{size // 2}H", data[1 : 1 + size]))

    def __str__(self) -> str:
        # pymodbus formats every decoded PDU for a debug line even when debug logging is off
        return f"{type(self).__name__}(dev_id={self.dev_id}, count={len(self.registers)})"


class FastInputRegisters(FastHoldingRegisters):
    """FC04 answer, decoded like FastHoldingRegisters."""

    function_code = ReadInputRegistersResponse.function_code


class LinkError(Exception):
    """The device cannot be reached: connection refused or lost, no answer in time, or an unreadable answer."""


class BackoffWait(LinkError):
    """The connection is down and the next attempt is not due yet (reconnection backoff)."""


class DeviceExceptionError(Exception):
    """The device answered a request with a Modbus exception response."""

    def __init__(self, function: int, code: int, address: int, count: int) -> None:
        self.function = function
        self.code = code
        self.address = address
        self.count = count
        name = EXCEPTION_NAMES.get(code, "unknown exception")
        super().__init__(
            f"exception {code:02d} ({name}) to function {function:#04x} at address {address} count {count}"
        )


@dataclass(slots=True)
class Backoff:
    """Exponential reconnection delay with jitter: initial, 2x, 4x ... up to the cap, each drawn in [d/2, d]."""

    initial_s: float = 1.0
    cap_s: float = 30.0
    rng: random.Random = field(default_factory=random.Random)
    failures: int = 0

    def next_delay(self) -> float:
        """The delay before the next attempt after one more failure."""
        ceiling = min(self.cap_s, self.initial_s * (2 ** min(self.failures, 30)))
        self.failures += 1
        return self.rng.uniform(ceiling / 2, ceiling)

    def reset(self) -> None:
        """Forget past failures (after a successful exchange)."""
        self.failures = 0


@dataclass(slots=True)
class LinkStats:
    """Counters of one connection."""

    requests: int = 0
    link_errors: int = 0
    device_exceptions: int = 0
    connects: int = 0
    connect_failures: int = 0


class DeviceConnection:
    """The single connection to one device; `lock` serialises every exchange (polls and commands share it)."""

    def __init__(
        self,
        host: str,
        port: int,
        unit: int,
        *,
        timeout: float,
        backoff: Backoff,
        label: str,
    ) -> None:
        self.host = host
        self.port = port
        self.unit = unit
        self.timeout = timeout
        self.backoff = backoff
        self.label = label
        self.lock = asyncio.Lock()
        self.stats = LinkStats()
        self._client: AsyncModbusTcpClient | None = None
        self._connect_lock = asyncio.Lock()
        self._retry_at = 0.0
        self._in_flight = False

    @property
    def connected(self) -> bool:
        """True while the TCP connection is open."""
        return self._client is not None and self._client.connected

    @property
    def retry_in(self) -> float:
        """Seconds until the next connection attempt is allowed (0 when allowed now)."""
        return max(0.0, self._retry_at - time.monotonic())

    async def connect(self, *, force: bool = False) -> None:
        """Open the connection unless open; raises BackoffWait before the next attempt is due (unless `force`)."""
        if self.connected:
            return
        async with self._connect_lock:
            if self.connected:
                return
            self._discard()
            wait = self._retry_at - time.monotonic()
            if wait > 0 and not force:
                raise BackoffWait(f"reconnection to {self.host}:{self.port} due in {wait:.1f} s")
            holder: list[AsyncModbusTcpClient] = []
            client = AsyncModbusTcpClient(
                self.host,
                port=self.port,
                name=self.label,
                timeout=self.timeout + 1.0,  # a fallback only: our own timeouts fire first
                retries=0,
                reconnect_delay=0,  # no automatic reconnection: we schedule it
                trace_connect=lambda up: None if up or not holder else self._on_closed_by_peer(holder[0]),
            )
            holder.append(client)
            client.register(FastHoldingRegisters)
            client.register(FastInputRegisters)
            self.stats.connects += 1
            try:
                async with asyncio.timeout(self.timeout):
                    ok = await client.connect()
            except TimeoutError:
                ok = False
            except BaseException:  # cancelled while connecting: leave no half-open transport behind
                client.close()
                raise
            if not ok or not client.connected:
                client.close()
                self.stats.connect_failures += 1
                self._schedule_retry()
                raise LinkError(f"cannot connect to {self.host}:{self.port}")
            self._client = client

    def close(self) -> None:
        """Close the connection (a later connect() reopens it)."""
        self._discard()

    def reset_backoff(self) -> None:
        """Allow an immediate connection attempt and restart the backoff sequence."""
        self.backoff.reset()
        self._retry_at = 0.0

    async def read_input_registers(self, address: int, count: int) -> list[int]:
        """FC04: `count` input registers from `address`."""
        response = await self._request(
            FC_READ_INPUT_REGISTERS,
            address,
            count,
            lambda c: c.read_input_registers(address, count=count, device_id=self.unit),
        )
        return self._registers(response, count)

    async def read_holding_registers(self, address: int, count: int) -> list[int]:
        """FC03: `count` holding registers from `address`."""
        response = await self._request(
            FC_READ_HOLDING_REGISTERS,
            address,
            count,
            lambda c: c.read_holding_registers(address, count=count, device_id=self.unit),
        )
        return self._registers(response, count)

    async def read_discrete_inputs(self, address: int, count: int) -> list[bool]:
        """FC02: `count` discrete inputs from `address`."""
        response = await self._request(
            FC_READ_DISCRETE_INPUTS,
            address,
            count,
            lambda c: c.read_discrete_inputs(address, count=count, device_id=self.unit),
        )
        bits = response.bits
        if len(bits) < count:
            self._fail()
            raise LinkError(f"answer carries {len(bits)} bits, {count} were asked")
        return list(bits[:count])

    async def write_registers(self, address: int, values: Sequence[int]) -> None:
        """Write holding registers: FC06 for one register, FC16 (write multiple) for several."""
        if not values:
            raise ValueError("nothing to write")
        if len(values) == 1:
            value = values[0]
            await self._request(
                FC_WRITE_SINGLE_REGISTER,
                address,
                1,
                lambda c: c.write_register(address, value, device_id=self.unit),
            )
        else:
            words = list(values)
            await self._request(
                FC_WRITE_MULTIPLE_REGISTERS,
                address,
                len(words),
                lambda c: c.write_registers(address, words, device_id=self.unit),
            )

    async def _request(
        self,
        function: int,
        address: int,
        count: int,
        call: Callable[[AsyncModbusTcpClient], Awaitable[ModbusPDU]],
    ) -> ModbusPDU:
        """Run one exchange under the timeout; map every failure to LinkError or DeviceExceptionError."""
        client = self._client
        if client is None or not client.connected:
            raise LinkError(f"not connected to {self.host}:{self.port}")
        self.stats.requests += 1
        self._in_flight = True
        try:
            async with asyncio.timeout(self.timeout):
                response = await call(client)
        except TimeoutError:
            self._fail()
            raise LinkError(f"no answer from {self.host}:{self.port} within {self.timeout:g} s") from None
        except (ModbusException, OSError) as exc:
            self._fail()
            raise LinkError(f"{self.host}:{self.port}: {exc}") from exc
        except asyncio.CancelledError:
            self._discard()  # the exchange was abandoned: its answer must never meet the next request
            raise
        finally:
            self._in_flight = False
        self.backoff.reset()  # the device answered
        if response.isError():
            self.stats.device_exceptions += 1
            raise DeviceExceptionError(function, response.exception_code, address, count)
        return response

    def _registers(self, response: ModbusPDU, count: int) -> list[int]:
        """The registers of a read answer, checked for length."""
        registers = response.registers
        if len(registers) != count:
            self._fail()
            raise LinkError(f"answer carries {len(registers)} registers, {count} were asked")
        return list(registers)

    def _fail(self) -> None:
        """A link failure: close and schedule the next attempt."""
        self.stats.link_errors += 1
        self._discard()
        self._schedule_retry()

    def _schedule_retry(self) -> None:
        """Allow the next connection attempt after the next backoff delay."""
        self._retry_at = time.monotonic() + self.backoff.next_delay()

    def _on_closed_by_peer(self, client: AsyncModbusTcpClient) -> None:
        """Fail the request in flight when the device closes the connection, instead of waiting for the timeout."""
        if self._in_flight and client is self._client:
            _abort_pending(client)

    def _discard(self) -> None:
        """Close and forget the pymodbus client."""
        client, self._client = self._client, None
        if client is not None:
            client.close()


def _abort_pending(client: Any) -> None:
    """Set ConnectionException on the pymodbus response future being awaited (pymodbus 3.16 leaves it pending)."""
    future = getattr(getattr(client, "ctx", None), "response_future", None)
    if future is not None and not future.done():
        future.set_exception(ConnectionException("connection closed by the device"))
