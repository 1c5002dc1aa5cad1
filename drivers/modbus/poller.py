"""Poll groups: one read plan per device, one poll loop per device, change-only publication and quality on loss.

Each field device is one poll group: its defined registers (registers.*_map) are merged by codec.plan_reads into
the fewest reads of at most 125 registers / 2000 bits, never bridging a gap of the map. A cycle reads the whole
group into register images, then compares each object's raw registers (a lamp's 8 input registers and its
setpoint, a bay's two bits, ...) with the previous cycle and decodes only the objects whose registers changed;
only variables whose decoded value changed are published.

Quality (see DevicePoller): after a failed cycle every value of the device and of the objects it carries turns
UncertainLastUsableValue; from `bad_after` consecutive failed cycles on (2 by default), or at once when the device
has never answered, they turn BadCommunicationError (BadDeviceFailure when the device answers with Modbus
exceptions or a wrong identification block), each carrying the time of the device's last good cycle as source
timestamp. CommunicationOk goes False (Good quality) when the device is declared lost, which is logged once;
the recovery is logged once too and followed by a full publication.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from drivers.modbus import registers as reg
from drivers.modbus.client import DeviceConnection, DeviceExceptionError, LinkError
from drivers.modbus.codec import plan_reads
from drivers.modbus.decode import (
    CABINET_FIELDS,
    COMM_FIELD,
    CONTROLLER_FIELDS,
    LAMP_FIELDS,
    PARKING_SITE_FIELDS,
    SENSOR_FIELDS,
    SIGN_FIELDS,
    IdentityError,
    check_identity,
    decode_cabinet,
    decode_controller,
    decode_lamp,
    decode_parking_site,
    decode_sensor,
    decode_sign,
    vehicle_total,
)
from scada.model import Publish, Quality, ValueRecord, utcnow
from scada.site.model import Cabinet, FieldDevice, ParkingSite, Sign, TrafficController

log = logging.getLogger(__name__)

IR, HR, DI = "ir", "hr", "di"
TABLES = (IR, HR, DI)


# ---------------------------------------------------------------------------------------------------------
# Read plans
# ---------------------------------------------------------------------------------------------------------


def lamp_slots(cabinet: Cabinet) -> int:
    """How many lamp slots of the map the driver reads: the highest configured lamp index + 1 (0 without lamps)."""
    return max((lamp.index for lamp in cabinet.lamps), default=-1) + 1


def bay_slots(site: ParkingSite) -> int:
    """How many bays of the map the driver reads: the highest configured sensor index + 1 (0 without sensors)."""
    return max((sensor.index for sensor in site.sensors), default=-1) + 1


def device_map(device: FieldDevice) -> reg.DeviceMap:
    """The register map of a configured field device, sized to the lamps or bays it carries."""
    if isinstance(device, Cabinet):
        return reg.lighting_map(max(1, lamp_slots(device)))
    if isinstance(device, ParkingSite):
        return reg.parking_map(max(1, bay_slots(device)))
    if isinstance(device, TrafficController):
        return reg.traffic_map()
    if isinstance(device, Sign):
        return reg.sign_map()
    raise TypeError(f"{type(device).__name__} is not a Modbus field device")


def poll_ranges(device: FieldDevice) -> dict[str, tuple[range, ...]]:
    """The address ranges polled per table (IR, HR, DI): what the catalog variables need, inside the map."""
    if isinstance(device, Cabinet):
        lamps = lamp_slots(device)
        ir = [range(reg.IDENT_START, reg.IDENT_COUNT)]
        hr = [range(reg.LIGHT_HR_COMMAND, reg.LIGHT_HR_HOLD + 1)]
        if lamps:
            ir.append(range(reg.LAMP_IR_BASE, reg.LAMP_IR_BASE + reg.LAMP_IR_STRIDE * lamps))
            hr.append(range(reg.LAMP_HR_BASE, reg.LAMP_HR_BASE + lamps))
        return {IR: tuple(ir), HR: tuple(hr), DI: ()}
    if isinstance(device, TrafficController):
        return {
            IR: (range(0, reg.TRAF_IR_DETECTOR_BASE + reg.DETECTORS),),
            HR: (range(reg.TRAF_HR_PLAN, reg.TRAF_HR_WATCHDOG + 1),),
            DI: (),
        }
    if isinstance(device, Sign):
        return {
            IR: (range(0, reg.SIGN_IR_TEXT + reg.SIGN_TEXT_REGISTERS),),
            HR: (range(reg.SIGN_HR_MESSAGE_ID, reg.SIGN_HR_BRIGHTNESS + 1),),
            DI: (),
        }
    if isinstance(device, ParkingSite):
        bays = bay_slots(device)
        di = (range(0, bays), range(reg.PARK_DI_FAULT_BASE, reg.PARK_DI_FAULT_BASE + bays)) if bays else ()
        return {IR: (range(reg.IDENT_START, reg.IDENT_COUNT),), HR: (range(0, 1),), DI: di}
    raise TypeError(f"{type(device).__name__} is not a Modbus field device")


@dataclass(frozen=True, slots=True)
class PollPlan:
    """The reads (start, count) of one poll cycle, per table, and the image sizes they fill."""

    input_registers: tuple[tuple[int, int], ...]
    holding_registers: tuple[tuple[int, int], ...]
    discrete_inputs: tuple[tuple[int, int], ...]

    @property
    def reads(self) -> int:
        """Requests per cycle."""
        return len(self.input_registers) + len(self.holding_registers) + len(self.discrete_inputs)

    def size(self, table: str) -> int:
        """The image length of a table: one past the highest address read."""
        reads = {IR: self.input_registers, HR: self.holding_registers, DI: self.discrete_inputs}[table]
        return max((start + count for start, count in reads), default=0)


def build_plan(device: FieldDevice) -> PollPlan:
    """The fewest reads covering the device's poll ranges, at most 125 registers or 2000 bits each."""
    ranges = poll_ranges(device)
    return PollPlan(
        input_registers=tuple(plan_reads(ranges[IR], reg.MAX_REGISTERS_PER_READ)),
        holding_registers=tuple(plan_reads(ranges[HR], reg.MAX_REGISTERS_PER_READ)),
        discrete_inputs=tuple(plan_reads(ranges[DI], reg.MAX_BITS_PER_READ)),
    )


