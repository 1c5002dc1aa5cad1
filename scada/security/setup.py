"""build_security(site, data_dir): every security part of a site, ready for CityServer and the command service.

Wiring (scada.app)::

    security = build_security(site, data_dir, hostnames=[...])
    commands.set_authorizer(security.authorizer)
    server = CityServer(site, commands, host, port, **security.server_kwargs())
    incidents = IncidentService(..., vault=security.vault, journal=historian)
    security.attach(historian=historian, incidents=incidents)   # journal of security events, purge, reads
    group.add("personal-data", security.personal)               # after the historian, before the server

Files under `data_dir`: pki/ (own certificate, trust list) and keys/contact.key (the contacts' key, 0600).
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from scada.incidents.vault import Vault
from scada.model import utcnow
from scada.opcua.security import ServerSecurity
from scada.security.auth import Authenticator
from scada.security.authorizer import Authorizer
from scada.security.events import SecurityEvents, journal_sink
from scada.security.personal import PersonalData
from scada.security.pki import PkiFolder
from scada.security.policy import Policy, SecurityConfig, load_security_config
from scada.security.throttle import LoginThrottle
from scada.security.ua_users import CityUserManager
from scada.security.users import UserStore
from scada.site.model import Site

PKI_DIR = "pki"
KEYS_DIR = "keys"


@dataclass
class SecuritySetup:
    """The security parts of one site, built together."""

    config: SecurityConfig
    store: UserStore
    policy: Policy
    events: SecurityEvents
    authenticator: Authenticator
    authorizer: Authorizer
    pki: PkiFolder
    user_manager: CityUserManager
    vault: Vault
    personal: PersonalData
    server_security: ServerSecurity

    def server_kwargs(self) -> dict[str, Any]:
        """The CityServer keyword arguments: user_manager and security."""
        return {"user_manager": self.user_manager, "security": self.server_security}

    def attach(self, *, historian: Any = None, incidents: Any = None) -> None:
        """Journal security events in the historian; give personal data its database and incident service."""
        if historian is not None:
            self.events.add_sink(journal_sink(historian))
            self.personal.attach(engine=lambda: historian.engine, flush=historian.flush)
        if incidents is not None:
            self.personal.attach(incidents=incidents)


def default_hostnames() -> list[str]:
    """The names the server certificate carries by default: this machine's name, its FQDN and localhost."""
    names = [socket.gethostname(), socket.getfqdn(), "localhost"]
    return [n for n in dict.fromkeys(names) if n]


def build_security(
    site: Site,
    data_dir: str | Path,
    *,
    hostnames: Sequence[str] | None = None,
    addresses: Sequence[str] = ("127.0.0.1",),
    config: SecurityConfig | None = None,
    throttle: LoginThrottle | None = None,
    store: UserStore | None = None,
    clock: Callable[[], datetime] = utcnow,
    purge_interval_s: float = 3600.0,
    renewal_check_s: float = 86_400.0,
) -> SecuritySetup:
    """Every security part of `site` (its site.yaml `security` section and users file) with files in data_dir."""
    data = Path(data_dir)
    config = config or load_security_config(site.folder)
    store = store or UserStore(config.users_file)
    store.load()
    policy = Policy(config, store)
    events = SecurityEvents(clock=clock)
    authenticator = Authenticator(store, throttle, on_security_event=events)
    pki = PkiFolder(data / PKI_DIR, clock=clock)
    users = CityUserManager(authenticator, policy, clock=clock, on_security_event=events)
    vault = Vault(data / KEYS_DIR)
    personal = PersonalData(policy, vault, on_event=events, clock=clock, purge_interval_s=purge_interval_s)
    server_security = ServerSecurity(
        policy=policy,
        pki=pki,
        users=users,
        events=events,
        personal=personal,
        hostnames=default_hostnames() if hostnames is None else hostnames,
        addresses=addresses,
        organization=f"cityscada {site.name}",
        renewal_check_s=renewal_check_s,
    )
    return SecuritySetup(
        config=config,
        store=store,
        policy=policy,
        events=events,
        authenticator=authenticator,
        authorizer=Authorizer(policy),
        pki=pki,
        user_manager=users,
        vault=vault,
        personal=personal,
        server_security=server_security,
    )
