"""The SQLite store of answered questions, with versioned schema upgrades (see upgrades.py)."""

from qa_console.store.store import HistoryEntry, Store, default_path, open_store, save_answer

__all__ = ["HistoryEntry", "Store", "default_path", "open_store", "save_answer"]
