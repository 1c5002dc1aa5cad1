"""HistorianJobs: the historian's scheduled work as a server service (rollups, pruning, energy intervals)."""

from __future__ import annotations

from pathlib import Path

from historian.jobs import HistorianJobs
from historian.service import Historian
from scada.site.loader import load_site


async def test_the_jobs_are_scheduled_while_started_and_removed_when_stopped(
    tmp_path: Path, small_site_dir: Path
) -> None:
    historian = Historian(f"sqlite:///{tmp_path / 'h.sqlite'}", journal_dir=tmp_path / "journal")
    await historian.start()
    jobs = HistorianJobs(historian, load_site(small_site_dir))
    try:
        assert jobs.next_runs() == {}
        await jobs.start()
        await jobs.start()  # idempotent
        runs = jobs.next_runs()
        assert set(runs) == {"historian-rollups", "historian-prune", "historian-energy"}
        assert runs["historian-energy"].minute in (3, 18, 33, 48)
        without_site = HistorianJobs(historian)
        await without_site.start()
        assert set(without_site.next_runs()) == {"historian-rollups", "historian-prune"}
        await without_site.stop()
    finally:
        await jobs.stop()
        await jobs.stop()
        await historian.stop()
    assert jobs.next_runs() == {}
