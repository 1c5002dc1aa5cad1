"""Running the console's coroutines from Qt slots: tasks kept referenced, failures logged, never lost silently."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any

log = logging.getLogger(__name__)

_running: set[asyncio.Task[Any]] = set()


def spawn(coro: Coroutine[Any, Any, Any], name: str = "") -> asyncio.Task[Any]:
    """Schedule a coroutine on the running loop (qasync's, in the Qt thread); its exception is logged."""
    task = asyncio.get_running_loop().create_task(coro, name=name or None)
    _running.add(task)
    task.add_done_callback(_finished)
    return task


def _finished(task: asyncio.Task[Any]) -> None:
    _running.discard(task)
    if task.cancelled():
        return
    exc = task.exception()
    if exc is not None:
        log.error("console task %s failed", task.get_name(), exc_info=exc)


def pending() -> int:
    """How many spawned tasks have not finished (tests wait for zero)."""
    return len(_running)


async def drain() -> None:
    """Wait until every spawned task has finished (callers bound it with asyncio.timeout)."""
    while _running:
        await asyncio.wait(set(_running))
