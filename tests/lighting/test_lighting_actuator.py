"""Cabinet actuators through the real command service: coalescing, one command per lamp in flight, rate, retries.

The field side is a recording driver with a settable answer time and failures (the Modbus path is covered by the
simulator tests); everything above it is the production code: CommandService checks and audits every command.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Iterable
from pathlib import Path

import pytest
from lighting_helpers import eventually

from scada.commands import CommandService
from scada.lighting.actuator import ActuatorStats, CabinetActuator, ModeWish, RateLimiter
from scada.model import CommandAudit, DeviceCommunicationError, WriteRequest, WriteResult
from scada.site.loader import load_site
from scada.site.model import Site


class FieldRecorder:
    """A Driver that records what reaches the field, answers after `delay_s`, fails while `down`."""

    name = "recorder"

    def __init__(self, site: Site, delay_s: float = 0.01) -> None:
        self._ids = [d.id for d in site.devices()]
        self.delay_s = delay_s
        self.down = False
        self.sent: list[tuple[float, str, str, dict[str, object]]] = []
        self.in_flight: dict[str, int] = {}
        self.max_per_device = 0

    async def start(self) -> None:
        """Nothing to start."""

    async def stop(self) -> None:
        """Nothing to stop."""

    def device_ids(self) -> Iterable[str]:
        """Every device of the site."""
        return self._ids

    async def execute(self, request: WriteRequest) -> WriteResult:
        """Record, wait, answer (or fail)."""
        self.in_flight[request.device_id] = self.in_flight.get(request.device_id, 0) + 1
        self.max_per_device = max(self.max_per_device, self.in_flight[request.device_id])
        try:
            await asyncio.sleep(self.delay_s)
            if self.down:
                raise DeviceCommunicationError(f"{request.device_id} does not answer")
            self.sent.append((time.monotonic(), request.device_id, request.action, dict(request.args)))
            return WriteResult()
        finally:
            self.in_flight[request.device_id] -= 1

    def actions(self) -> list[tuple[str, str, dict[str, object]]]:
        """What was carried out, without times."""
        return [(device, action, args) for _, device, action, args in self.sent]


@pytest.fixture
def site(small_site_dir: Path) -> Site:
    """The small site."""
    return load_site(small_site_dir)


class Rig:
    """One actuator for CAB-0001 (8 lamps) on a command service with a recording driver."""

    def __init__(
        self,
        site: Site,
        rate: float = 1000.0,
        delay_s: float = 0.01,
        min_interval_s: float = 0.0,
        cabinet_rate: float | None = None,
    ) -> None:
        self.field = FieldRecorder(site, delay_s)
        self.commands = CommandService(site)
        self.commands.register_driver(self.field)
        self.audit: list[CommandAudit] = []
        self.commands.add_audit_sink(self.audit.append)
        self.stats = ActuatorStats()
        self.limiter = RateLimiter(rate)
        self.actuators = {
            cabinet_id: CabinetActuator(
                site.cabinets[cabinet_id],
                self.commands,
                self.limiter,
                self.stats,
                cabinet_rate=cabinet_rate,
                min_interval_s=min_interval_s,
                retry_min_s=0.05,
                retry_max_s=0.2,
            )
            for cabinet_id in site.cabinets
        }
        self.actuator = self.actuators["CAB-0001"]

    async def idle(self) -> None:
        await asyncio.wait_for(self.actuator.wait_idle(), 5)


async def test_profile_level_is_one_cabinet_command_and_raised_lamps_are_lamp_commands(site: Site) -> None:
    rig = Rig(site)
    rig.actuator.start()
    try:
        rig.actuator.set_mode(ModeWish(0, None, "automation"))
        rig.actuator.set_presence(100, 90)
        rig.actuator.set_base(30)
        await rig.idle()
        assert rig.field.actions() == [
            ("CAB-0001", "set_mode", {"Mode": 0}),
            ("CAB-0001", "set_presence", {"BoostLevel": 100.0, "HoldSeconds": 90}),
            ("CAB-0001", "set_all_levels", {"Level": 30.0}),
        ]
        rig.field.sent.clear()
        rig.actuator.set_boost(6, 100)
        rig.actuator.set_boost(7, 100)
        await rig.idle()
        assert sorted(rig.field.actions(), key=str) == [
            ("L-000007", "set_level", {"Level": 100.0}),
            ("L-000008", "set_level", {"Level": 100.0}),
        ]
        rig.field.sent.clear()
        rig.actuator.set_boost(6, None)  # one lamp back: a lamp command, the other raised lamp is left alone
        await rig.idle()
        assert rig.field.actions() == [("L-000007", "set_level", {"Level": 30.0})]
        rig.field.sent.clear()
        rig.actuator.set_base(50)  # a new step: the cabinet command, then the lamp still raised again
        rig.actuator.set_presence(0, 90)
        await rig.idle()
        assert rig.field.actions() == [
            ("CAB-0001", "set_all_levels", {"Level": 50.0}),
            ("L-000008", "set_level", {"Level": 100.0}),
            ("CAB-0001", "set_presence", {"BoostLevel": 0.0, "HoldSeconds": 90}),  # lowered after the levels
        ]
        assert all(a.origin == "automation" and a.user is None and a.status == 0 for a in rig.audit)
    finally:
        await rig.actuator.stop()


async def test_changes_overtaken_before_sending_are_coalesced(site: Site) -> None:
    rig = Rig(site, delay_s=0.05)
    rig.actuator.start()
    try:
        rig.actuator.set_base(30)
        await rig.idle()
        rig.field.sent.clear()
        for level in (40, 60, 80, 100, 70):  # a burst while nothing is in flight yet
            rig.actuator.set_boost(2, level)
        rig.actuator.set_boost(3, 100)
        rig.actuator.set_boost(3, None)  # raised and released before anything was sent: nothing to send
        await rig.idle()
        assert rig.field.actions() == [("L-000003", "set_level", {"Level": 70.0})]
    finally:
        await rig.actuator.stop()


async def test_never_more_than_one_command_in_flight_per_lamp(site: Site) -> None:
    rig = Rig(site, delay_s=0.03)
    rig.actuator.start()
    try:
        rig.actuator.set_base(30)
        await rig.idle()
        for k in range(40):  # flapping wishes while commands are in flight
            for index in range(8):
                rig.actuator.set_boost(index, 100 if (k + index) % 2 else None)
            await asyncio.sleep(0.007)
        for index in range(8):
            rig.actuator.set_boost(index, 100 if index % 2 else None)
        await rig.idle()
        assert rig.field.max_per_device == 1
        assert rig.stats.overlaps == 0
        lamps = sorted(lamp.id for lamp in site.cabinets["CAB-0001"].lamps)
        final: dict[str, object] = {}
        for device, action, args in rig.field.actions():  # replay what the cabinet received, in order
            if action == "set_all_levels":
                final = dict.fromkeys(lamps, args["Level"])
            elif action == "set_level":
                final[device] = args["Level"]
        assert final == {lamp_id: 100.0 if index % 2 else 30.0 for index, lamp_id in enumerate(lamps)}
        assert len(rig.field.sent) < 40 * 8  # coalesced: far fewer commands than wishes
    finally:
        await rig.actuator.stop()


async def test_lamp_commands_are_rate_limited(site: Site) -> None:
    rig = Rig(site, rate=20.0, delay_s=0.0)
    rig.limiter = RateLimiter(20.0, burst=1)
    rig.actuator._limiter = rig.limiter
    rig.actuator.start()
    try:
        rig.actuator.set_base(30)
        await rig.idle()
        rig.field.sent.clear()
        started = time.monotonic()
        for index in range(8):
            rig.actuator.set_boost(index, 100)
        await rig.idle()
        elapsed = time.monotonic() - started
        assert len(rig.field.sent) == 8
        assert elapsed >= 7 / 20.0 * 0.95  # 8 commands at 20/s: at least 7 gaps of 50 ms
        stamps = [t for t, *_ in rig.field.sent]
        assert min(b - a for a, b in itertools.pairwise(stamps)) > 0.025  # spaced, whatever the loop's jitter
    finally:
        await rig.actuator.stop()


async def test_batches_of_a_cabinet_are_spaced(site: Site) -> None:
    rig = Rig(site, delay_s=0.0, min_interval_s=0.2)
    rig.actuator.start()
    try:
        rig.actuator.set_base(30)
        await eventually(lambda: len(rig.field.sent) == 1)
        rig.actuator.set_boost(0, 100)  # arrives while the worker rests after its batch
        await rig.idle()
        first, second = rig.field.sent[0][0], rig.field.sent[1][0]
        assert second - first >= 0.19
    finally:
        await rig.actuator.stop()


async def test_failures_are_retried_with_backoff_and_logged_once(site: Site, caplog: pytest.LogCaptureFixture) -> None:
    rig = Rig(site)
    rig.field.down = True
    rig.actuator.start()
    try:
        rig.actuator.set_base(30)
        await eventually(lambda: rig.stats.failures >= 3, what="three failed attempts")
        assert not rig.actuator.idle and rig.actuator.failing is not None
        assert sum("failed" in r.getMessage() for r in caplog.records if r.name == "scada.lighting.actuator") == 1
        assert all(a.status != 0 for a in rig.audit)  # every attempt audited, with its failure
        rig.field.down = False
        await rig.idle()
        assert rig.actuator.failing is None
        assert rig.field.actions() == [("CAB-0001", "set_all_levels", {"Level": 30.0})]
    finally:
        await rig.actuator.stop()


async def test_invalidate_sends_everything_again(site: Site) -> None:
    rig = Rig(site)
    rig.actuator.start()
    try:
        rig.actuator.set_mode(ModeWish(0, None, "automation"))
        rig.actuator.set_base(30)
        rig.actuator.set_boost(1, 100)
        await rig.idle()
        rig.field.sent.clear()
        rig.actuator.invalidate()
        await rig.idle()
        assert [a for _, a, _ in rig.field.actions()] == ["set_mode", "set_all_levels", "set_level"]
    finally:
        await rig.actuator.stop()


async def test_direct_command_waits_for_the_batch_in_flight(site: Site) -> None:
    rig = Rig(site, delay_s=0.1)
    rig.actuator.start()
    try:
        rig.actuator.set_mode(ModeWish(0, None, "automation"))
        await asyncio.sleep(0.02)  # the worker's set_mode 0 is in flight
        result = await rig.actuator.command(
            WriteRequest("CAB-0001", "set_mode", {"Mode": 1}, user="j.martin", origin="maintenance")
        )
        assert result.ok
        rig.actuator.set_mode(ModeWish(1, "j.martin", "maintenance"))
        await rig.idle()
        assert [args for _, action, args in rig.field.actions() if action == "set_mode"] == [{"Mode": 0}, {"Mode": 1}]
    finally:
        await rig.actuator.stop()


async def test_a_busy_cabinet_does_not_hold_up_another(site: Site) -> None:
    rig = Rig(site, rate=1000.0, delay_s=0.0, cabinet_rate=4.0)  # bursts of 4, then one per 250 ms
    busy, quiet = rig.actuators["CAB-0001"], rig.actuators["CAB-0003"]
    for actuator in (busy, quiet):
        actuator.start()
    try:
        busy.set_base(30)
        quiet.set_base(30)
        await asyncio.wait_for(asyncio.gather(busy.wait_idle(), quiet.wait_idle()), 5)
        rig.field.sent.clear()
        started = time.monotonic()
        for index in range(8):  # a crowd under CAB-0001
            busy.set_boost(index, 100)
        quiet.set_boost(0, 100)
        await asyncio.wait_for(quiet.wait_idle(), 5)
        quiet_done = time.monotonic() - started
        await asyncio.wait_for(busy.wait_idle(), 5)
        busy_done = time.monotonic() - started
        assert quiet_done < min(0.5, busy_done / 2)  # its own bus is free
        assert 0.9 <= busy_done < 3.0  # 4 at once, then 4 more 250 ms apart
        stamps = [t for t, device, *_ in rig.field.sent if device != "L-000015"]
        assert len(stamps) == 8
    finally:
        for actuator in (busy, quiet):
            await actuator.stop()


async def test_wishes_overtaken_while_waiting_for_tokens_are_not_sent(site: Site) -> None:
    rig = Rig(site, delay_s=0.0)
    rig.limiter = RateLimiter(5.0, burst=1)
    rig.actuator._limiter = rig.limiter
    rig.actuator.start()
    try:
        rig.actuator.set_base(30)
        await rig.idle()
        rig.field.sent.clear()
        for index in range(6):
            rig.actuator.set_boost(index, 100)
        await eventually(lambda: len(rig.field.sent) >= 1)
        for index in range(6):  # the pedestrian is gone before the queue drained
            rig.actuator.set_boost(index, None)
        await rig.idle()
        lamps_sent = {device for _, device, action, _ in rig.field.sent if action == "set_level"}
        raised = [d for _, d, a, args in rig.field.sent if a == "set_level" and args["Level"] == 100.0]
        assert len(raised) < 6  # the later raises were dropped, not sent and undone
        for device in lamps_sent:  # and whatever was raised was put back
            last = [args["Level"] for _, d, a, args in rig.field.sent if d == device][-1]
            assert last == 30.0
    finally:
        await rig.actuator.stop()
