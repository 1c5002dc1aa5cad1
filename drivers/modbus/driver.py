"""ModbusDriver: polls every Modbus field device of the site as one group each and carries out commands.

One DeviceConnection (one TCP connection, one lock) and one DevicePoller task per field device; start times are
jittered over each device's period. Commands share the device's connection and lock with its poller.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from drivers.modbus import registers as reg
from drivers.modbus.client import Backoff, DeviceConnection
from drivers.modbus.commands import CommandPlan, PlanHold, execute_plan, hold_plan, plan_command, plan_lamp_levels
from drivers.modbus.decode import next_message_id, percent_register
from drivers.modbus.poller import CabinetPoller, DevicePoller, DeviceStatus, LinkState, make_poller
from scada.catalog import Kind, action_spec
from scada.model import (
    ConfigError,
    ConfigIssue,
    DeviceCommunicationError,
    InvalidArgumentError,
    OutOfRangeError,
    Publish,
    UnknownDeviceError,
    WriteRequest,
    WriteResult,
)
from scada.site.model import Cabinet, FieldDevice, Lamp, ParkingSensor, ParkingSite, Sign, TrafficController

log = logging.getLogger(__name__)

WATCHDOG_RANGE = (10, 3600)  # HR 1 of a traffic controller


@dataclass(frozen=True, slots=True)
class CycleStats:
    """Poll statistics over every device of the driver."""

    devices: int
    ok: int
    uncertain: int
    lost: int
    failed: int
    starting: int
    reads_per_sweep: int  # requests needed to poll every device once
    cycles: int
    failed_cycles: int
    reads: int
    errors: int
    mean_cycle_s: float  # mean duration of one device's cycle
    max_cycle_s: float
    last_sweep_s: float | None  # duration of the last poll_all(): every device polled once, concurrently
    running_s: float  # since start()
    reads_per_s: float  # since start()


def _validate(devices: list[FieldDevice]) -> list[ConfigIssue]:
    """Every problem of the device list that would make polling or addressing wrong."""
    issues: list[ConfigIssue] = []
    seen: set[str] = set()

    def issue(field: str, message: str) -> None:
        issues.append(ConfigIssue("modbus driver", None, field, message))

    def claim(device_id: str, field: str) -> None:
        if device_id in seen:
            issue(field, f"device id {device_id!r} is used twice")
        seen.add(device_id)

    for device in devices:
        if not isinstance(device, Cabinet | TrafficController | Sign | ParkingSite):
            issue(getattr(device, "id", "?"), f"{type(device).__name__} is not a Modbus field device")
            continue
        claim(device.id, device.id)
        endpoint = device.endpoint
        if endpoint.protocol != "modbus":
            issue(f"{device.id}.endpoint.protocol", f"is {endpoint.protocol!r}, this driver speaks 'modbus'")
        if not 1 <= endpoint.port <= 65535:
            issue(f"{device.id}.endpoint.port", f"{endpoint.port} is outside 1-65535")
        if not 0 <= endpoint.unit <= 255:
            issue(f"{device.id}.endpoint.unit", f"{endpoint.unit} is outside 0-255")
        if endpoint.poll_ms <= 0:
            issue(f"{device.id}.endpoint.poll_ms", f"{endpoint.poll_ms} must be positive")
        if isinstance(device, Cabinet):
            indexes: set[int] = set()
            for lamp in device.lamps:
                claim(lamp.id, f"{device.id}.lamps.{lamp.id}")
                if not 0 <= lamp.index < reg.MAX_LAMPS:
                    issue(f"{device.id}.lamps.{lamp.id}.index", f"{lamp.index} is outside 0-{reg.MAX_LAMPS - 1}")
                elif lamp.index in indexes:
                    issue(f"{device.id}.lamps.{lamp.id}.index", f"lamp index {lamp.index} is used twice")
                indexes.add(lamp.index)
                if lamp.cabinet_id != device.id:
                    issue(f"{device.id}.lamps.{lamp.id}.cabinet_id", f"is {lamp.cabinet_id!r}, not {device.id!r}")
        if isinstance(device, ParkingSite):
            bays: set[int] = set()
            for sensor in device.sensors:
                claim(sensor.id, f"{device.id}.sensors.{sensor.id}")
                if not 0 <= sensor.index < reg.MAX_BAYS:
                    issue(f"{device.id}.sensors.{sensor.id}.index", f"{sensor.index} is outside 0-{reg.MAX_BAYS - 1}")
                elif sensor.index in bays:
                    issue(f"{device.id}.sensors.{sensor.id}.index", f"bay index {sensor.index} is used twice")
                bays.add(sensor.index)
                if sensor.site_id != device.id:
                    issue(f"{device.id}.sensors.{sensor.id}.site_id", f"is {sensor.site_id!r}, not {device.id!r}")
    return issues


async def cancel_and_wait(tasks: list[asyncio.Task[None]], name: str) -> None:
    """Cancel tasks and wait until every one has ended, cancelling again any that swallowed the cancellation.

    Python 3.11's asyncio.wait_for (used by pymodbus for each answer) returns the result and drops the
    cancellation when the answer arrives in the same loop iteration: a single cancel() may be lost.
    """
    pending = {task for task in tasks if not task.done()}
    while pending:
        for task in pending:
            task.cancel()
        _, pending = await asyncio.wait(pending, timeout=0.05)
    for task in tasks:
        if not task.cancelled() and task.exception() is not None:
            log.error("%s: task %s ended with %r", name, task.get_name(), task.exception())


class ModbusDriver:
    """The Modbus TCP driver of scada.model.Driver: one poll group, connection and lock per field device."""

    def __init__(
        self,
        devices: Iterable[FieldDevice],
        publish: Publish,
        *,
        name: str = "modbus",
        timeout: float = 2.0,
        watchdog_s: int = 30,
        refresh_s: float | None = None,
        reconnect_min_s: float = 1.0,
        reconnect_max_s: float = 30.0,
        bad_after: int = 2,
        seed: int | None = None,
    ) -> None:
        """Validate the devices (ConfigError with every issue) and prepare pollers; no I/O until start()."""
        device_list = list(devices)
        issues = _validate(device_list)
        if issues:
            raise ConfigError(issues)
        if not WATCHDOG_RANGE[0] <= watchdog_s <= WATCHDOG_RANGE[1]:
            raise ValueError(f"watchdog_s {watchdog_s} is outside {WATCHDOG_RANGE[0]}-{WATCHDOG_RANGE[1]} s")
        if timeout <= 0 or reconnect_min_s <= 0 or reconnect_max_s < reconnect_min_s:
            raise ValueError("timeout and reconnection delays must be positive, reconnect_max_s >= reconnect_min_s")
        self.name = name
        self.timeout = timeout
        self.watchdog_s = int(watchdog_s)
        self.refresh_s = refresh_s if refresh_s is not None else watchdog_s / 3
        if not 0 < self.refresh_s < watchdog_s:
            raise ValueError(f"refresh_s {self.refresh_s} must be positive and shorter than watchdog_s {watchdog_s}")
        self._rng = random.Random(seed)
        self._pollers: dict[str, DevicePoller] = {}
        self._lamps: dict[str, tuple[CabinetPoller, Lamp]] = {}
        self._sensors: dict[str, ParkingSensor] = {}
        for device in device_list:
            endpoint = device.endpoint
            connection = DeviceConnection(
                endpoint.host,
                endpoint.port,
                endpoint.unit,
                timeout=timeout,
                backoff=Backoff(reconnect_min_s, reconnect_max_s, random.Random(self._rng.random())),
                label=f"{name}:{device.id}",
            )
            poller = make_poller(device, connection, publish, bad_after=bad_after)
            self._pollers[device.id] = poller
            if isinstance(device, Cabinet):
                assert isinstance(poller, CabinetPoller)
                for lamp in device.lamps:
                    self._lamps[lamp.id] = (poller, lamp)
            elif isinstance(device, ParkingSite):
                for sensor in device.sensors:
                    self._sensors[sensor.id] = sensor
        self._tasks: list[asyncio.Task[None]] = []
        self._holds: dict[str, asyncio.Task[None]] = {}
        self._message_ids: dict[str, int] = {}
        self._running = False
        self._started_at = 0.0
        self._last_sweep_s: float | None = None

    # -- lifecycle ------------------------------------------------------------------------------------------

    async def start(self) -> None:
        """Start one poll task per device, each first firing at a random point of its period (idempotent)."""
        if self._running:
            return
        self._running = True
        self._started_at = time.monotonic()
        for device_id, poller in self._pollers.items():
            poller.reset()
            poller.connection.reset_backoff()
            first = self._rng.uniform(0, poller.period_s)
            task = asyncio.create_task(poller.run(first), name=f"{self.name}-poll-{device_id}")
            self._tasks.append(task)
        log.info("%s: polling %d devices (%d reads per sweep)", self.name, len(self._pollers), self._reads_per_sweep())

    async def stop(self) -> None:
        """Cancel every poll and refresh task, wait for them, close every connection (idempotent)."""
        tasks = self._tasks + list(self._holds.values())
        self._tasks = []
        self._holds = {}
        self._running = False
        for poller in self._pollers.values():
            poller.halt()
            poller.connection.close()  # first: no answer can then arrive for a request being cancelled
        await cancel_and_wait(tasks, self.name)
        for poller in self._pollers.values():
            poller.connection.close()

    @property
    def running(self) -> bool:
        """True between start() and stop()."""
        return self._running

    def device_ids(self) -> list[str]:
        """Every field device id, then every lamp and parking sensor id they carry."""
        return [*self._pollers, *self._lamps, *self._sensors]

    # -- commands -------------------------------------------------------------------------------------------

    async def execute(self, request: WriteRequest) -> WriteResult:
        """Carry out one catalog action; Good once the device accepted it (read back and published)."""
        poller, lamp = self._target(request.device_id)
        device = poller.device
        kind = Kind.LAMP if lamp is not None else device.kind
        if action_spec(kind, request.action) is None:
            raise InvalidArgumentError(f"{kind.value} {request.device_id} has no action {request.action!r}")
        self._require_running()
        message_id = 1
        if isinstance(device, Sign) and request.action == "display":
            message_id = self._next_message_id(poller)
        plan = plan_command(
            device, request.action, request.args, lamp=lamp, watchdog_s=self.watchdog_s, message_id=message_id
        )
        if plan.release or plan.hold is not None:
            await self._cancel_hold(device.id)
        result = await execute_plan(poller, plan)
        self._after(poller, plan)
        log.debug(
            "%s: %s %s %s by %s (%s): %s",
            self.name,
            request.device_id,
            request.action,
            dict(request.args),
            request.user or "system",
            request.origin,
            result.message,
        )
        return result

    async def execute_group(self, cabinet_id: str, levels: Mapping[int, float]) -> WriteResult:
        """Set the setpoints of several lamps of one cabinet ({lamp index: level %}), FC16 per contiguous run."""
        poller = self._pollers.get(cabinet_id)
        if poller is None or not isinstance(poller.device, Cabinet):
            raise UnknownDeviceError(f"no cabinet {cabinet_id!r} in driver {self.name}")
        registers: dict[int, int] = {}
        for index, level in levels.items():
            try:
                registers[index] = percent_register(level)
            except ValueError as exc:
                raise OutOfRangeError(f"lamp index {index}: {exc}") from None
        self._require_running()
        return await execute_plan(poller, plan_lamp_levels(poller.device, registers))

    def held_plans(self) -> dict[str, bool]:
        """Controllers whose central plan request is being refreshed (id -> True while the task runs)."""
        return {device_id: not task.done() for device_id, task in self._holds.items()}

    def _target(self, device_id: str) -> tuple[DevicePoller, Lamp | None]:
        """The poller driving a device id, and the lamp when the id is a lamp's."""
        poller = self._pollers.get(device_id)
        if poller is not None:
            return poller, None
        lamp_entry = self._lamps.get(device_id)
        if lamp_entry is not None:
            return lamp_entry[0], lamp_entry[1]
        if device_id in self._sensors:
            raise InvalidArgumentError(f"parking sensor {device_id} accepts no command")
        raise UnknownDeviceError(f"no device {device_id!r} in driver {self.name}")

    def _require_running(self) -> None:
        """Commands need the driver started (connections and refresh tasks belong to its lifetime)."""
        if not self._running:
            raise DeviceCommunicationError(f"driver {self.name} is not running")

    def _next_message_id(self, poller: DevicePoller) -> int:
        """Reserve a new non-zero message id for a sign, after the last one used or shown (never twice)."""
        previous = self._message_ids.get(poller.device.id)
        if previous is None:
            shown = poller.value(poller.unit, "MessageId")
            previous = shown if isinstance(shown, int) else 0
        message_id = next_message_id(previous)
        self._message_ids[poller.device.id] = message_id
        return message_id

    def _after(self, poller: DevicePoller, plan: CommandPlan) -> None:
        """Book-keeping once the device accepted a command: the plan refresh."""
        if plan.hold is not None:
            self._start_hold(poller, plan.hold)

    def _start_hold(self, poller: DevicePoller, hold: PlanHold) -> None:
        """Refresh the controller's plan request until its duration ends."""
        device_id = poller.device.id
        task = asyncio.create_task(
            hold_plan(poller, hold, watchdog_s=self.watchdog_s, refresh_s=self.refresh_s),
            name=f"{self.name}-hold-{device_id}",
        )
        self._holds[device_id] = task
        task.add_done_callback(lambda done: self._forget_hold(device_id, done))

    def _forget_hold(self, device_id: str, task: asyncio.Task[None]) -> None:
        """Drop a finished refresh task from the table (unless a newer one replaced it)."""
        if self._holds.get(device_id) is task:
            del self._holds[device_id]

    async def _cancel_hold(self, device_id: str) -> None:
        """Stop refreshing a controller's plan request (release_plan or a new select_plan)."""
        task = self._holds.pop(device_id, None)
        if task is not None:
            await cancel_and_wait([task], self.name)

    # -- statistics -----------------------------------------------------------------------------------------

    def device_status(self) -> dict[str, DeviceStatus]:
        """Communication state and poll statistics of every field device."""
        return {device_id: poller.status() for device_id, poller in self._pollers.items()}

    async def poll_all(self) -> float:
        """Poll every device once, all concurrently (through the regular cycle); return the elapsed seconds."""
        started = time.perf_counter()
        await asyncio.gather(*(poller.poll_once() for poller in self._pollers.values()))
        self._last_sweep_s = time.perf_counter() - started
        return self._last_sweep_s

    def cycle_stats(self) -> CycleStats:
        """Aggregated statistics; `last_sweep_s` is the time of the last full poll of every device (poll_all)."""
        statuses = [poller.status() for poller in self._pollers.values()]
        states = [status.state for status in statuses]
        cycles = sum(status.cycles for status in statuses)
        reads = sum(status.reads for status in statuses)
        running = time.monotonic() - self._started_at if self._running else 0.0
        return CycleStats(
            devices=len(statuses),
            ok=states.count(LinkState.OK),
            uncertain=states.count(LinkState.UNCERTAIN),
            lost=states.count(LinkState.LOST),
            failed=states.count(LinkState.FAILED),
            starting=states.count(LinkState.STARTING),
            reads_per_sweep=self._reads_per_sweep(),
            cycles=cycles,
            failed_cycles=sum(status.failed_cycles for status in statuses),
            reads=reads,
            errors=sum(status.errors for status in statuses),
            mean_cycle_s=sum(status.busy_s for status in statuses) / cycles if cycles else 0.0,
            max_cycle_s=max((status.max_cycle_s for status in statuses), default=0.0),
            last_sweep_s=self._last_sweep_s,
            running_s=running,
            reads_per_s=reads / running if running > 0 else 0.0,
        )

    def _reads_per_sweep(self) -> int:
        """Requests needed to poll every device once."""
        return sum(poller.plan.reads for poller in self._pollers.values())
