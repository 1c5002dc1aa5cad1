"""Database URL -> SQLAlchemy engine: SQLite in WAL mode with tuned pragmas, PostgreSQL through psycopg 3."""

from __future__ import annotations

import sqlite3
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, make_url

SQLITE_BUSY_TIMEOUT_MS = 5_000
PG_CONNECT_TIMEOUT_S = 5


def normalize_url(url: str | URL) -> URL:
    """The URL with the driver cityscada uses: ``postgresql://`` becomes ``postgresql+psycopg://``."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "postgresql" and parsed.get_driver_name() != "psycopg":
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.get_backend_name() not in ("sqlite", "postgresql"):
        raise ValueError(f"unsupported historian database {parsed.get_backend_name()!r}: use sqlite or postgresql")
    return parsed


def backend_name(url: str | URL) -> str:
    """'sqlite' or 'postgresql'."""
    return normalize_url(url).get_backend_name()


def _sqlite_pragmas(synchronous: str) -> Any:
    """A connect listener applying the per-connection SQLite settings (WAL, sync level, cache)."""

    def apply(dbapi_connection: sqlite3.Connection, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute(f"PRAGMA synchronous={synchronous}")
            cursor.execute("PRAGMA temp_store=MEMORY")
            cursor.execute("PRAGMA cache_size=-65536")  # 64 MiB page cache
        finally:
            cursor.close()

    return apply


def make_engine(url: str | URL, *, sqlite_synchronous: str = "FULL", **kwargs: Any) -> Engine:
    """A synchronous engine for the historian database (SQLite file or PostgreSQL), pragmas/timeouts applied.

    SQLite runs in WAL mode with ``synchronous=FULL`` by default: a commit is on disk when it returns, which the
    journal relies on before it deletes replayed frames (NORMAL may roll the last commits back on power loss).
    PostgreSQL connections time out after 5 s and use TCP keepalives and a 15 s TCP user timeout, so that a
    silently dead network fails a write instead of hanging it.
    """
    parsed = normalize_url(url)
    if sqlite_synchronous.upper() not in ("OFF", "NORMAL", "FULL", "EXTRA"):
        raise ValueError(f"bad SQLite synchronous level {sqlite_synchronous!r}")
    if parsed.get_backend_name() == "sqlite":
        connect_args: dict[str, Any] = {"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000, "check_same_thread": False}
        connect_args.update(kwargs.pop("connect_args", {}))
        engine = create_engine(parsed, connect_args=connect_args, **kwargs)
        event.listen(engine, "connect", _sqlite_pragmas(sqlite_synchronous.upper()))
        return engine
    connect_args = {
        "connect_timeout": PG_CONNECT_TIMEOUT_S,
        "keepalives": 1,
        "keepalives_idle": 10,
        "keepalives_interval": 5,
        "keepalives_count": 3,
        "tcp_user_timeout": 15_000,
    }
    connect_args.update(kwargs.pop("connect_args", {}))
    kwargs.setdefault("pool_pre_ping", True)
    return create_engine(parsed, connect_args=connect_args, **kwargs)
