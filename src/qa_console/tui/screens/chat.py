"""The chat screen: backend selector, chat log, question input, history panel.

It lays widgets out and turns a submitted question into a `QuestionAsked` message; the app does
the asking and tells the screen what to show through the methods below.
"""

from __future__ import annotations

from typing import ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import Input, Select, Static

from qa_console.store import HistoryEntry
from qa_console.tui.messages import QuestionAsked
from qa_console.tui.screens.base import OpsScreen
from qa_console.tui.transcript import Exchange
from qa_console.tui.widgets.exchange import ExchangeView
from qa_console.tui.widgets.history import HistoryPanel
from qa_console.tui.widgets.question_input import QuestionInput


class ChatScreen(OpsScreen):
    DEFAULT_CSS = """
    #chat-pane { width: 3fr; }
    ChatScreen HistoryPanel { width: 2fr; max-width: 60; }
    #backend { width: 1fr; max-width: 40; }
    #chat-log { height: 1fr; padding: 0 1; }
    #compare-line { color: $warning; display: none; padding: 0 1; }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "app.cancel_answer", "Cancel answer", id="cancel_answer"),
        Binding("ctrl+b", "app.switch_backend", "Backend", id="switch_backend"),
        Binding("ctrl+o", "app.compare", "Compare", id="compare"),
        Binding("ctrl+l", "app.clear_chat", "Clear", id="clear_chat"),
        Binding("ctrl+s", "app.export_chat", "Export", id="export_chat"),
    ]

    def compose_body(self) -> ComposeResult:
        with Horizontal():
            with Vertical(id="chat-pane"):
                yield Select[str]([], prompt="backend", allow_blank=True, id="backend")
                yield VerticalScroll(id="chat-log")
                yield Static("", id="compare-line", markup=False)
                yield QuestionInput(
                    placeholder="Ask a question and press Enter (up: older)", id="question"
                )
            yield HistoryPanel()

    def on_mount(self) -> None:
        self.query_one("#question", Input).focus()

    @on(Input.Submitted, "#question")
    def _submitted(self, event: Input.Submitted) -> None:
        event.input.clear()
        question_input = self.query_one("#question", QuestionInput)
        if event.value.strip():
            question_input.remember(event.value.strip())
        self.post_message(QuestionAsked(event.value, self.backend))

    # ------------------------------------------------------------------ what the app calls

    @property
    def backend(self) -> str | None:
        value = self.query_one("#backend", Select).value
        return value if isinstance(value, str) else None

    def set_backends(self, names: list[str], selected: str | None) -> None:
        select: Select[str] = self.query_one("#backend", Select)
        select.set_options((name, name) for name in names)
        if selected is not None:
            select.value = selected

    def select_backend(self, name: str) -> None:
        self.query_one("#backend", Select).value = name

    async def add_exchange(self, exchange: Exchange) -> None:
        log = self.query_one("#chat-log", VerticalScroll)
        await log.mount(ExchangeView(exchange))
        log.scroll_end(animate=False)

    def exchange_view(self, exchange_id: int) -> ExchangeView | None:
        views = self.query(f"#exchange-{exchange_id}").results(ExchangeView)
        return next(iter(views), None)

    async def append_piece(self, exchange_id: int, piece: str) -> None:
        view = self.exchange_view(exchange_id)
        if view is not None:
            await view.append(piece)
            self.query_one("#chat-log", VerticalScroll).scroll_end(animate=False)

    async def clear_chat(self) -> None:
        await self.query_one("#chat-log", VerticalScroll).remove_children()

    def show_history(self, entries: list[HistoryEntry]) -> None:
        self.query_one(HistoryPanel).show(entries)
        self.query_one("#question", QuestionInput).remember_older(e.question for e in entries)

    def show_comparing(self, names: list[str]) -> None:
        """The line above the question box while compare mode is on (hidden when off)."""
        line = self.query_one("#compare-line", Static)
        line.update(f"comparing {' · '.join(names)} (ctrl+o to change)" if names else "")
        line.display = bool(names)
