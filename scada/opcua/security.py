"""The OPC UA server's security: endpoints, certificates, trust list, users, security events, personal data.

`ServerSecurity` is what CityServer calls (``CityServer(..., user_manager=..., security=...)``):

- `make_server()`: asyncua's Server with the secure transport (scada.opcua.secure_transport);
- `configure(server)`: the application instance certificate from the PKI folder (created on first start, renewed
  when fewer than 30 days remain), the endpoints (Basic256Sha256, Aes128_Sha256_RsaOaep, Aes256_Sha256_RsaPss, each
  Sign and SignAndEncrypt; None only with `security.allow_none_endpoint`), the identity tokens (user name,
  X.509, anonymous only with `allow_anonymous_read`), the per-service rules and the CreateSession certificate
  check;
- `install(city, server)`: the CitySecurityEventType (a subtype of AuditSecurityEventType) emitted by the Server
  object for every security event, `Incidents/GetReporterContact`, the role check of ReportIncident and
  CloseIncident, and the daily check of the server certificate;
- `uninstall()`: stops what install started.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Sequence
from typing import Any

from asyncua import Node, Server, ua
from asyncua.common.utils import ServiceError
from asyncua.crypto.permission_rules import User
from cryptography import x509
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from scada.catalog import ArgSpec
from scada.model import CommandError
from scada.opcua.methods import CURRENT_USER, check_arguments, status_result
from scada.opcua.nodes import ns0, string_nodeid
from scada.opcua.secure_transport import CHANNEL, CityRuleset, SecureServer
from scada.opcua.types import TYPES_PREFIX, TypeBuilder
from scada.opcua.user_rights import UserRights
from scada.security.events import SecurityEvent, SecurityEvents
from scada.security.personal import REFUSED, PersonalData
from scada.security.pki import (
    BAD_CERTIFICATE_UNTRUSTED,
    CertificateRejected,
    OwnCertificate,
    PkiFolder,
    TrustList,
    der_of,
    split_der,
)
from scada.security.policy import Policy
from scada.security.roles import INCIDENT_TARGET
from scada.security.ua_users import CityUser, CityUserManager

log = logging.getLogger(__name__)

APPLICATION_URI = "urn:cityscada:server"  # as CityServer sets it
SERVER_NAME = "cityscada"
SECURE_POLICIES: tuple[ua.SecurityPolicyType, ...] = (
    ua.SecurityPolicyType.Basic256Sha256_SignAndEncrypt,
    ua.SecurityPolicyType.Basic256Sha256_Sign,
    ua.SecurityPolicyType.Aes128Sha256RsaOaep_SignAndEncrypt,
    ua.SecurityPolicyType.Aes128Sha256RsaOaep_Sign,
    ua.SecurityPolicyType.Aes256Sha256RsaPss_SignAndEncrypt,
    ua.SecurityPolicyType.Aes256Sha256RsaPss_Sign,
)
EVENT_TYPE_NAME = "CitySecurityEventType"
EVENT_FIELDS = ("Kind", "ClientAddress", "Details")
CONTACT_INPUTS = (ArgSpec("IncidentId", "String", description="the incident's id"),)
CONTACT_OUTPUTS = (ArgSpec("Contact", "String", description="the reporter's contact (personal data)"),)
GUARDED_INCIDENT_METHODS = {"ReportIncident": "report", "CloseIncident": "close"}
RENEWAL_CHECK_S = 86_400.0
METHOD_LOGGER = "asyncua.server.address_space"  # logs every Call's input arguments at INFO ("Calling: %s")


class MethodArgumentRedaction(logging.Filter):
    """Rewrites asyncua's "Calling: <CallMethodRequest>" log records without the input arguments (personal data)."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Keep the record, its arguments replaced by the method and object ids and the argument count."""
        if record.msg == "Calling: %s" and isinstance(record.args, tuple) and record.args:
            request = record.args[0]
            method = getattr(request, "MethodId", None)
            target = getattr(request, "ObjectId", None)
            count = len(getattr(request, "InputArguments", None) or [])
            record.args = (f"{method} on {target} with {count} argument(s)",)
        return True


