"""Endpoints and the trust list through real clients: secure policies only by default, unknown certificates refused."""

from __future__ import annotations

from pathlib import Path

import pytest
from asyncua import Client, ua
from uasec_kit import (
    LAMP,
    POLICIES,
    SIGN,
    SIGN_AND_ENCRYPT,
    SecureCity,
    cheap_store,
    city_ns,
    make_app_cert,
    secure_client,
    small_config,
    start_city,
)

from scada.security.pki_cli import pki_main

SECURE_URIS = {cls.URI for cls in POLICIES.values()}


async def test_only_the_six_secure_endpoints_are_offered_by_default(city: SecureCity) -> None:
    endpoints = await Client(city.url).connect_and_get_server_endpoints()  # discovery: over an unsecured channel
    offered = {(e.SecurityPolicyUri, e.SecurityMode) for e in endpoints}
    assert offered == {(uri, mode) for uri in SECURE_URIS for mode in (SIGN, SIGN_AND_ENCRYPT)}
    for endpoint in endpoints:
        tokens = {t.TokenType for t in endpoint.UserIdentityTokens}
        assert tokens == {ua.UserTokenType.UserName, ua.UserTokenType.Certificate}  # no anonymous by default
        assert endpoint.ServerCertificate == city.security.server_security.own.der


async def test_an_unsecured_session_is_refused_when_no_none_endpoint_is_offered(city: SecureCity) -> None:
    # a client that skips its own endpoint check (stock asyncua would then serve it reads and writes)
    client = Client(city.url, timeout=5)
    client.find_endpoint = staticmethod(lambda endpoints, mode, uri: endpoints[0])  # type: ignore[method-assign]
    with pytest.raises(ua.uaerrors.BadSecurityPolicyRejected):
        await client.connect()
    await client.disconnect()
    assert city.driver.requests == []


@pytest.mark.parametrize("policy", sorted(POLICIES))
@pytest.mark.parametrize("mode", [SIGN, SIGN_AND_ENCRYPT], ids=["Sign", "SignAndEncrypt"])
async def test_every_secure_policy_and_mode_serves_an_operator(
    city: SecureCity, policy: str, mode: ua.MessageSecurityMode
) -> None:
    async with await city.client("operator", policy=policy, mode=mode) as client:
        ns = await city_ns(client)
        await client.get_node(ua.NodeId(LAMP, ns)).call_method(f"{ns}:SetLevel", 40.0)
    assert [(r.device_id, r.user, r.args) for r in city.driver.requests] == [("L-000001", "operator", {"Level": 40.0})]


async def test_an_untrusted_certificate_is_refused_kept_in_rejected_then_accepted_after_pki_trust(
    tmp_path: Path, free_port: int
) -> None:
    city = await start_city(tmp_path / "data", free_port, store=cheap_store(tmp_path / "u"), trust_client=False)
    try:
        stranger = make_app_cert(tmp_path / "stranger", "stranger", "urn:somewhere:stranger")
        client = await secure_client(city.url, stranger, "operator")
        with pytest.raises(ua.uaerrors.BadSecurityChecksFailed):
            await client.connect()
        await client.disconnect()
        rejected = city.security.pki.rejected / f"{stranger.thumbprint}.der"
        assert rejected.read_bytes() == stranger.der
        assert city.driver.requests == []

        data_dir = str(tmp_path / "data")
        assert pki_main(["trust", stranger.thumbprint[:12], "--data-dir", data_dir]) == 0
        assert not rejected.exists()
        assert (city.security.pki.trusted / f"{stranger.thumbprint}.der").exists()
        async with await secure_client(city.url, stranger, "operator") as client:  # same server, no restart
            ns = await city_ns(client)
            await client.get_node(ua.NodeId(LAMP, ns)).call_method(f"{ns}:SetLevel", 55.0)
        assert [(r.action, r.user) for r in city.driver.requests] == [("set_level", "operator")]

        assert pki_main(["reject", stranger.thumbprint, "--data-dir", data_dir]) == 0
        client = await secure_client(city.url, stranger, "operator")
        with pytest.raises(ua.uaerrors.BadSecurityChecksFailed):
            await client.connect()
        await client.disconnect()
    finally:
        await city.stop()


async def test_a_certificate_naming_another_application_uri_is_refused_at_create_session(city: SecureCity) -> None:
    client = await city.client("operator")
    client.application_uri = "urn:cityscada:test:impostor"  # the certificate says CLIENT_URI
    with pytest.raises(ua.uaerrors.BadCertificateUriInvalid):
        await client.connect()
    await client.disconnect()


async def test_with_the_none_endpoint_anonymous_reads_but_cannot_write_or_call(tmp_path: Path, free_port: int) -> None:
    config = small_config(allow_anonymous_read=True, allow_none_endpoint=True)
    city = await start_city(tmp_path / "data", free_port, config=config, store=cheap_store(tmp_path / "u"))
    try:
        endpoints = await Client(city.url).connect_and_get_server_endpoints()
        none = [e for e in endpoints if e.SecurityMode == ua.MessageSecurityMode.None_]
        assert len(none) == 1
        assert [t.TokenType for t in none[0].UserIdentityTokens] == [ua.UserTokenType.Anonymous]
        async with Client(city.url, timeout=5) as anonymous:
            ns = await city_ns(anonymous)
            lamp = anonymous.get_node(ua.NodeId(LAMP, ns))
            assert (await lamp.read_browse_name()).Name == "L-000001"
            assert len(await lamp.get_children()) > 3  # browse
            subscription = await anonymous.create_subscription(100, None)
            await subscription.subscribe_data_change(anonymous.get_node(ua.NodeId(f"{LAMP}/Level", ns)))
            await subscription.delete()
            with pytest.raises(ua.uaerrors.BadUserAccessDenied):
                await lamp.call_method(f"{ns}:SetLevel", 10.0)
            with pytest.raises(ua.uaerrors.BadUserAccessDenied):
                await anonymous.get_node(ua.NodeId(f"{LAMP}/LevelSetpoint", ns)).write_value(10.0)
        assert city.driver.requests == []
        # a password on the None endpoint is refused (it would give rights over an unsigned channel)
        client = Client(city.url, timeout=5)
        client.set_user("operator")
        client.set_password("operator-demo-pass")
        with pytest.raises(ua.UaError):
            await client.connect()
        await client.disconnect()
    finally:
        await city.stop()
