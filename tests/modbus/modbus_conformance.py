"""An independent Modbus TCP device for conformance tests: pyModbusTCP (not pymodbus) serving field-devices.md.

Each ConformanceDevice is a register store that enforces the datasheet rules the driver must live with: any
address outside the map answers exception 02, a value outside its range (or a non-ASCII text byte) answers
exception 03 and changes nothing, a sign commits HR 1-36 to its display (IR 4, IR 10-36) when HR 0 is written
(and accepts HR 0-36 as one write-multiple, HR 4-9 included). A ConformanceServer hosts devices by unit id,
logs every request with its function code, and can be killed (listening socket and open connections closed),
restarted on the same port, or silenced (requests are never answered).
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
import time
from dataclasses import dataclass
from typing import Any

from pyModbusTCP.constants import (
    EXP_DATA_ADDRESS,
    EXP_DATA_VALUE,
    EXP_GATEWAY_TARGET_DEVICE_FAILED_TO_RESPOND,
    EXP_NONE,
)
from pyModbusTCP.server import DataHandler, ModbusServer

from drivers.modbus import registers as reg
from drivers.modbus.codec import valid_text_register

SIZE = 0x10000


@dataclass(frozen=True, slots=True)
class Request:
    """One request as the device saw it."""

    at: float  # time.monotonic()
    unit: int
    function: int
    address: int
    count: int
    values: tuple[int, ...] = ()  # written registers (FC06/FC16)


class ConformanceDevice:
    """The registers of one field device with the map's address and value rules."""

    def __init__(self, dmap: reg.DeviceMap) -> None:
        self.map = dmap
        self.lock = threading.Lock()
        self.ir = [0] * SIZE
        self.hr = [0] * SIZE
        self.di = [False] * SIZE
        self.fail_next: int | None = None  # answer the next request with this exception code
        self.ir[0] = dmap.kind
        self.ir[1] = 1

    # -- test setup (no checks) --------------------------------------------------------------------------

    def set_ir(self, address: int, values: list[int]) -> None:
        """Set input registers."""
        with self.lock:
            self.ir[address : address + len(values)] = values

    def set_hr(self, address: int, values: list[int]) -> None:
        """Set holding registers."""
        with self.lock:
            self.hr[address : address + len(values)] = values

    def set_di(self, address: int, values: list[bool]) -> None:
        """Set discrete inputs."""
        with self.lock:
            self.di[address : address + len(values)] = values

    # -- protocol side -----------------------------------------------------------------------------------

    @staticmethod
    def _inside(ranges: tuple[range, ...], address: int, count: int) -> bool:
        """True when every address of the request lies in one of the map's ranges."""
        return all(any(a in r for r in ranges) for a in range(address, address + count))

    def _injected(self) -> int | None:
        """A pending injected exception code, consumed."""
        code, self.fail_next = self.fail_next, None
        return code

    def read(self, table: str, address: int, count: int) -> tuple[int, list[int] | list[bool] | None]:
        """(exception code, data) of a read."""
        with self.lock:
            if (code := self._injected()) is not None:
                return code, None
            ranges = {
                "ir": self.map.input_registers,
                "hr": self.map.holding_registers,
                "di": self.map.discrete_inputs,
            }[table]
            if not self._inside(ranges, address, count):
                return EXP_DATA_ADDRESS, None
            if table == "di":
                return EXP_NONE, self.di[address : address + count]
            words = self.ir if table == "ir" else self.hr
            return EXP_NONE, words[address : address + count]

    def write(self, address: int, values: list[int]) -> int:
        """The exception code of a holding-register write (EXP_NONE when applied)."""
        with self.lock:
            if (code := self._injected()) is not None:
                return code
            sign = self.map.kind == reg.KIND_SIGN
            spans_gap = sign and address <= 3 and address + len(values) >= 11
            for offset in range(len(values)):
                a = address + offset
                if self.map.limits(a) is None and not (spans_gap and 4 <= a <= 9):
                    return EXP_DATA_ADDRESS
            for offset, value in enumerate(values):
                a = address + offset
                limits = self.map.limits(a)
                if limits is None:
                    continue
                if not limits[0] <= value <= limits[1]:
                    return EXP_DATA_VALUE
                if sign and a >= 10 and not valid_text_register(value):
                    return EXP_DATA_VALUE
            for offset, value in enumerate(values):
                a = address + offset
                if self.map.limits(a) is not None:
                    self.hr[a] = value
            if sign and address == 0:  # writing HR 0 commits the message held in HR 1-36
                self.ir[4] = self.hr[0]
                self.ir[10:37] = self.hr[10:37]
            return EXP_NONE


