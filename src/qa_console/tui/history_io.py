"""Reading the history store from the TUI's worker threads (writes: qa_console.store.save_answer).

Each call opens the store and closes it again, as `qa-console ask` does, so a TUI left open holds
no connection and another process's schema upgrade is picked up. Failures come back as text for a
notification.
"""

from __future__ import annotations

import sqlite3

from qa_console.errors import QAConsoleError
from qa_console.store import HistoryEntry, open_store

HISTORY_ROWS = 50


def recent(limit: int = HISTORY_ROWS) -> tuple[list[HistoryEntry], str | None]:
    """The newest entries, newest first, and why they could not be read (or None)."""
    try:
        with open_store() as store:
            return store.recent(limit), None
    except (sqlite3.Error, OSError, QAConsoleError) as error:
        return [], f"cannot read the history: {error}"
