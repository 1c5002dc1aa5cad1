"""asyncua's server transport with our security checks: trust list at OpenSecureChannel, async logins, service rules.

Stock asyncua 2.1 (measured here) accepts any client certificate, lets a client that skips its own endpoint check
open an unsecured channel and read and write even when no None endpoint is offered, and checks passwords
synchronously on the event loop. `SecureServer` is asyncua's Server with its own listener: each connection's
`SecureProcessor` (a UaProcessor)

- refuses, at OpenSecureChannel, a policy that is not offered (BadSecurityPolicyRejected) and a client
  certificate the gate does not accept (an ERR message BadSecurityChecksFailed, then the socket is closed); renewals
  are checked too, so a certificate no longer trusted loses its channel at the next token renewal at the latest;
- on an unsecured channel, serves only discovery (GetEndpoints, FindServers) unless the None endpoint is offered;
- before ActivateSession, verifies the password in a worker thread (CityUserManager.preauthenticate) and passes
  the outcome, the client's address and the channel's security mode to get_user (scada.security.ua_users);
- marks every request with its channel (`CHANNEL`), for the CreateSession certificate check.

`CityRuleset` (asyncua's PermissionRuleset) decides per service: reading services need the `read` permission,
Write and Call need an authenticated user on a signed channel (the command service then decides per device),
session housekeeping is always allowed, editing the address space or history never. A refusal is a ServiceFault
BadUserAccessDenied and a security event.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, Protocol, cast

from asyncua import Server, ua
from asyncua.common.connection import TransportLimits
from asyncua.common.utils import Buffer, ServiceError
from asyncua.crypto import uacrypto
from asyncua.crypto.permission_rules import PermissionRuleset, User
from asyncua.crypto.security_policies import SecurityPolicyNone
from asyncua.server.binary_server_asyncio import BinaryServer, OPCUAProtocol
from asyncua.server.internal_server import InternalServer
from asyncua.server.uaprocessor import UaProcessor
from asyncua.ua.ua_binary import struct_from_binary, uatcp_to_binary

from scada.security.policy import Policy
from scada.security.roles import Permission
from scada.security.ua_users import ACTIVATION, PASSWORD, Activation, CityUser, CityUserManager, PreAuth, token_kind

log = logging.getLogger(__name__)

_O = ua.ObjectIds


def _ids(*names: str) -> frozenset[int]:
    return frozenset(getattr(_O, f"{name}Request_Encoding_DefaultBinary") for name in names)


DISCOVERY = _ids("GetEndpoints", "FindServers", "FindServersOnNetwork", "CloseSecureChannel")
ACTIVATE = _O.ActivateSessionRequest_Encoding_DefaultBinary
HOUSEKEEPING = _ids(
    "CloseSession",
    "CloseSecureChannel",
    "Publish",
    "Republish",
    "DeleteSubscriptions",
    "DeleteMonitoredItems",
    "SetPublishingMode",
    "SetMonitoringMode",
    "ModifySubscription",
    "ModifyMonitoredItems",
    "UnregisterNodes",
    "Cancel",
)
READING = _ids(
    "Read",
    "Browse",
    "BrowseNext",
    "TranslateBrowsePathsToNodeIds",
    "RegisterNodes",
    "CreateSubscription",
    "CreateMonitoredItems",
    "TransferSubscriptions",
    "HistoryRead",
)
ACTING = _ids("Write", "Call")
SERVICE_NAMES: dict[int, str] = {
    getattr(_O, name): name.removesuffix("Request_Encoding_DefaultBinary")
    for name in dir(_O)
    if name.endswith("Request_Encoding_DefaultBinary")
}


def service_id(typeid: ua.NodeId) -> int | None:
    """The numeric ns=0 identifier of a request's type (None for anything else)."""
    ident = typeid.Identifier
    return int(ident) if typeid.NamespaceIndex == 0 and isinstance(ident, int) else None


@dataclass(frozen=True, slots=True)
class Channel:
    """The secure channel a request arrived on."""

    client: str | None
    mode: ua.MessageSecurityMode
    peer_certificate: bytes | None

    @property
    def secure(self) -> bool:
        """True when every message is signed (Sign or SignAndEncrypt)."""
        return self.mode != ua.MessageSecurityMode.None_


CHANNEL: ContextVar[Channel | None] = ContextVar("cityscada_channel", default=None)
"""The channel of the request being processed (set by SecureProcessor)."""


