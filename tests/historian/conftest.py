"""Historian fixtures: `db_url` runs a test on a SQLite file and on a scratch PostgreSQL database."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest

PG_HOST = os.environ.get("CITYSCADA_PG_HOST", "127.0.0.1")
PG_PORT = int(os.environ.get("CITYSCADA_PG_PORT", "5432"))
PG_USER = os.environ.get("CITYSCADA_PG_USER", "postgres")
PG_ADMIN_URL = f"postgresql://{PG_USER}@{PG_HOST}:{PG_PORT}/postgres"


def _in_ci() -> bool:
    """True on a CI runner (where PostgreSQL must be there: a missing server fails instead of skipping)."""
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def _pg_unavailable(reason: str) -> None:
    """Skip (on a workstation) or fail (in CI) a PostgreSQL test whose server cannot be used."""
    message = f"PostgreSQL at {PG_HOST}:{PG_PORT} (user {PG_USER}) unavailable: {reason}"
    if _in_ci():
        pytest.fail(f"{message} (CI=true: the PostgreSQL tests must run)")
    pytest.skip(message)


def pg_admin():  # type: ignore[no-untyped-def]
    """An autocommit connection to the server's `postgres` database (skips/fails if unreachable)."""
    import psycopg

    try:
        return psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as exc:
        _pg_unavailable(str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__)
        raise  # unreachable: skip/fail raise


@pytest.fixture
def pg_database() -> Iterator[tuple[str, int, str]]:
    """A fresh PostgreSQL database (host, port, name), dropped after the test."""
    admin = pg_admin()
    name = f"cityscada_test_{uuid.uuid4().hex[:12]}"
    try:
        admin.execute(f"CREATE DATABASE {name}")
        yield PG_HOST, PG_PORT, name
    finally:
        admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        admin.close()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def backend(request: pytest.FixtureRequest) -> str:
    """The database backend a test runs on."""
    return str(request.param)


@pytest.fixture
def db_url(backend: str, tmp_path, request: pytest.FixtureRequest) -> str:  # type: ignore[no-untyped-def]
    """A database URL: a SQLite file in tmp_path, or a scratch PostgreSQL database dropped at the end."""
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / 'history.db'}"
    host, port, name = request.getfixturevalue("pg_database")
    return f"postgresql+psycopg://{PG_USER}@{host}:{port}/{name}"
