"""One output sink for every command: human (Rich) or JSON, results on stdout, the rest on stderr.

Results go to stdout, everything else (progress, warnings, errors) to stderr, so
`qa-console ask "..." > answer.txt` and `--json | jq` work.

Every command that prints a result takes `--json` (the `JsonFlag` option below) and hands its
result to `Output.result`. The JSON shape is the same everywhere: one object on stdout, keys in
snake_case naming what the command produced (`{"upload": {...}, "check": {...}}`), durations as
`*_s` or `*_ms` numbers, sizes in bytes, paths and URLs as strings. Errors are never JSON: they
are the `error:` / `hint:` lines on stderr and the exit code, in both modes.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Annotated, Any

import typer

from qa_console.errors import QAConsoleError

if TYPE_CHECKING:
    from qa_console.cli.progress import RichProgress

JsonFlag = Annotated[
    bool, typer.Option("--json", help="Print the result as one JSON object on stdout.")
]


class Output:
    """Where one command's result goes, chosen by its --json flag."""

    def __init__(self, as_json: bool = False) -> None:
        self.json = as_json

    def result(self, data: Mapping[str, Any], human: Callable[[], None]) -> None:
        """Print `data` as one JSON object, or call `human` to print it for people."""
        if self.json:
            print_json(dict(data))
        else:
            human()

    def result_line(self, data: Mapping[str, Any], human: Callable[[], None]) -> None:
        """One of a stream of results (`logs --follow`): a JSON object on one line of its own,
        flushed at once so `| jq` sees each as it comes, or `human` for people."""
        if self.json:
            sys.stdout.write(json.dumps(dict(data), default=str) + "\n")
            sys.stdout.flush()
        else:
            human()

    def progress(self, transient: bool = False) -> RichProgress:
        """Progress bars on stderr for people; nothing in JSON mode."""
        from qa_console.cli.progress import RichProgress

        return RichProgress(enabled=not self.json, transient=transient)

    def info(self, message: str) -> None:
        """A status line for people (stderr); JSON mode leaves it out: the result says it."""
        if not self.json:
            info(message)

    def warn(self, message: str) -> None:
        """Warnings reach stderr in both modes."""
        warn(message)


def _stderr_console() -> Any:
    from rich.console import Console

    return Console(stderr=True, highlight=False)


def _stdout_console(width: int | None = None) -> Any:
    from rich.console import Console

    return Console(highlight=False, width=width)


def print_json(data: Any) -> None:
    """Write one JSON document to stdout."""
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")
    sys.stdout.flush()


def print_result(text: str) -> None:
    """Write a plain result line to stdout, untouched by markup."""
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def print_rich(renderable: Any, *, piped_width: int | None = None) -> None:
    """Print a Rich renderable (table, panel) to stdout. `piped_width`: lay it out this wide when
    stdout is not a terminal (Rich's 80 columns fold tables of long ARNs to a letter a line)."""
    width = piped_width if piped_width and not sys.stdout.isatty() else None
    _stdout_console(width).print(renderable)


def info(message: str) -> None:
    """A status line for people, on stderr. Not wrapped by Rich: these lines carry commands, paths
    and URLs that people copy (the terminal still folds them on screen)."""
    _stderr_console().print(message, soft_wrap=True)


def warn(message: str) -> None:
    _stderr_console().print(f"[yellow]warning:[/] {message}")


def print_error(error: QAConsoleError) -> None:
    """The error's detail lines, `error: message` and, when there is one, `  hint: what to do`,
    on stderr."""
    from rich.markup import escape

    console = _stderr_console()
    for line in error.details:
        console.print(escape(line), soft_wrap=True)
    console.print(f"[bold red]error:[/] {escape(error.message)}", soft_wrap=True)
    if error.hint:
        console.print(f"  [dim]hint:[/] {escape(error.hint)}", soft_wrap=True)
