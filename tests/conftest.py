"""Fixtures shared by every test package: free loopback ports and the site folders."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def find_free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    return find_free_port()


@pytest.fixture(scope="session")
def small_site_dir() -> Path:
    """The small site folder shipped with the project."""
    return ROOT / "config" / "small"


@pytest.fixture(scope="session")
def dijon_site_dir() -> Path:
    """The Dijon site folder shipped with the project."""
    return ROOT / "config" / "dijon"
