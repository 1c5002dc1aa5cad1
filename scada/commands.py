"""The one command path: every OPC UA write, method call and automation command passes through here.

The service resolves the device, checks the arguments against the catalog (nothing is sent when they are
wrong), asks the authorizer, hands the command to the driver that owns the device, waits for the device's
answer and writes the audit record, whatever the outcome.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

from scada.catalog import SIGN_COLUMNS, SIGN_LINES, ActionSpec, ArgSpec, Kind, action_spec, sign_lines
from scada.model import (
    AuditSink,
    CommandAudit,
    CommandError,
    DeviceCommunicationError,
    Driver,
    InvalidArgumentError,
    OutOfRangeError,
    Quality,
    UnknownDeviceError,
    WriteRequest,
    WriteResult,
    utcnow,
)
from scada.site.model import Device, Site

log = logging.getLogger(__name__)

Authorizer = Callable[[WriteRequest, Device, ActionSpec], None]
"""Raises AccessDeniedError when the request's user may not do this; returns None otherwise."""

_INT_RANGES = {"UInt16": (0, 0xFFFF), "UInt32": (0, 0xFFFFFFFF), "Int32": (-(2**31), 2**31 - 1)}


def coerce_arg(arg: ArgSpec, value: Any) -> Any:
    """Check one argument's type and range against its spec; returns the value in its canonical Python type."""
    if arg.dtype == "Boolean":
        if not isinstance(value, bool):
            raise InvalidArgumentError(f"{arg.name} must be a Boolean, got {type(value).__name__}")
        return value
    if arg.dtype == "String":
        if not isinstance(value, str):
            raise InvalidArgumentError(f"{arg.name} must be a String, got {type(value).__name__}")
        return value
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidArgumentError(f"{arg.name} must be a {arg.dtype}, got {type(value).__name__}")
    if arg.dtype == "Double":
        number: float | int = float(value)
        if not math.isfinite(number):
            raise InvalidArgumentError(f"{arg.name} must be a finite number")
    else:
        if isinstance(value, float) and not value.is_integer():
            raise InvalidArgumentError(f"{arg.name} must be a whole number ({arg.dtype}), got {value}")
        number = int(value)
        low, high = _INT_RANGES[arg.dtype]
        if not low <= number <= high:
            raise OutOfRangeError(f"{arg.name}={number} does not fit in {arg.dtype}")
    if (arg.low is not None and number < arg.low) or (arg.high is not None and number > arg.high):
        raise OutOfRangeError(f"{arg.name}={number} is outside {_fmt(arg.low)}..{_fmt(arg.high)}")
    return number


def _fmt(bound: float | None) -> str:
    if bound is None:
        return ""
    return str(int(bound)) if float(bound).is_integer() else str(bound)


def check_sign_text(text: str) -> None:
    """A sign shows 3 lines of 18 printable ASCII characters: too much text is out of range, bad characters invalid."""
    lines = text.split("\n") if text else []
    if len(lines) > SIGN_LINES or any(len(line) > SIGN_COLUMNS for line in lines):
        raise OutOfRangeError(f"a sign shows {SIGN_LINES} lines of {SIGN_COLUMNS} characters: {text!r} does not fit")
    try:
        sign_lines(text)
    except ValueError as exc:
        raise InvalidArgumentError(str(exc)) from exc


def validate_args(spec: ActionSpec, args: Mapping[str, Any]) -> dict[str, Any]:
    """The action's arguments checked and coerced; missing, unknown, mistyped or out-of-range ones raise."""
    known = {arg.name for arg in spec.args}
    unknown = sorted(set(args) - known)
    if unknown:
        raise InvalidArgumentError(f"{spec.name} takes no argument {', '.join(unknown)}")
    checked: dict[str, Any] = {}
    for arg in spec.args:
        if arg.name not in args:
            raise InvalidArgumentError(f"{spec.name} needs the argument {arg.name}")
        if arg.dtype == "String" and spec.name == "display":
            value = coerce_arg(ArgSpec(arg.name, "String"), args[arg.name])
            check_sign_text(value)
            checked[arg.name] = value
        else:
            checked[arg.name] = coerce_arg(arg, args[arg.name])
    return checked


