"""Parking gateways: bits and counts consistent, sensor faults, forced occupancy, cars by time of day."""

from __future__ import annotations

from datetime import UTC, datetime

from drivers.sim.city import CityOptions
from drivers.sim.parking import ParkingSim
from drivers.sim.runner import CitySimulator
from drivers.sim.synthetic import synthetic_site


def _gateway(sim: CitySimulator, device_id: str = "PK-01") -> ParkingSim:
    gateway = sim.device(device_id)
    assert isinstance(gateway, ParkingSim)
    return gateway


def _bits(gateway: ParkingSim, address: int, count: int) -> list[int]:
    raw = gateway.read_discrete_inputs(address, count)
    return [(raw[k // 8] >> (k % 8)) & 1 for k in range(count)]


def _ir(gateway: ParkingSim) -> list[int]:
    raw = gateway.read_input_registers(0, 10)
    return [int.from_bytes(raw[k : k + 2], "big") for k in range(0, 20, 2)]


async def test_counts_match_bits_with_faults(sim: CitySimulator) -> None:
    gateway = _gateway(sim)
    sim.set_occupancy("PK-01", 30)
    assert sum(_bits(gateway, 0, 50)) == 30 == _ir(gateway)[5]
    before = _bits(gateway, 0, 50)
    occupied = before.index(1)
    await sim.set_fault("PK-01", "sensor", True, bay=occupied)
    await sim.set_fault("PS-01-0050", "sensor", True)
    ir = _ir(gateway)
    assert ir[6] == 2 == sum(_bits(gateway, 4096, 50))
    assert _bits(gateway, 4096 + occupied, 1) == [1] and _bits(gateway, 4096 + 49, 1) == [1]
    assert ir[5] == sum(_bits(gateway, 0, 50)) == 30 - 1 - before[49]  # faulty bays read free
    sim.set_occupancy("PK-01", 48)  # every working sensor
    assert _ir(gateway)[5] == 48
    await sim.set_fault("PK-01", "sensor", False, bay=occupied)
    assert _ir(gateway)[6] == 1 and _ir(gateway)[5] == 49  # the car was there all along


async def test_bad_occupancy_is_refused(sim: CitySimulator) -> None:
    from drivers.sim.errors import FaultError, UnknownSimDeviceError

    for value in (-1, 51):
        try:
            sim.set_occupancy("PK-01", value)
        except FaultError:
            continue
        raise AssertionError(f"occupancy {value} accepted")
    try:
        sim.set_occupancy("PK-99", 1)
    except UnknownSimDeviceError:
        pass
    else:
        raise AssertionError("unknown site accepted")


async def test_cars_come_and_go_by_time_of_day() -> None:
    site = synthetic_site(
        "parking",
        cabinets=1,
        lamps_per_cabinet=1,
        controllers=0,
        signs=0,
        parking_sites=2,
        bays_per_site=400,
        port_base=0,
    )
    night = datetime(2026, 3, 10, 2, 0, tzinfo=UTC)  # 03:00 local
    sim = CitySimulator(
        site,
        seed=5,
        bind="free",
        start_time=night,
        manual_clock=True,
        options=CityOptions(movers=0, random_faults=False),
    )
    await sim.start()
    try:
        carpark = _gateway(sim, "PK-01")  # synthetic: even sites are car parks
        history = []
        for _ in range(24):
            ir = _ir(carpark)
            assert ir[5] == sum(_bits(carpark, 0, 400))
            history.append(ir[5])
            sim.advance(3600)
        # 03:00 .. 02:00 local: quiet at night, full by day
        assert max(history[:3]) < 0.35 * 400
        assert min(history[9:13]) > 0.7 * 400  # 12:00-15:00 local
        assert len(set(history)) > 10
    finally:
        await sim.stop()


def test_display_mode_is_held(sim: CitySimulator) -> None:
    gateway = _gateway(sim)
    gateway.write_holding(0, [1])
    assert gateway.read_holding_registers(0, 1) == b"\x00\x01"
