"""Helpers of the OPC UA tests: a recording field driver, the real command service, a subscription handler."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from asyncua import Client, ua

from scada.commands import CommandService
from scada.model import CommandError, Quality, WriteRequest, WriteResult
from scada.opcua import CityServer
from scada.site.model import Site


class RecordingDriver:
    """A field driver that records every command that reaches it and answers as told."""

    name = "recording"

    def __init__(self, ids: Iterable[str]) -> None:
        self.ids = list(ids)
        self.requests: list[WriteRequest] = []
        self.fail: CommandError | None = None

    async def start(self) -> None:
        """Nothing to start."""

    async def stop(self) -> None:
        """Nothing to stop."""

    def device_ids(self) -> Iterable[str]:
        """The field devices of the site."""
        return self.ids

    async def execute(self, request: WriteRequest) -> WriteResult:
        """Record the command; raise the configured failure if any."""
        self.requests.append(request)
        if self.fail is not None:
            raise self.fail
        return WriteResult(Quality.GOOD, "accepted")


@dataclass
class City:
    """A started city server and what the tests look at."""

    site: Site
    server: CityServer
    commands: CommandService
    driver: RecordingDriver
    client: Client
    ns: int
    audits: list[Any] = field(default_factory=list)

    def node(self, path: str) -> Any:
        """The client Node of a NodeId path in the city namespace."""
        return self.client.get_node(ua.NodeId(path, self.ns))


def command_service(site: Site) -> tuple[CommandService, RecordingDriver]:
    """The real command service with a recording driver behind every field device of the site."""
    service = CommandService(site)
    driver = RecordingDriver(device.id for device in site.field_devices())
    service.register_driver(driver)
    return service, driver


class DataChanges:
    """A subscription handler that queues (nodeid, DataValue) of every data change."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[tuple[ua.NodeId, ua.DataValue]] = asyncio.Queue()

    def datachange_notification(self, node: Any, val: Any, data: Any) -> None:
        """asyncua's callback: queue the node and its DataValue."""
        self.queue.put_nowait((node.nodeid, data.monitored_item.Value))

    async def next(self, within: float = 5.0) -> tuple[ua.NodeId, ua.DataValue]:
        """The next data change (fails the test after `within` seconds)."""
        return await asyncio.wait_for(self.queue.get(), within)