class _Handler(DataHandler):
    """Routes pyModbusTCP's data calls to the device of the request's unit id."""

    def __init__(self, server: ConformanceServer) -> None:
        super().__init__()
        self.owner = server

    def _device(self, srv_info: ModbusServer.ServerInfo) -> ConformanceDevice | None:
        return self.owner.devices.get(srv_info.recv_frame.mbap.unit_id)

    def _read(self, table: str, address: int, count: int, srv_info: ModbusServer.ServerInfo) -> DataHandler.Return:
        device = self._device(srv_info)
        if device is None:
            return DataHandler.Return(exp_code=EXP_GATEWAY_TARGET_DEVICE_FAILED_TO_RESPOND)
        code, data = device.read(table, address, count)
        return DataHandler.Return(exp_code=code, data=data)

    def read_coils(self, address, count, srv_info):  # type: ignore[no-untyped-def]
        return DataHandler.Return(exp_code=EXP_DATA_ADDRESS)

    def write_coils(self, address, bits_l, srv_info):  # type: ignore[no-untyped-def]
        return DataHandler.Return(exp_code=EXP_DATA_ADDRESS)

    def read_d_inputs(self, address, count, srv_info):  # type: ignore[no-untyped-def]
        return self._read("di", address, count, srv_info)

    def read_h_regs(self, address, count, srv_info):  # type: ignore[no-untyped-def]
        return self._read("hr", address, count, srv_info)

    def read_i_regs(self, address, count, srv_info):  # type: ignore[no-untyped-def]
        return self._read("ir", address, count, srv_info)

    def write_h_regs(self, address, words_l, srv_info):  # type: ignore[no-untyped-def]
        device = self._device(srv_info)
        if device is None:
            return DataHandler.Return(exp_code=EXP_GATEWAY_TARGET_DEVICE_FAILED_TO_RESPOND)
        return DataHandler.Return(exp_code=device.write(address, list(words_l)))


class _Service(ModbusServer.ModbusService):
    """pyModbusTCP's connection handler, tracking open sockets so that kill() can cut them."""

    def setup(self) -> None:
        super().setup()
        self.server.engine.__self__.owner.track(self.request, True)

    def finish(self) -> None:
        self.server.engine.__self__.owner.track(self.request, False)
        super().finish()


class _Server(ModbusServer):
    """pyModbusTCP server that logs requests and can be silenced."""

    ModbusService = _Service

    def __init__(self, owner: ConformanceServer, host: str, port: int) -> None:
        super().__init__(host=host, port=port, no_block=True, data_hdl=_Handler(owner))
        self.owner = owner

    def _serve(self) -> None:
        # pyModbusTCP's loop, with a short poll interval so that stop() returns in milliseconds, not 0.5 s
        try:
            self._evt_running.set()
            self._service.serve_forever(poll_interval=0.02)  # type: ignore[union-attr]
        finally:
            self._evt_running.clear()

    def _internal_engine(self, session_data):  # type: ignore[no-untyped-def]
        pdu = session_data.request.pdu.raw
        self.owner.log(session_data.request.mbap.unit_id, pdu)
        if self.owner.silent.is_set():
            self.owner.resume.wait(10)
            raise ModbusServer.NetworkError("silenced: request dropped")
        super()._internal_engine(session_data)


