"""The simulator's HTTP JSON control channel (localhost), for tests and demos.

    GET  /status                      summary: sim time, speed, device counts, events, active faults
    GET  /endpoints                   {device_id: {host, port, unit, listening}}
    GET  /devices/{id}                state of a field device, a lamp or a parking sensor
    GET  /faults                      {fault name: what it applies to}
    GET  /events?limit=100            recent notable city events (faults, commits, lapses), newest last
    POST /faults    {"device": "CAB-0001", "fault": "mains", "on": true, ...parameters}
    POST /presence  {"lamp": "L-000001"}
    POST /occupancy {"site": "PK-01", "occupied": 120}
    POST /speed     {"speed": 60}
    POST /advance   {"seconds": 3600}  jump sim time forward

Answers are JSON: 200 with {"ok": true, ...}; 400 {"error": ...} for a bad request or fault; 404 for an
unknown device.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from aiohttp import web

from drivers.sim.errors import SimulatorError, UnknownSimDeviceError
from drivers.sim.faults import FAULTS

if TYPE_CHECKING:
    from drivers.sim.runner import CitySimulator


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"ok": False, "error": message}, status=status)


async def _body(request: web.Request) -> dict[str, Any]:
    try:
        data = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise web.HTTPBadRequest(
            text=json.dumps({"ok": False, "error": f"invalid JSON: {error}"}), content_type="application/json"
        ) from error
    if not isinstance(data, dict):
        raise web.HTTPBadRequest(
            text=json.dumps({"ok": False, "error": "the body must be a JSON object"}), content_type="application/json"
        )
    return data


class ControlServer:
    """aiohttp application bound to the simulator; start()/stop() are idempotent."""

    def __init__(self, sim: CitySimulator, host: str = "127.0.0.1", port: int = 0) -> None:
        self.sim = sim
        self.host = host
        self.port = port
        self._runner: web.AppRunner | None = None
        app = web.Application()
        app.add_routes(
            [
                web.get("/status", self._status),
                web.get("/endpoints", self._endpoints),
                web.get("/devices/{device_id}", self._device),
                web.get("/faults", self._fault_names),
                web.get("/events", self._events),
                web.post("/faults", self._fault),
                web.post("/presence", self._presence),
                web.post("/occupancy", self._occupancy),
                web.post("/speed", self._speed),
                web.post("/advance", self._advance),
            ]
        )
        self.app = app

    @property
    def url(self) -> str:
        """Base URL of the channel."""
        return f"http://{self.host}:{self.port}"

    async def start(self) -> None:
        """Listen on host:port (0: a free port, then self.port holds it)."""
        if self._runner is not None:
            return
        runner = web.AppRunner(self.app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.port)
        try:
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        if self.port == 0 and runner.addresses:
            self.port = runner.addresses[0][1]
        self._runner = runner

    async def stop(self) -> None:
        """Stop listening."""
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    async def _status(self, request: web.Request) -> web.Response:
        return web.json_response(self.sim.status())

    async def _endpoints(self, request: web.Request) -> web.Response:
        return web.json_response(
            {
                device_id: {"host": e.host, "port": e.port, "unit": e.unit, "listening": self.sim.listening(device_id)}
                for device_id, e in self.sim.endpoints.items()
            }
        )

    async def _device(self, request: web.Request) -> web.Response:
        device_id = request.match_info["device_id"]
        city = self.sim.city
        if device_id in city.devices:
            return web.json_response(city.devices[device_id].snapshot())
        if device_id in city.lamps:
            cabinet, index = city.lamps[device_id]
            return web.json_response(cabinet.lamp_state(index))
        if device_id in city.sensors:
            gateway, bay = city.sensors[device_id]
            self.sim.sync()
            return web.json_response(
                {
                    "id": device_id,
                    "bay": bay,
                    "occupied": bool(gateway.reported() >> bay & 1),
                    "fault": bool(gateway.faulty >> bay & 1),
                }
            )
        return _error(404, f"no device {device_id!r}")

    async def _fault_names(self, request: web.Request) -> web.Response:
        return web.json_response(FAULTS)

    async def _events(self, request: web.Request) -> web.Response:
        try:
            limit = int(request.query.get("limit", "100"))
        except ValueError:
            return _error(400, "limit must be an integer")
        self.sim.sync()
        events = list(self.sim.env.recent)
        return web.json_response(events[-limit:] if limit > 0 else [])

    async def _call(self, request: web.Request, action: Any) -> web.Response:
        body = await _body(request)
        try:
            result = await action(body)
        except UnknownSimDeviceError as error:
            return _error(404, str(error))
        except (SimulatorError, ValueError, TypeError, KeyError) as error:
            return _error(400, str(error))
        return web.json_response({"ok": True, **(result or {})})

    async def _fault(self, request: web.Request) -> web.Response:
        async def action(body: dict[str, Any]) -> dict[str, Any]:
            params = {k: v for k, v in body.items() if k not in ("device", "fault", "on")}
            on = body.get("on", True)
            if not isinstance(on, bool):
                raise ValueError("on must be true or false")
            await self.sim.set_fault(str(body["device"]), str(body["fault"]), on, **params)
            return {"device": body["device"], "fault": body["fault"], "on": on}

        return await self._call(request, action)

    async def _presence(self, request: web.Request) -> web.Response:
        async def action(body: dict[str, Any]) -> None:
            self.sim.fire_presence(str(body["lamp"]))

        return await self._call(request, action)

    async def _occupancy(self, request: web.Request) -> web.Response:
        async def action(body: dict[str, Any]) -> None:
            self.sim.set_occupancy(str(body["site"]), body["occupied"])

        return await self._call(request, action)

    async def _speed(self, request: web.Request) -> web.Response:
        async def action(body: dict[str, Any]) -> dict[str, Any]:
            self.sim.set_speed(float(body["speed"]))
            return {"speed": self.sim.clock.speed}

        return await self._call(request, action)

    async def _advance(self, request: web.Request) -> web.Response:
        async def action(body: dict[str, Any]) -> dict[str, Any]:
            self.sim.advance(float(body["seconds"]))
            return {"sim_time": self.sim.now().isoformat()}

        return await self._call(request, action)