def field_device_id(device: Device) -> str:
    """The id of the device that has the field connection (a lamp's cabinet, a sensor's parking site)."""
    if device.kind is Kind.LAMP:
        return device.cabinet_id  # type: ignore[union-attr]
    if device.kind is Kind.PARKING_SENSOR:
        return device.site_id  # type: ignore[union-attr]
    return device.id


class CommandService:
    """Checks, authorizes, dispatches and audits every command on the site's devices."""

    def __init__(self, site: Site, *, timeout_s: float = 10.0) -> None:
        self._site = site
        self._timeout_s = timeout_s
        self._drivers: dict[str, Driver] = {}
        self._audit_sinks: list[AuditSink] = []
        self._authorizer: Authorizer | None = None

    @property
    def site(self) -> Site:
        """The site whose devices this service commands."""
        return self._site

    def register_driver(self, driver: Driver) -> None:
        """Route the commands of every device the driver reports to it."""
        for device_id in driver.device_ids():
            self._drivers[device_id] = driver

    def unregister_driver(self, driver: Driver) -> None:
        """Forget a driver (its devices then answer BadCommunicationError)."""
        for device_id in [key for key, value in self._drivers.items() if value is driver]:
            del self._drivers[device_id]

    def add_audit_sink(self, sink: AuditSink) -> None:
        """Send every audit record to `sink` too (the historian, a log)."""
        self._audit_sinks.append(sink)

    def set_authorizer(self, authorizer: Authorizer | None) -> None:
        """Install the role check (security); None allows every authenticated request."""
        self._authorizer = authorizer

    def resolve(self, request: WriteRequest) -> tuple[Device, ActionSpec, dict[str, Any]]:
        """The device, action and checked arguments of a request, or the CommandError that refuses it."""
        device = self._site.device(request.device_id)
        if device is None:
            raise UnknownDeviceError(f"no device {request.device_id!r} in site {self._site.name}")
        spec = action_spec(device.kind, request.action)
        if spec is None:
            raise UnknownDeviceError(f"a {device.kind.value} has no action {request.action!r}")
        return device, spec, validate_args(spec, request.args)

    async def execute(self, request: WriteRequest) -> WriteResult:
        """Carry out a command and return the device's answer; raises CommandError (audited) when refused."""
        received = utcnow()
        started = time.perf_counter()
        try:
            device, spec, args = self.resolve(request)
            if self._authorizer is not None:
                self._authorizer(request, device, spec)
            driver = self._drivers.get(device.id) or self._drivers.get(field_device_id(device))
            if driver is None:
                raise DeviceCommunicationError(f"no driver serves {field_device_id(device)}")
            try:
                result = await asyncio.wait_for(driver.execute(replace(request, args=args)), self._timeout_s)
            except TimeoutError as exc:
                raise CommandError(
                    f"{device.id} did not answer within {self._timeout_s:g} s", Quality.BAD_TIMEOUT
                ) from exc
        except CommandError as exc:
            self._audit(request, received, started, exc.status, str(exc))
            raise
        except Exception as exc:
            log.exception("command %s on %s failed", request.action, request.device_id)
            self._audit(request, received, started, Quality.BAD_INTERNAL, f"internal error: {exc}")
            raise CommandError(f"internal error: {exc}", Quality.BAD_INTERNAL) from exc
        self._audit(request, received, started, result.status, result.message)
        return result

    def _audit(self, request: WriteRequest, received: Any, started: float, status: int, message: str) -> None:
        record = CommandAudit(
            ts=received,
            user=request.user,
            origin=request.origin,
            device_id=request.device_id,
            action=request.action,
            args=dict(request.args),
            status=int(status),
            message=message,
            duration_ms=(time.perf_counter() - started) * 1000.0,
        )
        for sink in self._audit_sinks:
            try:
                sink(record)
            except Exception:
                log.exception("audit sink %r failed", sink)
