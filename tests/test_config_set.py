"""`qa-console config set KEY VALUE`: writes the settings file in place, keeps the rest of it,
and refuses unknown keys and broken files without changing anything."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def qa(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "qa_console", *args],
        capture_output=True,
        text=True,
        env=dict(os.environ),
        timeout=60,
    )


def test_set_writes_the_user_file_and_show_reports_it(isolated_user_dirs: Path) -> None:
    assert qa("config", "set", "bucket", "my-models").returncode == 0
    assert qa("config", "set", "execution_role", "arn:aws:iam::1:role/x").returncode == 0
    assert qa("config", "set", "bucket", "other-models").returncode == 0

    config = isolated_user_dirs / "config" / "qa-console" / "config.toml"
    assert config.read_text().splitlines() == [
        'bucket = "other-models"',
        'execution_role = "arn:aws:iam::1:role/x"',
    ]
    shown = qa("config", "show", "--json")
    assert '"value": "other-models"' in shown.stdout
    assert f"{config}:1" in shown.stdout


def test_set_keeps_comments_and_other_keys(tmp_path: Path) -> None:
    config = tmp_path / "settings.toml"
    config.write_text('# my settings\nregion = "eu-west-1"  # Ireland\nfolder = "bots"\n')

    out = qa("--config", str(config), "config", "set", "region", 'us-"east"-1')

    assert out.returncode == 0, out.stderr
    assert config.read_text() == '# my settings\nregion = "us-\\"east\\"-1"\nfolder = "bots"\n'


def test_unknown_key_and_broken_file_change_nothing(tmp_path: Path) -> None:
    config = tmp_path / "settings.toml"
    config.write_text('folder = "bots"\n')
    unknown = qa("--config", str(config), "config", "set", "colour", "blue")
    assert unknown.returncode == 2 and "error: unknown setting 'colour'" in unknown.stderr

    config.write_text('folder = "bots"\nregion = \n')
    broken = qa("--config", str(config), "config", "set", "folder", "x")
    assert broken.returncode == 2 and f"{config}:2: malformed TOML" in broken.stderr
    assert config.read_text() == 'folder = "bots"\nregion = \n'
    assert "Traceback" not in unknown.stderr + broken.stderr
