"""Reading and writing the history store from the TUI's worker threads.

Each call opens the store and closes it again, as `qa-console ask` does, so a TUI left open holds
no connection and another process's schema upgrade is picked up. Failures come back as text for a
notification: losing a history row must not lose the answer on screen.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from qa_console.ops.errors import QAConsoleError
from qa_console.store import HistoryEntry, open_store

HISTORY_ROWS = 50


def save_answer(
    question: str, answer: str, backend: str, latency_ms: float, parameters: dict[str, Any]
) -> str | None:
    """Record one answered question; returns why it failed, or None."""
    try:
        with open_store() as store:
            store.record(question, answer, backend, latency_ms, parameters)
    except (sqlite3.Error, OSError, QAConsoleError) as error:
        return f"the answer was not saved to history: {error}"
    return None


def recent(limit: int = HISTORY_ROWS) -> tuple[list[HistoryEntry], str | None]:
    """The newest entries, newest first, and why they could not be read (or None)."""
    try:
        with open_store() as store:
            return store.recent(limit), None
    except (sqlite3.Error, OSError, QAConsoleError) as error:
        return [], f"cannot read the history: {error}"