class ChannelGate(Protocol):
    """What the transport asks of the security layer (scada.opcua.security.ServerSecurity)."""

    @property
    def none_endpoint(self) -> bool:
        """True when unsecured sessions (anonymous reading) are offered."""
        ...

    @property
    def user_manager(self) -> CityUserManager:
        """The user manager whose preauthenticate() checks passwords off the loop."""
        ...

    def check_channel_certificate(self, blob: bytes, client: str | None) -> int | None:
        """None when the client certificate (DER, maybe a chain) is accepted, else the status to refuse with."""
        ...

    def denied(self, user: User | None, service: str, reason: str) -> None:
        """Report a service refused to a session's user (a security event)."""
        ...


def client_address(peer: Any) -> str | None:
    """The IP address of a transport's peername."""
    if isinstance(peer, tuple) and peer:
        return str(peer[0])
    return None


class SecureProcessor(UaProcessor):
    """A UaProcessor with the trust list, the None-channel rule and off-loop password checks."""

    def __init__(self, iserver: InternalServer, transport: Any, limits: TransportLimits, gate: ChannelGate) -> None:
        super().__init__(iserver, transport, limits)
        self._gate = gate
        self._offered: frozenset[str] = frozenset()
        self.client = client_address(self.name)

    def set_policies(self, policies: list[Any]) -> None:
        """The policy factories of the server's endpoints."""
        super().set_policies(policies)
        self._offered = frozenset(p.cls.URI for p in policies)

    @property
    def channel(self) -> Channel:
        """The channel as it stands."""
        policy = self._connection.security_policy
        return Channel(self.client, policy.Mode, policy.peer_certificate)

    async def process(self, header: Any, body: Buffer) -> bool:
        """One message: OpenSecureChannel requests (opening and renewals) are checked before asyncua sees them."""
        if header.MessageType == ua.MessageType.SecureOpen:
            refusal = self._check_open(header, body)
            if refusal is not None:
                status, reason = refusal
                err = ua.ErrorMessage(ua.StatusCode(cast(ua.UInt32, status)), cast(ua.String, reason))
                self._transport.write(uatcp_to_binary(cast(ua.MessageType, ua.MessageType.Error), err))
                return False
        return await super().process(header, body)

    def _check_open(self, header: Any, body: Buffer) -> tuple[int, str] | None:
        try:
            algorithm = struct_from_binary(ua.AsymmetricAlgorithmHeader, body.copy(header.body_size))
        except Exception:
            return ua.StatusCodes.BadSecurityChecksFailed, "malformed security header"
        uri = algorithm.SecurityPolicyURI
        if uri == SecurityPolicyNone.URI:
            return None  # discovery always; sessions only when the None endpoint is offered (see _process_message)
        if uri not in self._offered:
            log.info("secure channel from %s refused: policy %s not offered", self.client, uri)
            return ua.StatusCodes.BadSecurityPolicyRejected, "security policy not offered"
        status = self._gate.check_channel_certificate(algorithm.SenderCertificate or b"", self.client)
        if status is not None:
            return status, "security checks failed"
        return None

    async def _process_message(self, typeid: ua.NodeId, requesthdr: Any, seqhdr: Any, body: Buffer) -> Any:
        ident = service_id(typeid)
        channel = self.channel
        if not channel.secure and not self._gate.none_endpoint and ident not in DISCOVERY:
            service = SERVICE_NAMES.get(ident) if ident is not None else None
            log.info("request %s on an unsecured channel from %s refused", service, self.client)
            raise ServiceError(ua.StatusCodes.BadSecurityPolicyRejected)
        channel_token = CHANNEL.set(channel)
        try:
            if ident != ACTIVATE:
                return await super()._process_message(typeid, requesthdr, seqhdr, body)
            activation = await self._prepare_activation(requesthdr, body.copy(), channel)
            activation_token = ACTIVATION.set(activation)
            try:
                return await super()._process_message(typeid, requesthdr, seqhdr, body)
            finally:
                ACTIVATION.reset(activation_token)
        finally:
            CHANNEL.reset(channel_token)

    async def _prepare_activation(self, requesthdr: Any, body: Buffer, channel: Channel) -> Activation:
        """What get_user needs: the channel, the token's kind and, for a password, its outcome checked off-loop."""
        try:
            params = struct_from_binary(ua.ActivateSessionParameters, body)
        except Exception:
            return Activation(self.client, channel.secure, "anonymous")
        token = params.UserIdentityToken
        kind = token_kind(token)
        extra = {"encrypted": channel.mode == ua.MessageSecurityMode.SignAndEncrypt}
        preauth: PreAuth | None = None
        if kind == PASSWORD and channel.secure:
            preauth = await self._preauthenticate(requesthdr, params, token)
        return Activation(self.client, channel.secure, kind, preauth, extra)

    async def _preauthenticate(self, requesthdr: Any, params: Any, token: Any) -> PreAuth | None:
        """The password check of a well-signed request (None when asyncua will refuse it anyway)."""
        session = self.session or self.iserver.lookup_external_session(requesthdr.AuthenticationToken)
        if session is None or session.nonce is None:
            return None
        policy = self._connection.security_policy
        try:
            data = (policy.host_certificate or b"") + session.nonce
            policy.asymmetric_cryptography.verify(data, params.ClientSignature.Signature)
            username, password = self.iserver.decrypt_user_token(session, token)
        except Exception:
            return None
        if not isinstance(username, str) or not isinstance(password, str):
            return None
        return await self._gate.user_manager.preauthenticate(username, password, self.client)


