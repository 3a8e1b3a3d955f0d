"""Settings: one TOML file in the user's config dir, overridden by QA_CONSOLE_* variables and flags.

Precedence, lowest first: built-in defaults, the config file (the user's, or the one named by
`--config` / QA_CONSOLE_CONFIG), QA_CONSOLE_<KEY> environment variables, command-line flags.
Every value remembers where it came from, so `qa-console config show` can say so.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from qa_console.errors import ConfigError
from qa_console.paths import config_dir

ENV_PREFIX = "QA_CONSOLE_"

# key -> (default, help). Keys are flat on purpose: one short file a person can read.
FIELDS: dict[str, tuple[str | None, str]] = {
    "target": ("local", "'local' (the embedded local AWS) or the name of an AWS profile"),
    "region": ("us-east-1", "AWS region"),
    "bucket": (None, "S3 bucket for model artifacts (default: qa-console-<account>-<region>)"),
    "folder": ("qa-console", "S3 key prefix under the bucket"),
    "execution_role": (None, "ARN of the SageMaker execution role"),
    "endpoint_name": ("biography-bot", "name of the SageMaker endpoint"),
    "backend": (None, "backend instance `ask` uses (default: the first in plugins.toml)"),
}


@dataclass(frozen=True)
class Setting:
    key: str
    value: str | None
    # "default", a file with line ("~/.config/qa-console/config.toml:3"), "env QA_CONSOLE_X",
    # or "flag --x"
    source: str


class Settings:
    """The effective settings, each with its source."""

    def __init__(self, entries: Mapping[str, Setting], config_file: Path) -> None:
        self._entries = dict(entries)
        self.config_file = config_file

    def __getattr__(self, key: str) -> Any:
        entries = self.__dict__.get("_entries", {})
        if key in entries:
            return entries[key].value
        raise AttributeError(key)

    def get(self, key: str) -> str | None:
        return self._entries[key].value

    def values(self) -> dict[str, str | None]:
        """key -> effective value; what the registry fills unset backend options from."""
        return {key: entry.value for key, entry in self._entries.items()}

    def entries(self) -> list[Setting]:
        return [self._entries[key] for key in FIELDS]

    def to_dict(self) -> dict[str, dict[str, str | None]]:
        return {
            entry.key: {"value": entry.value, "source": entry.source} for entry in self.entries()
        }


def default_config_path() -> Path:
    return config_dir() / "config.toml"


def load_settings(
    config_path: str | Path | None = None,
    overrides: Mapping[str, str | None] | None = None,
    environ: Mapping[str, str] | None = None,
) -> Settings:
    """Read the effective settings. Raises ConfigError naming the file and line of a bad entry.

    overrides: values from command-line flags (None means "flag not given").
    """
    env = os.environ if environ is None else environ
    if config_path is None and env.get(ENV_PREFIX + "CONFIG"):
        config_path = env[ENV_PREFIX + "CONFIG"]
    explicit = config_path is not None
    path = Path(config_path).expanduser() if config_path is not None else default_config_path()

    entries = {key: Setting(key, default, "default") for key, (default, _) in FIELDS.items()}

    if path.exists() or explicit:
        for key, (value, line) in _read_config_file(path).items():
            entries[key] = Setting(key, value, f"{path}:{line}")

    for key in FIELDS:
        env_name = ENV_PREFIX + key.upper()
        if env.get(env_name):
            entries[key] = Setting(key, env[env_name], f"env {env_name}")

    for key, flag_value in (overrides or {}).items():
        if key not in FIELDS:
            raise ConfigError(f"unknown setting {key!r}")
        if flag_value is not None:
            entries[key] = Setting(key, flag_value, f"flag --{key.replace('_', '-')}")

    return Settings(entries, path)


def _read_config_file(path: Path) -> dict[str, tuple[str, int]]:
    """Parse the config file into key -> (value, line). Every problem is one ConfigError line."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            f"{path}: no such config file", hint="check the --config path or QA_CONSOLE_CONFIG"
        ) from None
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"{path}: cannot read config file: {error}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        line = getattr(error, "lineno", None) or _line_from_message(str(error))
        raise ConfigError(
            f"{path}:{line}: malformed TOML: {getattr(error, 'msg', error)}",
            hint="fix or delete that line",
        ) from None

    values: dict[str, tuple[str, int]] = {}
    for key, value in data.items():
        line = _line_of_key(text, key)
        if key not in FIELDS:
            raise ConfigError(
                f"{path}:{line}: unknown key {key!r}",
                hint=f"known keys: {', '.join(FIELDS)}",
            )
        if not isinstance(value, str):
            raise ConfigError(
                f"{path}:{line}: {key!r} must be a string, not {type(value).__name__}"
            )
        values[key] = (value, line)
    return values


def _line_of_key(text: str, key: str) -> int:
    pattern = re.compile(rf"^\s*[\"']?{re.escape(key)}[\"']?\s*=")
    for number, line in enumerate(text.splitlines(), start=1):
        if pattern.match(line):
            return number
    return 1


def _line_from_message(message: str) -> int:
    match = re.search(r"line (\d+)", message)
    return int(match.group(1)) if match else 1


def write_setting(key: str, value: str, path: Path | None = None) -> Path:
    """Set `key = "value"` in the config file (created if missing), keeping every other line and
    comment as it is. The result is read back before it replaces the file, so a bad write never
    leaves a file that the next command cannot parse. Returns the file written."""
    import json
    import os
    import tempfile

    if key not in FIELDS:
        raise ConfigError(f"unknown setting {key!r}", hint=f"known keys: {', '.join(FIELDS)}")
    if not value.strip():
        raise ConfigError(f"{key!r} needs a value", hint=f"e.g. qa-console config set {key} ...")
    path = path or default_config_path()
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    if text:
        _read_config_file(path)  # refuse to edit a file that is already broken
    # A TOML basic string is a JSON string for every value a setting can hold.
    line = f"{key} = {json.dumps(value, ensure_ascii=False)}"
    pattern = re.compile(rf"^\s*[\"']?{re.escape(key)}[\"']?\s*=")
    lines = text.splitlines()
    for number, existing in enumerate(lines):
        if pattern.match(existing):
            lines[number] = line
            break
    else:
        lines.append(line)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, staging = tempfile.mkstemp(prefix=".config-", suffix=".toml", dir=path.parent)
    with os.fdopen(handle, "w", encoding="utf-8") as file:
        file.write("\n".join(lines) + "\n")
    try:
        _read_config_file(Path(staging))
        os.replace(staging, path)
    finally:
        if os.path.exists(staging):
            os.unlink(staging)
    return path
