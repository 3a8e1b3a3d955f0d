"""`qa-console expose NAME` as one operation, the same for the CLI, the TUI and `qa-console up`.

After the AWS side (api.py), what a user needs to call the API from this machine:
  - the API key, kept in a file only they can read (config dir, api-keys/NAME-api.key, 0600),
    never printed unless they ask;
  - an http backend NAME-api in their plugins.toml pointing at the URL and that key file, so
    `qa-console ask --backend NAME-api` works at once;
  - the OpenAPI 3 document of the API (data dir, apis/NAME-api.openapi.json).
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from qa_console.events import ProgressCallback, ignore_progress
from qa_console.ops.expose.api import ExposeRequest, ExposeResult, expose
from qa_console.ops.expose.openapi import openapi_document

if TYPE_CHECKING:
    from qa_console.ops.aws.target import Target


@dataclass(frozen=True)
class ExposeOutcome:
    result: ExposeResult
    backend: str
    key_file: Path
    plugins_file: Path
    openapi_file: Path

    def to_dict(self, show_key: bool = False) -> dict[str, Any]:
        return {
            **self.result.to_dict(show_key),
            "backend": self.backend,
            "api_key_file": str(self.key_file),
            "plugins_file": str(self.plugins_file),
            "openapi_file": str(self.openapi_file),
        }

    def curl(self) -> str:
        """A curl command that asks the API, reading the key from its file."""
        body = json.dumps({"question": "Who was Ada Lovelace?"})
        return (
            f"curl -s -X POST {self.result.url} -H 'content-type: application/json' "
            f"-H \"x-api-key: $(cat {self.key_file})\" -d '{body}'"
        )


def expose_endpoint(
    target: Target, request: ExposeRequest, *, progress: ProgressCallback = ignore_progress
) -> ExposeOutcome:
    """Create or update the API of `request.endpoint` and set this machine up to call it."""
    from qa_console.ops.deploy.rollout import Recorder
    from qa_console.paths import data_dir
    from qa_console.plugins_file import api_backend_name, api_key_file, write_instance
    from qa_console.store.resources import new_run_id

    recorder = Recorder(target, request.endpoint, new_run_id())
    result = expose(target, request, recorder, progress=progress)
    name = api_backend_name(request.endpoint)
    key_file = write_private(api_key_file(name), result.key_value + "\n")
    plugins = write_instance(
        name, {"kind": "http", "url": result.url, "api_key_file": str(key_file)}
    )
    document = openapi_document(result.url, request.endpoint, request.stage)
    openapi = data_dir() / "apis" / f"{name}.openapi.json"
    openapi.parent.mkdir(parents=True, exist_ok=True)
    openapi.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    return ExposeOutcome(result, name, key_file, plugins, openapi)


def write_private(path: Path, text: str) -> Path:
    """Write `text` readable by its owner only (0600 from the first byte), atomically."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    handle, staging = tempfile.mkstemp(prefix=".key-", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as file:
            file.write(text)
        os.chmod(staging, 0o600)
        os.replace(staging, path)
    finally:
        if os.path.exists(staging):
            os.unlink(staging)
    return path
