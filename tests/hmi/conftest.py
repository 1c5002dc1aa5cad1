"""Console tests: offscreen Qt, the qasync event loop for every async test here, a real control post on free ports.

The simulators, the control server and the console share one qasync loop (the Qt thread): the console is an
ordinary OPC UA client of the server over real TCP, as it is in production, only in the same process.
"""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from collections.abc import Callable, Mapping
from typing import Any

import pytest
from hmikit import qt_loop_factory


def pytest_asyncio_loop_factories(config: pytest.Config, item: pytest.Item) -> Mapping[str, Callable[[], Any]]:
    """Every async test and fixture of tests/hmi runs on a qasync loop (asyncio inside Qt's event loop)."""
    return {"qt": qt_loop_factory}
