"""Fixtures of the Modbus driver tests: conformance servers, drivers with test timings, a publish sink."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from typing import Any

import pytest
from modbus_conformance import ConformanceDevice, ConformanceServer
from modbus_helpers import Sink, free_tcp_port

from drivers.modbus.driver import ModbusDriver
from scada.model import ValueRecord
from scada.site.model import FieldDevice


@pytest.fixture
def sink() -> Sink:
    """A fresh publish sink."""
    return Sink()


@pytest.fixture
def servers() -> Iterator[Callable[[dict[int, ConformanceDevice]], ConformanceServer]]:
    """A factory of started conformance servers on free ports; every one is killed at teardown."""
    started: list[ConformanceServer] = []

    def make(devices: dict[int, ConformanceDevice]) -> ConformanceServer:
        server = ConformanceServer(devices, free_tcp_port())
        server.start()
        started.append(server)
        return server

    yield make
    for server in started:
        server.kill()


@pytest.fixture
async def drivers() -> AsyncIterator[Callable[..., ModbusDriver]]:
    """A factory of ModbusDrivers with test timings; every one is stopped at teardown."""
    made: list[ModbusDriver] = []

    def make(
        devices: Sequence[FieldDevice], publish: Callable[[Sequence[ValueRecord]], None], **options: Any
    ) -> ModbusDriver:
        settings: dict[str, Any] = {
            "timeout": 0.5,
            "reconnect_min_s": 0.05,
            "reconnect_max_s": 0.2,
            "seed": 1,
        }
        settings.update(options)
        driver = ModbusDriver(devices, publish, **settings)
        made.append(driver)
        return driver

    yield make
    for driver in made:
        await driver.stop()
