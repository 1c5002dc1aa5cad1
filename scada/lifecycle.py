"""Start services in dependency order, roll back if one fails, stop them in reverse and collect failures."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from scada.model import CityScadaError, Service

log = logging.getLogger(__name__)


class StopErrors(CityScadaError):
    """One or more services failed to stop; every failure is kept, none is swallowed."""

    def __init__(self, failures: list[tuple[str, BaseException]]) -> None:
        self.failures = failures
        super().__init__("; ".join(f"{name}: {exc!r}" for name, exc in failures))


@dataclass
class ServiceGroup:
    """An ordered set of named services with all-or-nothing start and reverse-order stop."""

    services: list[tuple[str, Service]] = field(default_factory=list)
    _started: list[tuple[str, Service]] = field(default_factory=list)

    def add(self, name: str, service: Service) -> None:
        """Append a service; it starts after those added before it."""
        self.services.append((name, service))

    async def start(self) -> None:
        """Start every service in order; if one fails, stop those already started and re-raise."""
        if self._started:
            return
        for name, service in self.services:
            try:
                log.debug("starting %s", name)
                await service.start()
            except BaseException:
                log.error("start of %s failed; rolling back", name)
                try:
                    await self.stop()
                except StopErrors as exc:
                    log.error("rollback incomplete: %s", exc)
                raise
            self._started.append((name, service))

    async def stop(self) -> None:
        """Stop the started services in reverse order; raise StopErrors after trying them all."""
        failures: list[tuple[str, BaseException]] = []
        while self._started:
            name, service = self._started.pop()
            try:
                log.debug("stopping %s", name)
                await service.stop()
            except Exception as exc:
                log.exception("stop of %s failed", name)
                failures.append((name, exc))
        if failures:
            raise StopErrors(failures)
