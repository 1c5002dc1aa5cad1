"""HistoryRead while the historian database is away answers BadDataUnavailable, with no ERROR in the log.

Found by the soak run (bench/soak.py): with PostgreSQL refusing connections, the server let the driver's
OperationalError escape to asyncua, which logged it as an ERROR and answered BadInternalError.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from asyncua import Server, ua
from conftest import PG_USER, pg_admin

from historian.engine import make_engine
from historian.migrations import upgrade_to_head
from historian.opcua_history import SqlHistory

CURRENT_TIME = ua.NodeId(ua.ObjectIds.Server_ServerStatus_CurrentTime)


@pytest.fixture
async def server() -> AsyncIterator[Server]:
    """An asyncua server with its standard address space (not listening: only the node table is used)."""
    server = Server()
    await server.init()
    yield server


def raw_read() -> ua.HistoryReadParameters:
    """A raw read of the last hour of one node."""
    details = ua.ReadRawModifiedDetails()
    details.IsReadModified = False
    details.StartTime = datetime.now(UTC) - timedelta(hours=1)
    details.EndTime = datetime.now(UTC)
    details.NumValuesPerNode = 100
    params = ua.HistoryReadParameters()
    params.HistoryReadDetails = details
    params.TimestampsToReturn = ua.TimestampsToReturn.Source
    params.ReleaseContinuationPoints = False
    params.NodesToRead = [ua.HistoryReadValueId(NodeId=CURRENT_TIME)]
    return params


async def read_with(server: Server, url: str, caplog: pytest.LogCaptureFixture) -> list[ua.HistoryReadResult]:
    engine = make_engine(url)
    try:
        history = SqlHistory(server, engine, tag_for_nodeid=lambda node: "Lighting/CAB-0001/MainsVoltage")
        with caplog.at_level(logging.WARNING):
            return await history.history_read(raw_read())
    finally:
        engine.dispose()


async def test_sqlite_file_that_cannot_be_opened(
    server: Server, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    results = await read_with(server, f"sqlite:///{tmp_path / 'missing-dir' / 'history.sqlite'}", caplog)
    assert [r.StatusCode.value for r in results] == [ua.StatusCodes.BadDataUnavailable]
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert any("historian database unavailable" in r.getMessage() for r in caplog.records)


@pytest.mark.postgres
async def test_postgresql_refusing_connections_then_back(
    server: Server, pg_database: tuple[str, int, str], caplog: pytest.LogCaptureFixture
) -> None:
    host, port, name = pg_database
    url = f"postgresql+psycopg://{PG_USER}@{host}:{port}/{name}"
    upgrade_to_head(url)
    admin = pg_admin()
    try:
        admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
        results = await read_with(server, url, caplog)
        assert [r.StatusCode.value for r in results] == [ua.StatusCodes.BadDataUnavailable]
        assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
        admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
        results = await read_with(server, url, caplog)  # back: the tag has no history, which is not an error
        assert results[0].StatusCode.value != ua.StatusCodes.BadDataUnavailable
    finally:
        admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
        admin.close()
