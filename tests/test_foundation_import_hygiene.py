"""The fast paths import nothing heavy: `ask` with the http backend, `backends list`, `--help`.

Each command runs the installed console script in a fresh interpreter that writes `sys.modules`
to a file at exit: the list of everything that was imported, however it was imported
(`-X importtime` misses modules loaded with importlib.import_module, as the registry does).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from fixtures_foundation import CONSOLE_SCRIPT, FakeApi

HEAVY = ("textual", "torch", "transformers", "datasets", "boto3", "botocore", "sagemaker", "moto")

RUN_AND_DUMP_MODULES = """
import atexit, json, os, runpy, sys

def dump():
    with open(os.environ["QA_TEST_MODULES_OUT"], "w") as out:
        json.dump(sorted(sys.modules), out)

atexit.register(dump)
script = sys.argv[1]
sys.argv = sys.argv[1:]
runpy.run_path(script, run_name="__main__")
"""


def run_profiled(*args: str, tmp: Path) -> tuple[int, str, set[str]]:
    """Run `qa-console ARGS` as the console script; return exit code, stdout, imported modules."""
    out = tmp / "modules.json"
    run = subprocess.run(
        [sys.executable, "-c", RUN_AND_DUMP_MODULES, str(CONSOLE_SCRIPT), *args],
        capture_output=True,
        text=True,
        env={**os.environ, "QA_TEST_MODULES_OUT": str(out)},
        timeout=60,
        check=False,
    )
    return run.returncode, run.stdout, set(json.loads(out.read_text()))


def heavy_in(modules: set[str]) -> list[str]:
    return sorted(m for m in modules if m.split(".")[0] in HEAVY)


def test_ask_with_the_http_backend_imports_no_ui_or_model_library(
    fake_api: FakeApi, api_plugins: Path, tmp_path: Path
) -> None:
    code, stdout, modules = run_profiled("ask", "--backend", "t", "Who?", tmp=tmp_path)
    assert code == 0
    assert stdout == "answer to: Who?\n"
    assert "qa_console.backends.http" in modules  # the dump is real: it has the backend used
    assert heavy_in(modules) == []
    assert not {"qa_console.backends.local", "qa_console.backends.sagemaker"} & modules
    assert not any(m.startswith("qa_console.tui") for m in modules)


def test_ask_json_and_history_stay_light_too(
    fake_api: FakeApi, api_plugins: Path, tmp_path: Path
) -> None:
    for args in (("ask", "-b", "t", "--json", "Who?"), ("history", "--json")):
        code, _, modules = run_profiled(*args, tmp=tmp_path)
        assert code == 0
        assert heavy_in(modules) == [], args


def test_backends_list_imports_no_backend_module(api_plugins: Path, tmp_path: Path) -> None:
    for args in (("backends", "list"), ("backends", "list", "--json")):
        code, _, modules = run_profiled(*args, tmp=tmp_path)
        assert code == 0
        assert "qa_console.registry" in modules
        assert heavy_in(modules) == [], args
        backend_modules = sorted(m for m in modules if m.startswith("qa_console.backends."))
        assert backend_modules == [], args
        assert "httpx" not in modules


def test_help_imports_almost_nothing(tmp_path: Path) -> None:
    code, stdout, modules = run_profiled("--help", tmp=tmp_path)
    assert code == 0
    assert "ask" in stdout and "backends" in stdout
    assert heavy_in(modules) == []
    assert not {"httpx", "sqlite3", "rich.table", "qa_console.registry"} & modules
