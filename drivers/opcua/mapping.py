"""The `opcua_sources` mappings: validated once at construction into one plan per remote server (no I/O).

A mapping names the remote namespace URI, a node-id template per catalog variable and the remote form of each
catalog action. Templates are formatted with the device's fields: `{id}` the site device id; for the lamps of a
cabinet (`lamp_variables`, `lamp_actions`) and the sensors of a parking site (`sensor_variables`) also `{index}`
(the luminaire / bay index of the register map) and `{parent}` (the cabinet or parking site id). A template is
either an identifier in the mapping's namespace ("s=TLC-001.Stage", "i=1001") or a full node id carrying its own
namespace ("nsu=urn:x;s=A", "ns=3;s=A"); namespace indexes are resolved again in every session.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from asyncua import ua

from scada.catalog import ACTIONS, VARIABLES, ArgSpec, Kind, VarSpec, action_spec, var_spec
from scada.model import ConfigError, ConfigIssue
from scada.site.model import FieldDevice, Lamp, ParkingSensor

SITE_FILE = "site.yaml"

_KEYS = {
    "namespace",
    "variables",
    "actions",
    "publishing_interval_ms",
    "lamp_variables",
    "lamp_actions",
    "sensor_variables",
}

# Which children a field device kind carries, and the mapping sections that describe them.
_CHILD_SECTIONS: dict[Kind, tuple[Kind, str, str | None]] = {
    Kind.CABINET: (Kind.LAMP, "lamp_variables", "lamp_actions"),
    Kind.PARKING_SITE: (Kind.PARKING_SENSOR, "sensor_variables", None),
}

_SECTIONS_OF_CHILD = {
    "lamp_variables": Kind.CABINET,
    "lamp_actions": Kind.CABINET,
    "sensor_variables": Kind.PARKING_SITE,
}

_COLLECTIONS: dict[Kind, str] = {
    Kind.CABINET: "cabinets",
    Kind.CONTROLLER: "controllers",
    Kind.SIGN: "signs",
    Kind.PARKING_SITE: "parking",
}

_NSU = re.compile(r"^nsu=(?P<uri>[^;]*);(?P<ident>.*)$", re.DOTALL)
_NS = re.compile(r"^ns=(?P<index>\d+);(?P<ident>.*)$", re.DOTALL)
_IDENT = re.compile(r"^[isgb]=", re.DOTALL)

# The placeholder "{id}" always exists; child templates also know "{index}" and "{parent}".
_TEMPLATE_FIELDS = {"id", "index", "parent"}


@dataclass(frozen=True, slots=True)
class NodeRef:
    """A configured remote node: a namespace URI (resolved per session) or a fixed index, and the identifier."""

    identifier: str  # "s=TLC-001.Stage", "i=1001", ...
    uri: str | None = None
    index: int | None = None

    def __str__(self) -> str:
        if self.uri is not None:
            return f"nsu={self.uri};{self.identifier}"
        return f"ns={self.index};{self.identifier}"


@dataclass(frozen=True, slots=True)
class ItemSpec:
    """One monitored remote variable feeding one tag of the site."""

    tag: str  # f"{device.path}/{Var}"
    device_id: str  # the field device (cabinet, controller, sign, parking site) whose link carries it
    var: VarSpec
    node: NodeRef
    sampling_ms: float


@dataclass(frozen=True, slots=True)
class MethodTarget:
    """A catalog action carried out by calling a remote method; arguments are passed in ArgSpec order."""

    method: NodeRef
    object: NodeRef
    args: tuple[ArgSpec, ...]


@dataclass(frozen=True, slots=True)
class WriteTarget:
    """A catalog action carried out by writing its single argument to a remote variable."""

    node: NodeRef
    arg: ArgSpec


ActionTarget = MethodTarget | WriteTarget


@dataclass(slots=True)
class RemotePlan:
    """Everything one connection to one remote server serves: its devices, monitored items and actions."""

    url: str
    publishing_ms: float
    devices: list[FieldDevice] = field(default_factory=list)
    items: list[ItemSpec] = field(default_factory=list)
    actions: dict[tuple[str, str], ActionTarget] = field(default_factory=dict)  # (device id, action) -> target
    device_ids: list[str] = field(default_factory=list)  # field devices and the lamps/sensors they carry


def source_settings(settings: Mapping[str, Any]) -> Any:
    """The `opcua_sources` section, given either the whole site settings or that section itself."""
    if "opcua_sources" in settings and not _looks_like_source(settings["opcua_sources"]):
        return settings["opcua_sources"]
    return settings


def _looks_like_source(value: Any) -> bool:
    return isinstance(value, Mapping) and ("variables" in value or "namespace" in value or "actions" in value)


def parse_node(text: str, default_uri: str | None) -> NodeRef:
    """A formatted template as a NodeRef; ValueError when it is no valid node id (or needs a namespace it lacks)."""
    text = text.strip()
    match = _NSU.match(text)
    if match:
        ref = NodeRef(match["ident"], uri=match["uri"])
    else:
        match = _NS.match(text)
        if match:
            ref = NodeRef(match["ident"], index=int(match["index"]))
        elif default_uri is None:
            raise ValueError(f"{text!r} has no namespace: give the mapping a namespace URI or write nsu=<uri>;...")
        else:
            ref = NodeRef(text, uri=default_uri)
    if not _IDENT.match(ref.identifier):
        raise ValueError(f"{text!r} is not a node id: the identifier must start with i=, s=, g= or b=")
    if ref.uri is not None and not ref.uri:
        raise ValueError(f"{text!r} has an empty namespace URI")
    try:
        node = ua.NodeId.from_string(f"ns=0;{ref.identifier}")
    except (ua.UaStringParsingError, ValueError) as exc:
        raise ValueError(f"{text!r} is not a node id: {exc}") from exc
    if node.NodeIdType == ua.NodeIdType.String and not node.Identifier:
        raise ValueError(f"{text!r} has an empty string identifier")
    return ref


def _format(template: str, values: Mapping[str, Any]) -> str:
    """Fill a node-id template; KeyError names an unknown placeholder, ValueError a malformed one."""
    return template.format_map(values)


class _Validator:
    """Collects every issue of the mappings used by a set of devices, then builds the plans."""

    def __init__(self, sources: Any) -> None:
        self.sources = sources
        self.issues: list[ConfigIssue] = []
        self._seen: set[tuple[str, str]] = set()
        self._bad_fields: set[str] = set()

    def issue(self, fld: str, message: str) -> None:
        """Record one issue (each field/message pair once)."""
        if (fld, message) not in self._seen:
            self._seen.add((fld, message))
            self.issues.append(ConfigIssue(file=SITE_FILE, line=None, field=fld, message=message))

    def check_mapping(self, name: str, mapping: Any, kinds: set[Kind]) -> bool:
        """Structural checks of one mapping against the kinds of device that use it; False when unusable."""
        base = f"opcua_sources.{name}"
        if not isinstance(mapping, Mapping):
            self.issue(base, f"must be a mapping with namespace, variables and actions, not {type(mapping).__name__}")
            return False
        ok = True
        for key in sorted(set(mapping) - _KEYS, key=str):
            self.issue(f"{base}.{key}", f"unknown key (expected one of {', '.join(sorted(_KEYS))})")
            ok = False
        namespace = mapping.get("namespace")
        if namespace is not None and (not isinstance(namespace, str) or not namespace.strip()):
            self.issue(f"{base}.namespace", "must be a non-empty namespace URI")
            ok = False
        interval = mapping.get("publishing_interval_ms")
        if interval is not None and (
            isinstance(interval, bool) or not isinstance(interval, int | float) or not 0 < interval <= 3_600_000
        ):
            self.issue(
                f"{base}.publishing_interval_ms", f"must be a number of milliseconds in 1..3600000, not {interval!r}"
            )
            ok = False
        for section in ("variables", "lamp_variables", "sensor_variables", "actions", "lamp_actions"):
            value = mapping.get(section)
            if value is not None and not isinstance(value, Mapping):
                self.issue(f"{base}.{section}", f"must be a mapping, not {type(value).__name__}")
                ok = False
        for section, parent_kind in _SECTIONS_OF_CHILD.items():
            if mapping.get(section) and kinds - {parent_kind}:
                others = ", ".join(sorted(k.value for k in kinds - {parent_kind}))
                self.issue(
                    f"{base}.{section}", f"only a {parent_kind.value} carries these, but {others} use the mapping"
                )
                ok = False
        return ok

    def check_variables(self, base: str, section: Any, kind: Kind) -> None:
        """Every mapped variable exists for the kind, is not computed by the driver, and has a template string."""
        for var_name, template in (section or {}).items():
            fld = f"{base}.{var_name}"
            spec = var_spec(kind, str(var_name))
            if spec is None:
                known = ", ".join(v.name for v in VARIABLES[kind] if v.name != "CommunicationOk")
                self.issue(fld, f"a {kind.value} has no variable {var_name!r} (known: {known})")
            elif spec.name == "CommunicationOk":
                self.issue(fld, "CommunicationOk is computed by the driver from the connection, it cannot be mapped")
            if not isinstance(template, str) or not template.strip():
                self.issue(fld, f"must be a node-id template string, not {template!r}")

    def check_actions(self, base: str, section: Any, kind: Kind) -> None:
        """Every mapped action exists for the kind and is a method call (with its object) or a one-argument write."""
        for action, how in (section or {}).items():
            fld = f"{base}.{action}"
            spec = action_spec(kind, str(action))
            if spec is None:
                known = ", ".join(a.name for a in ACTIONS[kind]) or "none"
                self.issue(fld, f"a {kind.value} has no action {action!r} (known: {known})")
                continue
            if not isinstance(how, Mapping):
                self.issue(fld, "must be {method: <node>, object: <node>} or {write: <node>}")
                continue
            keys = set(how)
            if keys == {"write"}:
                if len(spec.args) != 1:
                    self.issue(fld, f"a write carries one argument, {action} has {len(spec.args)}: use a method")
                elif not isinstance(how["write"], str):
                    self.issue(f"{fld}.write", f"must be a node-id template string, not {how['write']!r}")
            elif keys == {"method", "object"}:
                for key in ("method", "object"):
                    if not isinstance(how[key], str):
                        self.issue(f"{fld}.{key}", f"must be a node-id template string, not {how[key]!r}")
            elif "method" in keys and "object" not in keys:
                self.issue(f"{fld}.object", "a method call needs the node id of the object that owns the method")
            else:
                self.issue(
                    fld, f"must be {{method: <node>, object: <node>}} or {{write: <node>}}, not keys {sorted(keys)}"
                )

    def node(self, fld: str, template: str, values: Mapping[str, Any], namespace: str | None) -> NodeRef | None:
        """The template filled for one device; None (and one issue per field, not per device) when it is wrong."""
        if fld in self._bad_fields:
            return None
        issues = len(self.issues)
        ref = self._node(fld, template, values, namespace)
        if len(self.issues) != issues:
            self._bad_fields.add(fld)
        return ref

    def _node(self, fld: str, template: str, values: Mapping[str, Any], namespace: str | None) -> NodeRef | None:
        try:
            text = _format(template, values)
        except KeyError as exc:
            allowed = ", ".join("{" + key + "}" for key in sorted(values))
            self.issue(fld, f"unknown placeholder {{{exc.args[0]}}} in {template!r} (this template may use {allowed})")
            return None
        except (ValueError, IndexError, AttributeError) as exc:
            self.issue(fld, f"malformed template {template!r}: {exc}")
            return None
        try:
            return parse_node(text, namespace)
        except ValueError as exc:
            self.issue(fld, str(exc))
            return None


def build_plans(devices: Iterable[FieldDevice], sources: Any) -> list[RemotePlan]:
    """One plan per remote endpoint URL for the given devices; ConfigError lists every problem found."""
    check = _Validator(sources)
    devices = list(devices)
    if not isinstance(sources, Mapping):
        check.issue("opcua_sources", f"must be a mapping of mapping names, not {type(sources).__name__}")
        raise ConfigError(check.issues)

    # Which kinds use which mapping, and is each mapping sound enough to be expanded?
    kinds_of: dict[str, set[Kind]] = {}
    for device in devices:
        kinds_of.setdefault(device.endpoint.mapping, set()).add(device.kind)
    usable: dict[str, bool] = {}
    for name, kinds in kinds_of.items():
        if name in sources:
            usable[name] = check.check_mapping(name, sources[name], kinds)
    for name, kinds in kinds_of.items():
        if not usable.get(name):
            continue
        mapping: Mapping[str, Any] = sources[name]
        base = f"opcua_sources.{name}"
        for kind in sorted(kinds):
            check.check_variables(f"{base}.variables", mapping.get("variables"), kind)
            check.check_actions(f"{base}.actions", mapping.get("actions"), kind)
            child = _CHILD_SECTIONS.get(kind)
            if child is not None:
                child_kind, var_section, action_section = child
                check.check_variables(f"{base}.{var_section}", mapping.get(var_section), child_kind)
                if action_section is not None:
                    check.check_actions(f"{base}.{action_section}", mapping.get(action_section), child_kind)

    plans: dict[str, RemotePlan] = {}
    intervals: dict[str, list[float]] = {}
    seen_ids: set[str] = set()
    for device in devices:
        endpoint = device.endpoint
        where = f"{_COLLECTIONS.get(device.kind, device.kind.value)}[{device.id}].endpoint"
        if device.id in seen_ids:
            check.issue(where, f"device id {device.id!r} is given twice")
            continue
        seen_ids.add(device.id)
        if endpoint.protocol != "opcua":
            check.issue(f"{where}.protocol", f"the OPC UA client driver got a {endpoint.protocol!r} endpoint")
            continue
        url = endpoint.url.strip()
        parts = urlsplit(url)
        try:
            port_ok = parts.port is None or 0 < parts.port < 65536
        except ValueError:
            port_ok = False
        if parts.scheme.lower() != "opc.tcp" or not parts.hostname or not port_ok:
            check.issue(f"{where}.url", f"must be an opc.tcp://host:port/path URL, not {endpoint.url!r}")
            continue
        if endpoint.poll_ms <= 0:
            check.issue(f"{where}.poll_ms", f"must be a positive sampling interval, not {endpoint.poll_ms}")
            continue
        name = endpoint.mapping
        if name not in sources:
            known = ", ".join(sorted(map(str, sources))) or "none"
            check.issue(
                f"opcua_sources.{name}" if name else f"{where}.mapping",
                f"device {device.id} refers to mapping {name!r}, which opcua_sources does not define (known: {known})",
            )
            continue
        if not usable.get(name):
            continue
        plan = plans.setdefault(url, RemotePlan(url=url, publishing_ms=0.0))
        _expand(check, plan, device, name, sources[name])
        interval = sources[name].get("publishing_interval_ms")
        intervals.setdefault(url, []).append(float(interval) if interval is not None else float(endpoint.poll_ms))
    if check.issues:
        raise ConfigError(check.issues)
    for url, plan in plans.items():
        plan.publishing_ms = min(intervals[url])
    return list(plans.values())


def _expand(check: _Validator, plan: RemotePlan, device: FieldDevice, name: str, mapping: Mapping[str, Any]) -> None:
    """Add one device's monitored items and actions (and those of its lamps or sensors) to its plan."""
    base = f"opcua_sources.{name}"
    namespace = mapping.get("namespace")
    plan.devices.append(device)
    plan.device_ids.append(device.id)
    sampling = float(device.endpoint.poll_ms)
    values = {"id": device.id}
    _add_items(
        check,
        plan,
        device.id,
        device.path,
        device.kind,
        mapping.get("variables"),
        values,
        f"{base}.variables",
        namespace,
        sampling,
    )
    _add_actions(check, plan, device.id, device.kind, mapping.get("actions"), values, f"{base}.actions", namespace)
    child = _CHILD_SECTIONS.get(device.kind)
    if child is None:
        return
    child_kind, var_section, action_section = child
    children: list[Lamp] | list[ParkingSensor] = (
        getattr(device, "lamps", None) or getattr(device, "sensors", None) or []
    )
    for member in children:
        plan.device_ids.append(member.id)
        member_values = {"id": member.id, "index": member.index, "parent": device.id}
        _add_items(
            check, plan, device.id, member.path, child_kind, mapping.get(var_section), member_values,
            f"{base}.{var_section}", namespace, sampling,
        )  # fmt: skip
        if action_section is not None:
            _add_actions(
                check, plan, member.id, child_kind, mapping.get(action_section), member_values,
                f"{base}.{action_section}", namespace,
            )  # fmt: skip


