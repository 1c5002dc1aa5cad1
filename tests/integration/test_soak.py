"""The short soak in CI: the whole stack on the small site for 2.5 minutes, with every fault of the schedule.

The same code and the same assertions as bench/soak.py (bench.soaklib): simulators and server in their own
processes, two consoles and a third-party client, a controller, a cabinet and a sign killed and restarted, a
cabinet losing mains, the SQLite historian locked away for 20 s, a client killed abruptly. Then: every sample the
historian accepted is stored exactly once, no ERROR record or unhandled exception in the server, every injected
fault raised and cleared its alarm. RSS growth is reported but not asserted (2.5 minutes is too short for it).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.soaklib.run import SoakConfig, run_soak

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]


async def test_short_soak_loses_nothing_and_raises_no_exception(tmp_path: Path) -> None:
    result = await run_soak(
        SoakConfig(site="config/small", minutes=2.5, historian="sqlite", workdir=tmp_path, check_rss=False)
    )
    figures = result.figures
    samples, errors, alarms = figures["samples"], figures["errors"], figures["alarms"]
    assert result.ok, result.failures
    assert samples["produced_keys"] > 500 and samples["stored"] == samples["produced_keys"]
    assert samples["lost"] == samples["duplicated"] == samples["altered"] == samples["unexplained"] == 0
    assert figures["historian_final"]["replayed"] > 0  # the outage really sent rows through the journal
    assert errors["logged"] == 0 and errors["loop_exceptions"] == 0, errors["messages"]
    assert alarms["expected"] == alarms["raised"] == alarms["cleared"] == 4
    assert figures["victims_killed"] == 1
    assert figures["notifications"]["latency"]["count"] > 0
    assert sum(figures["third_party"]["ok"].values()) > 20
