"""The lighting service on the small site, over real Modbus to the simulators, in accelerated site time.

Levels, modes and boosts are read from the simulated cabinets' registers; every command went through
ModbusDriver and CommandService (whose audit trail the tests read).
"""

from __future__ import annotations

import asyncio
from datetime import UTC, date, timedelta

import pytest
from lighting_helpers import City, eventually, local, settle

from drivers.modbus.poller import LinkState
from scada.lighting import NoOverrideError
from scada.lighting.astro import AstroClock
from scada.lighting.config import load_lighting_config
from scada.model import InvalidArgumentError, OutOfRangeError, UnknownDeviceError, WriteRequest

ST01_CAB1 = [f"L-{n:06d}" for n in range(1, 9)]  # Rue de la Liberté, CAB-0001
ST01_CAB2 = ["L-000009", "L-000010"]  # the same street continues on CAB-0002
ST02 = [f"L-{n:06d}" for n in range(11, 15)]  # Rue des Godrans, CAB-0002


async def preset(city: City, level: float, mode: int = 0) -> None:
    """Put every cabinet in a state the automation must correct (as an operator might have left it)."""
    for cabinet_id in city.site.cabinets:
        await city.commands.execute(WriteRequest(cabinet_id, "set_all_levels", {"Level": level}, origin="test"))
        await city.commands.execute(WriteRequest(cabinet_id, "set_mode", {"Mode": mode}, origin="test"))
        await city.commands.execute(
            WriteRequest(cabinet_id, "set_presence", {"BoostLevel": 55.0, "HoldSeconds": 30}, origin="test")
        )
    city.audit.clear()


async def test_dusk_switches_the_lamps_on(city: City) -> None:
    config = load_lighting_config(city.site)
    night = AstroClock(city.site.lat, city.site.lon, city.site.timezone).night(date(2026, 1, 15), config.on, config.off)
    assert night.on is not None
    await preset(city, 77, mode=2)
    service, clock = city.service(night.on - timedelta(seconds=30), speed=30)  # dusk in 1 s
    await service.start()
    await settle(service)
    assert clock() < night.on
    for cabinet_id in city.site.cabinets:  # the day state was applied at start: off, automatic, no boost
        assert set(city.setpoints(cabinet_id)) == {0} and city.mode(cabinet_id) == 0
        assert city.presence(cabinet_id) == (0, 90)
    status = service.status()
    assert status.next_on == night.on and not any(d.lit for d in status.districts.values())
    await eventually(lambda: all(set(city.setpoints(c)) == {100} for c in city.site.cabinets), 5, "lamps on")
    assert clock() >= night.on
    assert all(city.level(lamp.id) == 100 for lamp in city.site.lamps())
    lit = service.status().districts
    assert all(d.lit and d.step == "on" and d.level == 100 for d in lit.values())
    switched = [a for a in city.audit if a.action == "set_all_levels" and a.args == {"Level": 100.0}]
    assert sorted(a.device_id for a in switched) == sorted(city.site.cabinets)
    assert all(a.origin == "automation" and a.status == 0 for a in city.audit)


async def test_the_23h_step_dims_the_residential_district_only(city: City) -> None:
    service, clock = city.service(local(2026, 1, 15, 22, 59, 52), speed=8)  # 23:00 in 1 s
    await service.start()
    await settle(service)
    assert clock() < local(2026, 1, 15, 23, 0)
    assert all(set(city.setpoints(c)) == {100} for c in city.site.cabinets)
    assert all(city.presence(c) == (0, 90) for c in city.site.cabinets)  # the profiles are at 100 %: no boost
    city.audit.clear()
    await eventually(lambda: set(city.setpoints("CAB-0003")) == {30}, 5, "montchapet dimmed")
    await settle(service)
    assert city.presence("CAB-0003") == (100, 90)  # a dimmed district gets its local presence boost
    assert set(city.setpoints("CAB-0001")) == {100} and set(city.setpoints("CAB-0002")) == {100}  # centre-ville
    assert city.presence("CAB-0001") == (0, 90)
    assert [(a.device_id, a.action) for a in city.audit] == [
        ("CAB-0003", "set_presence"),  # the boost is armed before the lamps dim
        ("CAB-0003", "set_all_levels"),
    ]
    status = service.status().districts
    assert (status["montchapet"].step, status["montchapet"].level) == ("23:00", 30)
    assert (status["centre-ville"].step, status["centre-ville"].level) == ("on", 100)


async def test_a_restart_mid_night_applies_the_state_in_force(city: City) -> None:
    await preset(city, 77, mode=1)
    first, _ = city.service(local(2026, 1, 16, 1, 0), speed=1)
    await first.start()
    await settle(first)
    assert set(city.setpoints("CAB-0001")) == {50} and set(city.setpoints("CAB-0002")) == {50}  # main-roads 00:30
    assert set(city.setpoints("CAB-0003")) == {30}  # residential 23:00
    assert all(city.mode(c) == 0 for c in city.site.cabinets)  # back to automatic
    assert all(city.presence(c) == (100, 90) for c in city.site.cabinets)
    await first.stop()
    second, _ = city.service(local(2026, 1, 16, 5, 10), speed=1)  # the server comes back after 05:00
    await second.start()
    await settle(second)
    assert set(city.setpoints("CAB-0001")) == {100} and city.presence("CAB-0001") == (0, 90)  # main-roads 05:00
    assert set(city.setpoints("CAB-0003")) == {30}  # residential goes to 70 % only at 05:30


