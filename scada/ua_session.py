"""How an asyncua client notices that its session is gone: the watcher the console and the OPC UA driver share.

Three signs, whichever comes first: the transport closes (asyncua's internal state listener, as its HA client
uses; the publish loop is cancelled at once so that it does not log a traceback every second), the connection is
reported lost (`connection_lost_callback`), or no publish response arrives for longer than a keep-alive period
plus the request timeout (a silent network). A Bad subscription status is signalled by the owner.
Client-side only: the console (hmi) and the drivers may import it; it imports no server internals.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from asyncua.client.ua_client import UaClientState


def describe(exc: BaseException) -> str:
    """A short reason for the logs ("ConnectionRefusedError: [Errno 111] ...")."""
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class SessionLoss:
    """The loss of one session at a time: `arm` it for a new client, `wait` for the reason it was lost."""

    def __init__(self, stale_after_s: float = 30.0) -> None:
        self._event = asyncio.Event()
        self.reason = ""
        self.last_publish = 0.0
        self.stale_after_s = stale_after_s

    def arm(self, client: Any, is_current: Callable[[], bool], closed_reason: str) -> None:
        """Watch a new client: its connection-lost callback and its transport (`is_current`: still the one used)."""
        self._event = asyncio.Event()
        self.reason = ""
        client.connection_lost_callback = self._on_connection_lost
        add_listener = getattr(client.uaclient, "_add_state_listener", None)
        if add_listener is None:
            return

        def on_state(state: UaClientState) -> None:
            if state is not UaClientState.DISCONNECTED or not is_current():
                return
            publish_task = getattr(client.uaclient.session, "_publish_task", None)
            if publish_task is not None and not publish_task.done():
                publish_task.cancel()
            self.signal(closed_reason)

        add_listener(on_state)

    def subscribed(self, stale_after_s: float) -> None:
        """A subscription was made: publishes are expected at least every `stale_after_s` from now."""
        self.last_publish = time.monotonic()
        self.stale_after_s = stale_after_s

    def published(self) -> None:
        """A publish response arrived."""
        self.last_publish = time.monotonic()

    def signal(self, reason: str) -> None:
        """The session is lost (the first reason is kept)."""
        if not self._event.is_set():
            self.reason = reason
            self._event.set()

    async def _on_connection_lost(self, exc: Exception) -> None:
        self.signal(f"connection lost ({describe(exc)})")

    async def wait(self) -> str:
        """Wait until the session is lost; the reason."""
        while True:
            silence = time.monotonic() - self.last_publish
            remaining = self.stale_after_s - silence
            if remaining <= 0:
                return f"no publish response for {silence:.1f} s"
            try:
                async with asyncio.timeout(remaining):
                    await self._event.wait()
            except TimeoutError:
                continue
            return self.reason