class SecureProtocol(OPCUAProtocol):
    """asyncua's per-connection protocol, processing with a SecureProcessor."""

    def __init__(self, *args: Any, gate: ChannelGate, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._gate = gate

    def connection_made(self, transport: Any) -> None:
        """Accept the connection (asyncua's checks) and swap in the secure processor before any message."""
        super().connection_made(transport)
        if self.processor is not None:
            self.processor = SecureProcessor(self.iserver, self.transport, self.limits, self._gate)
            self.processor.set_policies(self.policies)


class SecureBinaryServer(BinaryServer):
    """asyncua's listener making SecureProtocols."""

    def __init__(self, iserver: InternalServer, hostname: Any, port: Any, limits: TransportLimits, gate: ChannelGate):
        super().__init__(iserver, hostname, port, limits)
        self._gate = gate

    def _make_protocol(self) -> OPCUAProtocol:
        return SecureProtocol(
            iserver=self.iserver,
            policies=self._policies,
            clients=self.clients,
            closing_tasks=self.closing_tasks,
            limits=self.limits,
            gate=self._gate,
        )


class SecureServer(Server):
    """asyncua's Server listening through SecureBinaryServer; the None endpoint offers the anonymous token only."""

    def __init__(self, gate: ChannelGate, user_manager: Any = None) -> None:
        super().__init__(user_manager=user_manager)
        self._gate = gate

    async def start(self) -> None:
        """asyncua's Server.start with our listener."""
        if self.iserver.certificate is not None:
            uacrypto.check_certificate(self.iserver.certificate, self._application_uri, socket.gethostname())
        await self._setup_server_nodes()
        restrict_none_endpoints(self.iserver)
        await self.iserver.start()
        try:
            address, port = self._get_bind_socket_info()
            self.bserver = SecureBinaryServer(self.iserver, address, port, self.limits, self._gate)
            self.bserver.set_policies(self._policies)
            await self.bserver.start()
        except Exception:
            log.exception("%s error starting server", self)
            await self.iserver.stop()
            raise


def restrict_none_endpoints(iserver: InternalServer) -> None:
    """On unsecured endpoints, offer the anonymous token only (a password or a user certificate needs a signed channel)."""
    for endpoint in iserver.endpoints:
        if endpoint.SecurityMode == ua.MessageSecurityMode.None_:
            endpoint.UserIdentityTokens = [
                t for t in endpoint.UserIdentityTokens if t.TokenType == ua.UserTokenType.Anonymous
            ]


class CityRuleset(PermissionRuleset):
    """asyncua's per-service check (see the module docstring)."""

    def __init__(self, policy: Policy, on_denied: Callable[[User | None, str, str], None] | None = None) -> None:
        self.policy = policy
        self.on_denied = on_denied

    def check_validity(self, user: User | None, action_type_id: ua.NodeId, body: Any) -> bool:
        """True when the session's user may use this service at all."""
        ident = service_id(action_type_id)
        if ident in HOUSEKEEPING:
            return True
        verdict, reason = self._decide(user, ident)
        if not verdict and self.on_denied is not None:
            name = SERVICE_NAMES.get(ident, str(action_type_id)) if ident is not None else str(action_type_id)
            self.on_denied(user, name, reason)
        return verdict

    def _decide(self, user: User | None, ident: int | None) -> tuple[bool, str]:
        if not isinstance(user, CityUser):
            return False, "no session user"
        if ident in READING:
            if self.policy.allows(user.account, Permission.READ):
                return True, ""
            return False, "no read permission"
        if ident in ACTING:
            if not user.authenticated:
                return False, "anonymous sessions may only read"
            if not user.secure:
                return False, "unsecured channel"
            if not self.policy.roles_of(user.account):
                return False, "no role (disabled or removed user)"
            return True, ""
        return False, "service not allowed to clients"
