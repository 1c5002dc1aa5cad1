"""The frame every device panel shares: live values (greyed out when stale), commands, and the device's answer.

A panel watches its device's variables while it is open (one watch, restored by the client after a reconnection)
and sends commands as OPC UA method calls; the answer line shows what the server answered for the device: Good or
the status code's name, and how long it took. Commands the user's role may not call are disabled, with the reason
in their tooltip.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from asyncua import ua
from PyQt6 import sip
from PyQt6.QtCore import Qt
from PyQt6.QtWidgets import QGridLayout, QGroupBox, QLabel, QPushButton, QVBoxLayout, QWidget

from hmi import theme
from hmi.client import CallAnswer, ConsoleClient
from hmi.model import CityModel, DeviceRef
from hmi.permissions import Permissions
from hmi.tasks import spawn
from hmi.values import Change, format_value, is_stale, status_text
from hmi.watches import Watch
from scada.catalog import Kind, var_spec


@dataclass(frozen=True, slots=True)
class Field:
    """One value row of a panel: the variable, its caption, and how to show it."""

    name: str
    label: str = ""
    digits: int = 1
    names: dict[Any, str] = field(default_factory=dict)  # enumerations: value -> text

    @property
    def caption(self) -> str:
        """The row's caption (the variable's name when none is given)."""
        return self.label or self.name


@dataclass(slots=True)
class PanelContext:
    """What a panel needs of the console."""

    client: ConsoleClient
    model: CityModel
    permissions: Permissions
    services: dict[str, Any] = field(default_factory=dict)  # console-wide helpers panels share (forces, ...)


class DevicePanel(QWidget):
    """A device's live values and commands."""

    kind: ClassVar[Kind]
    fields: ClassVar[tuple[Field, ...]] = ()
    columns: ClassVar[int] = 2

    def __init__(self, ref: DeviceRef, context: PanelContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName(f"panel:{ref.id}")
        self.ref = ref
        self.context = context
        self.values: dict[str, Any] = {}
        self.statuses: dict[str, int] = {}
        self.value_labels: dict[str, QLabel] = {}
        self.last_answer: CallAnswer | None = None
        self.answers: list[tuple[str, CallAnswer]] = []
        self._watch: Watch | None = None
        self._gated: list[tuple[str, QWidget]] = []
        self._pending = 0

        info = context.model.info(ref)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(10, 10, 10, 10)
        title = QLabel(f"{ref.id}  {info.get('name', '')}".strip())
        theme.set_role(title, role="title")
        title.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout.addWidget(title)
        caption = QLabel(self.caption_text(info))
        theme.set_role(caption, role="caption")
        caption.setWordWrap(True)
        layout.addWidget(caption)

        box = QGroupBox("Live values")
        grid = QGridLayout(box)
        grid.setHorizontalSpacing(14)
        for position, spec in enumerate(self.fields):
            row, col = divmod(position, self.columns)
            name_label = QLabel(spec.caption)
            theme.set_role(name_label, role="caption")
            value_label = QLabel("—")
            value_label.setObjectName(f"value:{spec.name}")
            theme.set_role(value_label, role="value", stale="true")
            value_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            grid.addWidget(name_label, row, col * 2)
            grid.addWidget(value_label, row, col * 2 + 1)
            self.value_labels[spec.name] = value_label
        layout.addWidget(box)
        trend = context.services.get("trend")  # the console's Trends view (hmi.analysis)
        if trend is not None and self.trend_paths():
            button = QPushButton("Trend")
            button.setObjectName("trendButton")
            button.setToolTip("plot this device's measured values over time (Trends)")
            button.clicked.connect(lambda _checked=False: trend(self.trend_paths()))
            layout.addWidget(button, 0, Qt.AlignmentFlag.AlignLeft)
        self.build_extra(layout)
        self.commands_box = QGroupBox("Commands")
        commands = QVBoxLayout(self.commands_box)
        self.build_commands(commands)
        self.answer = QLabel("")
        self.answer.setObjectName("answer")
        self.answer.setWordWrap(True)
        theme.set_role(self.answer, answer="pending")
        commands.addWidget(self.answer)
        layout.addWidget(self.commands_box)
        layout.addStretch(1)
        context.permissions.changed.connect(self.apply_permissions)

    # ------------------------------------------------------------------ what subclasses provide

    def caption_text(self, info: dict[str, Any]) -> str:
        """The line under the title (kind, district, ...)."""
        district = info.get("district")
        return f"{self.kind.value.replace('_', ' ')}" + (f" · {district}" if district else "")

    def trend_paths(self) -> list[str]:
        """The device's historized numeric variables among the panel's fields (what its Trend button plots)."""
        specs = [var_spec(self.kind, spec.name) for spec in self.fields]
        return [f"{self.ref.path}/{s.name}" for s in specs if s is not None and s.historized and s.analog]

    def extra_variables(self) -> Sequence[str]:
        """Variables watched besides the fields (names relative to the device)."""
        return ()

    def build_extra(self, layout: QVBoxLayout) -> None:
        """Widgets between the values and the commands (previews, summaries)."""

    def build_commands(self, layout: QVBoxLayout) -> None:
        """The command widgets (gate each with `gate(method, widget)`)."""

    def values_changed(self, names: set[str]) -> None:
        """Called after a batch of changes (names of the variables that changed)."""

    # ------------------------------------------------------------------ values

    def paths(self) -> list[str]:
        """The NodeId paths this panel watches."""
        names = [spec.name for spec in self.fields] + [n for n in self.extra_variables() if n not in self.value_labels]
        return [f"{self.ref.path}/{name}" for name in names]

    async def start(self) -> None:
        """Start watching the device's variables."""
        if self._watch is None:
            self._watch = await self.context.client.watch(self.paths(), self.on_changes, name=f"panel {self.ref.id}")
        self.apply_permissions()

    async def stop(self) -> None:
        """Stop watching (idempotent)."""
        watch, self._watch = self._watch, None
        if watch is not None:
            await self.context.client.unwatch(watch)

    def on_changes(self, changes: list[Change]) -> None:
        """Show a batch of changes: new values, or the last value greyed out with the status as tooltip."""
        prefix = len(self.ref.path) + 1
        names: set[str] = set()
        for change in changes:
            name = change.path[prefix:]
            self.statuses[name] = change.status
            stale = is_stale(change.status)
            if change.value is not None or not stale:
                self.values[name] = change.value
            names.add(name)
            label = self.value_labels.get(name)
            if label is None:
                continue
            label.setText(self.text_of(name))
            theme.set_role(label, stale="true" if stale else "false")
            label.setToolTip(status_text(change.status) if stale else "")
        self.values_changed(names)

    def text_of(self, name: str) -> str:
        """The text of a field from its latest value."""
        spec = next((f for f in self.fields if f.name == name), None)
        value = self.values.get(name)
        if spec is not None and spec.names and value in spec.names:
            return f"{spec.names[value]} ({value})"
        var = var_spec(self.kind, name)
        unit = var.unit if var is not None else ""
        digits = spec.digits if spec is not None else 1
        return format_value(value, unit, digits)

    def is_stale(self, name: str) -> bool:
        """True when a watched variable's latest status is not Good."""
        return is_stale(self.statuses.get(name, ua.StatusCodes.BadWaitingForInitialData))

    # ------------------------------------------------------------------ commands

    def gate(self, method: str, widget: QWidget) -> QWidget:
        """Enable `widget` only while the user may call `method` of this kind."""
        self._gated.append((method, widget))
        return widget

    def apply_permissions(self) -> None:
        """Enable or disable the gated widgets from the user's permissions."""
        permissions = self.context.permissions
        for method, widget in self._gated:
            allowed = permissions.may_call(self.kind, method)
            widget.setEnabled(allowed and self._pending == 0)
            widget.setToolTip("" if allowed else f"your role may not call {method} on a {self.kind.value}")

    def send(
        self, method: str, *args: ua.Variant, on_answer: Callable[[CallAnswer], None] | None = None
    ) -> asyncio.Task[CallAnswer]:
        """Call a method of the device (from a button); the answer line shows the device's answer."""
        return spawn(self.call(method, *args, on_answer=on_answer), name=f"{self.ref.id}.{method}")

    async def call(
        self, method: str, *args: ua.Variant, on_answer: Callable[[CallAnswer], None] | None = None
    ) -> CallAnswer:
        """Call a method of the device and show its answer (also awaited directly by tests and timers)."""
        self._pending += 1
        self.apply_permissions()
        self.answer.setText(f"{method}: sending…")
        theme.set_role(self.answer, answer="pending")
        started = time.perf_counter()
        try:
            answer = await self.context.client.call(self.ref.path, method, *args)
        finally:
            self._pending -= 1
        if sip.isdeleted(self):  # the panel was closed while the device answered
            self.context.permissions.learn(self.kind, method, answer.status)
            return answer
        self.show_answer(method, answer, time.perf_counter() - started)
        self.context.permissions.learn(self.kind, method, answer.status)
        self.apply_permissions()
        if on_answer is not None:
            on_answer(answer)
        return answer

    def show_answer(self, method: str, answer: CallAnswer, seconds: float) -> None:
        """Put the device's answer on the answer line (green Good, red status name)."""
        self.last_answer = answer
        self.answers.append((method, answer))
        self.answer.setText(f"{method}: {answer.text}  ({seconds * 1000:.0f} ms)")
        theme.set_role(self.answer, answer="good" if answer.ok else "bad")

    def refuse(self, message: str) -> None:
        """Show why a command was not sent (the console's own checks, before anything reaches the server)."""
        self.answer.setText(message)
        theme.set_role(self.answer, answer="bad")
