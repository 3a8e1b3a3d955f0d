"""Settings: precedence default < file < env < flag, each value's source, and one-line errors that
name the file and line (exit code 2 through the CLI)."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from fixtures_foundation import run_cli
from qa_console.errors import ConfigError
from qa_console.settings import default_config_path, load_settings


def write_user_config(text: str) -> Path:
    path = default_config_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    return path


def test_precedence_default_file_env_flag() -> None:
    path = write_user_config(
        """
        # my settings
        region = "eu-west-1"
        bucket = "file-bucket"
        folder = "file-folder"
        """
    )
    settings = load_settings(
        overrides={"region": "ap-south-1", "target": None},
        environ={"QA_CONSOLE_BUCKET": "env-bucket", "QA_CONSOLE_REGION": "us-west-2"},
    )
    assert settings.target == "local"  # default, flag not given
    assert settings.folder == "file-folder"  # file over default
    assert settings.bucket == "env-bucket"  # env over file
    assert settings.region == "ap-south-1"  # flag over env over file
    sources = {entry.key: entry.source for entry in settings.entries()}
    assert sources["target"] == "default"
    assert sources["folder"] == f"{path}:4"
    assert sources["bucket"] == "env QA_CONSOLE_BUCKET"
    assert sources["region"] == "flag --region"


def test_config_show_through_the_cli(tmp_path: Path) -> None:
    config = tmp_path / "explicit.toml"
    config.write_text('endpoint_name = "my-bot"\nregion = "eu-central-1"\n')
    run = run_cli(
        "--config",
        str(config),
        "--region",
        "sa-east-1",
        "config",
        "show",
        "--json",
        env={"QA_CONSOLE_FOLDER": "env-folder"},
    )
    assert run.returncode == 0, run.stderr
    data = json.loads(run.stdout)
    assert data["config_file"] == str(config)
    values = data["settings"]
    assert values["endpoint_name"] == {"value": "my-bot", "source": f"{config}:1"}
    assert values["region"] == {"value": "sa-east-1", "source": "flag --region"}
    assert values["folder"] == {"value": "env-folder", "source": "env QA_CONSOLE_FOLDER"}
    assert values["target"] == {"value": "local", "source": "default"}

    human = run_cli("--config", str(config), "config", "show")
    assert human.returncode == 0
    assert "my-bot" in human.stdout


def test_config_env_variable_names_the_file(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text('target = "prod-profile"\n')
    run = run_cli("config", "show", "--json", env={"QA_CONSOLE_CONFIG": str(config)})
    assert json.loads(run.stdout)["settings"]["target"]["value"] == "prod-profile"


@pytest.mark.parametrize(
    ("text", "line", "words"),
    [
        ('region = "eu-west-1"\nbucket = "b\n', 2, "malformed TOML"),
        ('region = "eu-west-1"\n\ncolour = "blue"\n', 3, "unknown key 'colour'"),
        ('region = "eu-west-1"\nfolder = 3\n', 2, "must be a string"),
    ],
)
def test_bad_files_are_one_line_errors_naming_file_and_line(
    text: str, line: int, words: str
) -> None:
    path = write_user_config(text)
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert caught.value.message.startswith(f"{path}:{line}: ")
    assert words in caught.value.message

    run = run_cli("config", "show")
    assert run.returncode == 2
    first, *rest = run.stderr.splitlines()
    assert first.startswith(f"error: {path}:{line}: ")
    assert words in first
    assert all(other.lstrip().startswith("hint:") for other in rest)
    assert "Traceback" not in run.stderr


def test_a_missing_explicit_config_file_exits_2(tmp_path: Path) -> None:
    run = run_cli("--config", str(tmp_path / "absent.toml"), "config", "show")
    assert run.returncode == 2
    assert "absent.toml: no such config file" in run.stderr


def test_a_bad_settings_file_stops_ask_too(tmp_path: Path) -> None:
    write_user_config("region = \n")
    run = run_cli("ask", "Who?")
    assert run.returncode == 2
    assert "malformed TOML" in run.stderr