async def test_presence_raises_the_lamps_ahead_across_cabinets_and_they_fall_back(city: City) -> None:
    hold = 30.0
    service, clock = city.service(
        local(2026, 1, 16, 1, 0),
        speed=10,
        presence={"boost_level": 100, "hold_seconds": 90, "follow_me": {"lamps_ahead": 3, "hold_seconds": hold}},
    )
    await service.start()
    await settle(service)
    assert all(city.setpoint(lamp) == 50 for lamp in ST01_CAB1 + ST01_CAB2 + ST02)
    city.audit.clear()

    city.sim.fire_presence("L-000006")  # a pedestrian appears: no direction yet, both ways
    raised_first = ["L-000003", "L-000004", "L-000005", "L-000007", "L-000008", "L-000009"]
    await eventually(lambda: all(city.setpoint(lamp) == 100 for lamp in raised_first), 3, "lamps around L-000006")
    assert city.setpoint("L-000010") == 50
    assert city.level("L-000006") == 100 and city.setpoint("L-000006") == 50  # the cabinet's own local boost
    first = clock()
    await eventually(lambda: clock() >= first + timedelta(seconds=8), 3, "walking to the next lamp")

    city.sim.fire_presence("L-000007")  # the next lamp: walking up the street, towards CAB-0002
    await eventually(lambda: city.setpoint("L-000010") == 100, 3, "L-000010 on the next cabinet")
    detected = clock()
    assert city.setpoint("L-000009") == 100 and city.setpoint("L-000008") == 100
    assert [city.setpoint(lamp) for lamp in ("L-000001", "L-000002")] == [50, 50]  # never raised
    assert all(city.setpoint(lamp) == 50 for lamp in ST02)  # another street of CAB-0002
    holds = {h.lamp_id: h for h in service.status().holds}
    assert {"L-000008", "L-000009", "L-000010"} <= set(holds)
    assert holds["L-000010"].cabinet_id == "CAB-0002"

    await eventually(lambda: city.setpoint("L-000003") == 50, 6, "first holds released")
    assert city.setpoint("L-000010") == 100  # its hold, extended by the second detection, still runs
    await eventually(lambda: all(city.setpoint(lamp) == 50 for lamp in ST01_CAB1 + ST01_CAB2), 6, "fall back")
    assert clock() - detected >= timedelta(seconds=hold - 1)  # not before the hold time
    await settle(service)
    assert service.status().holds == []
    lamp_commands = [a for a in city.audit if a.action == "set_level"]
    assert lamp_commands and all(a.origin == "automation" and a.status == 0 for a in lamp_commands)
    assert {a.device_id for a in lamp_commands} == set(raised_first) | {"L-000010"}
    assert service.stats.overlaps == 0


async def test_an_override_expires_back_to_automatic_and_is_audited(city: City) -> None:
    service, clock = city.service(local(2026, 1, 16, 1, 0), speed=60)
    await service.start()
    await settle(service)
    city.audit.clear()
    override = await service.override("CAB-0003", 1, 1, "j.martin", "replace the driver of L-000016")
    assert city.mode("CAB-0003") == 1 and all(city.level(f"L-0000{n}") == 100 for n in (15, 16, 17, 18))
    assert service.overrides() == [override] and override.expires == override.started + timedelta(minutes=1)
    assert service.status().overrides == [override]
    await eventually(lambda: city.mode("CAB-0003") == 0, 5, "back to automatic")
    assert clock() >= override.expires
    await settle(service)
    assert city.level("L-000015") == 30  # the profile level again
    assert service.overrides() == []
    modes = [(a.args, a.user, a.origin, a.status) for a in city.audit if a.action == "set_mode"]
    assert modes == [({"Mode": 1}, "j.martin", "maintenance", 0), ({"Mode": 0}, "j.martin", "maintenance", 0)]


async def test_overrides_are_checked_before_anything_is_sent(city: City) -> None:
    service, _ = city.service(local(2026, 1, 16, 1, 0))
    await service.start()
    await settle(service)
    city.audit.clear()
    with pytest.raises(OutOfRangeError, match="at most 480 minutes"):
        await service.override("CAB-0001", 1, 481, "j.martin", "repair")
    with pytest.raises(OutOfRangeError, match="1 \\(forced on\\) or 2"):
        await service.override("CAB-0001", 0, 10, "j.martin", "repair")
    with pytest.raises(InvalidArgumentError, match="user name"):
        await service.override("CAB-0001", 1, 10, " ", "repair")
    with pytest.raises(InvalidArgumentError, match="reason"):
        await service.override("CAB-0001", 1, 10, "j.martin", "")
    with pytest.raises(UnknownDeviceError):
        await service.override("CAB-9999", 1, 10, "j.martin", "repair")
    assert city.audit == [] and service.overrides() == []


