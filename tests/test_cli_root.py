"""Bare `qa-console`: the terminal UI on a terminal, the help text everywhere else (pipes,
scripts, CI), so no script ever hangs on a full-screen UI."""

from __future__ import annotations

import subprocess
import sys


def test_bare_command_without_a_terminal_prints_help_and_starts_no_ui() -> None:
    code = (
        "import sys\n"
        "from qa_console.cli.app import main\n"
        "try:\n"
        "    main([])\n"
        "finally:\n"
        "    sys.stderr.write('textual imported: %s' % ('textual' in sys.modules))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("Usage: qa-console")
    assert "ask" in out.stdout and "tui" in out.stdout
    assert "textual imported: False" in out.stderr


def test_a_command_that_fails_before_any_progress_prints_only_its_error() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "qa_console", "package", "/no/such/model"],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 2
    assert out.stderr.startswith("error: /no/such/model"), repr(out.stderr)
