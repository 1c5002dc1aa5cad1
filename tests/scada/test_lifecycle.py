"""Services start in order, roll back when one fails, and stop in reverse with every failure kept."""

from __future__ import annotations

import pytest

from scada.lifecycle import ServiceGroup, StopErrors


class Probe:
    def __init__(self, name: str, log: list[str], fail_start: bool = False, fail_stop: bool = False) -> None:
        self.name, self.log, self.fail_start, self.fail_stop = name, log, fail_start, fail_stop

    async def start(self) -> None:
        if self.fail_start:
            raise RuntimeError(f"{self.name} cannot start")
        self.log.append(f"start {self.name}")

    async def stop(self) -> None:
        self.log.append(f"stop {self.name}")
        if self.fail_stop:
            raise RuntimeError(f"{self.name} cannot stop")


async def test_start_in_order_stop_in_reverse() -> None:
    log: list[str] = []
    group = ServiceGroup()
    for name in "abc":
        group.add(name, Probe(name, log))
    await group.start()
    await group.start()  # idempotent
    await group.stop()
    await group.stop()
    assert log == ["start a", "start b", "start c", "stop c", "stop b", "stop a"]


async def test_failed_start_rolls_back() -> None:
    log: list[str] = []
    group = ServiceGroup()
    group.add("a", Probe("a", log))
    group.add("b", Probe("b", log))
    group.add("c", Probe("c", log, fail_start=True))
    with pytest.raises(RuntimeError, match="c cannot start"):
        await group.start()
    assert log == ["start a", "start b", "stop b", "stop a"]


async def test_stop_failures_are_collected_not_swallowed() -> None:
    log: list[str] = []
    group = ServiceGroup()
    group.add("a", Probe("a", log, fail_stop=True))
    group.add("b", Probe("b", log, fail_stop=True))
    await group.start()
    with pytest.raises(StopErrors) as caught:
        await group.stop()
    assert [name for name, _ in caught.value.failures] == ["b", "a"]
    assert log[-2:] == ["stop b", "stop a"]
