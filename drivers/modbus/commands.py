"""Commands -> register writes: pure plans (checked against the catalog and the device map), their execution with
read-back, and the watchdog refresh that keeps a central traffic plan alive.

Writes use FC06 for one register and FC16 (write multiple) for several; a run of lamp setpoints is one FC16 per
contiguous run of at most 123 registers. A sign message is ONE FC16 over HR 0-36 (id, pictogram, flashing,
brightness, then the text): the device commits it when HR 0 is written. Device answers map to the shared
exceptions: exception 03 -> OutOfRangeError (BadOutOfRange), exception 02 -> DeviceRejectedError with status
BadNotSupported (the device has no such register), any other exception -> DeviceRejectedError (BadDeviceFailure),
unreachable or no answer in time -> DeviceCommunicationError (BadCommunicationError).
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from drivers.modbus import registers as reg
from drivers.modbus.client import DeviceConnection, DeviceExceptionError, LinkError
from drivers.modbus.codec import contiguous_runs, valid_text_register
from drivers.modbus.decode import SIGN_COMMIT_COUNT, percent_register, sign_commit_block
from drivers.modbus.poller import DI, HR, IR, DevicePoller, device_map, lamp_slots
from scada.catalog import ArgSpec, Kind, action_spec, sign_lines
from scada.model import (
    CommandError,
    DeviceCommunicationError,
    DeviceRejectedError,
    InvalidArgumentError,
    OutOfRangeError,
    Quality,
    WriteResult,
)
from scada.site.model import Cabinet, FieldDevice, Lamp, ParkingSite, Sign, TrafficController

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class RegisterWrite:
    """One write request: FC06 when it holds one register, FC16 otherwise."""

    address: int
    values: tuple[int, ...]

    @property
    def function(self) -> int:
        """The Modbus function code used."""
        return 0x06 if len(self.values) == 1 else 0x10


@dataclass(frozen=True, slots=True)
class PlanHold:
    """A central traffic plan to keep requested (watchdog refresh) for a while."""

    plan: int
    duration_s: float


@dataclass(frozen=True, slots=True)
class CommandPlan:
    """What one command does on the wire: writes in order, then the registers read back, then the result tags."""

    device: FieldDevice
    writes: tuple[RegisterWrite, ...]
    readback: tuple[tuple[str, int, int], ...]  # (table, start, count)
    result_tags: tuple[str, ...]
    hold: PlanHold | None = None  # select_plan: start refreshing
    release: bool = False  # release_plan: stop refreshing
    message_id: int | None = None  # display/blank: the id committed
    notes: tuple[str, ...] = field(default=())


# ---------------------------------------------------------------------------------------------------------
# Argument checks (the command service checked the catalog ranges; the device map is re-checked here)
# ---------------------------------------------------------------------------------------------------------


def _spec(kind: Kind, action: str, name: str) -> ArgSpec:
    """The catalog ArgSpec of an action argument."""
    spec = action_spec(kind, action)
    assert spec is not None
    for arg in spec.args:
        if arg.name == name:
            return arg
    raise KeyError(name)


def _present(args: Mapping[str, Any], name: str) -> Any:
    """An argument that must be there."""
    if name not in args:
        raise InvalidArgumentError(f"argument {name} is missing")
    return args[name]


def number_arg(args: Mapping[str, Any], kind: Kind, action: str, name: str) -> float:
    """A finite number within the catalog range of the argument."""
    value = _present(args, name)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidArgumentError(f"argument {name} must be a number, not {type(value).__name__}")
    if not math.isfinite(value):
        raise InvalidArgumentError(f"argument {name} must be finite")
    spec = _spec(kind, action, name)
    if (spec.low is not None and value < spec.low) or (spec.high is not None and value > spec.high):
        raise OutOfRangeError(f"argument {name}={value} is outside {spec.low:g}-{spec.high:g}")
    return float(value)


def integer_arg(args: Mapping[str, Any], kind: Kind, action: str, name: str) -> int:
    """A whole number within the catalog range of the argument."""
    value = number_arg(args, kind, action, name)
    if value != int(value):
        raise InvalidArgumentError(f"argument {name}={value} must be a whole number")
    return int(value)


def bool_arg(args: Mapping[str, Any], name: str, default: bool) -> bool:
    """A Boolean argument (also 0/1), `default` when absent."""
    value = args.get(name, default)
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    raise InvalidArgumentError(f"argument {name} must be a Boolean, not {value!r}")


def level_register(args: Mapping[str, Any], kind: Kind, action: str, name: str = "Level") -> int:
    """A % argument as its register value."""
    return percent_register(number_arg(args, kind, action, name))


def check_writes(device: FieldDevice, writes: tuple[RegisterWrite, ...]) -> None:
    """Re-check every written register against the device map (writable, within limits, valid sign text)."""
    dmap = device_map(device)
    for write in writes:
        if len(write.values) > reg.MAX_REGISTERS_PER_WRITE:
            raise InvalidArgumentError(f"a write of {len(write.values)} registers exceeds the Modbus limit")
        sign_block = isinstance(device, Sign) and write.address == 0 and len(write.values) == SIGN_COMMIT_COUNT
        for offset, value in enumerate(write.values):
            address = write.address + offset
            limits = dmap.limits(address)
            if limits is None:
                if sign_block and reg.SIGN_HR_BRIGHTNESS < address < reg.SIGN_HR_TEXT and value == 0:
                    continue  # HR 4-9 inside the HR 0-36 commit block
                raise InvalidArgumentError(f"HR {address} of {device.id} is not writable")
            low, high = limits
            if not low <= value <= high:
                raise OutOfRangeError(f"value {value} for HR {address} of {device.id} is outside {low}-{high}")
            if isinstance(device, Sign) and address >= reg.SIGN_HR_TEXT and not valid_text_register(value):
                raise InvalidArgumentError(f"HR {address} of {device.id}: {value:#06x} is not sign text")


def _runs(items: dict[int, int]) -> list[RegisterWrite]:
    """Contiguous runs of address -> value as writes of at most 123 registers."""
    writes: list[RegisterWrite] = []
    for start, values in contiguous_runs(items):
        for offset in range(0, len(values), reg.MAX_REGISTERS_PER_WRITE):
            chunk = values[offset : offset + reg.MAX_REGISTERS_PER_WRITE]
            writes.append(RegisterWrite(start + offset, tuple(chunk)))
    return writes


def _readback_of(writes: list[RegisterWrite]) -> tuple[tuple[str, int, int], ...]:
    """Read back exactly the holding registers written."""
    return tuple((HR, write.address, len(write.values)) for write in writes)


# ---------------------------------------------------------------------------------------------------------
# Plans
# ---------------------------------------------------------------------------------------------------------


def plan_lamp_levels(cabinet: Cabinet, levels: Mapping[int, int]) -> CommandPlan:
    """Setpoints (register values) of some lamps of a cabinet: FC16 per contiguous run, FC06 for a lone lamp."""
    if not levels:
        raise InvalidArgumentError("no lamp to command")
    by_index = {lamp.index: lamp for lamp in cabinet.lamps}
    unknown = sorted(set(levels) - set(by_index))
    if unknown:
        raise InvalidArgumentError(f"cabinet {cabinet.id} has no lamp with index {unknown[:5]}")
    writes = _runs({reg.LAMP_HR_BASE + index: value for index, value in levels.items()})
    check_writes(cabinet, tuple(writes))
    tags = tuple(f"{by_index[index].path}/LevelSetpoint" for index in sorted(levels))
    return CommandPlan(cabinet, tuple(writes), _readback_of(writes), tags)


def plan_command(
    device: FieldDevice,
    action: str,
    args: Mapping[str, Any],
    *,
    lamp: Lamp | None = None,
    watchdog_s: int = 30,
    message_id: int = 1,
) -> CommandPlan:
    """The register writes of one catalog action on a field device (`lamp`: the lamp a set_level targets)."""
    kind = Kind.LAMP if lamp is not None else device.kind
    if action_spec(kind, action) is None:
        raise InvalidArgumentError(f"{kind.value} has no action {action!r}")
    if lamp is not None:
        assert isinstance(device, Cabinet)
        return plan_lamp_levels(device, {lamp.index: level_register(args, kind, action)})
    if isinstance(device, Cabinet):
        return _plan_cabinet(device, action, args)
    if isinstance(device, TrafficController):
        return _plan_controller(device, action, args, watchdog_s)
    if isinstance(device, Sign):
        return _plan_sign(device, action, args, message_id)
    if isinstance(device, ParkingSite):
        mode = integer_arg(args, kind, action, "Mode")
        writes = (RegisterWrite(reg.PARK_HR_DISPLAY, (mode,)),)
        check_writes(device, writes)
        return CommandPlan(device, writes, ((HR, reg.PARK_HR_DISPLAY, 1),), (f"{device.path}/DisplayMode",))
    raise InvalidArgumentError(f"{type(device).__name__} is not a Modbus field device")


def _plan_cabinet(cabinet: Cabinet, action: str, args: Mapping[str, Any]) -> CommandPlan:
    """set_mode, set_all_levels, set_presence_boost, set_presence_hold, set_presence."""
    kind = Kind.CABINET
    if action == "set_all_levels":
        slots = lamp_slots(cabinet)
        if not slots:
            raise InvalidArgumentError(f"cabinet {cabinet.id} has no lamps")
        value = level_register(args, kind, action)
        writes = _runs({reg.LAMP_HR_BASE + index: value for index in range(slots)})
        check_writes(cabinet, tuple(writes))
        tags = tuple(f"{lamp.path}/LevelSetpoint" for lamp in sorted(cabinet.lamps, key=lambda item: item.index))
        return CommandPlan(cabinet, tuple(writes), _readback_of(writes), tags)
    if action == "set_mode":
        write = RegisterWrite(reg.LIGHT_HR_COMMAND, (integer_arg(args, kind, action, "Mode"),))
        names: tuple[str, ...] = ("Mode",)
    elif action == "set_presence_boost":
        write = RegisterWrite(reg.LIGHT_HR_BOOST, (level_register(args, kind, action),))
        names = ("PresenceBoostLevel",)
    elif action == "set_presence_hold":
        write = RegisterWrite(reg.LIGHT_HR_HOLD, (integer_arg(args, kind, action, "Seconds"),))
        names = ("PresenceHoldSeconds",)
    elif action == "set_presence":
        boost = level_register(args, kind, action, "BoostLevel")
        hold = integer_arg(args, kind, action, "HoldSeconds")
        write = RegisterWrite(reg.LIGHT_HR_BOOST, (boost, hold))
        names = ("PresenceBoostLevel", "PresenceHoldSeconds")
    else:
        raise InvalidArgumentError(f"cabinet has no action {action!r}")
    check_writes(cabinet, (write,))
    readback = ((HR, reg.LIGHT_HR_COMMAND, reg.LIGHT_HR_HOLD + 1),)
    return CommandPlan(cabinet, (write,), readback, tuple(f"{cabinet.path}/{name}" for name in names))


def _plan_controller(
    controller: TrafficController, action: str, args: Mapping[str, Any], watchdog_s: int
) -> CommandPlan:
    """select_plan (HR 1 watchdog, then HR 0 plan; refreshed afterwards) and release_plan (HR 0 = 0)."""
    kind = Kind.CONTROLLER
    readback = ((HR, reg.TRAF_HR_PLAN, 2),)
    tags = (f"{controller.path}/RequestedPlan", f"{controller.path}/WatchdogSeconds")
    if action == "select_plan":
        plan = integer_arg(args, kind, action, "Plan")
        duration = number_arg(args, kind, action, "DurationSeconds")
        writes: tuple[RegisterWrite, ...] = (
            RegisterWrite(reg.TRAF_HR_WATCHDOG, (watchdog_s,)),
            RegisterWrite(reg.TRAF_HR_PLAN, (plan,)),
        )
        check_writes(controller, writes)
        return CommandPlan(controller, writes, readback, tags, hold=PlanHold(plan, duration))
    if action == "release_plan":
        writes = (RegisterWrite(reg.TRAF_HR_PLAN, (reg.PLAN_DARK,)),)
        return CommandPlan(controller, writes, readback, tags, release=True)
    raise InvalidArgumentError(f"controller has no action {action!r}")


def _plan_sign(sign: Sign, action: str, args: Mapping[str, Any], message_id: int) -> CommandPlan:
    """display (a new message id with pictogram, flashing, automatic brightness and text) and blank (id 0)."""
    kind = Kind.SIGN
    if action == "display":
        text = _present(args, "Text")
        if not isinstance(text, str):
            raise InvalidArgumentError(f"argument Text must be a string, not {type(text).__name__}")
        try:
            sign_lines(text)
        except ValueError as exc:
            raise InvalidArgumentError(f"argument Text: {exc}") from None
        pictogram = integer_arg(args, kind, action, "Pictogram") if "Pictogram" in args else 0
        flashing = bool_arg(args, "Flashing", False)
        if not 1 <= message_id <= 0xFFFF:
            raise InvalidArgumentError(f"message id {message_id} must be 1-65535")
        block = sign_commit_block(message_id, text, pictogram, flashing, brightness=0)
    elif action == "blank":
        message_id = 0
        block = sign_commit_block(0, "", 0, False, brightness=0)
    else:
        raise InvalidArgumentError(f"sign has no action {action!r}")
    writes = (RegisterWrite(reg.SIGN_HR_MESSAGE_ID, tuple(block)),)
    check_writes(sign, writes)
    readback = (
        (HR, reg.SIGN_HR_MESSAGE_ID, reg.SIGN_HR_BRIGHTNESS + 1),
        (IR, 0, reg.SIGN_IR_TEXT + reg.SIGN_TEXT_REGISTERS),
    )
    names = ("Message", "MessageId", "Pictogram", "Flashing", "Brightness")
    return CommandPlan(sign, writes, readback, tuple(f"{sign.path}/{name}" for name in names), message_id=message_id)


# ---------------------------------------------------------------------------------------------------------
# Execution
# ---------------------------------------------------------------------------------------------------------


def rejected(device_id: str, exc: DeviceExceptionError, note: str = "") -> CommandError:
    """The shared exception for a device's Modbus exception answer."""
    message = f"{device_id} refused the command: {exc}{note}"
    if exc.code == 3:
        return OutOfRangeError(message)
    if exc.code == 2:
        return DeviceRejectedError(message, status=Quality.BAD_NOT_SUPPORTED)
    return DeviceRejectedError(message)


