"""`cityscada demo`'s preparation: the console's certificate made and trusted, so a fresh machine's console logs in."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from hmikit import DEMO_PASSWORDS, FAST, Stack

from hmi.client import ConsoleClient, Credentials, LoginError
from hmi.security import resolve_security
from scada.security.console_trust import trust_local_console

pytestmark = pytest.mark.qt


async def login(stack: Stack, pki_dir: Path) -> ConsoleClient:
    """The operator's console as `cityscada hmi` starts it (security "auto", certificate in `pki_dir`)."""
    security = await resolve_security("auto", "operator", pki_dir)
    client = ConsoleClient(Credentials(stack.url, "operator", DEMO_PASSWORDS["operator"], security), FAST)
    await client.connect()
    return client


async def test_the_demo_preparation_yields_a_certificate_the_server_trusts(tmp_path: Path, free_port: int) -> None:
    stack = Stack(free_port, tmp_path)
    await stack.start(trust_console=False)
    fresh = tmp_path / "fresh-machine-console"  # no certificate yet, none trusted by the server
    try:
        assert stack.server is not None and stack.server.security is not None
        pki = stack.server.security.pki
        with pytest.raises(LoginError, match="refused this console's certificate"):
            await login(stack, fresh)  # without the preparation: refused
        own = await trust_local_console(pki, fresh)
        assert own.cert.parent == fresh and own.cert.is_file()
        again = await trust_local_console(pki, fresh)  # idempotent: same certificate, one trusted entry
        assert again.thumbprint == own.thumbprint
        trusted = [entry.thumbprint for entry in pki.entries() if entry.state == "trusted"]
        assert trusted.count(own.thumbprint) == 1
        client = await login(stack, fresh)  # a real Basic256Sha256/SignAndEncrypt session with that certificate
        try:
            assert client.connected and client.credentials.security_label == "Basic256Sha256/SignAndEncrypt"
            assert str(own.cert) in (client.credentials.security or "")
            site = json.loads(await client.read_value("SiteMap/Site"))
            assert site["name"] == stack.site.name
        finally:
            await client.close()
    finally:
        await stack.stop()
        await asyncio.sleep(0.1)
