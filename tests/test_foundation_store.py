"""The SQLite history store: schema upgrades keep rows, WAL, and a killed writer loses no
committed row."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fixtures_foundation import run_cli
from qa_console.errors import ConfigError
from qa_console.paths import data_dir
from qa_console.store import Store, open_store
from qa_console.store.upgrades import LATEST_VERSION, UPGRADES


def test_new_store_is_at_the_latest_version_in_wal_mode(tmp_path: Path) -> None:
    with Store(tmp_path / "h.sqlite3") as store:
        assert store.schema_version == LATEST_VERSION == len(UPGRADES)
        row_id = store.record("Who?", "Ada.", "t", 12.5, {"max_new_tokens": 4})
        [entry] = store.recent()
    assert entry.id == row_id
    assert (entry.question, entry.answer, entry.backend, entry.latency_ms) == (
        "Who?",
        "Ada.",
        "t",
        12.5,
    )
    assert entry.parameters == {"max_new_tokens": 4}
    assert entry.created_at.endswith("+00:00")
    db = sqlite3.connect(tmp_path / "h.sqlite3")
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_default_location_is_the_user_data_dir() -> None:
    with open_store() as store:
        store.record("q", "a", "b", 1.0)
    assert (data_dir() / "history.sqlite3").is_file()


def test_upgrade_from_version_1_keeps_every_row(tmp_path: Path) -> None:
    """A database written by the first schema (no parameters column) opens, upgrades, keeps rows."""
    path = tmp_path / "old.sqlite3"
    old = sqlite3.connect(path, isolation_level=None)
    UPGRADES[0].apply(old)
    old.execute("PRAGMA user_version = 1")
    for number in range(5):
        old.execute(
            "INSERT INTO questions (question, answer, backend, latency_ms, created_at)"
            " VALUES (?, ?, ?, ?, ?)",
            (
                f"q{number}",
                f"a{number}",
                "old",
                float(number),
                f"2024-01-0{number + 1}T00:00:00+00:00",
            ),
        )
    old.close()

    with Store(path) as store:
        assert store.schema_version == LATEST_VERSION
        entries = store.recent(10)
        store.record("new", "answer", "t", 2.0, {"k": 1})
        assert store.count() == 6
    assert [entry.question for entry in entries] == ["q4", "q3", "q2", "q1", "q0"]
    assert all(entry.parameters == {} for entry in entries)
    db = sqlite3.connect(path)
    indexes = {row[1] for row in db.execute("PRAGMA index_list(questions)")}
    assert "questions_created_at" in indexes


def test_a_failed_upgrade_step_leaves_the_previous_version(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each step runs in a transaction with its version bump: a failing step changes nothing."""
    from qa_console.store import store as store_module
    from qa_console.store.upgrades import Upgrade

    def failing(db: sqlite3.Connection) -> None:
        db.execute("ALTER TABLE questions ADD COLUMN half_done TEXT")
        raise sqlite3.OperationalError("disk on fire")

    path = tmp_path / "h.sqlite3"
    Store(path).close()
    monkeypatch.setattr(store_module, "UPGRADES", (*UPGRADES, Upgrade(99, "fails", failing)))
    monkeypatch.setattr(store_module, "LATEST_VERSION", 99)
    with pytest.raises(sqlite3.OperationalError):
        Store(path)
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA user_version").fetchone()[0] == LATEST_VERSION
    columns = {row[1] for row in db.execute("PRAGMA table_info(questions)")}
    assert "half_done" not in columns


def test_a_database_from_a_newer_version_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "new.sqlite3"
    Store(path).close()
    db = sqlite3.connect(path)
    db.execute(f"PRAGMA user_version = {LATEST_VERSION + 1}")
    db.commit()
    db.close()
    with pytest.raises(ConfigError, match="newer"):
        Store(path)


WRITER = """
import sys
from pathlib import Path
from qa_console.store import Store

store = Store(Path(sys.argv[1]))
for number in range(100_000):
    row_id = store.record(f"question {number}", "x" * 2000, "writer", float(number))
    print(row_id, flush=True)
"""


def test_killing_a_writer_mid_loop_loses_no_committed_row(tmp_path: Path) -> None:
    path = tmp_path / "crash.sqlite3"
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(path)], stdout=subprocess.PIPE, text=True
    )
    committed: list[int] = []
    assert writer.stdout is not None
    deadline = time.monotonic() + 30
    try:
        while len(committed) < 40 and time.monotonic() < deadline:
            line = writer.stdout.readline()
            if not line:
                break
            committed.append(int(line))
    finally:
        writer.send_signal(signal.SIGKILL)  # no cleanup, no close: as a crash
        writer.wait()
    assert len(committed) >= 40
    assert writer.returncode == -signal.SIGKILL

    with Store(path) as store:  # reopening recovers the WAL left by the killed writer
        stored = {entry.id for entry in store.recent(limit=1_000_000)}
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert set(committed) <= stored
    assert len(stored) >= len(committed)


def test_history_command_lists_newest_first_with_a_limit() -> None:
    with open_store() as store:
        for number in range(3):
            store.record(f"q{number}", f"a{number}", "t", 10.0 + number)
    run = run_cli("history", "--json", "--limit", "2")
    assert run.returncode == 0, run.stderr
    assert [entry["question"] for entry in json.loads(run.stdout)["entries"]] == ["q2", "q1"]

    human = run_cli("history")
    assert human.returncode == 0
    assert "q0" in human.stdout and "a2" in human.stdout
    assert run_cli("history", "--limit", "0").returncode == 2


def test_history_of_nobody_is_empty() -> None:
    run = run_cli("history", "--json")
    assert run.returncode == 0
    assert json.loads(run.stdout) == {"entries": []}


def test_threads_and_processes_writing_at_once_lose_nothing(tmp_path: Path) -> None:
    """The TUI's workers share one Store; several `ask`s write the same file at once."""
    import threading

    path = tmp_path / "busy.sqlite3"
    shared = Store(path)
    writers = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER.replace("100_000", "20"), str(path)],
            stdout=subprocess.DEVNULL,
        )
        for _ in range(2)
    ]

    def write(worker: int) -> None:
        for number in range(10):
            shared.record(f"thread {worker} question {number}", "a", "t", 1.0)

    threads = [threading.Thread(target=write, args=(worker,)) for worker in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert [writer.wait(timeout=60) for writer in writers] == [0, 0]
    assert shared.count() == 2 * 20 + 3 * 10
    shared.close()
