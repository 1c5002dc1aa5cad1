"""Authentication: passwords and certificates, equal cost for unknown users, throttling, security events."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import pytest
from security_helpers import PASSWORD, CountingHasher

from scada.security.auth import (
    CERTIFICATE_REFUSED,
    LOGIN_FAILED,
    LOGIN_LOCKED_OUT,
    LOGIN_REFUSED_LOCKED,
    LOGIN_SUCCEEDED,
    REFUSAL,
    AuthenticationError,
    Authenticator,
    LockedOutError,
)
from scada.security.throttle import LoginThrottle, ThrottleSettings
from scada.security.users import UserStore, certificate_thumbprint


class Clock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def events() -> list[tuple[str, dict[str, Any]]]:
    return []


@pytest.fixture
def auth(store: UserStore, clock: Clock, events: list[tuple[str, dict[str, Any]]]) -> Authenticator:
    def hook(kind: str, details: Mapping[str, Any]) -> None:
        events.append((kind, dict(details)))

    return Authenticator(store, LoginThrottle(clock=clock), on_security_event=hook)


def test_good_password_gives_the_user_and_an_event(auth: Authenticator, events) -> None:
    user = auth.authenticate("Oscar", PASSWORD, client="10.0.0.7")
    assert user.name == "oscar"
    assert events == [(LOGIN_SUCCEEDED, {"username": "oscar", "client": "10.0.0.7", "method": "password"})]


def test_refusals_look_the_same_and_cost_one_verification_each(
    auth: Authenticator, store: UserStore, hasher: CountingHasher, events
) -> None:
    store.update("emma", disabled=True)
    messages = []
    for username, password in [("oscar", "wrong password!"), ("ghost", PASSWORD), ("emma", PASSWORD)]:
        before = hasher.verifications
        with pytest.raises(AuthenticationError) as info:
            auth.authenticate(username, password)
        assert hasher.verifications - before == 1, username  # an unknown user costs a (dummy) verification too
        messages.append(str(info.value))
    assert messages == [REFUSAL] * 3
    reasons = [details["reason"] for kind, details in events if kind == LOGIN_FAILED]
    assert reasons == ["bad_password", "unknown_user", "disabled"]
    assert all(PASSWORD not in repr(details) and "wrong password!" not in repr(details) for _, details in events)


def test_five_failures_lock_the_user_for_60_s_then_doubling(
    auth: Authenticator, hasher: CountingHasher, clock: Clock, events
) -> None:
    for _ in range(5):
        with pytest.raises(AuthenticationError):
            auth.authenticate("oscar", "not the password", client="10.0.0.1")
    lockouts = [details for kind, details in events if kind == LOGIN_LOCKED_OUT]
    assert [(d["key"], d["duration_s"], d["failures"]) for d in lockouts] == [
        ("user:oscar", 60.0, 5),
        ("client:10.0.0.1", 60.0, 5),
    ]
    before = hasher.verifications
    clock.now += 59
    with pytest.raises(LockedOutError) as info:
        auth.authenticate("oscar", PASSWORD, client="10.0.0.2")  # even the right password, from elsewhere
    assert hasher.verifications == before  # refused before any hash work
    assert info.value.retry_after_s == pytest.approx(1.0)
    assert events[-1][0] == LOGIN_REFUSED_LOCKED
    clock.now += 1.5
    for _ in range(5):
        with pytest.raises(AuthenticationError):
            auth.authenticate("oscar", "still not it", client="10.0.0.3")
    user_lockouts = [d["duration_s"] for k, d in events if k == LOGIN_LOCKED_OUT and d["key"] == "user:oscar"]
    assert user_lockouts == [60.0, 120.0]  # the second lockout of the user name doubles
    clock.now += 121
    assert auth.authenticate("oscar", PASSWORD, client="10.0.0.3").name == "oscar"
    assert auth.throttle.retry_after("oscar", None) == 0.0


def test_failures_expire_after_the_window(auth: Authenticator, clock: Clock) -> None:
    for _ in range(4):
        with pytest.raises(AuthenticationError):
            auth.authenticate("sam", "nope nope nope")
    clock.now += 301
    with pytest.raises(AuthenticationError) as info:
        auth.authenticate("sam", "nope nope nope")
    assert not isinstance(info.value, LockedOutError)
    assert auth.authenticate("sam", PASSWORD).name == "sam"


def test_an_address_spraying_many_user_names_is_locked(auth: Authenticator, events) -> None:
    for name in ["olga", "oscar", "emma", "sam", "cora"]:
        with pytest.raises(AuthenticationError):
            auth.authenticate(name, "Password123!", client="203.0.113.9")
    with pytest.raises(LockedOutError):
        auth.authenticate("sacha", PASSWORD, client="203.0.113.9")
    assert auth.authenticate("sacha", PASSWORD, client="198.51.100.1").name == "sacha"
    assert ("client:203.0.113.9", 60.0) in [(d["key"], d["duration_s"]) for k, d in events if k == LOGIN_LOCKED_OUT]


def test_lockouts_are_capped_and_forgotten_after_a_quiet_day(clock: Clock) -> None:
    throttle = LoginThrottle(ThrottleSettings(max_failures=1, lock_s=60, max_lock_s=900), clock)
    durations = []
    for _ in range(7):
        durations.append(throttle.failure("u", None)[0].duration_s)
        clock.now += durations[-1]
    assert durations == [60, 120, 240, 480, 900, 900, 900]
    clock.now += 86401
    assert throttle.failure("u", None)[0].duration_s == 60


def test_throttle_memory_is_bounded(clock: Clock) -> None:
    throttle = LoginThrottle(ThrottleSettings(max_keys=100), clock)
    for i in range(1000):
        throttle.failure(f"user{i}", None)
        clock.now += 1
    assert len(throttle) <= 100


def test_a_failing_event_hook_does_not_break_login(store: UserStore) -> None:
    def broken(kind: str, details: Mapping[str, Any]) -> None:
        raise RuntimeError("historian down")

    assert Authenticator(store, on_security_event=broken).authenticate("olga", PASSWORD).name == "olga"


async def test_authenticate_async_runs_off_the_event_loop(auth: Authenticator) -> None:
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0)

    task = asyncio.create_task(ticker())
    user = await auth.authenticate_async("sam", PASSWORD)
    task.cancel()
    assert user.name == "sam" and ticks > 0


def test_certificate_login(auth: Authenticator, store: UserStore, events) -> None:
    der = b"0\x82\x01\x0a certificate of the traffic centre"
    store.add("traffic-centre", None, ["Operator"], [certificate_thumbprint(der)])
    assert auth.authenticate_certificate(der, client="10.1.1.1").name == "traffic-centre"
    with pytest.raises(AuthenticationError):
        auth.authenticate_certificate(b"another certificate")
    assert events[-1] == (
        CERTIFICATE_REFUSED,
        {"thumbprint": certificate_thumbprint(b"another certificate"), "client": None, "reason": "unknown_certificate"},
    )
    store.update("traffic-centre", disabled=True)
    with pytest.raises(AuthenticationError):
        auth.authenticate_certificate(der)
    with pytest.raises(AuthenticationError):  # a certificate-only account has no password to guess
        auth.authenticate("traffic-centre", "")
