"""What the IAM, Deploy and Logs screen tests share: one declared backend, selected at start
(QAConsoleApp(backend=DECLARED_BACKEND)), so the header and so every snapshot do not depend on
which backend the shipped plugins.toml declares first."""

from __future__ import annotations

from pathlib import Path

import pytest

from fixtures_foundation import write_plugins

DECLARED_BACKEND = "one"


def declare_one_backend(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """QA_CONSOLE_PLUGINS -> a file with one http backend (never asked in these tests)."""
    plugins = tmp_path / "tui-ops-plugins.toml"
    write_plugins(plugins, {DECLARED_BACKEND: {"kind": "http", "url": "http://127.0.0.1:9/ask"}})
    monkeypatch.setenv("QA_CONSOLE_PLUGINS", str(plugins))