# ---------------------------------------------------------------------------------------------------------
# Publication state
# ---------------------------------------------------------------------------------------------------------


class LinkState(enum.StrEnum):
    """Where a device stands, as seen by its poller."""

    STARTING = "starting"  # no cycle finished since start
    OK = "ok"  # the last cycle succeeded
    UNCERTAIN = "uncertain"  # failed cycles, fewer than bad_after: values UncertainLastUsableValue
    LOST = "lost"  # unreachable: values BadCommunicationError, CommunicationOk False
    FAILED = "failed"  # answers, but with exceptions or a wrong identity: values BadDeviceFailure


class Unit:
    """One object of the address space fed by a device (the device itself, a lamp, a bay sensor)."""

    __slots__ = ("names", "prefix", "raw", "values")

    def __init__(self, path: str, names: tuple[str, ...]) -> None:
        self.prefix = path + "/"
        self.names = names
        self.raw: Any = None
        self.values: tuple[Any, ...] | None = None


def emit(unit: Unit, raw: Any, values: tuple[Any, ...], ts: datetime, out: list[ValueRecord], full: bool) -> None:
    """Store the unit's new raw registers and values; append records for the values that changed (all if full)."""
    old = unit.values
    unit.raw = raw
    unit.values = values
    prefix = unit.prefix
    good = Quality.GOOD
    if full or old is None:
        out.extend(
            [ValueRecord(prefix + name, value, good, ts) for name, value in zip(unit.names, values, strict=True)]
        )
        return
    for name, before, value in zip(unit.names, old, values, strict=True):
        if before != value:
            out.append(ValueRecord(prefix + name, value, good, ts))


@dataclass(frozen=True, slots=True)
class DeviceStatus:
    """A snapshot of one device's communication state and poll statistics."""

    device_id: str
    address: str  # "host:port/unit"
    state: LinkState
    connected: bool
    period_s: float
    reads_per_cycle: int
    cycles: int
    failed_cycles: int
    reads: int
    errors: int  # failed requests: link errors and device exception answers
    connects: int
    last_cycle_s: float
    max_cycle_s: float
    busy_s: float  # total time spent in cycles
    last_good: datetime | None
    last_error: str