def redact_method_arguments() -> None:
    """Install the redaction on asyncua's method logger (once per process)."""
    logger = logging.getLogger(METHOD_LOGGER)
    if not any(isinstance(f, MethodArgumentRedaction) for f in logger.filters):
        logger.addFilter(MethodArgumentRedaction())


class ServerSecurity:
    """The security hooks of CityServer (see the module docstring); also the transport's ChannelGate."""

    def __init__(
        self,
        *,
        policy: Policy,
        pki: PkiFolder,
        users: CityUserManager,
        events: SecurityEvents,
        personal: PersonalData | None = None,
        hostnames: Sequence[str] = (),
        addresses: Sequence[str] = (),
        organization: str = SERVER_NAME,
        renewal_check_s: float = RENEWAL_CHECK_S,
    ) -> None:
        self.policy = policy
        self.pki = pki
        self.trust = TrustList(pki)
        self._users = users
        self.events = events
        self.personal = personal
        self.hostnames = tuple(hostnames)
        self.addresses = tuple(addresses)
        self.organization = organization
        self.renewal_check_s = renewal_check_s
        self.own: OwnCertificate | None = None
        self._server: Server | None = None
        self._sink: Any = None
        self._renewal: asyncio.Task[None] | None = None
        self.rights: UserRights | None = None

    # -- ChannelGate -----------------------------------------------------------------------------------------

    @property
    def none_endpoint(self) -> bool:
        """True when the site offers the None endpoint (anonymous reading only)."""
        return self.policy.config.allow_none_endpoint and self.policy.config.allow_anonymous_read

    @property
    def user_manager(self) -> CityUserManager:
        """The user manager of the sessions."""
        return self._users

    def check_channel_certificate(self, blob: bytes, client: str | None) -> int | None:
        """None when the trust list accepts the client certificate; else BadSecurityChecksFailed (and why, logged)."""
        try:
            self.trust.check(blob)
        except CertificateRejected as exc:
            self._refused(blob, exc, client)
            return ua.StatusCodes.BadSecurityChecksFailed
        return None

    def _refused(self, blob: bytes, exc: CertificateRejected, client: str | None) -> None:
        kept = None
        subject = uri = None
        try:
            leaf = split_der(blob)[0]
            cert = x509.load_der_x509_certificate(leaf)
            subject = cert.subject.rfc4514_string()
            san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
            uris = san.get_values_for_type(x509.UniformResourceIdentifier)
            uri = uris[0] if uris else None
            if exc.status == BAD_CERTIFICATE_UNTRUSTED:
                kept = self.pki.record_rejected(leaf)
        except (ValueError, x509.ExtensionNotFound):
            pass
        self.events.emit(
            "channel_refused",
            {
                "client": client,
                "thumbprint": exc.thumbprint,
                "subject": subject,
                "application_uri": uri,
                "reason": exc.reason,
                "status": f"0x{exc.status:08X}",
                "kept": None if kept is None else kept.name,
            },
        )

    def denied(self, user: User | None, service: str, reason: str) -> None:
        """A service refused by the per-service rules: a security event."""
        account = user.account if isinstance(user, CityUser) else None
        client = user.client if isinstance(user, CityUser) else None
        self.events.emit("access_denied", {"username": account, "client": client, "service": service, "reason": reason})

    # -- CityServer hooks --------------------------------------------------------------------------------------

    def make_server(self, user_manager: Any = None) -> Server:
        """asyncua's Server with the secure transport and our user manager."""
        return SecureServer(self, user_manager=user_manager or self._users)

    async def configure(self, server: Server) -> None:
        """Certificate, endpoints, identity tokens, rules and the CreateSession check (before server.start())."""
        self.events.bind(asyncio.get_running_loop())
        redact_method_arguments()
        own = await asyncio.to_thread(self._ensure_own)
        self._apply(server, own)
        policies = list(SECURE_POLICIES)
        if self.none_endpoint:
            policies.append(ua.SecurityPolicyType.NoSecurity)
        ruleset = CityRuleset(self.policy, self.denied)
        server.set_security_policy(policies, permission_ruleset=ruleset)  # type: ignore[arg-type]
        tokens: list[type] = [ua.UserNameIdentityToken, ua.X509IdentityToken]
        if self.policy.config.allow_anonymous_read:
            tokens.insert(0, ua.AnonymousIdentityToken)
        server.set_identity_tokens(tokens)
        server.set_certificate_validator(self._validate_session_certificate)  # type: ignore[arg-type]
        self._server = server

    async def install(self, city: Any, server: Server) -> None:
        """Event type and emitter, GetReporterContact, incident method checks, daily certificate check."""
        ns = city.namespace_index
        aspace = server.iserver.aspace
        emitter = await UaSecurityEvents.install(server, ns)
        self._sink = emitter
        self.events.add_sink(emitter)
        if self.personal is not None:
            self._install_contact_method(aspace, ns)
        self._guard_incident_methods(aspace, ns)
        rights = UserRights(ns, aspace, self.policy.may_call, self.policy.allows)
        rights.add_device_methods(city.builder.types)
        rights.add_standard_methods()
        rights.install(server.iserver)
        self.rights = rights
        self._renewal = asyncio.create_task(self._renewal_loop(), name="cityscada-certificate-renewal")

    async def uninstall(self) -> None:
        """Stop the certificate check and the OPC UA event emitter (idempotent)."""
        if self.rights is not None:
            self.rights.uninstall()
            self.rights = None
        task, self._renewal = self._renewal, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        if self._sink is not None and self._sink in self.events.sinks:
            self.events.sinks.remove(self._sink)
        self._sink = None
        await self.events.drain()
        self._server = None

    # -- certificates ------------------------------------------------------------------------------------------

    def _ensure_own(self) -> OwnCertificate:
        return self.pki.ensure_own(
            APPLICATION_URI,
            SERVER_NAME,
            hostnames=self.hostnames,
            addresses=self.addresses,
            organization=self.organization,
        )

    def _apply(self, server: Server, own: OwnCertificate) -> None:
        """Make `own` the certificate of the server, its endpoints and policy factories (new channels use it)."""
        key = load_pem_private_key(own.key_pem, password=None)
        iserver = server.iserver
        iserver.certificate = own.certificate
        iserver.private_key = key  # type: ignore[assignment]
        for factory in getattr(server, "_policies", []):
            if factory.certificate is not None:
                factory.certificate = own.certificate
                factory.private_key = key
        for endpoint in iserver.endpoints:
            if endpoint.ServerCertificate:
                endpoint.ServerCertificate = own.der
        self.own = own

    async def check_certificate(self) -> OwnCertificate:
        """Renew the server certificate if due and apply it to the running server (the daily check)."""
        own = await asyncio.to_thread(self._ensure_own)
        if own.renewed or own.created:
            if self._server is not None:
                self._apply(self._server, own)
            self.events.emit(
                "server_certificate_renewed",
                {"thumbprint": own.thumbprint, "not_after": own.not_after.isoformat(), "client": None},
            )
        return own

    async def _renewal_loop(self) -> None:
        while True:
            await asyncio.sleep(self.renewal_check_s)
            try:
                await self.check_certificate()
            except Exception:
                log.exception("server certificate check failed (retried tomorrow)")

    async def _validate_session_certificate(self, cert: x509.Certificate, app: ua.ApplicationDescription) -> None:
        """CreateSession: on a secure channel, the client certificate is the channel's, trusted, with its app URI."""
        channel = CHANNEL.get()
        if channel is None or not channel.secure:
            return  # unsecured (None endpoint or discovery): the certificate is not used
        der = der_of(cert)
        if channel.peer_certificate and split_der(channel.peer_certificate)[0] != der:
            raise ServiceError(ua.StatusCodes.BadCertificateInvalid)
        try:
            self.trust.check(der, uri=app.ApplicationUri)
        except CertificateRejected as exc:
            self._refused(der, exc, channel.client)
            raise ServiceError(exc.status) from None

    # -- methods -----------------------------------------------------------------------------------------------

    def _install_contact_method(self, aspace: Any, ns: int) -> None:
        folder = aspace[string_nodeid("Incidents", ns)]
        info = TypeBuilder(aspace, ns).method(
            folder,
            ("Incidents", "GetReporterContact"),
            "GetReporterContact",
            CONTACT_INPUTS,
            CONTACT_OUTPUTS,
            "the reporter's contact of an incident: personal data, for see_personal_data only, every read audited",
            mandatory=False,
        )
        info.node.call = self._get_contact

    async def _get_contact(self, object_id: ua.NodeId, *args: ua.Variant) -> ua.CallMethodResult:
        refused = check_arguments(CONTACT_INPUTS, args)
        if refused is not None:
            return refused
        assert self.personal is not None
        incident_id = str(args[0].Value)
        user = CURRENT_USER.get()
        account = user.account if isinstance(user, CityUser) else None
        client = user.client if isinstance(user, CityUser) else None
        if not isinstance(user, CityUser) or not user.encrypted:
            self.events.emit(
                REFUSED,
                {"user": account, "client": client, "incident": incident_id, "reason": "channel not encrypted"},
            )
            return status_result(ua.StatusCodes.BadSecurityModeInsufficient)
        try:
            contact = await self.personal.read_contact(incident_id, account, client)
        except CommandError as exc:
            return status_result(int(exc.status))
        return status_result(ua.StatusCodes.Good, outputs=[ua.Variant(contact, ua.VariantType.String)])

    def _guard_incident_methods(self, aspace: Any, ns: int) -> None:
        """ReportIncident and CloseIncident need the `call` permission of incident.report / incident.close."""
        for name, action in GUARDED_INCIDENT_METHODS.items():
            node = aspace.get(string_nodeid(f"Incidents/{name}", ns))
            if node is None or node.call is None:
                continue
            node.call = self._guarded(node.call, name, action)

    def _guarded(self, call: Callable[..., Any], name: str, action: str) -> Callable[..., Any]:
        async def guarded(object_id: ua.NodeId, *args: ua.Variant) -> ua.CallMethodResult:
            user = CURRENT_USER.get()
            account = user.account if isinstance(user, CityUser) else None
            if not self.policy.may_call(account, INCIDENT_TARGET, action):
                self.denied(user, name, f"no call permission {INCIDENT_TARGET}.{action}")
                return status_result(ua.StatusCodes.BadUserAccessDenied)
            result: ua.CallMethodResult = await call(object_id, *args)
            return result

        return guarded


