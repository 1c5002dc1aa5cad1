"""Incident response: playbooks from the site configuration, proposed and executed device actions, restore."""

from scada.incidents.holds import DeviceHolds, DeviceState, Outcome
from scada.incidents.journal import IncidentJournal
from scada.incidents.planner import ActionKind, Command, PlannedAction, plan_response
from scada.incidents.playbook import Playbook, Playbooks, load_playbooks, parse_playbooks
from scada.incidents.records import ActionRecord, ActionState, IncidentRecord
from scada.incidents.service import IncidentNotification, IncidentService
from scada.incidents.values import TagCache
from scada.incidents.vault import Vault, VaultError

__all__ = [
    "ActionKind",
    "ActionRecord",
    "ActionState",
    "Command",
    "DeviceHolds",
    "DeviceState",
    "IncidentJournal",
    "IncidentNotification",
    "IncidentRecord",
    "IncidentService",
    "Outcome",
    "PlannedAction",
    "Playbook",
    "Playbooks",
    "TagCache",
    "Vault",
    "VaultError",
    "load_playbooks",
    "parse_playbooks",
    "plan_response",
]
