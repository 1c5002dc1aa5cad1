"""The server's certificate through real clients: created on first start, renewed before it expires (clock injected)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from asyncua import Client, ua
from cryptography import x509
from uasec_kit import LAMP, Clock, cheap_store, city_ns, eventually, start_city

from scada.opcua.security import APPLICATION_URI


async def endpoint_certificates(url: str) -> set[bytes]:
    return {e.ServerCertificate for e in await Client(url).connect_and_get_server_endpoints()}


async def test_first_start_creates_the_certificate_and_a_later_start_renews_it_when_due(
    tmp_path: Path, free_port: int
) -> None:
    clock = Clock()
    store = cheap_store(tmp_path / "u")
    city = await start_city(tmp_path / "data", free_port, store=store, clock=clock)
    pki = city.security.pki
    try:
        first = city.security.server_security.own
        assert first is not None and first.created
        assert pki.cert_path.read_bytes() == first.der
        san = first.certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        assert san.get_values_for_type(x509.UniformResourceIdentifier) == [APPLICATION_URI]
        assert await endpoint_certificates(city.url) == {first.der}
    finally:
        await city.stop()

    city = await start_city(tmp_path / "data", free_port, store=store, clock=clock)  # not due: kept
    try:
        assert city.security.server_security.own.der == first.der  # type: ignore[union-attr]
    finally:
        await city.stop()

    clock.offset = first.not_after - clock() - timedelta(days=20)  # 20 days left
    city = await start_city(tmp_path / "data", free_port, store=store, clock=clock)
    try:
        second = city.security.server_security.own
        assert second is not None and second.renewed and second.der != first.der
        assert await endpoint_certificates(city.url) == {second.der}
        assert [p.suffix for p in sorted(pki.archive.iterdir())] == [".der", ".pem"]
        async with await city.client("operator") as client:  # the client checks the server's signature
            ns = await city_ns(client)
            await client.get_node(ua.NodeId(LAMP, ns)).call_method(f"{ns}:SetLevel", 1.0)
    finally:
        await city.stop()


async def test_the_daily_check_renews_the_running_servers_certificate(tmp_path: Path, free_port: int) -> None:
    clock = Clock()
    city = await start_city(
        tmp_path / "data", free_port, store=cheap_store(tmp_path / "u"), clock=clock, renewal_check_s=0.1
    )
    events: list[str] = []
    city.security.events.add_sink(lambda event: events.append(event.kind))
    try:
        security = city.security.server_security
        first = security.own
        assert first is not None
        async with await city.client("operator") as before:  # a session opened with the first certificate
            clock.offset = first.not_after - clock() - timedelta(days=10)
            await eventually(lambda: security.own is not None and security.own.der != first.der, what="renewal")
            ns = await city_ns(before)
            await before.get_node(ua.NodeId(LAMP, ns)).call_method(f"{ns}:SetLevel", 2.0)  # still served
        renewed = security.own
        assert renewed is not None and renewed.renewed
        assert await endpoint_certificates(city.url) == {renewed.der}
        async with await city.client("operator") as after:
            await after.get_node(ua.NodeId(LAMP, ns)).call_method(f"{ns}:SetLevel", 3.0)
        assert "server_certificate_renewed" in events
        assert [r.args["Level"] for r in city.driver.requests] == [2.0, 3.0]
    finally:
        await city.stop()
