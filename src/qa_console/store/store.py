"""The SQLite store (data_dir()/history.sqlite3): answered questions here, and the record of
resources created in AWS (resources.py).

Durability: WAL journal, `synchronous=FULL`, and one committed transaction per insert, so a
process killed mid-write loses at most the row being written, never an earlier one. Several
qa-console processes may write at once; SQLite's locking and a busy timeout serialise them.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any

from qa_console.errors import ConfigError, QAConsoleError
from qa_console.store.upgrades import LATEST_VERSION, UPGRADES

FILE_NAME = "history.sqlite3"
BUSY_TIMEOUT_MS = 5000


@dataclass(frozen=True)
class HistoryEntry:
    id: int
    question: str
    answer: str
    backend: str
    latency_ms: float | None
    created_at: str  # ISO 8601 UTC, e.g. 2025-01-31T12:00:00.123456+00:00
    parameters: Mapping[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "question": self.question,
            "answer": self.answer,
            "backend": self.backend,
            "latency_ms": self.latency_ms,
            "created_at": self.created_at,
            "parameters": dict(self.parameters),
        }


def default_path() -> Path:
    from qa_console.paths import data_dir

    return data_dir() / FILE_NAME


class Store:
    """An open history database, upgraded to the latest schema. Use as a context manager."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        # isolation_level=None: no implicit transactions; every BEGIN/COMMIT here is explicit.
        # One Store may be shared by several threads: a lock serialises its use.
        self._db = sqlite3.connect(
            path,
            isolation_level=None,
            timeout=BUSY_TIMEOUT_MS / 1000,
            check_same_thread=False,
        )
        self._lock = threading.Lock()
        try:
            self._db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            self._db.execute("PRAGMA journal_mode = WAL")
            self._db.execute("PRAGMA synchronous = FULL")
            upgrade(self._db, path)
        except BaseException:
            self._db.close()
            raise

    def __enter__(self) -> Store:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self._db.close()

    def write(self, sql: str, arguments: tuple[Any, ...] | list[Any] = ()) -> int:
        """One statement in its own committed transaction; returns the row id it inserted."""
        with self._lock, _transaction(self._db):
            cursor = self._db.execute(sql, arguments)
        return int(cursor.lastrowid or 0)

    def read(self, sql: str, arguments: tuple[Any, ...] | list[Any] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            return list(self._db.execute(sql, arguments).fetchall())

    @property
    def schema_version(self) -> int:
        return int(self._db.execute("PRAGMA user_version").fetchone()[0])

    def record(
        self,
        question: str,
        answer: str,
        backend: str,
        latency_ms: float | None,
        parameters: Mapping[str, Any] | None = None,
        created_at: datetime | None = None,
    ) -> int:
        """Insert one answered question in its own committed transaction; returns its id."""
        when = (created_at or datetime.now(UTC)).astimezone(UTC).isoformat()
        return self.write(
            "INSERT INTO questions (question, answer, backend, latency_ms, created_at,"
            " parameters) VALUES (?, ?, ?, ?, ?, ?)",
            (question, answer, backend, latency_ms, when, json.dumps(dict(parameters or {}))),
        )

    def recent(self, limit: int = 20) -> list[HistoryEntry]:
        """The newest `limit` entries, newest first."""
        rows = self.read(
            "SELECT id, question, answer, backend, latency_ms, created_at, parameters"
            " FROM questions ORDER BY created_at DESC, id DESC LIMIT ?",
            (limit,),
        )
        return [
            HistoryEntry(row[0], row[1], row[2], row[3], row[4], row[5], json.loads(row[6]))
            for row in rows
        ]

    def count(self) -> int:
        return int(self.read("SELECT count(*) FROM questions")[0][0])


def open_store(path: Path | None = None) -> Store:
    """The user's history store (or one at `path`), created and upgraded as needed."""
    return Store(default_path() if path is None else path)


def save_answer(
    question: str,
    answer: str,
    backend: str,
    latency_ms: float,
    parameters: Mapping[str, Any] | None = None,
) -> str | None:
    """Record one answered question in the user's store; returns why that failed, or None.

    The answer is already in front of the user (`ask`, the TUI), so losing its history row is a
    warning for the caller to show, never an error that loses the answer."""
    try:
        with open_store() as store:
            store.record(question, answer, backend, latency_ms, parameters)
    except (sqlite3.Error, OSError, QAConsoleError) as error:
        return f"the answer was not saved to history: {error}"
    return None


def upgrade(db: sqlite3.Connection, path: Path) -> int:
    """Apply every pending upgrade step, each in its own transaction. Returns the final version.

    The version is re-read inside each write transaction, so two processes opening a new file at
    once do not both apply a step.
    """
    if int(db.execute("PRAGMA user_version").fetchone()[0]) == LATEST_VERSION:
        return LATEST_VERSION  # the usual case: no write lock taken
    for step in UPGRADES:
        with _transaction(db):
            current = int(db.execute("PRAGMA user_version").fetchone()[0])
            if current > LATEST_VERSION:
                raise ConfigError(
                    f"{path}: history schema version {current} is newer than this qa-console "
                    f"knows ({LATEST_VERSION})",
                    hint="upgrade qa-console, or move the file aside to start a new history",
                )
            if current >= step.version:
                continue
            step.apply(db)
            db.execute(f"PRAGMA user_version = {step.version}")
    return LATEST_VERSION


class _transaction:  # lower case: used like a function, `with _transaction(db):`
    """BEGIN IMMEDIATE ... COMMIT, or ROLLBACK on any error (the write lock is taken up front so a
    concurrent writer waits at BEGIN instead of failing at COMMIT)."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __enter__(self) -> None:
        self._db.execute("BEGIN IMMEDIATE")

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self._db.execute("COMMIT")
        else:
            self._db.execute("ROLLBACK")
