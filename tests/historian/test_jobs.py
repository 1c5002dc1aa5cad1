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


async def test_a_job_while_the_database_is_away_is_skipped_and_gives_its_late_marker_back(tmp_path: Path) -> None:
    from sqlalchemy.exc import OperationalError

    from historian.retention import _tolerant

    class Late:
        def __init__(self) -> None:
            self.back: list[tuple[str, int | None]] = []

        def give_back_late(self, consumer: str, late: int | None) -> None:
            self.back.append((consumer, late))

    def away() -> None:
        raise OperationalError("DELETE FROM energy_intervals", {}, Exception("database is locked"))

    historian = Late()
    assert await _tolerant("energy intervals", historian, "energy", 1234, away) is None
    assert historian.back == [("energy", 1234)]
    assert await _tolerant("energy intervals", historian, "energy", None, lambda: 7) == 7
    assert historian.back == [("energy", 1234)]


async def test_a_late_marker_given_back_is_kept_if_earlier(tmp_path: Path) -> None:
    historian = Historian(f"sqlite:///{tmp_path / 'h.sqlite'}", journal_dir=tmp_path / "journal")
    historian.give_back_late("energy", 500)
    historian.give_back_late("energy", 900)
    assert historian.take_late_since("energy") == 500
    assert historian.take_late_since("energy") is None
    historian.give_back_late("energy", None)
    assert historian.take_late_since("energy") is None
