"""Helpers of the OPC UA security tests: application certificates, secure clients, a security stack on the small site."""

from __future__ import annotations

import asyncio
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from asyncua import Client, ua
from asyncua.crypto.security_policies import (
    SecurityPolicyAes128Sha256RsaOaep,
    SecurityPolicyAes256Sha256RsaPss,
    SecurityPolicyBasic256Sha256,
)

from scada.catalog import NAMESPACE_URI
from scada.commands import CommandService
from scada.model import Quality, WriteRequest, WriteResult, utcnow
from scada.opcua import CityServer
from scada.security.passwords import PasswordHasher
from scada.security.pki import der_of, key_pem, make_application_certificate, new_key
from scada.security.policy import SecurityConfig, load_security_config
from scada.security.setup import SecuritySetup, build_security
from scada.security.users import UserStore
from scada.site.loader import load_site
from scada.site.model import Site

ROOT = Path(__file__).resolve().parents[2]
SMALL = ROOT / "config" / "small"
CLIENT_URI = "urn:cityscada:test:client"
LAMP = "Lighting/CAB-0001/L-000001"
POLICIES = {
    "Basic256Sha256": SecurityPolicyBasic256Sha256,
    "Aes128_Sha256_RsaOaep": SecurityPolicyAes128Sha256RsaOaep,
    "Aes256_Sha256_RsaPss": SecurityPolicyAes256Sha256RsaPss,
}
SIGN_AND_ENCRYPT = ua.MessageSecurityMode.SignAndEncrypt
SIGN = ua.MessageSecurityMode.Sign


def demo_password(user: str) -> str:
    """The published demo password of a config/small user ("<user>-demo-pass")."""
    return f"{user}-demo-pass"


class Clock:
    """A settable UTC clock: real time shifted by `offset`."""

    def __init__(self) -> None:
        self.offset = timedelta()

    def __call__(self) -> datetime:
        return utcnow() + self.offset


@dataclass(frozen=True)
class AppCert:
    """A client application certificate and its key, as files."""

    cert: Path
    key: Path
    der: bytes
    uri: str

    @property
    def thumbprint(self) -> str:
        from scada.security.users import certificate_thumbprint

        return certificate_thumbprint(self.der)


def make_app_cert(folder: Path, name: str = "client", uri: str = CLIENT_URI, **kwargs: Any) -> AppCert:
    """A self-signed client application certificate (RSA 2048) written as DER + PEM key files."""
    folder.mkdir(parents=True, exist_ok=True)
    key = new_key()
    cert = make_application_certificate(key, uri, name, hostnames=["localhost"], **kwargs)
    cert_path, key_path = folder / f"{name}.der", folder / f"{name}.pem"
    cert_path.write_bytes(der_of(cert))
    key_path.write_bytes(key_pem(key))
    return AppCert(cert_path, key_path, der_of(cert), uri)


async def secure_client(
    url: str,
    app: AppCert,
    user: str | None = None,
    password: str | None = None,
    *,
    policy: str = "Basic256Sha256",
    mode: ua.MessageSecurityMode = SIGN_AND_ENCRYPT,
    timeout: float = 5.0,
) -> Client:
    """A Client set up for a secure channel (not connected yet)."""
    client = Client(url, timeout=timeout)
    client.application_uri = app.uri
    await client.set_security(POLICIES[policy], str(app.cert), str(app.key), mode=mode)
    if user is not None:
        client.set_user(user)
        client.set_password(password if password is not None else demo_password(user))
    return client


class RecordingDriver:
    """A field driver recording the commands that reach it (every command is accepted)."""

    name = "recording"

    def __init__(self, ids: list[str]) -> None:
        self.ids = ids
        self.requests: list[WriteRequest] = []

    async def start(self) -> None:
        """Nothing to start."""

    async def stop(self) -> None:
        """Nothing to stop."""

    def device_ids(self) -> list[str]:
        """Every field device of the site."""
        return self.ids

    async def execute(self, request: WriteRequest) -> WriteResult:
        """Record and accept."""
        self.requests.append(request)
        return WriteResult(Quality.GOOD, "accepted")


@dataclass
class SecureCity:
    """A started CityServer with the site's security, a recording driver and the audit trail."""

    site: Site
    security: SecuritySetup
    server: CityServer
    commands: CommandService
    driver: RecordingDriver
    app: AppCert
    data_dir: Path
    audits: list[Any] = field(default_factory=list)

    @property
    def url(self) -> str:
        return self.server.endpoint_url

    async def client(self, user: str | None = None, password: str | None = None, **kwargs: Any) -> Client:
        """A secure client with the trusted test certificate (not connected)."""
        return await secure_client(self.url, self.app, user, password, **kwargs)

    async def stop(self) -> None:
        await self.server.stop()


def cheap_store(folder: Path) -> UserStore:
    """A users file in `folder` holding the config/small demo users with a fast argon2id (tests only)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "users.yaml"
    shutil.copyfile(SMALL / "users.yaml", path)
    path.chmod(0o600)
    store = UserStore(path, PasswordHasher(time_cost=1, memory_kib=8, parallelism=1))
    store.load()
    for account in store.users():
        store.set_password(account.name, demo_password(account.name))
    return store


def small_site() -> Site:
    """The small site."""
    return load_site(SMALL)


def small_config(**changes: Any) -> SecurityConfig:
    """The small site's security section with some fields changed."""
    return replace(load_security_config(SMALL), **changes)


async def start_city(
    data_dir: Path,
    port: int,
    *,
    config: SecurityConfig | None = None,
    store: UserStore | None = None,
    clock: Callable[[], datetime] | None = None,
    trust_client: bool = True,
    incident_factory: Callable[[Site, CommandService, SecuritySetup], Any] | None = None,
    **kwargs: Any,
) -> SecureCity:
    """The small site's CityServer on 127.0.0.1:port with build_security(); the test client's cert trusted.

    `incident_factory(site, commands, security)` makes the incident handler of the server (default: asyncua's
    in-memory registry).
    """
    site = small_site()
    security = build_security(
        site,
        data_dir,
        hostnames=["localhost"],
        config=config,
        store=store,
        clock=clock or utcnow,
        **kwargs,
    )
    commands = CommandService(site)
    driver = RecordingDriver([d.id for d in site.field_devices()])
    commands.register_driver(driver)
    commands.set_authorizer(security.authorizer)
    app = make_app_cert(data_dir / "client")
    if trust_client:
        security.pki.trust(app.cert)
    handler = incident_factory(site, commands, security) if incident_factory is not None else None
    server = CityServer(site, commands, "127.0.0.1", port, incident_handler=handler, **security.server_kwargs())
    city = SecureCity(site, security, server, commands, driver, app, data_dir)
    commands.add_audit_sink(city.audits.append)
    await server.start()
    return city


async def city_ns(client: Client) -> int:
    """The city namespace index seen by a client."""
    return await client.get_namespace_index(NAMESPACE_URI)


async def eventually(predicate: Callable[[], bool], timeout: float = 10.0, what: str = "condition") -> None:
    """Poll a predicate until it holds (AssertionError after `timeout` seconds)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"{what} not reached within {timeout} s"
        await asyncio.sleep(0.02)


class EventCollector:
    """An asyncua subscription handler keeping the events it receives."""

    def __init__(self) -> None:
        self.events: list[Any] = []

    def event_notification(self, event: Any) -> None:
        """asyncua's callback."""
        self.events.append(event)

    def kinds(self) -> list[str]:
        """The Kind field of every event received."""
        return [getattr(e, "Kind", None) for e in self.events]
