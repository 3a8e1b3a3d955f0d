"""Writing plugins.toml: add or replace one `[backends.NAME]` table, keeping the rest of the file.

Reading the files (merging, kinds, building instances) is the registry's (registry.py); writing
is here, below it, so library code that creates a backend for the user (`qa-console expose`
adds NAME-api) needs nothing of the registry.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from qa_console.errors import ConfigError
from qa_console.paths import config_dir

PLUGINS_FILE = "plugins.toml"


def user_plugins_file() -> Path:
    return config_dir() / PLUGINS_FILE


def api_backend_name(endpoint: str) -> str:
    """The http backend `qa-console expose ENDPOINT` adds (and teardown removes)."""
    return f"{endpoint}-api"


def api_key_file(backend: str) -> Path:
    """Where that backend's API key is kept (readable by its owner only)."""
    return config_dir() / "api-keys" / f"{backend}.key"


def write_instance(name: str, options: Mapping[str, Any] | None, path: Path | None = None) -> Path:
    """Add or replace `[backends.NAME]` in a plugins file (default: the user's), or remove it
    (options None), keeping every other table and comment. The result is parsed before it
    replaces the file, so a bad write never leaves a file the next command cannot read. Values
    are strings, numbers or booleans."""
    import json
    import tempfile

    path = path or user_plugins_file()
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    if text:
        _parse(path, text)  # refuse to edit a file that is already broken
    header = re.compile(rf"^\s*\[\s*backends\s*\.\s*[\"']?{re.escape(name)}[\"']?\s*\]")
    kept: list[str] = []
    skipping = False
    for line in text.splitlines():
        if header.match(line):
            skipping = True
            continue
        if skipping and line.lstrip().startswith("["):
            skipping = False
        if not skipping:
            kept.append(line)
    while kept and not kept[-1].strip():
        kept.pop()
    if options is None:
        lines = kept
    else:
        table = [f"[backends.{name}]"]
        table += [f"{key} = {json.dumps(value)}" for key, value in options.items()]
        lines = [*kept, "", *table] if kept else table
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, staging = tempfile.mkstemp(prefix=".plugins-", suffix=".toml", dir=path.parent)
    with os.fdopen(handle, "w", encoding="utf-8") as file:
        file.write("\n".join(lines) + "\n")
    try:
        _parse(path, Path(staging).read_text(encoding="utf-8"))
        os.replace(staging, path)
    finally:
        if os.path.exists(staging):
            os.unlink(staging)
    return path


def _parse(path: Path, text: str) -> None:
    try:
        tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(
            f"{path}: malformed TOML ({error})", hint="fix the file, then run the command again"
        ) from None
