"""asyncua's user manager over our users: passwords and X.509 user certificates through the Authenticator.

asyncua calls `UserManager.get_user(iserver, username, password, certificate)` synchronously, on the event loop,
inside ActivateSession. The secure transport (scada.opcua.security) runs the argon2id check beforehand in a worker
thread (`preauthenticate`) and hands the outcome, with what it knows of the channel (client address, security
mode, token type), through the `ACTIVATION` context variable; `get_user` then only looks the outcome up. Without
that context (a server without the secure transport) get_user verifies the password itself, blocking the loop
for one hash (~40 ms), and treats the channel as insecure: such users may read, never write or call.

The session's user is a `CityUser`: asyncua's User (role User, or Anonymous) with our roles. Roles are looked up
again on every request (`Policy.roles_of`), so a user disabled or removed while connected loses them at once.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from asyncua import ua
from asyncua.common.utils import ServiceError
from asyncua.crypto.permission_rules import User, UserRole
from cryptography import x509

from scada.model import utcnow
from scada.security.auth import AuthenticationError, Authenticator
from scada.security.policy import Policy
from scada.security.users import User as Account
from scada.security.users import certificate_thumbprint

log = logging.getLogger(__name__)

ANONYMOUS = "anonymous"
PASSWORD = "password"
CERTIFICATE = "certificate"

LOGIN_REFUSED_INSECURE = "login_refused_insecure_channel"  # a user token on the None endpoint
CERTIFICATE_TIME_INVALID = "user_certificate_time_invalid"


@dataclass(eq=False)
class CityUser(User):
    """A session's user: asyncua's role (User or Anonymous), the account name, how and where it logged in."""

    method: str = ANONYMOUS  # anonymous, password, certificate
    secure: bool = False  # the session's channel signs (and maybe encrypts) every message
    encrypted: bool = False  # ... and encrypts it (personal data is only answered then)
    client: str | None = None  # the client's IP address

    @property
    def authenticated(self) -> bool:
        """True for a user who proved an identity (password or certificate)."""
        return self.method != ANONYMOUS and self.name is not None

    @property
    def account(self) -> str | None:
        """The name the policy knows the user by (None: anonymous)."""
        return self.name if self.authenticated else None

    def __repr__(self) -> str:
        return f"CityUser({self.name or 'anonymous'}, {self.method}, {'secure' if self.secure else 'insecure'})"

    __str__ = __repr__


@dataclass(frozen=True, slots=True)
class PreAuth:
    """The outcome of a password check made before get_user: the user, or the refusal."""

    username: str
    digest: bytes  # SHA-256 of the password: get_user only trusts the outcome for the same credentials
    account: Account | None
    error: AuthenticationError | None = None


@dataclass(frozen=True, slots=True)
class Activation:
    """What the transport knows of an ActivateSession request."""

    client: str | None
    secure: bool
    token: str  # anonymous, password, certificate
    preauth: PreAuth | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)


ACTIVATION: ContextVar[Activation | None] = ContextVar("cityscada_activation", default=None)
"""Set by the secure transport while an ActivateSession request runs."""


def _digest(password: str) -> bytes:
    return hashlib.sha256(password.encode("utf-8", "surrogatepass")).digest()


def token_kind(token: object) -> str:
    """anonymous, password or certificate for an asyncua identity token (anything else counts as anonymous)."""
    if isinstance(token, ua.UserNameIdentityToken):
        return PASSWORD
    if isinstance(token, ua.X509IdentityToken):
        return CERTIFICATE
    return ANONYMOUS


EventHook = Callable[[str, Mapping[str, Any]], None]


class CityUserManager:
    """asyncua's UserManager over the Authenticator and the Policy (see the module docstring)."""

    def __init__(
        self,
        authenticator: Authenticator,
        policy: Policy,
        *,
        clock: Callable[[], datetime] = utcnow,
        on_security_event: EventHook | None = None,
    ) -> None:
        self.authenticator = authenticator
        self.policy = policy
        self.clock = clock
        self.on_security_event = on_security_event
        self._warned_no_context = False

    def _event(self, kind: str, **details: Any) -> None:
        log.warning("security event %s: %s", kind, details)
        if self.on_security_event is not None:
            try:
                self.on_security_event(kind, details)
            except Exception:
                log.exception("security event hook failed on %s", kind)

    async def preauthenticate(self, username: str, password: str, client: str | None) -> PreAuth:
        """Check a password in a worker thread (the event loop keeps serving); never raises for a refusal."""
        try:
            account = await self.authenticator.authenticate_async(username, password, client)
        except AuthenticationError as exc:
            return PreAuth(username, _digest(password), None, exc)
        return PreAuth(username, _digest(password), account)

    def get_user(
        self,
        iserver: Any,
        username: str | None = None,
        password: str | None = None,
        certificate: Any = None,
    ) -> CityUser | None:
        """The session's user; None (BadUserAccessDenied) when refused; ServiceError for a token on an insecure channel."""
        context = ACTIVATION.get()
        if context is None:
            if not self._warned_no_context:
                self._warned_no_context = True
                log.warning("sessions activated without the secure transport: users are treated as insecure")
            kind = PASSWORD if username is not None else ANONYMOUS
            context = Activation(client=None, secure=False, token=kind, extra={"unknown_channel": True})
        if context.token != ANONYMOUS and not context.secure and not context.extra.get("unknown_channel"):
            self._event(LOGIN_REFUSED_INSECURE, username=username, client=context.client, token=context.token)
            raise ServiceError(ua.StatusCodes.BadIdentityTokenRejected)
        if context.token == PASSWORD:
            account = self._password(username or "", password or "", context)
        elif context.token == CERTIFICATE:
            account = self._certificate(certificate, context)
        else:
            if not self.policy.config.allow_anonymous_read:
                return None
            return self._user(UserRole.Anonymous, None, ANONYMOUS, context)
        if account is None:
            return None
        return self._user(UserRole.User, account.name, context.token, context)

    @staticmethod
    def _user(role: UserRole, name: str | None, method: str, context: Activation) -> CityUser:
        return CityUser(
            role=role,
            name=name,
            method=method,
            secure=context.secure,
            encrypted=bool(context.extra.get("encrypted")),
            client=context.client,
        )

    def _password(self, username: str, password: str, context: Activation) -> Account | None:
        pre = context.preauth
        if pre is not None and pre.username == username and hmac.compare_digest(pre.digest, _digest(password)):
            return pre.account
        try:
            return self.authenticator.authenticate(username, password, context.client)
        except AuthenticationError:
            return None

    def _certificate(self, der: Any, context: Activation) -> Account | None:
        if not isinstance(der, bytes | bytearray) or not der:
            return None
        try:
            cert = x509.load_der_x509_certificate(bytes(der))
        except ValueError:
            return None
        now = self.clock()
        if not cert.not_valid_before_utc <= now <= cert.not_valid_after_utc:
            self._event(
                CERTIFICATE_TIME_INVALID,
                thumbprint=certificate_thumbprint(bytes(der)),
                client=context.client,
                not_after=cert.not_valid_after_utc.isoformat(),
            )
            return None
        try:
            return self.authenticator.authenticate_certificate(bytes(der), context.client)
        except AuthenticationError:
            return None
