"""Login throttling: failures counted per user name and per client address, with lockouts that double on repeat.

By default 5 failures within 5 minutes lock the user name (or the address) for 60 s, then 120 s, 240 s, ... up to
15 minutes; a successful login clears the user name's record, a day without failures forgets a key. Locked
attempts are refused before any password check, so a guesser gains nothing by hammering. Time comes from an
injectable monotonic clock.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class ThrottleSettings:
    """The throttling rule."""

    max_failures: int = 5  # failures within the window that start a lockout
    window_s: float = 300.0
    lock_s: float = 60.0  # first lockout; each further one doubles
    max_lock_s: float = 900.0  # cap, so that an attacker cannot lock an operator out for hours
    forget_s: float = 86400.0  # a key without failures for this long starts afresh (lockouts back to lock_s)
    max_keys: int = 100_000  # memory bound: beyond it, idle keys are forgotten first, then the oldest

    def __post_init__(self) -> None:
        if self.max_failures < 1 or self.window_s <= 0 or self.lock_s <= 0 or self.max_lock_s < self.lock_s:
            raise ValueError(f"invalid throttle settings {self}")


@dataclass(frozen=True, slots=True)
class Lockout:
    """A lockout that a failure has just started."""

    key: str  # "user:<name>" or "client:<address>"
    duration_s: float
    failures: int


@dataclass(slots=True)
class _Record:
    failures: deque[float] = field(default_factory=deque)
    locked_until: float = 0.0
    strikes: int = 0
    last_seen: float = 0.0


def user_key(username: str) -> str:
    """The throttle key of a user name (case-insensitive, as the store looks names up)."""
    return f"user:{username.casefold()}"


def client_key(client: str) -> str:
    """The throttle key of a client address."""
    return f"client:{client}"


class LoginThrottle:
    """Counts login failures per key and decides lockouts; thread-safe (logins may be checked in worker threads)."""

    def __init__(self, settings: ThrottleSettings | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self.settings = settings or ThrottleSettings()
        self._clock = clock
        self._records: dict[str, _Record] = {}
        self._lock = threading.Lock()

    def _keys(self, username: str | None, client: str | None) -> list[str]:
        keys = []
        if username:
            keys.append(user_key(username))
        if client:
            keys.append(client_key(client))
        return keys

    def retry_after(self, username: str | None, client: str | None) -> float:
        """Seconds until a login for this user name from this address may be tried (0.0: now)."""
        now = self._clock()
        with self._lock:
            waits = [rec.locked_until - now for key in self._keys(username, client) if (rec := self._records.get(key))]
        return max([0.0, *waits])

    def failure(self, username: str | None, client: str | None) -> list[Lockout]:
        """Record a failed login; returns the lockouts it started (empty when none)."""
        now = self._clock()
        s = self.settings
        started: list[Lockout] = []
        with self._lock:
            for key in self._keys(username, client):
                rec = self._records.get(key)
                if rec is None:
                    if len(self._records) >= s.max_keys:
                        self._prune(now)
                    rec = self._records[key] = _Record()
                if now - rec.last_seen > s.forget_s:
                    rec.strikes = 0
                rec.last_seen = now
                if rec.locked_until > now:
                    continue  # already locked: the caller refused before checking the password
                while rec.failures and now - rec.failures[0] > s.window_s:
                    rec.failures.popleft()
                rec.failures.append(now)
                if len(rec.failures) >= s.max_failures:
                    duration = min(s.lock_s * 2**rec.strikes, s.max_lock_s)
                    rec.locked_until = now + duration
                    rec.strikes += 1
                    started.append(Lockout(key, duration, len(rec.failures)))
                    rec.failures.clear()
        return started

    def success(self, username: str, client: str | None = None) -> None:
        """A successful login: the user name's failures and lockout history are cleared (not the address's)."""
        with self._lock:
            self._records.pop(user_key(username), None)

    def _prune(self, now: float) -> None:
        """Forget idle keys (no lockout, no failure in the window); if still too many, the least recently seen."""
        s = self.settings
        idle = [
            key
            for key, rec in self._records.items()
            if rec.locked_until <= now and (not rec.failures or now - rec.failures[-1] > s.window_s)
        ]
        for key in idle:
            del self._records[key]
        excess = len(self._records) - s.max_keys + 1
        if excess > 0:
            oldest = sorted(self._records, key=lambda k: self._records[k].last_seen)[:excess]
            for key in oldest:
                del self._records[key]

    def __len__(self) -> int:
        return len(self._records)
