"""The OPC UA client driver: maps the variables of remote OPC UA servers onto the site's tags, one link per server."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from typing import Any

from drivers.opcua.link import LinkOptions, RemoteLink
from drivers.opcua.mapping import RemotePlan, build_plans, source_settings
from scada.model import Publish, UnknownDeviceError, WriteRequest, WriteResult
from scada.site.model import FieldDevice


class OpcUaClientDriver:
    """Feeds devices whose Endpoint is protocol "opcua" from subscriptions on their remote servers."""

    def __init__(
        self,
        devices: Iterable[FieldDevice],
        publish: Publish,
        *,
        settings: Mapping[str, Any],
        name: str = "opcua-client",
        request_timeout_s: float = 4.0,
        watchdog_s: float = 5.0,
        keepalive_s: float = 5.0,
        session_timeout_s: float = 60.0,
        backoff_initial_s: float = 1.0,
        backoff_max_s: float = 30.0,
        close_timeout_s: float = 0.5,
    ) -> None:
        """Validate the mappings (ConfigError lists every problem) and plan one link per remote endpoint URL.

        `settings` is the `opcua_sources` section of the site settings, or the whole settings holding it.
        """
        self.name = name
        self._plans: list[RemotePlan] = build_plans(devices, source_settings(settings))
        options = LinkOptions(
            request_timeout_s=request_timeout_s,
            watchdog_s=watchdog_s,
            keepalive_s=keepalive_s,
            session_timeout_s=session_timeout_s,
            backoff_initial_s=backoff_initial_s,
            backoff_max_s=backoff_max_s,
            close_timeout_s=close_timeout_s,
        )
        self._links = [RemoteLink(plan, publish, options, name=name) for plan in self._plans]
        self._link_of: dict[str, RemoteLink] = {}
        for link in self._links:
            for device_id in link.plan.device_ids:
                self._link_of[device_id] = link
        self._started = False

    @property
    def links(self) -> list[RemoteLink]:
        """One link per remote server (for diagnostics and tests)."""
        return list(self._links)

    def connected(self) -> dict[str, bool]:
        """Remote endpoint URL -> whether its session currently serves its devices."""
        return {link.plan.url: link.connected for link in self._links}

    async def start(self) -> None:
        """Start one connection task per remote server (idempotent; connecting happens in the background)."""
        if self._started:
            return
        self._started = True
        for link in self._links:
            link.start()

    async def stop(self) -> None:
        """Stop every link concurrently and close every session (idempotent, well under a second)."""
        if not self._started:
            return
        self._started = False
        await asyncio.gather(*(link.stop() for link in self._links))

    def device_ids(self) -> list[str]:
        """The devices served: the field devices and the lamps or sensors they carry."""
        return list(self._link_of)

    async def execute(self, request: WriteRequest) -> WriteResult:
        """Forward one command to the remote server of its device (method call or write)."""
        link = self._link_of.get(request.device_id)
        if link is None:
            raise UnknownDeviceError(f"{self.name} does not serve device {request.device_id!r}")
        target = link.plan.actions.get((request.device_id, request.action))
        if target is None:
            raise UnknownDeviceError(f"the OPC UA mapping of {request.device_id} has no action {request.action!r}")
        return await link.execute(request.device_id, request.action, target, request.args)