class UaSecurityEvents:
    """Emits each security event as a CitySecurityEventType event of the Server object (a SecurityEvents sink)."""

    def __init__(self, server: Server, type_node: Node, generator: Any) -> None:
        self.server = server
        self.type_node = type_node
        self._generator = generator
        self._lock = asyncio.Lock()

    @classmethod
    async def install(cls, server: Server, ns: int) -> UaSecurityEvents:
        """Add Types/CitySecurityEventType (subtype of AuditSecurityEventType) and an event generator on Server."""
        type_id = string_nodeid(f"{TYPES_PREFIX}/{EVENT_TYPE_NAME}", ns)
        base = server.get_node(ns0(ua.ObjectIds.AuditSecurityEventType))
        etype = await base.add_object_type(type_id, ua.QualifiedName(EVENT_TYPE_NAME, ns))
        for name in EVENT_FIELDS:
            await etype.add_property(
                string_nodeid(f"{TYPES_PREFIX}/{EVENT_TYPE_NAME}/{name}", ns),
                ua.QualifiedName(name, ns),
                "",
                ua.VariantType.String,
            )
        generator = await server.get_event_generator(etype, ua.ObjectIds.Server)
        # asyncua's AuditEvent declares ActionTimeStamp with a NodeId where a VariantType belongs
        generator.event.data_types["ActionTimeStamp"] = ua.VariantType.DateTime
        generator.event.data_types["StatusCodeId"] = ua.VariantType.StatusCode
        return cls(server, etype, generator)

    @property
    def type_id(self) -> ua.NodeId:
        """The NodeId of CitySecurityEventType."""
        return self.type_node.nodeid

    async def __call__(self, event: SecurityEvent) -> None:
        """Trigger one event (serialised: the generator's event object is reused)."""
        async with self._lock:
            ev = self._generator.event
            ev.Severity = event.severity
            ev.SourceName = "Security"
            ev.ActionTimeStamp = event.ts
            ev.Status = event.success
            ev.ServerId = APPLICATION_URI
            ev.ClientUserId = event.user or ""
            ev.ClientAuditEntryId = ""
            ev.Kind = event.kind
            ev.ClientAddress = event.client or ""
            ev.Details = json.dumps(event.details, sort_keys=True, default=str)
            await self._generator.trigger(time_attr=event.ts, message=event.message)
