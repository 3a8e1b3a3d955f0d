"""A live log view: follows new lines, pauses when the user scrolls up, filters, stays bounded.

Used by the Logs screen and by the Deploy screen (the endpoint's log beside its progress).

- Follow mode (toolong's behaviour): new lines keep the view at the bottom until the user
  scrolls up; from then on the view stays put and the status line counts what arrived
  ("12 new lines - press End to follow"). End, or scrolling back to the bottom, follows again.
- A filter box: only lines containing its text (case-insensitive) are shown; clearing it shows
  everything the buffer still holds.
- A bounded buffer: the last MAX_LINES entries; older ones are dropped, so a chatty endpoint
  followed for hours does not grow memory without end.
- Floods are coalesced: `add_entries` only queues; a timer writes the queue in one batch every
  FLUSH_S, so thousands of lines a second cost a few repaints, not thousands.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from typing import ClassVar

from rich.text import Text
from textual import events, on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.message import Message
from textual.reactive import reactive
from textual.widgets import Input, RichLog, Static

from qa_console.ops.logs.fold import LogEntry

MAX_LINES = 5_000
FLUSH_S = 0.1
TRACEBACK_STYLE = "bold red"
HEALTH_STYLE = "dim"


class LogBatch(Message):
    """New entries of an endpoint's log, posted by a follower worker for the screen showing
    that endpoint (a batch for an endpoint no longer shown is dropped)."""

    def __init__(self, endpoint: str, entries: list[LogEntry]) -> None:
        super().__init__()
        self.endpoint = endpoint
        self.entries = entries


@dataclass(frozen=True)
class LogRecord:
    """One entry as shown: its styled text, its plain text (what the filter searches) and how
    many rows it takes (what the new-lines count adds up)."""

    text: Text
    plain: str
    rows: int

    def matches(self, needle: str) -> bool:
        return not needle or needle.casefold() in self.plain.casefold()


def record_of(entry: LogEntry) -> LogRecord:
    """`09:20:01 i-0abc  text`: UTC time, the stream's last part, then the line; a traceback in
    red, folded health checks dimmed."""
    stamp = entry.first.time.strftime("%H:%M:%S")
    where = entry.first.stream.rsplit("/", 1)[-1]
    prefix = Text(f"{stamp} ", style="dim")
    if where:
        prefix.append(f"{where[:10]} ", style="cyan")
    if entry.kind == "traceback":
        body = Text(entry.text, style=TRACEBACK_STYLE)
    elif entry.kind == "health_checks":
        body = Text(f"({entry.text})", style=HEALTH_STYLE)
    else:
        body = Text(entry.text)
    text = prefix + body
    return LogRecord(text, text.plain, entry.text.count("\n") + 1)


def plain_record(message: str, style: str = "") -> LogRecord:
    """A line that is not from CloudWatch (a note such as "waiting for the log group")."""
    return LogRecord(Text(message, style=style), message, 1)


class LogView(RichLog):
    """The lines themselves. Scrolling up (keys or wheel) pauses following; End resumes it."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("up", "scroll_up", "Scroll up", show=False),
        Binding("down", "scroll_down", "Scroll down", show=False),
        Binding("pageup", "page_up", "Page up", show=False),
        Binding("pagedown", "page_down", "Page down", show=False),
        Binding("home", "scroll_home", "Top", show=False),
        Binding("end", "follow", "Follow", id="log_follow"),
    ]

    following: reactive[bool] = reactive(True)

    def pause(self) -> None:
        if self.following:
            self.following = False
            self.auto_scroll = False

    def action_follow(self) -> None:
        self.following = True
        self.auto_scroll = True
        self.scroll_end(animate=False, immediate=True, x_axis=False)

    # Every way a user scrolls up pauses the follow; the app's own scroll_end does not.
    def action_scroll_up(self) -> None:
        self.pause()
        super().action_scroll_up()

    def action_page_up(self) -> None:
        self.pause()
        super().action_page_up()

    def action_scroll_home(self) -> None:
        self.pause()
        super().action_scroll_home()

    def _on_mouse_scroll_up(self, event: events.MouseScrollUp) -> None:
        self.pause()
        super()._on_mouse_scroll_up(event)

    def watch_scroll_y(self, old: float, new: float) -> None:
        super().watch_scroll_y(old, new)
        # Scrolled back down to the last line by hand: follow again, as toolong does.
        if not self.following and new > old and new >= self.max_scroll_y:
            self.action_follow()