async def _read(connection: DeviceConnection, table: str, start: int, count: int) -> list[Any]:
    """One read of a table."""
    if table == IR:
        return await connection.read_input_registers(start, count)
    if table == HR:
        return await connection.read_holding_registers(start, count)
    if table == DI:
        return await connection.read_discrete_inputs(start, count)
    raise ValueError(table)


async def execute_plan(poller: DevicePoller, plan: CommandPlan, *, force_connect: bool = True) -> WriteResult:
    """Send the plan's writes under the device lock, read back, publish; raise a CommandError on failure."""
    device_id = plan.device.id
    connection = poller.connection
    done = 0
    try:
        await connection.connect(force=force_connect)
        async with connection.lock:
            for write in plan.writes:
                await connection.write_registers(write.address, write.values)
                done += 1
            patches = [
                (table, start, await _read(connection, table, start, count)) for table, start, count in plan.readback
            ]
    except LinkError as exc:
        if done == len(plan.writes):  # accepted; only the read-back failed
            return WriteResult(Quality.GOOD, f"accepted; read-back failed: {exc}", {})
        partial = f" after {done} of {len(plan.writes)} writes" if done else ""
        raise DeviceCommunicationError(f"{device_id} cannot be reached{partial}: {exc}") from exc
    except DeviceExceptionError as exc:
        if done == len(plan.writes):
            return WriteResult(Quality.GOOD, f"accepted; read-back refused: {exc}", {})
        note = f" (after {done} of {len(plan.writes)} writes were accepted)" if done else ""
        raise rejected(device_id, exc, note) from exc
    if poller.has_data:
        poller.apply(patches)
    else:
        await poller.poll_once()  # first contact: a full cycle publishes every value
    values = {tag: poller.value_of_tag(tag) for tag in plan.result_tags}
    return WriteResult(Quality.GOOD, "accepted", {tag: value for tag, value in values.items() if value is not None})


