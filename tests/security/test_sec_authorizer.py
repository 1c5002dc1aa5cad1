"""The authorizer in the real command service on the small site: who may command what, and refusals audited."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path

import pytest

from scada.commands import CommandService
from scada.model import AccessDeniedError, CommandAudit, Quality, WriteRequest, WriteResult
from scada.security.authorizer import Authorizer
from scada.security.policy import Policy
from scada.security.roles import Permission
from scada.site.loader import load_site
from scada.site.model import Site

ROOT = Path(__file__).resolve().parents[2]


class RecordingDriver:
    """Stands in for the field: records what the command service lets through."""

    name = "recording"

    def __init__(self, ids: Iterable[str]) -> None:
        self.ids = list(ids)
        self.requests: list[WriteRequest] = []

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    def device_ids(self) -> Iterable[str]:
        return self.ids

    async def execute(self, request: WriteRequest) -> WriteResult:
        self.requests.append(request)
        return WriteResult(Quality.GOOD)


@pytest.fixture(scope="module")
def small_site() -> Site:
    return load_site(ROOT / "config" / "small")


@pytest.fixture
def commands(small_site: Site, policy: Policy) -> tuple[CommandService, RecordingDriver, list[CommandAudit]]:
    service = CommandService(small_site)
    driver = RecordingDriver(d.id for d in small_site.field_devices())
    service.register_driver(driver)
    service.set_authorizer(Authorizer(policy))
    audits: list[CommandAudit] = []
    service.add_audit_sink(audits.append)
    return service, driver, audits


def lamp_id(site: Site) -> str:
    return next(iter(site.lamps())).id


async def test_observer_cannot_set_a_lamp_level_and_the_refusal_is_audited(commands, small_site: Site) -> None:
    service, driver, audits = commands
    lamp = lamp_id(small_site)
    with pytest.raises(AccessDeniedError) as info:
        await service.execute(WriteRequest(lamp, "set_level", {"Level": 40}, user="olga", origin="opcua-method"))
    assert info.value.status == Quality.BAD_USER_ACCESS_DENIED
    assert driver.requests == []  # nothing reached the field
    assert len(audits) == 1
    audit = audits[0]
    assert (audit.user, audit.device_id, audit.action, audit.status) == (
        "olga",
        lamp,
        "set_level",
        Quality.BAD_USER_ACCESS_DENIED,
    )
    assert "may not call lamp.set_level" in audit.message


async def test_operator_can_set_a_lamp_level(commands, small_site: Site) -> None:
    service, driver, audits = commands
    lamp = lamp_id(small_site)
    result = await service.execute(WriteRequest(lamp, "set_level", {"Level": 40}, user="oscar", origin="opcua-method"))
    assert result.ok and len(driver.requests) == 1 and audits[-1].status == Quality.GOOD


@pytest.mark.parametrize(
    ("user", "origin", "device", "action", "args", "allowed"),
    [
        (None, "opcua-method", "CAB-0001", "set_mode", {"Mode": 1}, False),  # anonymous never commands
        (None, "opcua-write", "CAB-0001", "set_presence_boost", {"Level": 50}, False),
        (None, "automation", "CAB-0001", "set_mode", {"Mode": 1}, True),  # the server's own schedules
        (None, "system", "VMS-01", "blank", {}, True),
        (None, "console", "VMS-01", "blank", {}, False),  # an unknown origin without a user is anonymous
        ("oscar", "opcua-method", "TLC-001", "release_plan", {}, False),  # controllers: engineers only
        ("emma", "opcua-method", "TLC-001", "release_plan", {}, True),
        ("emma", "opcua-method", "VMS-01", "blank", {}, False),  # signs: operators and supervisors
        ("oscar", "opcua-method", "VMS-01", "blank", {}, True),
        ("oscar", "opcua-write", "CAB-0001", "set_presence_hold", {"Seconds": 60}, True),
        ("olga", "opcua-write", "CAB-0001", "set_presence_hold", {"Seconds": 60}, False),
        ("sacha", "opcua-method", "PK-01", "set_display_mode", {"Mode": 0}, False),
        ("sam", "opcua-method", "PK-01", "set_display_mode", {"Mode": 0}, True),
        ("ghost", "opcua-method", "PK-01", "set_display_mode", {"Mode": 0}, False),  # unknown user
        ("olga", "automation", "CAB-0001", "set_mode", {"Mode": 1}, False),  # automation on behalf of a user
    ],
)
async def test_authorization_matrix(commands, user, origin, device, action, args, allowed) -> None:
    service, driver, audits = commands
    request = WriteRequest(device, action, args, user=user, origin=origin)
    if allowed:
        assert (await service.execute(request)).ok
        assert len(driver.requests) == 1
    else:
        with pytest.raises(AccessDeniedError):
            await service.execute(request)
        assert driver.requests == []
    assert len(audits) == 1


async def test_write_needs_write_setpoints_as_well_as_call(commands, policy: Policy) -> None:
    service, _, _ = commands
    grants = {**policy.config.grants, Permission.WRITE_SETPOINTS: frozenset()}
    service.set_authorizer(Authorizer(Policy(replace(policy.config, grants=grants), policy.users)))
    request = WriteRequest("CAB-0001", "set_presence_hold", {"Seconds": 60}, user="oscar", origin="opcua-write")
    with pytest.raises(AccessDeniedError, match="may not write setpoints"):
        await service.execute(request)
    method = WriteRequest(
        "CAB-0001", "set_presence", {"BoostLevel": 50, "HoldSeconds": 60}, user="oscar", origin="opcua-method"
    )
    assert (await service.execute(method)).ok  # the same user may still call methods
