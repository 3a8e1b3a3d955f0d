"""One output sink for every command: human (Rich), JSON (one object on stdout) or quiet.

Results go to stdout, everything else (progress, warnings, errors) to stderr, so
`qa-console ask "..." > answer.txt` and `--json | jq` work.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from qa_console.errors import QAConsoleError


def _stderr_console() -> Any:
    from rich.console import Console

    return Console(stderr=True, highlight=False)


def _stdout_console() -> Any:
    from rich.console import Console

    return Console(highlight=False)


def print_json(data: Any) -> None:
    """Write one JSON document to stdout."""
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")
    sys.stdout.flush()


def print_result(text: str) -> None:
    """Write a plain result line to stdout, untouched by markup."""
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def print_rich(renderable: Any) -> None:
    """Print a Rich renderable (table, panel) to stdout."""
    _stdout_console().print(renderable)


def info(message: str) -> None:
    """A status line for people, on stderr."""
    _stderr_console().print(message)


def warn(message: str) -> None:
    _stderr_console().print(f"[yellow]warning:[/] {message}")


def print_error(error: QAConsoleError) -> None:
    """`error: message` and, when there is one, `  hint: what to do`, on stderr."""
    from rich.markup import escape

    console = _stderr_console()
    console.print(f"[bold red]error:[/] {escape(error.message)}", soft_wrap=True)
    if error.hint:
        console.print(f"  [dim]hint:[/] {escape(error.hint)}", soft_wrap=True)