async def hold_plan(
    poller: DevicePoller,
    hold: PlanHold,
    *,
    watchdog_s: int,
    refresh_s: float,
) -> None:
    """Rewrite HR 0 every `refresh_s` while the central plan is wanted; write HR 0 = 0 when the duration ends.

    After a failed refresh (device away), the next one rewrites HR 1 (watchdog) before HR 0, in case the
    controller restarted. Cancelling the task (release_plan, a new select_plan, driver stop) stops refreshing.
    """
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    connection = poller.connection
    label = poller.label
    deadline = loop.time() + hold.duration_s
    healthy = True
    while (remaining := deadline - loop.time()) > 0:
        await asyncio.sleep(min(refresh_s, remaining))
        if task is not None and task.cancelling():
            raise asyncio.CancelledError  # a cancellation swallowed inside pymodbus (asyncio.wait_for, 3.11)
        if loop.time() >= deadline:
            break
        writes = [(reg.TRAF_HR_PLAN, hold.plan)]
        if not healthy:
            writes.insert(0, (reg.TRAF_HR_WATCHDOG, watchdog_s))
        try:
            await connection.connect()
            async with connection.lock:
                for address, value in writes:
                    await connection.write_registers(address, (value,))
        except (LinkError, DeviceExceptionError) as exc:
            if healthy:
                log.warning("%s: cannot refresh central plan %d (%s); retrying", label, hold.plan, exc)
            healthy = False
        else:
            if not healthy:
                log.warning("%s: central plan %d request refreshed again", label, hold.plan)
            healthy = True
    end = CommandPlan(
        poller.device,
        (RegisterWrite(reg.TRAF_HR_PLAN, (reg.PLAN_DARK,)),),
        ((HR, reg.TRAF_HR_PLAN, 2),),
        (),
    )
    try:
        await execute_plan(poller, end, force_connect=False)
        log.info("%s: central plan %d ended after %g s", label, hold.plan, hold.duration_s)
    except CommandError as exc:
        log.warning("%s: cannot end central plan %d (%s); the controller's watchdog lapses it", label, hold.plan, exc)
