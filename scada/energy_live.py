"""Live city figures derived from the value stream: the lighting power now, published as an Energy tag."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Sequence

from scada.model import Quality, ValueRecord, utcnow
from scada.site.model import Site

POWER_TAG = "Energy/LightingPowerKW"


class LightingPower:
    """Sums the PowerW of every lamp with a Good value and publishes the total (kW) once per period."""

    def __init__(self, site: Site, publish: Callable[[Sequence[ValueRecord]], None], period_s: float = 1.0) -> None:
        self._tags = {f"{lamp.path}/PowerW" for lamp in site.lamps()}
        self._power: dict[str, float] = {}
        self._publish = publish
        self._period_s = period_s
        self._task: asyncio.Task[None] | None = None
        self._last: float | None = None

    def __call__(self, records: Sequence[ValueRecord]) -> None:
        """The router sink: keep the latest good power of each lamp; a lamp without a good value counts 0."""
        tags = self._tags
        power = self._power
        for record in records:
            if record.tag in tags:
                if record.quality == Quality.GOOD and record.value is not None:
                    power[record.tag] = float(record.value)
                else:
                    power.pop(record.tag, None)

    @property
    def total_kw(self) -> float:
        """The lighting power now, kW."""
        return sum(self._power.values()) / 1000.0

    async def start(self) -> None:
        """Start publishing the total every period."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="lighting-power")

    async def stop(self) -> None:
        """Stop publishing."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            if self._power:
                total = round(self.total_kw, 3)
                if total != self._last:
                    self._last = total
                    self._publish([ValueRecord(POWER_TAG, total, Quality.GOOD, utcnow())])
            await asyncio.sleep(self._period_s)
