"""Shared test setup. Every test runs with its own config, data and state dirs (XDG_*), so no test
reads or writes the real user's qa-console files. Area-specific fixtures live in tests/fixtures_*.py
and are listed in pytest_plugins below."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

pytest_plugins: list[str] = [
    "fixtures_foundation",
    "fixtures_localaws_iam",
    "fixtures_iam",
    "fixtures_gateway",
    "fixtures_runtime",
    "fixtures_localaws",
    "fixtures_package",
    "fixtures_train",
    "fixtures_deploy",
    "fixtures_wheel",
]

REPO_ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def isolated_user_dirs(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Path:
    """Point the user's config/data/state dirs at a fresh temp folder for each test."""
    home = tmp_path_factory.mktemp("home")
    for variable, sub in (
        ("XDG_CONFIG_HOME", "config"),
        ("XDG_DATA_HOME", "data"),
        ("XDG_STATE_HOME", "state"),
        ("XDG_CACHE_HOME", "cache"),
    ):
        (home / sub).mkdir()
        monkeypatch.setenv(variable, str(home / sub))
    # Every QA_CONSOLE_* variable is a setting or a file to read: none may leak in from the shell.
    for variable in [name for name in os.environ if name.startswith("QA_CONSOLE_")]:
        monkeypatch.delenv(variable, raising=False)
    return home


@pytest.fixture
def empty_workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run in an empty folder: screens default to ./artifacts/model, and a checkout may have one."""
    folder = tmp_path / "workdir"
    folder.mkdir()
    monkeypatch.chdir(folder)
    return folder