# ---------------------------------------------------------------------------------------------------------
# The poller
# ---------------------------------------------------------------------------------------------------------


class DevicePoller:
    """Polls one field device as one group and publishes its values (and those of the lamps/bays it carries)."""

    kind_code = 0

    def __init__(
        self,
        device: FieldDevice,
        connection: DeviceConnection,
        publish: Publish,
        *,
        bad_after: int = 2,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        if bad_after < 1:
            raise ValueError("bad_after must be at least 1")
        self.device = device
        self.connection = connection
        self.publish = publish
        self.bad_after = bad_after
        self.clock = clock
        self.plan = build_plan(device)
        self.period_s = device.endpoint.poll_ms / 1000
        self.unit = Unit(device.path, self.fields)
        self.units: list[Unit] = [self.unit]
        self.state = LinkState.STARTING
        self.failures = 0
        self.last_good: datetime | None = None
        self.last_error = ""
        self._quality: int = Quality.GOOD
        self._comm: bool | None = None
        self._images: dict[str, list[Any]] | None = None
        self._patches: list[tuple[str, int, list[Any]]] | None = None
        self._lost_at = 0.0
        self._by_prefix: dict[str, Unit] | None = None
        self._halted = False
        self._cycle_lock = asyncio.Lock()
        self.cycles = self.failed_cycles = self.reads = 0
        self.last_cycle_s = self.max_cycle_s = self.busy_s = 0.0

    fields: tuple[str, ...] = ()

    # -- kind-specific ------------------------------------------------------------------------------------

    def decode(self, images: dict[str, list[Any]], ts: datetime, out: list[ValueRecord], full: bool) -> None:
        """Decode the images into records of changed values (every value when `full`)."""
        raise NotImplementedError

    # -- public ---------------------------------------------------------------------------------------------

    @property
    def has_data(self) -> bool:
        """True once a cycle has succeeded since the poller was created."""
        return self._images is not None

    def reset(self) -> None:
        """Forget what was published (driver restart): the next good cycle publishes everything again."""
        self.state = LinkState.STARTING
        self.failures = 0
        self._comm = None
        self._halted = False

    def halt(self) -> None:
        """The driver is stopping: a cycle still running publishes nothing (its failure is the shutdown's)."""
        self._halted = True

    def value(self, unit: Unit, name: str) -> Any:
        """The last decoded value of a unit's variable (None before the first good cycle)."""
        if unit.values is None:
            return None
        return unit.values[unit.names.index(name)]

    def status(self) -> DeviceStatus:
        """A snapshot of the device's state and statistics."""
        endpoint = self.device.endpoint
        stats = self.connection.stats
        return DeviceStatus(
            device_id=self.device.id,
            address=f"{endpoint.host}:{endpoint.port}/{endpoint.unit}",
            state=self.state,
            connected=self.connection.connected,
            period_s=self.period_s,
            reads_per_cycle=self.plan.reads,
            cycles=self.cycles,
            failed_cycles=self.failed_cycles,
            reads=self.reads,
            errors=stats.link_errors + stats.device_exceptions + stats.connect_failures,
            connects=stats.connects,
            last_cycle_s=self.last_cycle_s,
            max_cycle_s=self.max_cycle_s,
            busy_s=self.busy_s,
            last_good=self.last_good,
            last_error=self.last_error,
        )

    async def run(self, first_delay: float) -> None:
        """Poll at the device's period forever, the first cycle after `first_delay` (the start jitter)."""
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        period = self.period_s
        next_at = loop.time() + first_delay
        while True:
            delay = next_at - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            await self.poll_once()
            if task is not None and task.cancelling():
                raise asyncio.CancelledError  # a cancellation swallowed inside pymodbus (asyncio.wait_for, 3.11)
            next_at += period
            now = loop.time()
            if next_at < now:  # overrun (slow or timing-out device): skip the missed slots, keep the phase
                next_at += math.ceil((now - next_at) / period) * period

    async def poll_once(self) -> bool:
        """Run one poll cycle: read the group, publish the changes or the loss; True when it succeeded."""
        async with self._cycle_lock:
            started = time.perf_counter()
            self._patches = []
            try:
                images = await self._read_group()
            except LinkError as exc:
                self._failed(exc, Quality.BAD_COMM, link=True)
                return False
            except (DeviceExceptionError, IdentityError) as exc:
                self._failed(exc, Quality.BAD_DEVICE_FAILURE, link=False)
                return False
            except Exception as exc:  # a bug must not kill the loop nor leave stale Good values
                log.exception("%s: poll cycle failed unexpectedly", self.label)
                self._failed(exc, Quality.BAD_INTERNAL, link=False)
                return False
            finally:
                patches, self._patches = self._patches, None
                elapsed = time.perf_counter() - started
                self.cycles += 1
                self.last_cycle_s = elapsed
                self.max_cycle_s = max(self.max_cycle_s, elapsed)
                self.busy_s += elapsed
            if self._halted:
                return False
            for table, address, values in patches:  # writes read back during the cycle are newer than its reads
                images[table][address : address + len(values)] = values
            self._succeeded(images)
            return True

    def apply(self, patches: Sequence[tuple[str, int, Sequence[Any]]]) -> list[ValueRecord]:
        """Merge registers read back after a write (table, address, values) into the images; publish the changes."""
        if self._patches is not None:  # a cycle is reading: it must not overwrite these newer values
            self._patches.extend((table, address, list(values)) for table, address, values in patches)
        images = self._images
        if images is None:
            return []
        for table, address, values in patches:
            image = images[table]
            if address + len(values) > len(image):
                image.extend([0] * (address + len(values) - len(image)))
            image[address : address + len(values)] = values
        if self.state is not LinkState.OK:
            return []  # the next good cycle publishes everything with Good quality
        out: list[ValueRecord] = []
        self.decode(images, self.clock(), out, False)
        self._publish(out)
        return out

    def value_of_tag(self, tag: str) -> Any:
        """The last decoded value of one of this device's tags (None if unknown or never read)."""
        if self._by_prefix is None:
            self._by_prefix = {unit.prefix: unit for unit in self.units}
        prefix, _, name = tag.rpartition("/")
        unit = self._by_prefix.get(prefix + "/")
        if unit is None or name not in unit.names:
            return None
        return self.value(unit, name)

    # -- internals ------------------------------------------------------------------------------------------

    @property
    def label(self) -> str:
        """How logs name the device."""
        endpoint = self.device.endpoint
        return f"{self.device.id} ({endpoint.host}:{endpoint.port} unit {endpoint.unit})"

    async def _read_group(self) -> dict[str, list[Any]]:
        """Read every block of the plan into fresh images."""
        conn = self.connection
        plan = self.plan
        await conn.connect()
        ir = [0] * plan.size(IR)
        hr = [0] * plan.size(HR)
        di = [False] * plan.size(DI)
        for start, count in plan.input_registers:
            async with conn.lock:
                ir[start : start + count] = await conn.read_input_registers(start, count)
            self.reads += 1
            if start == reg.IDENT_START:
                check_identity(ir, self.kind_code)
        for start, count in plan.holding_registers:
            async with conn.lock:
                hr[start : start + count] = await conn.read_holding_registers(start, count)
            self.reads += 1
        for start, count in plan.discrete_inputs:
            async with conn.lock:
                di[start : start + count] = await conn.read_discrete_inputs(start, count)
            self.reads += 1
        return {IR: ir, HR: hr, DI: di}

    def _succeeded(self, images: dict[str, list[Any]]) -> None:
        """A good cycle: publish the changes (everything after start or after a loss)."""
        ts = self.clock()
        full = self.state is not LinkState.OK
        if self.state in (LinkState.LOST, LinkState.FAILED):
            log.warning("%s: communication recovered after %.1f s", self.label, time.monotonic() - self._lost_at)
        self.state = LinkState.OK
        self.failures = 0
        self.last_good = ts
        self.last_error = ""
        self._quality = Quality.GOOD
        self._images = images
        out: list[ValueRecord] = []
        self.decode(images, ts, out, full)
        if self._comm is not True:
            self._comm = True
            out.append(ValueRecord(self.unit.prefix + COMM_FIELD, True, Quality.GOOD, ts))
        self._publish(out)

    def _failed(self, exc: BaseException, status: int, *, link: bool) -> None:
        """A failed cycle: degrade every value's quality, keeping values and the last good time."""
        if self._halted:
            return
        self.failed_cycles += 1
        self.failures += 1
        self.last_error = str(exc) or type(exc).__name__
        if self.last_good is None or self.failures >= self.bad_after:
            state = LinkState.LOST if link else LinkState.FAILED
            quality = status
        else:
            state, quality = LinkState.UNCERTAIN, Quality.UNCERTAIN_LAST_USABLE
        previous = self.state
        if state is previous and quality == self._quality:
            return
        if state in (LinkState.LOST, LinkState.FAILED) and previous not in (LinkState.LOST, LinkState.FAILED):
            self._lost_at = time.monotonic()
            what = "communication lost" if link else "device answers but cannot be read"
            log.warning(
                "%s: %s (%s): %d values now %s",
                self.label,
                what,
                self.last_error,
                self._value_count(),
                Quality(quality).name,
            )
        elif state is not previous and previous in (LinkState.LOST, LinkState.FAILED):
            log.warning("%s: now %s (%s)", self.label, state.value, self.last_error)
        self.state = state
        self._quality = quality
        now = self.clock()
        ts = self.last_good or now
        out: list[ValueRecord] = []
        for unit in self.units:
            values = unit.values if unit.values is not None else (None,) * len(unit.names)
            prefix = unit.prefix
            out.extend([ValueRecord(prefix + name, v, quality, ts) for name, v in zip(unit.names, values, strict=True)])
        comm = state is not LinkState.LOST
        if self._comm is not comm:
            self._comm = comm
            out.append(ValueRecord(self.unit.prefix + COMM_FIELD, comm, Quality.GOOD, now))
        self._publish(out)

    def _value_count(self) -> int:
        """How many values the device feeds (CommunicationOk excepted)."""
        return sum(len(unit.names) for unit in self.units)

    def _publish(self, records: list[ValueRecord]) -> None:
        """Hand records to the publish callback; a failing consumer never stops polling."""
        if not records:
            return
        try:
            self.publish(records)
        except Exception:
            log.exception("%s: publish callback failed for %d records", self.label, len(records))


class CabinetPoller(DevicePoller):
    """A lighting segment controller and its lamps."""

    kind_code = reg.KIND_LIGHTING
    fields = CABINET_FIELDS

    def __init__(self, device: Cabinet, connection: DeviceConnection, publish: Publish, **kwargs: Any) -> None:
        super().__init__(device, connection, publish, **kwargs)
        self.lamps: dict[int, Unit] = {}
        for lamp in sorted(device.lamps, key=lambda item: item.index):
            self.lamps[lamp.index] = Unit(lamp.path, LAMP_FIELDS)
        self._lamp_list = list(self.lamps.items())
        self.units.extend(self.lamps.values())

    def decode(self, images: dict[str, list[Any]], ts: datetime, out: list[ValueRecord], full: bool) -> None:
        """Cabinet from IR 0-9/HR 0-2; each lamp from its 8 IR and its setpoint, decoded only when they changed."""
        ir, hr = images[IR], images[HR]
        raw = ir[0 : reg.IDENT_COUNT] + hr[0:3]
        unit = self.unit
        if full or raw != unit.raw:
            emit(unit, raw, decode_cabinet(raw, raw[reg.IDENT_COUNT :]), ts, out, full)
        stride, base, hr_base = reg.LAMP_IR_STRIDE, reg.LAMP_IR_BASE, reg.LAMP_HR_BASE
        for index, lamp in self._lamp_list:
            start = base + stride * index
            raw = ir[start : start + stride]
            raw.append(hr[hr_base + index])
            if full or raw != lamp.raw:
                emit(lamp, raw, decode_lamp(raw, raw[stride]), ts, out, full)


class ControllerPoller(DevicePoller):
    """A traffic light controller."""

    kind_code = reg.KIND_TRAFFIC
    fields = CONTROLLER_FIELDS

    def __init__(
        self, device: TrafficController, connection: DeviceConnection, publish: Publish, **kwargs: Any
    ) -> None:
        super().__init__(device, connection, publish, **kwargs)
        self.detectors = min(max(device.detectors, 1), reg.DETECTORS)
        self._counts: list[int] | None = None
        self._vehicles: int | None = None

    def decode(self, images: dict[str, list[Any]], ts: datetime, out: list[ValueRecord], full: bool) -> None:
        """Controller values; the vehicle total advances by the detector counters' wrapped deltas."""
        ir, hr = images[IR], images[HR]
        counts = ir[reg.TRAF_IR_DETECTOR_BASE : reg.TRAF_IR_DETECTOR_BASE + self.detectors]
        if counts != self._counts:
            self._vehicles = vehicle_total(self._vehicles, self._counts, counts)
            self._counts = counts
        vehicles = self._vehicles if self._vehicles is not None else 0
        raw = ir[0 : reg.TRAF_IR_DETECTOR_BASE + reg.DETECTORS] + hr[0:2]
        raw.append(vehicles)
        if full or raw != self.unit.raw:
            emit(self.unit, raw, decode_controller(ir, hr, vehicles), ts, out, full)


class SignPoller(DevicePoller):
    """A variable message sign."""

    kind_code = reg.KIND_SIGN
    fields = SIGN_FIELDS

    def decode(self, images: dict[str, list[Any]], ts: datetime, out: list[ValueRecord], full: bool) -> None:
        """Sign values from IR 0-36 and HR 0-3."""
        ir, hr = images[IR], images[HR]
        raw = ir[0 : reg.SIGN_IR_TEXT + reg.SIGN_TEXT_REGISTERS] + hr[0:4]
        if full or raw != self.unit.raw:
            emit(self.unit, raw, decode_sign(ir, hr), ts, out, full)


class ParkingPoller(DevicePoller):
    """A parking gateway: the site and its bay sensors."""

    kind_code = reg.KIND_PARKING
    fields = PARKING_SITE_FIELDS

    def __init__(self, device: ParkingSite, connection: DeviceConnection, publish: Publish, **kwargs: Any) -> None:
        super().__init__(device, connection, publish, **kwargs)
        self.sensors: dict[int, Unit] = {}
        for sensor in sorted(device.sensors, key=lambda item: item.index):
            self.sensors[sensor.index] = Unit(sensor.path, SENSOR_FIELDS)
        self._sensor_list = list(self.sensors.items())
        self.units.extend(self.sensors.values())

    def decode(self, images: dict[str, list[Any]], ts: datetime, out: list[ValueRecord], full: bool) -> None:
        """Site from IR 0-9/HR 0; each bay from DI i and DI 4096+i."""
        ir, hr, di = images[IR], images[HR], images[DI]
        raw = ir[0 : reg.IDENT_COUNT] + hr[0:1]
        if full or raw != self.unit.raw:
            emit(self.unit, raw, decode_parking_site(raw, raw[reg.IDENT_COUNT :]), ts, out, full)
        fault_base = reg.PARK_DI_FAULT_BASE
        for index, sensor in self._sensor_list:
            bits = (di[index], di[fault_base + index])
            if full or bits != sensor.raw:
                emit(sensor, bits, decode_sensor(*bits), ts, out, full)


def make_poller(device: FieldDevice, connection: DeviceConnection, publish: Publish, **kwargs: Any) -> DevicePoller:
    """The poller class for a field device's kind."""
    if isinstance(device, Cabinet):
        return CabinetPoller(device, connection, publish, **kwargs)
    if isinstance(device, TrafficController):
        return ControllerPoller(device, connection, publish, **kwargs)
    if isinstance(device, Sign):
        return SignPoller(device, connection, publish, **kwargs)
    if isinstance(device, ParkingSite):
        return ParkingPoller(device, connection, publish, **kwargs)
    raise TypeError(f"{type(device).__name__} is not a Modbus field device")
