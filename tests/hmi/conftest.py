"""Console tests: offscreen Qt, the qasync event loop for every async test here, a real control post on free ports.

The simulators, the control server and the console share one qasync loop (the Qt thread): the console is an
ordinary OPC UA client of the server over real TCP, as it is in production, only in the same process.
"""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hmikit import DEMO_PASSWORDS, FAST, Stack, qt_loop_factory

from hmi.client import ConsoleClient, Credentials
from hmi.console import Console

pytestmark = pytest.mark.qt


def pytest_asyncio_loop_factories(config: pytest.Config, item: pytest.Item) -> Mapping[str, Callable[[], Any]]:
    """Every async test and fixture of tests/hmi runs on a qasync loop (asyncio inside Qt's event loop)."""
    return {"qt": qt_loop_factory}


@dataclass
class Post:
    """A running control post and a console logged in to it."""

    stack: Stack
    console: Console
    folder: Path


async def open_console(stack: Stack, folder: Path, user: str = "operator") -> Console:
    """A console logged in as `user` (demo password), started offscreen, its layout kept in `folder`."""
    client = ConsoleClient(Credentials(stack.url, user, DEMO_PASSWORDS[user], stack.security), FAST)
    console = Console(client, folder / "console.ini")
    try:
        await console.start()
    except BaseException:
        await close_console(console)
        raise
    return console


async def close_console(console: Console) -> None:
    """Stop a console and close its window."""
    await console.stop()
    console.window.dispose()
    console.window.deleteLater()


@contextlib.asynccontextmanager
async def running_post(folder: Path, port: int, user: str = "operator") -> AsyncIterator[Post]:
    """Simulators, a control server on `port` and a console, all stopped before the test returns.

    Not fixtures: pytest-qt processes Qt events between a test and its fixtures' teardown, when no asyncio loop
    runs; everything is therefore started and stopped inside the test's own coroutine.
    """
    stack = Stack(port, folder)
    await stack.start()
    try:
        console = await open_console(stack, folder, user)
        try:
            yield Post(stack, console, folder)
        finally:
            await close_console(console)
    finally:
        await stack.stop()
        await asyncio.sleep(0.1)  # let the closing transports' callbacks run while the loop runs
