"""The session's user name reaches the command service for writes and method calls."""

from __future__ import annotations

from typing import Any

import pytest
from asyncua import Client, ua
from asyncua.crypto.permission_rules import User, UserRole
from uakit import command_service
from uasites import make_site

from scada.opcua import CityServer


class PasswordUsers:
    """A user manager over a fixed table (the security issue brings the real one)."""

    def __init__(self, users: dict[str, str]) -> None:
        self.users = users

    def get_user(self, iserver: Any, username: str | None = None, password: str | None = None, certificate: Any = None):
        if username is None:
            return User(role=UserRole.User)  # anonymous sessions: asyncua's ruleset refuses the Anonymous role
        if self.users.get(username) == password:
            return User(role=UserRole.User, name=username)
        return None


async def test_user_name_of_the_session_reaches_the_command_service(free_port: int) -> None:
    site = make_site()
    service, driver = command_service(site)
    server = CityServer(site, service, "127.0.0.1", free_port, user_manager=PasswordUsers({"alice": "s3cret"}))
    await server.start()
    try:
        assert server.endpoint_url == f"opc.tcp://127.0.0.1:{free_port}/cityscada"
        client = Client(server.endpoint_url)
        client.set_user("alice")
        client.set_password("s3cret")
        async with client:
            ns = await client.get_namespace_index("urn:cityscada:city")
            lamp = client.get_node(ua.NodeId("Lighting/CAB-0001/L-000001", ns))
            await lamp.call_method(f"{ns}:SetLevel", 20.0)
            await client.get_node(ua.NodeId("Lighting/CAB-0001/L-000001/LevelSetpoint", ns)).write_value(30.0)
        async with Client(server.endpoint_url) as anonymous:
            lamp = anonymous.get_node(ua.NodeId("Lighting/CAB-0001/L-000001", ns))
            await lamp.call_method(f"{ns}:SetLevel", 10.0)
        assert [(r.user, r.origin) for r in driver.requests] == [
            ("alice", "opcua-method"),
            ("alice", "opcua-write"),
            (None, "opcua-method"),
        ]
        intruder = Client(server.endpoint_url)
        intruder.set_user("alice")
        intruder.set_password("wrong")
        with pytest.raises(ua.UaStatusCodeError):
            await intruder.connect()
        await intruder.disconnect()
    finally:
        await server.stop()