async def test_cancel_override_and_overrides_survive_a_service_restart(city: City) -> None:
    service, _ = city.service(local(2026, 1, 16, 1, 0))
    await service.start()
    await settle(service)
    await service.override("CAB-0001", 2, 60, "j.martin", "cable work")
    assert city.mode("CAB-0001") == 2 and city.level("L-000001") == 0
    await service.stop()
    await service.start()  # in memory: the override is still in force, the catch-up keeps mode 2
    await settle(service)
    assert city.mode("CAB-0001") == 2 and [o.cabinet_id for o in service.overrides()] == ["CAB-0001"]
    city.audit.clear()
    cancelled = await service.cancel_override("CAB-0001", "m.durand")
    assert cancelled.user == "j.martin" and city.mode("CAB-0001") == 0
    assert [(a.action, a.args, a.user, a.origin) for a in city.audit] == [
        ("set_mode", {"Mode": 0}, "m.durand", "maintenance")
    ]
    assert service.overrides() == []
    with pytest.raises(NoOverrideError):
        await service.cancel_override("CAB-0001", "m.durand")


async def test_follow_me_leaves_an_overridden_cabinet_alone(city: City) -> None:
    service, _ = city.service(local(2026, 1, 16, 1, 0), speed=1)
    await service.start()
    await settle(service)
    await service.override("CAB-0002", 1, 30, "j.martin", "inspection")
    city.audit.clear()
    city.sim.fire_presence("L-000007")
    await eventually(lambda: city.setpoint("L-000008") == 100, 3, "L-000008 raised")
    await settle(service)
    # No direction yet: three lamps each way, but L-000009 and L-000010 belong to the overridden cabinet.
    assert {a.device_id for a in city.audit if a.action == "set_level"} == {
        "L-000004",
        "L-000005",
        "L-000006",
        "L-000008",
    }
    assert city.setpoint("L-000009") == 50 and city.setpoint("L-000010") == 50  # CAB-0002 is forced on anyway


async def test_a_cabinet_back_online_gets_its_state_again(city: City) -> None:
    service, _ = city.service(local(2026, 1, 16, 1, 0))
    await service.start()
    await settle(service)
    link = city.driver.device_status
    await eventually(lambda: link()["CAB-0003"].state is LinkState.OK, 3, "CAB-0003 polled")
    await city.sim.kill("CAB-0003")
    await eventually(lambda: link()["CAB-0003"].state is LinkState.LOST, 5, "CAB-0003 seen lost")
    cabinet = city.cabinet("CAB-0003")
    cabinet.write_holding(0, [0, 0, 60])  # it restarted with its power-up defaults
    cabinet.write_holding(100, [0, 0, 0, 0])
    await city.sim.restart("CAB-0003")
    await eventually(lambda: set(city.setpoints("CAB-0003")) == {30}, 5, "state sent again")
    await settle(service)
    assert city.presence("CAB-0003") == (100, 90)


async def test_start_and_stop_are_idempotent_and_stop_puts_raised_lamps_back(city: City) -> None:
    service, _ = city.service(local(2026, 1, 16, 1, 0))
    await service.start()
    await service.start()
    await settle(service)
    city.sim.fire_presence("L-000012")
    await eventually(lambda: city.setpoint("L-000013") == 100, 3, "follow-me on ST-02")
    await service.stop()
    await service.stop()
    assert city.setpoint("L-000013") == 50  # raised lamps are not left raised by a stopped service
    assert not service.running
    assert all(not job.id.startswith("lighting:") for job in service._scheduler.get_jobs())
    await asyncio.sleep(0)


async def test_status_before_start(city: City) -> None:
    service, _ = city.service(local(2026, 1, 16, 1, 0))
    status = service.status()
    assert not status.running and status.now.tzinfo is UTC
    assert status.districts["montchapet"].level == 30 and status.next_off is not None


async def test_resync_after_a_clock_jump_applies_the_new_time(city: City) -> None:
    service, clock = city.service(local(2026, 1, 15, 22, 0), speed=1)
    await service.start()
    await settle(service)
    assert set(city.setpoints("CAB-0003")) == {100}
    assert service.status().next_change == local(2026, 1, 15, 23, 0)
    clock.advance(3 * 3600)  # 01:00: the timers were set for 22:00's future
    service.resync()
    await settle(service)
    assert set(city.setpoints("CAB-0003")) == {30} and set(city.setpoints("CAB-0001")) == {50}
    status = service.status()
    assert status.next_change == local(2026, 1, 16, 5, 0)  # main-roads back to 100 %
    jobs = {job.id for job in service._scheduler.get_jobs()}
    assert "lighting:change:2026-01-15T22:00:00+00:00" not in jobs  # 23:00 is past: its job was dropped
    assert "lighting:change:2026-01-16T04:00:00+00:00" in jobs and "lighting:plan" in jobs
