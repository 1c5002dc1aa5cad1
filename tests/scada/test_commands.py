"""The command service: argument checks, routing to the owning driver, audit of every outcome."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import pytest

from scada.catalog import Kind, action_spec
from scada.commands import CommandService, validate_args
from scada.model import (
    AccessDeniedError,
    CommandAudit,
    DeviceCommunicationError,
    InvalidArgumentError,
    OutOfRangeError,
    Quality,
    UnknownDeviceError,
    WriteRequest,
    WriteResult,
)
from scada.site.model import Cabinet, Endpoint, Lamp, Sign, Site


def make_site() -> Site:
    cabinet = Cabinet(id="CAB-1", name="c", district="d", lat=47.0, lon=5.0, endpoint=Endpoint("modbus"))
    cabinet.lamps = [
        Lamp(id=f"L-{i}", cabinet_id="CAB-1", index=i, lat=47.0, lon=5.0, rated_w=40, legacy_w=100) for i in range(3)
    ]
    sign = Sign(id="VMS-1", name="s", district="d", lat=47.0, lon=5.0, endpoint=Endpoint("modbus", port=503))
    return Site(
        name="t",
        title="t",
        lat=47.0,
        lon=5.0,
        timezone="UTC",
        folder=Path("."),
        cabinets={"CAB-1": cabinet},
        signs={"VMS-1": sign},
    )


class RecordingDriver:
    """A driver that records what reaches it (the command service's own logic is under test here)."""

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
        return WriteResult(Quality.GOOD, "accepted", {"echo": dict(request.args)})


@pytest.fixture
def service() -> tuple[CommandService, RecordingDriver, list[CommandAudit]]:
    svc = CommandService(make_site())
    driver = RecordingDriver(["CAB-1", "VMS-1"])
    svc.register_driver(driver)
    audits: list[CommandAudit] = []
    svc.add_audit_sink(audits.append)
    return svc, driver, audits


async def test_lamp_command_reaches_its_cabinet_driver_and_is_audited(service) -> None:
    svc, driver, audits = service
    result = await svc.execute(WriteRequest("L-1", "set_level", {"Level": 55}, user="op", origin="test"))
    assert result.ok
    assert driver.requests == [WriteRequest("L-1", "set_level", {"Level": 55.0}, user="op", origin="test")]
    assert isinstance(driver.requests[0].args["Level"], float)
    assert [(a.user, a.device_id, a.action, a.status) for a in audits] == [("op", "L-1", "set_level", 0)]


@pytest.mark.parametrize(
    ("device", "action", "args", "error", "status"),
    [
        ("L-1", "set_level", {"Level": 101.0}, OutOfRangeError, Quality.BAD_OUT_OF_RANGE),
        ("L-1", "set_level", {"Level": -0.5}, OutOfRangeError, Quality.BAD_OUT_OF_RANGE),
        ("L-1", "set_level", {"Level": "50"}, InvalidArgumentError, Quality.BAD_INVALID_ARGUMENT),
        ("L-1", "set_level", {"Level": float("nan")}, InvalidArgumentError, Quality.BAD_INVALID_ARGUMENT),
        ("L-1", "set_level", {}, InvalidArgumentError, Quality.BAD_INVALID_ARGUMENT),
        ("L-1", "set_level", {"Level": 5, "x": 1}, InvalidArgumentError, Quality.BAD_INVALID_ARGUMENT),
        ("CAB-1", "set_mode", {"Mode": 3}, OutOfRangeError, Quality.BAD_OUT_OF_RANGE),
        ("CAB-1", "set_mode", {"Mode": 1.5}, InvalidArgumentError, Quality.BAD_INVALID_ARGUMENT),
        ("CAB-1", "set_mode", {"Mode": True}, InvalidArgumentError, Quality.BAD_INVALID_ARGUMENT),
        (
            "VMS-1",
            "display",
            {"Text": "A\nB\nC\nD", "Pictogram": 1, "Flashing": False},
            OutOfRangeError,
            Quality.BAD_OUT_OF_RANGE,
        ),
        (
            "VMS-1",
            "display",
            {"Text": "X" * 19, "Pictogram": 1, "Flashing": False},
            OutOfRangeError,
            Quality.BAD_OUT_OF_RANGE,
        ),
        (
            "VMS-1",
            "display",
            {"Text": "CAFÉ", "Pictogram": 1, "Flashing": False},
            InvalidArgumentError,
            Quality.BAD_INVALID_ARGUMENT,
        ),
        (
            "VMS-1",
            "display",
            {"Text": "OK", "Pictogram": 8, "Flashing": False},
            OutOfRangeError,
            Quality.BAD_OUT_OF_RANGE,
        ),
        ("NOPE", "set_level", {"Level": 1.0}, UnknownDeviceError, Quality.BAD_NODE_ID_UNKNOWN),
        ("L-1", "display", {}, UnknownDeviceError, Quality.BAD_NODE_ID_UNKNOWN),
    ],
)
async def test_bad_arguments_are_refused_before_the_driver(service, device, action, args, error, status) -> None:
    svc, driver, audits = service
    with pytest.raises(error) as caught:
        await svc.execute(WriteRequest(device, action, args))
    assert caught.value.status == status
    assert driver.requests == []
    assert audits[-1].status == status


async def test_device_without_driver_is_a_communication_error() -> None:
    svc = CommandService(make_site())
    with pytest.raises(DeviceCommunicationError) as caught:
        await svc.execute(WriteRequest("CAB-1", "set_mode", {"Mode": 1}))
    assert caught.value.status == Quality.BAD_COMM


async def test_authorizer_refusal_is_audited(service) -> None:
    svc, driver, audits = service

    def deny(request, device, spec) -> None:
        raise AccessDeniedError(f"{request.user} may not {spec.name}")

    svc.set_authorizer(deny)
    with pytest.raises(AccessDeniedError):
        await svc.execute(WriteRequest("CAB-1", "set_mode", {"Mode": 1}, user="observer"))
    assert driver.requests == []
    assert audits[-1].status == Quality.BAD_USER_ACCESS_DENIED and audits[-1].user == "observer"


def test_sign_text_on_three_lines_of_eighteen_is_accepted() -> None:
    spec = action_spec(Kind.SIGN, "display")
    assert spec is not None
    args = validate_args(spec, {"Text": "ACCIDENT A 500 M\nRALENTIR\nX" + " " * 17, "Pictogram": 1, "Flashing": True})
    assert args["Pictogram"] == 1 and args["Flashing"] is True