class ConformanceServer:
    """pyModbusTCP serving ConformanceDevices by unit id on 127.0.0.1:port."""

    def __init__(self, devices: dict[int, ConformanceDevice], port: int, host: str = "127.0.0.1") -> None:
        self.devices = devices
        self.host = host
        self.port = port
        self.requests: list[Request] = []
        self.silent = threading.Event()
        self.resume = threading.Event()
        self._log_lock = threading.Lock()
        self._sockets: set[socket.socket] = set()
        self._server: _Server | None = None

    # -- lifecycle ------------------------------------------------------------------------------------------

    def start(self) -> None:
        """Listen (again) on the port."""
        if self._server is not None:
            return
        self.resume.clear()
        self.silent.clear()
        server = _Server(self, self.host, self.port)
        self._server = server
        server.start()
        deadline = time.monotonic() + 5
        while not server.is_run:
            if time.monotonic() > deadline:
                raise RuntimeError("pyModbusTCP server did not start")
            time.sleep(0.001)

    def kill(self) -> None:
        """Stop listening and cut every open connection (the device vanished)."""
        server, self._server = self._server, None
        self.resume.set()
        if server is not None:
            server.stop()
        with self._log_lock:
            sockets = list(self._sockets)
            self._sockets.clear()
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def restart(self) -> None:
        """Come back on the same port."""
        self.kill()
        self.start()

    def silence(self) -> None:
        """From now on, requests are received but never answered (until kill)."""
        self.resume.clear()
        self.silent.set()

    def track(self, sock: socket.socket, opened: bool) -> None:
        """Remember or forget an open connection."""
        with self._log_lock:
            if opened:
                self._sockets.add(sock)
            else:
                self._sockets.discard(sock)

    @property
    def connections(self) -> int:
        """Open client connections."""
        with self._log_lock:
            return len(self._sockets)

    # -- request log ----------------------------------------------------------------------------------------

    def log(self, unit: int, pdu: bytes) -> None:
        """Record one request."""
        function = pdu[0]
        address = count = 0
        values: tuple[int, ...] = ()
        if function in (1, 2, 3, 4) and len(pdu) >= 5:
            address, count = struct.unpack(">HH", pdu[1:5])
        elif function == 6 and len(pdu) >= 5:
            address, value = struct.unpack(">HH", pdu[1:5])
            count, values = 1, (value,)
        elif function == 16 and len(pdu) >= 6:
            address, count = struct.unpack(">HH", pdu[1:5])
            values = struct.unpack(f">{count}H", pdu[6 : 6 + 2 * count])
        with self._log_lock:
            self.requests.append(Request(time.monotonic(), unit, function, address, count, tuple(values)))

    def writes(self, unit: int | None = None) -> list[Request]:
        """The write requests received (FC06/FC16), in order."""
        with self._log_lock:
            return [r for r in self.requests if r.function in (6, 16) and (unit is None or r.unit == unit)]

    def reads(self, unit: int | None = None) -> list[Request]:
        """The read requests received, in order."""
        with self._log_lock:
            return [r for r in self.requests if r.function in (1, 2, 3, 4) and (unit is None or r.unit == unit)]

    def clear(self) -> None:
        """Forget the request log."""
        with self._log_lock:
            self.requests.clear()


def _shared_device(kind: str, size: int) -> ConformanceDevice:
    """One device of a kind (size: lamps or bays), identification and count registers set."""
    if kind == "lighting":
        device = ConformanceDevice(reg.lighting_map(size))
        device.set_ir(4, [size])
    elif kind == "parking":
        device = ConformanceDevice(reg.parking_map(size))
        device.set_ir(4, [size])
    elif kind == "traffic":
        device = ConformanceDevice(reg.traffic_map())
    else:
        device = ConformanceDevice(reg.sign_map())
    return device


def serve_in_child(groups: list[tuple[str, int, int]], pipe: Any) -> None:
    """Child-process entry: per group (kind, size, units) a server answering units 1..units with one shared device.

    Sends the list of ports through `pipe`, then serves until anything arrives on it.
    """
    import socketserver

    socketserver.ThreadingTCPServer.request_queue_size = 1024  # accept connection storms
    started = []
    for kind, size, units in groups:
        device = _shared_device(kind, size)
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        server = ConformanceServer({unit: device for unit in range(1, units + 1)}, port)
        server.start()
        started.append(server)
    pipe.send([server.port for server in started])
    pipe.recv()
    for server in started:
        server.kill()
