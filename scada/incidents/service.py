"""IncidentService: what happens when a citizen witnesses an accident and calls.

ReportIncident (scada.opcua.incidents, IncidentHandler protocol) -> `report()`: the arguments are checked again,
the incident gets an id and a timeline, the kind's playbook proposes one action per device (a message on each
sign upstream, a plan on each controller near, a display mode on each car park near) and the operator
notification; with `auto_execute` every device action is sent at once, concurrently, through the command service
(origin "incident", the reporting user) by way of DeviceHolds, which saves what each device showed or ran before.
report() answers the id at once; the devices confirm in the background (`wait_settled()` waits for them).

Each action records proposed_at, sent_at, confirmed_at (the device accepted: the command answered Good) or
failed_at with its status code; `response_seconds` is the time from the report to every device confirming.
Operators confirm (execute), change (another text, pictogram or plan) or cancel (restore that device) each action;
`close()` restores every device and records each restore step. Every step is a timeline entry and an event of
the journal (the historian), and the incident row is upserted (coalesced: once per loop iteration).

Plans are always selected with a DurationSeconds: the Modbus driver refreshes the controller's request watchdog
for that long only, and a lost control post stops refreshing it, so the controller lapses to its local plan
within its watchdog time (30 s by default) whatever happens here.

The reporter's contact is encrypted at once (vault) and only its ciphertext is kept and stored; it is never
logged, never in the timeline, never in the address space. Without a vault, the contact is not kept at all.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from scada.commands import check_sign_text
from scada.incidents.holds import AMBIGUOUS, CommandExecutor, DeviceHolds, Outcome, capture_state
from scada.incidents.journal import Chronicle, IncidentIds, IncidentJournal, Listener
from scada.incidents.planner import ActionKind, Command, plan_response
from scada.incidents.playbook import Playbooks
from scada.incidents.records import ActionRecord, ActionState, IncidentRecord, seconds_between
from scada.incidents.vault import Vault
from scada.model import (
    CommandError,
    InvalidArgumentError,
    OutOfRangeError,
    Quality,
    utcnow,
)
from scada.opcua.incidents import IncidentReport, NotFoundError, report_errors
from scada.site.model import Site

log = logging.getLogger(__name__)

ORIGIN = "incident"


class InvalidStateError(CommandError):
    """The action or incident is not in a state that allows this (closed, already cancelled, ...)."""

    status = Quality.BAD_INVALID_STATE


class NotSupportedError(CommandError):
    """This action cannot be changed or cancelled that way."""

    status = Quality.BAD_NOT_SUPPORTED


@dataclass(frozen=True, slots=True)
class IncidentNotification:
    """The operator notification of a playbook."""

    incident_id: str
    kind: str
    lat: float
    lon: float
    severity: int
    message: str
    ts: datetime


class IncidentService:
    """Incident response (see the module docstring); an IncidentHandler for the OPC UA Incidents folder."""

    def __init__(
        self,
        site: Site,
        commands: CommandExecutor,
        *,
        playbooks: Playbooks,
        values: Callable[[str], Any],
        journal: IncidentJournal | None = None,
        vault: Vault | None = None,
        clock: Callable[[], datetime] = utcnow,
        holds: DeviceHolds | None = None,
        notify: Callable[[IncidentNotification], None] | None = None,
        first_sequence: Callable[[date], int] | None = None,
    ) -> None:
        self.site = site
        self.playbooks = playbooks
        self._values = values
        self._vault = vault
        self._clock = clock
        self.holds = holds if holds is not None else DeviceHolds(site, commands, values, clock=clock, origin=ORIGIN)
        self._notify = notify
        self._ids = IncidentIds(site.timezone, first_sequence)
        self._open: dict[str, IncidentRecord] = {}
        self._closed: dict[str, IncidentRecord] = {}  # the last few, for late readers (tests, the console)
        self._log = Chronicle(journal, clock, lambda key: self._open.get(key) or self._closed.get(key))
        self._started = False
        self._warned_no_vault = False

    # -- lifecycle -----------------------------------------------------------------------------------------

    async def start(self) -> None:
        """Start the restore retries (idempotent)."""
        if not self._started:
            self._started = True
            await self.holds.start()

    async def stop(self) -> None:
        """Stop executing (in-flight commands are cancelled); open incidents and devices stay as they are."""
        tasks = [task for record in self._open.values() for task in record.running]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks)
        self._log.flush()
        await self.holds.stop()
        self._started = False

    # -- queries -------------------------------------------------------------------------------------------

    def add_listener(self, listener: Listener) -> None:
        """Call `listener(record)` after changes of an incident (coalesced: at most once per loop iteration)."""
        self._log.listeners.append(listener)

    def get(self, incident_id: str) -> IncidentRecord:
        """An open (or recently closed) incident; NotFoundError otherwise."""
        record = self._open.get(incident_id) or self._closed.get(incident_id)
        if record is None:
            raise NotFoundError(f"no incident {incident_id!r}")
        return record

    def open_incidents(self) -> list[IncidentRecord]:
        """The open incidents, oldest first."""
        return list(self._open.values())

    async def wait_settled(self, incident_id: str) -> IncidentRecord:
        """Wait until no command of the incident is in flight (wrap in asyncio.timeout to bound the wait)."""
        record = self.get(incident_id)
        await record.settled.wait()
        return record

    # -- IncidentHandler -----------------------------------------------------------------------------------

    async def report(self, report: IncidentReport) -> str:
        """Create the incident, propose its playbook's actions, start them if automatic; answers the id."""
        errors = report_errors(
            report.kind, report.latitude, report.longitude, report.description, report.reporter_contact
        )
        first = next((error for error in errors if error is not None), None)
        if first is not None:
            raise first
        playbook = self.playbooks.for_kind(report.kind)
        reported_at = report.reported_at
        incident_id = self._ids.next(
            reported_at, lambda candidate: candidate in self._open or candidate in self._closed
        )
        contact = self._seal(report.reporter_contact)
        record = IncidentRecord(
            id=incident_id,
            kind=report.kind,
            lat=float(report.latitude),
            lon=float(report.longitude),
            description=report.description,
            reported_by=report.user,
            reported_at=reported_at,
            auto_execute=playbook.auto_execute,
            contact=contact,
        )
        self._open[incident_id] = record
        self._log.step(
            record,
            "reported",
            report.user,
            f"{report.kind} reported at {record.lat:.5f},{record.lon:.5f}",
            at=reported_at,
        )
        planned = plan_response(playbook, self.site, incident_id, record.lat, record.lon, record.description)
        now = self._clock()
        for number, item in enumerate(planned, start=1):
            action = ActionRecord(
                id=f"A{number}",
                kind=item.kind,
                device_id=item.device_id,
                command=item.command,
                proposed_at=now,
                distance_m=item.distance_m,
                severity=item.severity,
                text=item.message,
            )
            if item.device_id is not None:  # as proposed; replaced by the state read under the device's lock at send
                action.before = capture_state(self.site.device(item.device_id), self._values).as_dict()
            record.actions[action.id] = action
            self._log.step(record, "proposed", None, _describe(action), action=action)
        for action in record.actions.values():
            if action.kind is ActionKind.NOTIFY:
                self._notify_operators(record, action)
        devices = record.device_actions()
        if playbook.auto_execute and devices:
            self._spawn(record, self._execute_all(record, devices, report.user))
        else:
            record.settled.set()
        log.info(
            "incident %s (%s) reported: %d device action(s) %s",
            incident_id,
            report.kind,
            len(devices),
            "executing" if playbook.auto_execute else "proposed",
        )
        self._log.touch(record)
        return incident_id

    async def close(self, incident_id: str, user: str | None) -> None:
        """Restore every device the incident changed, record each step, and close it."""
        record = self._open.get(incident_id)
        if record is None or record.status != "open":
            raise NotFoundError(f"no open incident {incident_id!r}")
        record.status = "closing"
        self._log.step(record, "closing", user, "closing: restoring the devices")
        results = await asyncio.gather(
            *(self._restore(record, action, user) for action in record.device_actions()), return_exceptions=True
        )
        for action, result in zip(record.device_actions(), results, strict=True):
            if isinstance(result, BaseException):
                log.error("restore of %s for %s failed: %r", action.device_id, incident_id, result)
        record.status = "closed"
        record.closed_at = self._clock()
        record.closed_by = user
        duration = seconds_between(record.reported_at, record.closed_at)
        self._log.step(record, "closed", user, f"closed after {duration:.1f} s", severity=500)
        del self._open[incident_id]
        self._closed[incident_id] = record
        while len(self._closed) > 100:
            self._closed.pop(next(iter(self._closed)))
        self._log.flush()
        log.info("incident %s closed by %s", incident_id, user or "the system")

    # -- operator actions ----------------------------------------------------------------------------------

    async def confirm_action(self, incident_id: str, action_id: str, user: str | None) -> ActionRecord:
        """Execute a proposed (or failed, or cancelled) action now; answers it once the device has answered."""
        record, action = self._action(incident_id, action_id)
        if action.kind is ActionKind.NOTIFY:
            raise NotSupportedError("the notification was sent when the incident was reported")
        self._log.step(record, "confirm", user, f"operator confirmed {action.id} ({action.device_id})", action=action)
        await self._run_tracked(record, self._execute(record, action, user))
        return action

    async def cancel_action(self, incident_id: str, action_id: str, user: str | None) -> ActionRecord:
        """Withdraw an action: nothing is sent if it was only proposed, otherwise its device is restored."""
        record, action = self._action(incident_id, action_id)
        if action.kind is ActionKind.NOTIFY:
            raise NotSupportedError("a notification cannot be withdrawn")
        async with action.lock:
            if action.state is ActionState.CANCELLED:
                raise InvalidStateError(f"action {action_id} of {incident_id} is already cancelled")
            if action.state is not ActionState.PROPOSED:
                outcome = await self.holds.release(incident_id, action.device_id or "", user=user)
                if outcome is not None:
                    self._record_restore(record, action, outcome, user, "cancel")
            action.state = ActionState.CANCELLED
            action.cancelled_at = self._clock()
            self._log.step(record, "cancelled", user, f"{action.id} on {action.device_id} cancelled", action=action)
        return action

    async def change_action(
        self,
        incident_id: str,
        action_id: str,
        user: str | None,
        *,
        text: str | None = None,
        pictogram: int | None = None,
        flashing: bool | None = None,
        plan: int | None = None,
    ) -> ActionRecord:
        """Change what an action does (sign: text/pictogram/flashing; controller: plan); sent at once if executed."""
        record, action = self._action(incident_id, action_id)
        command = action.command
        if command is None or action.kind not in (ActionKind.SIGN, ActionKind.TRAFFIC):
            raise NotSupportedError(f"a {action.kind.value} action cannot be changed; cancel it instead")
        if action.kind is ActionKind.SIGN:
            if plan is not None:
                raise InvalidArgumentError("a sign action has no plan")
            args = dict(command.args)
            if text is not None:
                check_sign_text(text)
                args["Text"] = text
            if pictogram is not None:
                if isinstance(pictogram, bool) or not isinstance(pictogram, int) or not 0 <= pictogram <= 7:
                    raise OutOfRangeError(f"Pictogram={pictogram} is outside 0..7")
                args["Pictogram"] = pictogram
            if flashing is not None:
                args["Flashing"] = bool(flashing)
            new = Command("display", args)
        else:
            if text is not None or pictogram is not None or flashing is not None:
                raise InvalidArgumentError("a traffic action only takes a plan")
            if plan is None:
                raise InvalidArgumentError("a traffic action needs a plan")
            if isinstance(plan, bool) or not isinstance(plan, int) or not 1 <= plan <= 10:
                raise OutOfRangeError(f"Plan={plan} is outside 1..10")
            new = Command("select_plan", {**command.args, "Plan": plan})
        async with action.lock:
            old = action.command
            action.command = new
            if action.state is ActionState.CANCELLED:
                action.state = ActionState.PROPOSED
            self._log.step(
                record,
                "changed",
                user,
                f"{action.id} on {action.device_id} changed: {_args(old)} -> {_args(new)}",
                action=action,
            )
            resend = action.state is ActionState.CONFIRMED
        if resend:
            await self._run_tracked(record, self._execute(record, action, user))
        return action

    # -- execution -----------------------------------------------------------------------------------------

    async def _execute_all(self, record: IncidentRecord, actions: list[ActionRecord], user: str | None) -> None:
        await asyncio.gather(*(self._execute(record, action, user) for action in actions))

    async def _execute(self, record: IncidentRecord, action: ActionRecord, user: str | None) -> None:
        """Send one action through DeviceHolds and record its timing (never raises a CommandError)."""
        assert action.device_id is not None and action.command is not None
        async with action.lock:
            if record.status != "open":
                return
            first_send = action.sent_at is None
            action.state = ActionState.SENDING
            action.sent_at = self._clock()
            action.confirmed_at = action.failed_at = None
            self._log.step(record, "sent", user, f"{_describe(action)} sent", action=action)
            restore_s = self._restore_plan_s(record)
            try:
                outcome, before = await self.holds.apply(
                    record.id, action.device_id, action.command, user=user, restore_plan_s=restore_s
                )
            except Exception as exc:  # a bug, not a device answer: the action fails visibly
                log.exception("action %s of %s failed", action.id, record.id)
                outcome, before = Outcome(action.device_id, action.command, Quality.BAD_INTERNAL, str(exc)), None
            if first_send and before is not None:
                action.before = before.as_dict()  # what the device showed just before this incident changed it
            action.status = int(outcome.status)
            action.message = outcome.message
            if outcome.ok:
                action.state = ActionState.CONFIRMED
                action.confirmed_at = outcome.answered_at or self._clock()
                elapsed = seconds_between(record.reported_at, action.confirmed_at)
                self._log.step(
                    record, "confirmed", user, f"{action.device_id} confirmed after {elapsed:.3f} s", action=action
                )
            else:
                action.state = ActionState.FAILED
                action.failed_at = outcome.answered_at or self._clock()
                self._log.step(
                    record,
                    "failed",
                    user,
                    f"{action.device_id} failed: {outcome.message} (0x{outcome.status:08X})",
                    action=action,
                    severity=700,
                )
        if record.responded_at is None:
            last = record.all_confirmed()
            if last is not None:
                record.responded_at = last
                self._log.step(
                    record,
                    "responded",
                    None,
                    f"every device confirmed {record.response_seconds:.3f} s after the report",
                )

    async def _restore(self, record: IncidentRecord, action: ActionRecord, user: str | None) -> None:
        """At close: give the device back (waits for a command of this action still in flight)."""
        async with action.lock:
            if action.state in (ActionState.PROPOSED, ActionState.CANCELLED):
                return
            outcome = await self.holds.release(record.id, action.device_id or "", user=user)
            if outcome is not None:
                self._record_restore(record, action, outcome, user, "close")

    def _record_restore(
        self, record: IncidentRecord, action: ActionRecord, outcome: Outcome, user: str | None, why: str
    ) -> None:
        action.restore = {**outcome.as_dict(), "why": why}
        what = "nothing sent" if outcome.command is None else _args(outcome.command)
        if outcome.ok:
            text = f"{action.device_id} restored ({what}; {outcome.note})"
            self._log.step(record, "restored", user, text, action=action)
        else:
            text = f"{action.device_id} restore failed ({what}): {outcome.message}; retried in the background"
            self._log.step(record, "restore-failed", user, text, action=action, severity=700)

    def _restore_plan_s(self, record: IncidentRecord) -> int:
        rule = self.playbooks.for_kind(record.kind).traffic
        return rule.restore_duration_s if rule is not None else 900

    def _spawn(self, record: IncidentRecord, coro: Any) -> asyncio.Task[None]:
        task = asyncio.get_running_loop().create_task(coro, name=f"incident-{record.id}")
        record.running.add(task)
        record.settled.clear()

        def done(finished: asyncio.Task[None]) -> None:
            record.running.discard(finished)
            if not record.running:
                record.settled.set()
            if not finished.cancelled() and finished.exception() is not None:
                log.error("incident %s task failed: %r", record.id, finished.exception())

        task.add_done_callback(done)
        return task

    async def _run_tracked(self, record: IncidentRecord, coro: Any) -> None:
        """Run a coroutine as a tracked task of the incident and wait for it (it finishes even if we are cancelled)."""
        await asyncio.shield(self._spawn(record, coro))

    def _action(self, incident_id: str, action_id: str) -> tuple[IncidentRecord, ActionRecord]:
        record = self._open.get(incident_id)
        if record is None:
            raise NotFoundError(f"no open incident {incident_id!r}")
        if record.status != "open":
            raise InvalidStateError(f"incident {incident_id} is closing")
        action = record.actions.get(action_id)
        if action is None:
            raise NotFoundError(f"incident {incident_id} has no action {action_id!r}")
        return record, action

    # -- notification, contact, journal ----------------------------------------------------------------------

    def _notify_operators(self, record: IncidentRecord, action: ActionRecord) -> None:
        now = self._clock()
        action.sent_at = now
        notification = IncidentNotification(
            record.id, record.kind, record.lat, record.lon, action.severity, action.text, now
        )
        try:
            if self._notify is not None:
                self._notify(notification)
        except Exception as exc:
            log.exception("incident notification of %s failed", record.id)
            action.state, action.failed_at, action.message = ActionState.FAILED, self._clock(), str(exc)
            action.status = Quality.BAD_INTERNAL
        else:
            action.state, action.confirmed_at, action.status = ActionState.CONFIRMED, self._clock(), Quality.GOOD
        self._log.step(record, "notified", None, action.text, action=action, severity=action.severity)

    def _seal(self, contact: str) -> bytes | None:
        """The contact's ciphertext (None when empty, or when there is no vault: then it is not kept)."""
        if not contact:
            return None
        if self._vault is None:
            if not self._warned_no_vault:
                self._warned_no_vault = True
                log.warning("no vault configured: reporters' contacts are not kept")
            return None
        return self._vault.encrypt(contact)


def _args(command: Command | None) -> str:
    if command is None:
        return "-"
    args = ", ".join(f"{k}={v!r}" for k, v in command.args.items())
    return f"{command.action}({args})"


def _describe(action: ActionRecord) -> str:
    if action.kind is ActionKind.NOTIFY:
        return f"{action.id}: notify operators (severity {action.severity})"
    return f"{action.id}: {_args(action.command)} on {action.device_id}"


__all__ = [
    "AMBIGUOUS",
    "IncidentIds",
    "IncidentJournal",
    "IncidentNotification",
    "IncidentService",
    "InvalidStateError",
    "NotSupportedError",
]
