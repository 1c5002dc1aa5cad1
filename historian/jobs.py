"""The historian's scheduled work inside the control server: rollups, pruning and energy intervals.

One APScheduler AsyncIOScheduler (UTC) with the jobs of historian.retention.schedule_retention; the work runs in a
thread so the event loop keeps serving. Start and stop come in pairs (a ServiceGroup member).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from historian.energy import EnergyConfig
from historian.retention import RetentionPolicy, schedule_retention

log = logging.getLogger(__name__)


class HistorianJobs:
    """Rollups every 15 minutes, pruning daily and (with a site) energy intervals every 15 minutes."""

    def __init__(
        self,
        historian: Any,
        site: Any = None,
        policy: RetentionPolicy | None = None,
        energy: EnergyConfig | None = None,
    ) -> None:
        self._historian = historian
        self._site = site
        self._policy = policy
        self._energy = energy
        self._scheduler: AsyncIOScheduler | None = None
        self.job_ids: list[str] = []

    async def start(self) -> None:
        """Schedule the jobs (idempotent)."""
        if self._scheduler is not None:
            return
        scheduler = AsyncIOScheduler(timezone="UTC")
        self.job_ids = schedule_retention(
            scheduler, self._historian, self._policy, site=self._site, energy=self._energy
        )
        scheduler.start()
        self._scheduler = scheduler
        log.info("historian jobs scheduled: %s", ", ".join(self.job_ids))

    async def stop(self) -> None:
        """Remove the jobs (a job running in its thread finishes on its own)."""
        if self._scheduler is None:
            return
        scheduler, self._scheduler = self._scheduler, None
        scheduler.shutdown(wait=False)
        await asyncio.sleep(0)  # AsyncIOScheduler shuts down in a loop callback: let it run

    def next_runs(self) -> dict[str, Any]:
        """When each job runs next (for status pages and tests)."""
        if self._scheduler is None:
            return {}
        return {job.id: job.next_run_time for job in self._scheduler.get_jobs()}
