"""The backend switcher: every declared instance with its health, checked as the dialog opens.

Each instance is checked in its own thread (a slow or dead endpoint must not hold up the rest),
and its row fills in when its check returns. Enter chooses the highlighted instance, Escape
keeps the current one. A check asks each backend one real question (its health contract).
"""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import DataTable, Label

from qa_console.chat import ChatSession, HealthRow

DETAIL_WIDTH = 40


class HealthChecked(Message):
    def __init__(self, row: HealthRow) -> None:
        super().__init__()
        self.row = row


class BackendSwitcher(ModalScreen[str | None]):
    DEFAULT_CSS = """
    BackendSwitcher { align: center middle; }
    BackendSwitcher > Vertical {
        width: 90%; max-width: 100; height: auto; max-height: 80%;
        border: thick $primary; background: $surface; padding: 0 1;
    }
    BackendSwitcher DataTable { height: auto; max-height: 16; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "dismiss_none", "Keep current")]

    def __init__(self, session: ChatSession, current: str | None) -> None:
        super().__init__()
        self.session = session
        self.current = current

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label("Switch backend: Enter chooses, Escape keeps the current one")
            yield DataTable(id="backends", cursor_type="row")

    def on_mount(self) -> None:
        table: DataTable[str | Text] = self.query_one("#backends", DataTable)
        table.add_column("Backend", key="name")
        table.add_column("Kind", key="kind")
        table.add_column("Health", key="health")
        table.add_column("ms", key="ms")
        table.add_column("Detail", key="detail")
        kinds = {name: spec.kind for name, spec in self.session.instances.items()}
        for name in self.session.names:
            marker = "▶ " if name == self.current else "  "
            table.add_row(marker + name, kinds[name], Text("checking…", "dim"), "", "", key=name)
            self.check(name)
        if self.current in self.session.names:
            table.move_cursor(row=self.session.names.index(self.current))
        table.focus()

    @work(thread=True, exit_on_error=False, group="health")
    def check(self, name: str) -> None:
        [row] = self.session.check([name])
        self.post_message(HealthChecked(row))

    @on(HealthChecked)
    def _checked(self, message: HealthChecked) -> None:
        row = message.row
        table: DataTable[str | Text] = self.query_one("#backends", DataTable)
        health = Text("ok", "green bold") if row.ok else Text("down", "red bold")
        table.update_cell(row.name, "health", health)
        table.update_cell(row.name, "ms", f"{row.latency_ms:.0f}")
        detail = row.detail if len(row.detail) <= DETAIL_WIDTH else row.detail[:39] + "…"
        table.update_cell(row.name, "detail", detail, update_width=True)

    @on(DataTable.RowSelected)
    def _chosen(self, event: DataTable.RowSelected) -> None:
        self.dismiss(event.row_key.value)

    def action_dismiss_none(self) -> None:
        self.dismiss(None)