class LogPane(Vertical):
    """A filter box, the log view, and a status line (what is shown; new lines while paused)."""

    DEFAULT_CSS = """
    LogPane { height: 1fr; }
    LogPane > #log-filter { height: 1; margin: 0 0; }
    LogPane > LogView { height: 1fr; background: $surface; scrollbar-size-vertical: 1; }
    LogPane > #log-status { height: 1; color: $text-muted; }
    LogPane > #log-status.paused { color: $warning; text-style: bold; }
    """

    new_lines: reactive[int] = reactive(0)

    def __init__(
        self, *, max_lines: int = MAX_LINES, id: str | None = None, classes: str | None = None
    ) -> None:
        super().__init__(id=id, classes=classes)
        self.max_lines = max_lines
        self.records: deque[LogRecord] = deque(maxlen=max_lines)
        self._pending: list[LogRecord] = []
        self.needle = ""
        self.note = ""

    def compose(self) -> ComposeResult:
        yield Input(placeholder="filter lines", id="log-filter", compact=True)
        yield LogView(max_lines=self.max_lines, wrap=True, min_width=20)
        yield Static("", id="log-status")

    def on_mount(self) -> None:
        self.set_interval(FLUSH_S, self.flush)
        self.watch(self.view, "following", self._following_changed, init=False)
        self._show_status()

    @property
    def view(self) -> LogView:
        return self.query_one(LogView)

    # ------------------------------------------------------------------ what screens call

    def add_entries(self, entries: Iterable[LogEntry]) -> None:
        self._pending.extend(record_of(entry) for entry in entries)

    def add_note(self, message: str, style: str = "dim italic") -> None:
        self._pending.append(plain_record(message, style))

    def clear(self) -> None:
        self.records.clear()
        self._pending.clear()
        self.new_lines = 0
        self.view.clear()
        self.view.action_follow()
        self._show_status()

    def set_note(self, note: str) -> None:
        """What the status line says when nothing else matters ("following x", "stopped")."""
        self.note = note
        self._show_status()

    @property
    def shown_text(self) -> str:
        """The plain text of the records the filter lets through (what a test reads)."""
        return "\n".join(record.plain for record in self.records if record.matches(self.needle))

    # ------------------------------------------------------------------ batching and filter

    def flush(self) -> None:
        """Write what arrived since the last flush, in one go."""
        if not self._pending:
            return
        batch, self._pending = self._pending[-self.max_lines :], []
        self.records.extend(batch)
        view = self.view
        shown = [record for record in batch if record.matches(self.needle)]
        for record in shown:
            view.write(record.text, scroll_end=False)
        if view.following:
            view.scroll_end(animate=False, immediate=False, x_axis=False)
        else:
            self.new_lines += sum(record.rows for record in shown)
        self._show_status()

    @on(Input.Changed, "#log-filter")
    def _filter_changed(self, event: Input.Changed) -> None:
        event.stop()
        self.needle = event.value.strip()
        self.flush()
        view = self.view
        view.clear()
        for record in self.records:
            if record.matches(self.needle):
                view.write(record.text, scroll_end=False)
        view.action_follow()
        self._show_status()

    def _following_changed(self, following: bool) -> None:
        if following:
            self.new_lines = 0
        self._show_status()

    def watch_new_lines(self) -> None:
        if self.is_mounted:
            self._show_status()

    def _show_status(self) -> None:
        status = self.query_one("#log-status", Static)
        paused = not self.view.following
        status.set_class(paused, "paused")
        if paused:
            count = self.new_lines
            text = f"{count} new line{'s' if count != 1 else ''} - press End to follow"
            status.update(f"paused: {text}" if count else "paused - press End to follow")
            return
        parts = [self.note] if self.note else []
        if self.needle:
            matching = sum(1 for record in self.records if record.matches(self.needle))
            parts.append(f"{matching} of {len(self.records)} lines match {self.needle!r}")
        status.update("  ".join(parts) or f"{len(self.records)} lines")
