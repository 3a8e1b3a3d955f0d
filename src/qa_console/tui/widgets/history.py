"""The side panel of recent answered questions, newest first, from the history store."""

from __future__ import annotations

from textual.widgets import DataTable

from qa_console.store import HistoryEntry

QUESTION_WIDTH = 40
COLUMNS = ("Question", "Backend", "ms")


class HistoryPanel(DataTable[str]):
    """Question, backend and latency of the newest history entries (any process's, not just this
    session's: the store is shared with `qa-console ask`)."""

    DEFAULT_CSS = """
    HistoryPanel { width: 60; border-left: solid $primary; }
    """

    def __init__(self) -> None:
        super().__init__(id="history", cursor_type="row", zebra_stripes=True)

    def on_mount(self) -> None:
        self.border_title = "History"
        self.add_columns(*COLUMNS)

    def show(self, entries: list[HistoryEntry]) -> None:
        self.clear()
        for entry in entries:
            question = entry.question
            if len(question) > QUESTION_WIDTH:
                question = question[: QUESTION_WIDTH - 1] + "…"
            latency = "" if entry.latency_ms is None else f"{entry.latency_ms:.0f}"
            self.add_row(question, entry.backend, latency, key=str(entry.id))
