"""The qa-console TUI app: it owns the chat session and the workers, and reacts to messages.

Answers are produced in a thread worker (`answer`) that streams from the backend, records the
exchange in the history store, and only posts messages; the handlers here update the screen.
Every error a user can cause (QAConsoleError) becomes a one-line notification with its hint.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from functools import partial
from pathlib import Path
from typing import Any, ClassVar

from textual import on, work
from textual.app import App, SystemCommand
from textual.binding import Binding, BindingType
from textual.reactive import reactive
from textual.screen import Screen
from textual.widgets import Select
from textual.worker import get_current_worker

from qa_console.backends.base import check_question
from qa_console.chat import ChatSession
from qa_console.errors import QAConsoleError
from qa_console.tui import history_io, transcript
from qa_console.tui.messages import (
    AnswerDone,
    AnswerFailed,
    AnswerPiece,
    ComparedAnswer,
    HistoryLoaded,
    QuestionAsked,
)
from qa_console.tui.notify import one_line
from qa_console.tui.screens.chat import ChatScreen
from qa_console.tui.screens.compare_dialog import CompareDialog
from qa_console.tui.screens.deploy import DeployScreen
from qa_console.tui.screens.iam import IamScreen
from qa_console.tui.screens.logs import LogsScreen
from qa_console.tui.screens.package import PackageScreen
from qa_console.tui.screens.switch_backend import BackendSwitcher
from qa_console.tui.screens.train import TrainScreen
from qa_console.tui.transcript import CANCELLED, DONE, FAILED, PENDING, Exchange
from qa_console.tui.widgets.comparison import Comparison, ComparisonView
from qa_console.tui.widgets.ops_header import SCREENS as OPS_SCREENS

ANSWER_GROUP = "answer"
COMPARE_GROUP = "compare"


class QAConsoleApp(App[None]):
    TITLE = "qa-console"

    # Each screen is a mode with its own stack, so a running deploy keeps its screen (and its
    # log pane) while the user chats; SCREENS in the header's order name them.
    SCREENS: ClassVar[dict[str, Callable[[], Screen[Any]]]] = {
        "chat": ChatScreen,
        "train": TrainScreen,
        "package": PackageScreen,
        "iam": IamScreen,
        "deploy": DeployScreen,
        "logs": LogsScreen,
    }
    MODES: ClassVar[dict[str, str | Callable[[], Screen[Any]]]] = {
        mode: mode for mode, _title, _key in OPS_SCREENS
    }
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding(key, f"switch_mode('{mode}')", title, id=f"screen_{mode}", show=False)
        for mode, title, key in OPS_SCREENS
    ]

    active_backend: reactive[str | None] = reactive(None)

    def __init__(
        self,
        backend: str | None = None,
        export_dir: Path | None = None,
        settings: Mapping[str, str | None] | None = None,
        session_backends: Mapping[str, tuple[str, Mapping[str, Any]]] | None = None,
    ) -> None:
        """backend: the instance to select first (--backend, else settings.backend); the first
        declared one when None or unknown. export_dir: where exports go (default: the cwd).
        settings: effective settings that fill the backends' unset options (target, region).
        session_backends: instances for this run only (name: kind, options), beside the
        declared ones, e.g. the endpoint `qa-console up` just deployed."""
        super().__init__()
        self.preferred_backend = backend
        self.backend_defaults = dict(settings or {})
        self.session_backends = dict(session_backends or {})
        self.export_dir = export_dir
        self.exchanges: list[Exchange] = []
        self.backend_names: list[str] = []
        self.session: ChatSession | None = None
        self.compare_backends: list[str] = []  # two or more: compare mode is on
        self.comparisons: list[Comparison] = []
        self.target = self.backend_defaults.get("target") or "local"
        self.region = self.backend_defaults.get("region") or "us-east-1"

    async def on_mount(self) -> None:
        await self.switch_mode("chat")
        self._load_backends()
        self.load_history()

    @property
    def chat(self) -> ChatScreen:
        screen = self.get_screen("chat")
        assert isinstance(screen, ChatScreen)
        return screen

    def chat_with(self, name: str, kind: str, options: Mapping[str, Any], origin: str) -> None:
        """Add a backend instance for this session (a model just trained, an endpoint just
        deployed), select it in the chat and show the chat."""
        if self.session is None:
            self.notify("the backends could not be read; see the first error", severity="error")
            return
        self.session.add_instance(name, kind, options, origin)
        self.backend_names = self.session.names
        self.chat.set_backends(self.backend_names, name)
        self.switch_mode("chat")
        self.notify(f"chatting with {name} ({kind})")

    def _load_backends(self) -> None:
        try:
            self.session = ChatSession(self.backend_defaults)
            for name, (kind, options) in self.session_backends.items():
                self.session.add_instance(name, kind, options, "this run")
            self.backend_names = self.session.names
            try:
                selected = self.session.resolve(self.preferred_backend)
            except QAConsoleError as error:
                if not self.backend_names:
                    raise
                selected = self.backend_names[0]
                self.notify(f"{error.message}; using {selected!r}", severity="warning")
        except QAConsoleError as error:
            self.notify(one_line(error.message, error.hint), severity="error")
            return
        self.chat.set_backends(self.backend_names, selected)

    # ------------------------------------------------------------------------ asking

    @on(QuestionAsked)
    async def _ask(self, message: QuestionAsked) -> None:
        try:
            question = check_question(message.question)
        except QAConsoleError as error:
            self.notify(one_line(error.message, error.hint), severity="warning")
            return
        if len(self.compare_backends) >= 2:
            await self._compare(question)
            return
        if message.backend is None:
            self.notify("choose a backend first (ctrl+b)", severity="warning")
            return
        self._cancel_running()
        exchange = Exchange(len(self.exchanges) + 1, message.backend, question)
        self.exchanges.append(exchange)
        await self.chat.add_exchange(exchange)
        self.answer(exchange.id, exchange.backend, exchange.question)

    @work(thread=True, exclusive=True, group=ANSWER_GROUP)
    def answer(self, exchange_id: int, backend_name: str, question: str) -> None:
        """Stream one answer and record it (the chat session does both). Runs in a thread;
        touches no widget: every piece is a message."""
        worker = get_current_worker()
        if self.session is None:
            return

        def show(piece: str) -> None:
            self.post_message(AnswerPiece(exchange_id, piece))

        try:
            reply = self.session.stream(
                question, show, backend_name, cancelled=lambda: worker.is_cancelled
            )
        except QAConsoleError as error:
            if not worker.is_cancelled:
                self.post_message(AnswerFailed(exchange_id, error.message, error.hint))
            return
        except Exception as error:  # a bug in a backend plugin must not take the chat down
            self.log.error(f"backend {backend_name!r} failed", error)
            self.post_message(
                AnswerFailed(exchange_id, f"{type(error).__name__}: {error}", "this is a bug")
            )
            return
        if reply is None or worker.is_cancelled:
            return
        self.post_message(AnswerDone(exchange_id, reply.latency_ms, reply.save_error))

    # ------------------------------------------------------------------------ compare mode

    async def _compare(self, question: str) -> None:
        comparison = Comparison(len(self.comparisons) + 1, question)
        comparison.answers = {
            name: Exchange(comparison.id, name, question) for name in self.compare_backends
        }
        self.comparisons.append(comparison)
        log = self.chat.query_one("#chat-log")
        await log.mount(ComparisonView(comparison))
        log.scroll_end(animate=False)
        for name in self.compare_backends:
            self.compare_answer(comparison.id, name, question)

    @work(thread=True, group=COMPARE_GROUP)
    def compare_answer(self, comparison_id: int, backend_name: str, question: str) -> None:
        """One backend's answer for compare mode: each backend in its own thread, so the
        slowest one does not hold up the others' columns."""
        if self.session is None:
            return
        try:
            reply = self.session.ask(question, backend_name)
        except QAConsoleError as error:
            self.post_message(
                ComparedAnswer(comparison_id, backend_name, error=one_line(error.message, None))
            )
            return
        except Exception as error:  # a plugin's bug is its column's error, not a crash
            self.post_message(
                ComparedAnswer(
                    comparison_id, backend_name, error=f"{type(error).__name__}: {error}"
                )
            )
            return
        self.post_message(
            ComparedAnswer(comparison_id, backend_name, reply.answer, reply.latency_ms)
        )

    @on(ComparedAnswer)
    def _compared(self, message: ComparedAnswer) -> None:
        comparison = next((c for c in self.comparisons if c.id == message.comparison_id), None)
        if comparison is None:
            return
        answer = comparison.answers[message.backend]
        answer.answer, answer.latency_ms = message.text, message.latency_ms
        answer.error = message.error
        answer.status = FAILED if message.error is not None else DONE
        views = self.chat.query(f"#comparison-{comparison.id}").results(ComparisonView)
        for view in views:
            view.refresh_answer(message.backend)
        if all(a.status != PENDING for a in comparison.answers.values()):
            self.load_history()

    def action_compare(self) -> None:
        if len(self.backend_names) < 2:
            self.notify("compare needs two or more backend instances", severity="warning")
            return

        def chosen(names: list[str] | None) -> None:
            if names is None:
                return
            self.compare_backends = names if len(names) >= 2 else []
            self.chat.show_comparing(self.compare_backends)
            self.notify(
                f"comparing {', '.join(names)}" if self.compare_backends else "compare mode off"
            )

        current = self.chat.backend
        preset = self.compare_backends or ([current] if current else [])
        self.push_screen(CompareDialog(self.backend_names, preset), chosen)

    def _exchange(self, exchange_id: int) -> Exchange | None:
        """The exchange still waiting for this message, or None (cancelled, cleared)."""
        for exchange in self.exchanges:
            if exchange.id == exchange_id and exchange.status == PENDING:
                return exchange
        return None

    @on(AnswerPiece)
    async def _piece(self, message: AnswerPiece) -> None:
        exchange = self._exchange(message.exchange_id)
        if exchange is not None:
            exchange.answer += message.text
            await self.chat.append_piece(exchange.id, message.text)

    @on(AnswerDone)
    def _done(self, message: AnswerDone) -> None:
        exchange = self._exchange(message.exchange_id)
        if exchange is None:
            return
        exchange.status, exchange.latency_ms = DONE, message.latency_ms
        self._show_status(exchange)
        if message.save_error:
            self.notify(message.save_error, severity="warning")
        self.load_history()

    @on(AnswerFailed)
    def _failed(self, message: AnswerFailed) -> None:
        exchange = self._exchange(message.exchange_id)
        if exchange is None:
            return
        exchange.status, exchange.error = FAILED, message.message
        self._show_status(exchange)
        self.notify(one_line(message.message, message.hint), severity="error")

    def _show_status(self, exchange: Exchange) -> None:
        view = self.chat.exchange_view(exchange.id)
        if view is not None:
            view.show_status()

    def _cancel_running(self) -> bool:
        """Mark the pending answer cancelled and cancel its worker; False when none was running.

        A thread cannot be interrupted mid-request: the worker notices at its next piece, and
        anything it still posts is ignored since the exchange is no longer pending."""
        cancelled = False
        for exchange in self.exchanges:
            if exchange.status == PENDING:
                exchange.status = CANCELLED
                self._show_status(exchange)
                cancelled = True
        self.workers.cancel_group(self, ANSWER_GROUP)
        return cancelled

    # ------------------------------------------------------------------------ history

    @work(thread=True, exclusive=True, group="history")
    def load_history(self) -> None:
        entries, error = history_io.recent()
        self.post_message(HistoryLoaded(entries, error))

    @on(HistoryLoaded)
    def _history(self, message: HistoryLoaded) -> None:
        if message.error:
            self.notify(message.error, severity="warning")
        self.chat.show_history(message.entries)

    # ------------------------------------------------------------------------ actions

    def action_cancel_answer(self) -> None:
        if self._cancel_running():
            self.notify("answer cancelled")

    def action_switch_backend(self) -> None:
        if self.session is None or not self.backend_names:
            self.notify("no backend instances are declared", severity="warning")
            return

        def chosen(name: str | None) -> None:
            if name is not None:
                self.chat.select_backend(name)

        self.push_screen(BackendSwitcher(self.session, self.chat.backend), chosen)

    async def action_clear_chat(self) -> None:
        self._cancel_running()
        self.workers.cancel_group(self, COMPARE_GROUP)
        self.exchanges.clear()
        self.comparisons.clear()
        await self.chat.clear_chat()

    def action_export_chat(self) -> None:
        if not self.exchanges:
            self.notify("nothing to export yet", severity="warning")
            return
        folder = self.export_dir or Path.cwd()
        try:
            path = transcript.export(self.exchanges, folder)
        except OSError as error:
            self.notify(f"cannot export the chat to {folder}: {error}", severity="error")
            return
        self.notify(f"chat exported to {path}")

    def get_system_commands(self, screen: Screen[object]) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        for mode, title, key in OPS_SCREENS:
            yield SystemCommand(
                f"Open {title}", f"Show the {title} screen ({key})", partial(self.switch_mode, mode)
            )
        yield SystemCommand(
            "Switch backend", "Choose the backend that answers", self.action_switch_backend
        )
        yield SystemCommand(
            "Compare backends",
            "Ask several backends each question and show the answers side by side",
            self.action_compare,
        )
        yield SystemCommand(
            "Clear chat", "Remove every exchange from the chat", self.action_clear_chat
        )
        yield SystemCommand(
            "Export chat to Markdown",
            "Write the chat to a .md file in the current directory",
            self.action_export_chat,
        )

    @on(Select.Changed, "#backend")
    def _backend_changed(self, event: Select.Changed) -> None:
        self.active_backend = event.value if isinstance(event.value, str) else None
