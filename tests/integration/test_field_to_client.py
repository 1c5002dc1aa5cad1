"""Field to client and back over real TCP: simulator -> Modbus driver -> server -> OPC UA client -> device."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from typing import Any

import pytest
from asyncua import ua

from drivers.modbus.registers import LAMP_HR_BASE
from scada.model import Quality


class Changes:
    """A subscription handler keeping every data change."""

    def __init__(self) -> None:
        self.values: list[tuple[str, Any, int]] = []
        self.event = asyncio.Event()

    def datachange_notification(self, node, value, data) -> None:  # type: ignore[no-untyped-def]
        status = data.monitored_item.Value.StatusCode.value
        self.values.append((node.nodeid.Identifier, value, status))
        self.event.set()

    async def wait_for(self, predicate, timeout: float = 10.0) -> None:  # type: ignore[no-untyped-def]
        deadline = time.monotonic() + timeout
        while not any(predicate(*v) for v in self.values):
            remaining = deadline - time.monotonic()
            assert remaining > 0, f"no matching change in {timeout} s; saw {self.values[-5:]}"
            self.event.clear()
            try:
                await asyncio.wait_for(self.event.wait(), remaining)
            except TimeoutError:
                pass


async def wait_value(node, predicate, timeout: float = 10.0) -> ua.DataValue:  # type: ignore[no-untyped-def]
    """Poll a node until its DataValue satisfies `predicate`."""
    deadline = time.monotonic() + timeout
    while True:
        dv = await node.read_data_value(raise_on_bad_status=False)
        if predicate(dv):
            return dv
        assert time.monotonic() < deadline, f"{node} stayed at {dv}"
        await asyncio.sleep(0.1)


async def test_simulator_change_reaches_a_client_subscription(post) -> None:
    handler = Changes()
    subscription = await post.client.create_subscription(100, handler)
    await subscription.subscribe_data_change([post.node("Parking/PK-01/Occupied")], queuesize=1)
    post.sim.set_occupancy("PK-01", 13)
    await handler.wait_for(lambda tag, value, status: value == 13 and status == 0)
    dv = await post.node("Parking/PK-01/Occupied").read_data_value()
    assert dv.Value.Value == 13 and dv.SourceTimestamp is not None
    await subscription.delete()


async def test_method_call_reaches_the_device_registers(post) -> None:
    lamp = next(lamp for lamp in post.site.lamps() if lamp.cabinet_id == "CAB-0002")
    node = post.node(lamp.path)
    method = await node.get_child(f"{post.ns}:SetLevel")
    await wait_value(post.node(f"Lighting/{lamp.cabinet_id}/CommunicationOk"), lambda dv: dv.Value.Value is True)
    await node.call_method(method, ua.Variant(42.0, ua.VariantType.Double))
    cabinet = post.sim.device(lamp.cabinet_id)
    assert cabinet.hr[LAMP_HR_BASE + lamp.index] == 42
    dv = await wait_value(post.node(f"{lamp.path}/LevelSetpoint"), lambda dv: dv.Value.Value == 42.0)
    assert dv.StatusCode.is_good()


async def test_device_refusal_comes_back_as_its_status_code(post) -> None:
    lamp = next(post.site.lamps())
    await wait_value(post.node(f"Lighting/{lamp.cabinet_id}/CommunicationOk"), lambda dv: dv.Value.Value is True)
    await post.sim.set_fault(lamp.cabinet_id, "refuse")
    with pytest.raises(ua.UaStatusCodeError) as caught:
        await post.node(lamp.path).call_method(f"{post.ns}:SetLevel", ua.Variant(10.0, ua.VariantType.Double))
    assert caught.value.code == Quality.BAD_DEVICE_FAILURE
    assert post.sim.device(lamp.cabinet_id).hr[LAMP_HR_BASE + lamp.index] != 10


async def test_out_of_range_call_never_reaches_the_device(post) -> None:
    lamp = next(post.site.lamps())
    before = post.sim.device(lamp.cabinet_id).requests
    with pytest.raises(ua.UaStatusCodeError) as caught:
        await post.node(lamp.path).call_method(f"{post.ns}:SetLevel", ua.Variant(150.0, ua.VariantType.Double))
    assert caught.value.code == Quality.BAD_OUT_OF_RANGE
    # polls may have happened meanwhile, but no write: the setpoint register is untouched
    assert post.sim.device(lamp.cabinet_id).hr[LAMP_HR_BASE + lamp.index] != 150
    assert post.sim.device(lamp.cabinet_id).requests >= before


async def test_killed_device_turns_bad_within_two_polls_and_recovers(post) -> None:
    cabinet = post.site.cabinets["CAB-0001"]
    lamp = cabinet.lamps[0]
    level = post.node(f"{lamp.path}/Level")
    good = await wait_value(level, lambda dv: dv.StatusCode.is_good())
    poll_s = cabinet.endpoint.poll_ms / 1000
    killed_at = datetime.now(UTC)
    await post.sim.kill(cabinet.id)
    started = time.monotonic()
    bad = await wait_value(level, lambda dv: not dv.StatusCode.is_good(), timeout=10)
    took = time.monotonic() - started
    assert bad.StatusCode.value in (Quality.BAD_COMM, Quality.UNCERTAIN_LAST_USABLE)
    # the time of the last good value, never a fresh one
    assert good.SourceTimestamp <= bad.SourceTimestamp.replace(tzinfo=UTC) <= killed_at
    assert took <= 2 * poll_s + 2.5, f"turned bad after {took:.2f} s with a {poll_s} s poll period"
    # then the device is declared lost: Bad values with the last good time, communication state False
    bad = await wait_value(level, lambda dv: dv.StatusCode.value == Quality.BAD_COMM, timeout=10)
    assert bad.SourceTimestamp.replace(tzinfo=UTC) <= killed_at
    await wait_value(post.node(f"{cabinet.path}/CommunicationOk"), lambda dv: dv.Value.Value is False)
    await post.sim.restart(cabinet.id)
    await wait_value(level, lambda dv: dv.StatusCode.is_good(), timeout=40)
    assert await post.node(f"{cabinet.path}/CommunicationOk").read_value() is True
