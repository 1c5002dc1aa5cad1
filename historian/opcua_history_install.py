"""The asyncua side of Historical Access: the HistoryManager and session that route HistoryRead to SqlHistory.

install_history() puts SqlHistoryManager into the server and makes it create HistorySessions, so that each
HistoryRead knows its session (continuation points are kept per session and freed when it closes). The reading
itself is historian.opcua_history.SqlHistory.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from asyncua import Server, ua
from asyncua.server.history import HistoryManager
from asyncua.server.internal_server import InternalServer
from asyncua.server.internal_session import InternalSession
from sqlalchemy import Engine

from historian.aggregates import Interpolation
from historian.opcua_history import SourceForNodeId, SqlHistory, TagForNodeId

_logger = logging.getLogger(__name__)


class SqlHistoryManager(HistoryManager):
    """asyncua's HistoryManager answering from the SQL historian; values are stored by the ingest, not here."""

    def __init__(self, iserver: InternalServer, backend: SqlHistory) -> None:
        super().__init__(iserver)
        self.backend = backend

    async def init(self) -> None:
        """Nothing to initialise: the database is the historian's."""

    async def read_history(  # type: ignore[override]
        self, params: ua.HistoryReadParameters, session: Any = None
    ) -> list[ua.HistoryReadResult]:
        """HistoryRead on behalf of a session (None: the server's own internal session)."""
        return await self.backend.history_read(params, session)

    async def read_history_for_session(
        self, params: ua.HistoryReadParameters, session: Any
    ) -> list[ua.HistoryReadResult]:
        """HistoryRead for a session object, which owns its continuation points (the session protocol)."""
        return await self.backend.history_read(params, session)

    def release_session(self, session: Any) -> None:
        """Free the continuation points of a closing session (the session protocol)."""
        self.backend.release_session(session)

    async def historize_data_change(self, node: Any, period: Any = None, count: int = 0) -> None:
        """Nothing to subscribe: the historian's ingest stores every historized tag."""
        _logger.debug("%s is historized by the SQL historian's ingest", node)

    async def historize_event(self, source: Any, period: Any = None, count: int = 0) -> None:
        """Nothing to subscribe: the historian's journal stores events."""
        _logger.debug("events of %s are historized by the SQL historian's journal", source)

    async def dehistorize(self, node: Any) -> None:
        """Nothing to unsubscribe."""

    async def stop(self) -> None:
        """Free every continuation point (the engine belongs to the historian and stays open)."""
        self.backend.continuations.clear()


class HistorySession(InternalSession):
    """A plain asyncua session that hands itself to the history manager, so continuation points are per session.

    A server that makes sessions of its own (the city server does) gets the same behaviour by calling the
    manager's `read_history_for_session` and `release_session` — see SqlHistoryManager.
    """

    async def history_read(self, params: ua.HistoryReadParameters) -> list[ua.HistoryReadResult]:
        """HistoryRead with this session as the owner of its continuation points."""
        manager = self.iserver.history_manager
        if isinstance(manager, SqlHistoryManager):
            return await manager.read_history_for_session(params, self)
        return await manager.read_history(params)

    async def close_session(self, delete_subs: bool = True) -> None:
        """Close, freeing this session's continuation points."""
        manager = self.iserver.history_manager
        if isinstance(manager, SqlHistoryManager):
            manager.release_session(self)
        await super().close_session(delete_subs)


def install_history(
    server: Server,
    engine: Engine,
    *,
    tag_for_nodeid: TagForNodeId,
    source_for_nodeid: SourceForNodeId | None = None,
    nodeid_for_source: Callable[[str], ua.NodeId | None] | None = None,
    event_types: Mapping[str, ua.NodeId] | None = None,
    max_continuation_points: int = 10,
    max_values: int = 10_000,
    time_average: Interpolation = Interpolation.SLOPED,
) -> SqlHistory:
    """Make `server` answer HistoryRead from the SQL historian behind `engine` (call after server.init()).

    tag_for_nodeid maps a node to its tag name (None: not historized -> Bad_HistoryOperationUnsupported);
    source_for_nodeid maps an event notifier to the events' source path (default: its string NodeId; the Server
    object always reads every event); nodeid_for_source gives the SourceNode of an event; event_types maps stored
    event type names to event type NodeIds (default: the type of that BrowseName, else BaseEventType).
    """
    iserver = server.iserver
    backend = SqlHistory(
        server,
        engine,
        tag_for_nodeid=tag_for_nodeid,
        source_for_nodeid=source_for_nodeid,
        nodeid_for_source=nodeid_for_source,
        event_types=event_types,
        max_continuation_points=max_continuation_points,
        max_values=max_values,
        time_average=time_average,
    )
    iserver.history_manager = SqlHistoryManager(iserver, backend)

    if "create_session" not in iserver.__dict__:  # a server with its own sessions calls the manager itself

        def create_session(name: str, user: Any = None, external: bool = False) -> InternalSession:
            """The server's session factory, making HistorySessions."""
            if user is None:
                return HistorySession(iserver, iserver.aspace, iserver.subscription_service, name, external=external)
            return HistorySession(
                iserver, iserver.aspace, iserver.subscription_service, name, user=user, external=external
            )

        iserver.create_session = create_session  # type: ignore[method-assign]
    backend.advertise()
    return backend
