"""Authentication: user name + password and X.509 user certificates, throttled, each outcome a security event.

Unknown users cost one argon2id verification like known ones (against a dummy hash) and every refusal says the
same thing, so neither timing nor messages tell which user names exist. Security events go to a callback hook
`on_security_event(kind, details)` (the server plugs it into OPC UA events and the historian); the details never
hold a password.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Callable, Mapping
from typing import Any

from scada.model import CityScadaError
from scada.security.passwords import MAX_PASSWORD_LENGTH
from scada.security.throttle import LoginThrottle
from scada.security.users import User, UserStore, certificate_thumbprint

log = logging.getLogger(__name__)

SecurityEventHook = Callable[[str, Mapping[str, Any]], None]
"""Called with (kind, details) for every security event; must not block."""

# Kinds of security events.
LOGIN_SUCCEEDED = "login_succeeded"
LOGIN_FAILED = "login_failed"  # details: username, client, reason (bad_password, unknown_user, disabled, ...)
LOGIN_LOCKED_OUT = "login_locked_out"  # a lockout has just started: key, duration_s, failures
LOGIN_REFUSED_LOCKED = "login_refused_locked"  # an attempt while locked out: retry_after_s
CERTIFICATE_REFUSED = "certificate_refused"  # no (enabled) user holds this certificate: thumbprint

REFUSAL = "invalid user name or password"


class AuthenticationError(CityScadaError):
    """The credentials were refused (the message never says whether the user exists)."""


class LockedOutError(AuthenticationError):
    """Too many failures: the login is refused without checking the password for `retry_after_s` seconds."""

    def __init__(self, retry_after_s: float) -> None:
        super().__init__(f"too many failed logins: try again in {math.ceil(retry_after_s)} s")
        self.retry_after_s = retry_after_s


class Authenticator:
    """Checks credentials against the user store, throttles failures and reports security events."""

    def __init__(
        self,
        store: UserStore,
        throttle: LoginThrottle | None = None,
        on_security_event: SecurityEventHook | None = None,
    ) -> None:
        self.store = store
        self.throttle = throttle if throttle is not None else LoginThrottle()
        self.on_security_event = on_security_event

    def _event(self, kind: str, **details: Any) -> None:
        if kind != LOGIN_SUCCEEDED:
            log.warning("security event %s: %s", kind, details)
        hook = self.on_security_event
        if hook is None:
            return
        try:
            hook(kind, details)
        except Exception:
            log.exception("security event hook failed on %s", kind)

    def authenticate(self, username: str, password: str, client: str | None = None) -> User:
        """The enabled user whose password this is; AuthenticationError (LockedOutError when throttled) otherwise.

        Blocks for one argon2id verification (tens of ms): from an event loop prefer `authenticate_async`.
        `client` is the client's IP address (throttled like the user name when given).
        """
        key_name = username[:64]  # no valid name is longer: keeps the throttle's keys bounded
        wait = self.throttle.retry_after(key_name, client)
        if wait > 0:
            self._event(LOGIN_REFUSED_LOCKED, username=key_name, client=client, retry_after_s=round(wait, 1))
            raise LockedOutError(wait)
        user = self.store.get(username) if username and len(username) <= 64 else None
        if user is None or user.password_hash is None:
            self.store.hasher.verify_dummy(password)
            reason = "unknown_user" if user is None else "no_password"
        elif not self.store.hasher.verify(user.password_hash, password):
            reason = "bad_password" if len(password) <= MAX_PASSWORD_LENGTH else "oversized_password"
        elif user.disabled:
            reason = "disabled"
        else:
            self.throttle.success(user.name, client)
            self._event(LOGIN_SUCCEEDED, username=user.name, client=client, method="password")
            return user
        for lockout in self.throttle.failure(key_name, client):
            self._event(
                LOGIN_LOCKED_OUT,
                username=key_name,
                client=client,
                key=lockout.key,
                duration_s=lockout.duration_s,
                failures=lockout.failures,
            )
        self._event(LOGIN_FAILED, username=key_name, client=client, reason=reason)
        raise AuthenticationError(REFUSAL)

    async def authenticate_async(self, username: str, password: str, client: str | None = None) -> User:
        """`authenticate` run in a worker thread, so that the event loop keeps serving during the hash."""
        return await asyncio.to_thread(self.authenticate, username, password, client)

    def authenticate_certificate(self, der: bytes, client: str | None = None) -> User:
        """The enabled user holding this X.509 certificate (DER); AuthenticationError otherwise.

        The caller (the OPC UA layer) has already checked the token's signature: possession of the private key.
        """
        thumbprint = certificate_thumbprint(der)
        user = self.store.by_thumbprint(thumbprint)
        if user is None or user.disabled:
            reason = "unknown_certificate" if user is None else "disabled"
            self._event(CERTIFICATE_REFUSED, thumbprint=thumbprint, client=client, reason=reason)
            raise AuthenticationError("the user certificate is not accepted")
        self._event(LOGIN_SUCCEEDED, username=user.name, client=client, method="certificate", thumbprint=thumbprint)
        return user