def _add_items(
    check: _Validator,
    plan: RemotePlan,
    device_id: str,
    path: str,
    kind: Kind,
    section: Mapping[str, Any] | None,
    values: Mapping[str, Any],
    base: str,
    namespace: str | None,
    sampling: float,
) -> None:
    for var_name, template in (section or {}).items():
        spec = var_spec(kind, str(var_name))
        if spec is None or spec.name == "CommunicationOk" or not isinstance(template, str):
            continue  # already reported
        node = check.node(f"{base}.{var_name}", template, values, namespace)
        if node is not None:
            plan.items.append(
                ItemSpec(tag=f"{path}/{spec.name}", device_id=device_id, var=spec, node=node, sampling_ms=sampling)
            )


def _add_actions(
    check: _Validator,
    plan: RemotePlan,
    device_id: str,
    kind: Kind,
    section: Mapping[str, Any] | None,
    values: Mapping[str, Any],
    base: str,
    namespace: str | None,
) -> None:
    for action, how in (section or {}).items():
        spec = action_spec(kind, str(action))
        if spec is None or not isinstance(how, Mapping):
            continue  # already reported
        fld = f"{base}.{action}"
        if set(how) == {"write"} and len(spec.args) == 1 and isinstance(how["write"], str):
            node = check.node(f"{fld}.write", how["write"], values, namespace)
            if node is not None:
                plan.actions[(device_id, spec.name)] = WriteTarget(node=node, arg=spec.args[0])
        elif set(how) == {"method", "object"} and isinstance(how["method"], str) and isinstance(how["object"], str):
            method = check.node(f"{fld}.method", how["method"], values, namespace)
            obj = check.node(f"{fld}.object", how["object"], values, namespace)
            if method is not None and obj is not None:
                plan.actions[(device_id, spec.name)] = MethodTarget(method=method, object=obj, args=spec.args)
