"""A client-only install (no torch/transformers/moto) gets a one-line "install the extra" error
with exit code 2 from commands that need an extra, not a traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

# sys.modules[name] = None makes `import name` raise ModuleNotFoundError, as on a machine where
# the package is not installed.
RUN_WITHOUT = """
import sys
for name in {blocked!r}:
    sys.modules[name] = None
from qa_console.cli.app import main
main({argv!r})
"""


def run_without(blocked: list[str], argv: list[str]) -> subprocess.CompletedProcess[str]:
    code = RUN_WITHOUT.format(blocked=blocked, argv=argv)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)


def test_train_without_transformers_names_the_extra(tmp_path: Path) -> None:
    out = run_without(
        ["transformers", "torch"], ["train", "--base-model", "tiny", "-o", str(tmp_path / "m")]
    )
    assert out.returncode == 2, out.stderr
    assert "error: this needs" in out.stderr
    assert "pip install 'qa-console[model]'" in out.stderr
    assert "Traceback" not in out.stderr
    assert not (tmp_path / "m").exists()


def test_an_unrelated_missing_module_is_still_a_bug_with_its_traceback() -> None:
    out = run_without(["tomllib"], ["config", "show"])
    assert out.returncode == 1
    assert "Traceback" in out.stderr and "tomllib" in out.stderr
