"""`qa-console ask "QUESTION"`: one question to one backend, the answer alone on stdout.

Start-up time is the feature here, so this module imports only typer at module level, and the
command imports the registry, the one backend kind it needs and the store, nothing else.
"""

from __future__ import annotations

import json
import sys
from typing import Annotated, Any

import typer

from qa_console.cli.context import state
from qa_console.cli.output import JsonFlag, Output, print_result
from qa_console.errors import UsageError


def ask(
    ctx: typer.Context,
    question: Annotated[str, typer.Argument(help="The question; '-' reads it from stdin.")],
    backend: Annotated[
        str | None,
        typer.Option(
            "--backend",
            "-b",
            help="Backend instance from plugins.toml (default: setting 'backend', else the first).",
        ),
    ] = None,
    as_json: JsonFlag = False,
    stream: Annotated[
        bool,
        typer.Option(
            "--stream",
            help="Print the answer as it is produced (with --json: one object at the end).",
        ),
    ] = False,
    params: Annotated[
        list[str] | None,
        typer.Option(
            "--param",
            "-p",
            help="Generation parameter key=value (value read as JSON when it parses), repeatable.",
        ),
    ] = None,
) -> None:
    """Ask one question and print the answer (--json: answer, backend, known, latency_ms,
    question; known is false when the bot answered that it does not know)."""
    from qa_console.chat import ChatSession

    out = Output(as_json)
    text = sys.stdin.read() if question == "-" else question
    parameters = parse_params(params or [])
    session = ChatSession(state(ctx).settings().values())

    if stream and not as_json:
        reply = session.stream(text, _write_piece, backend, parameters)
        sys.stdout.write("\n")
        sys.stdout.flush()
    else:
        reply = session.ask(text, backend, parameters)
    assert reply is not None  # nothing cancels a command-line stream
    if not stream or as_json:
        out.result(reply.to_dict(), lambda: print_result(reply.answer))
    if reply.save_error:
        out.warn(reply.save_error)


def _write_piece(piece: str) -> None:
    sys.stdout.write(piece)
    sys.stdout.flush()


def parse_params(items: list[str]) -> dict[str, Any]:
    """`key=value` pairs into a dict; values that parse as JSON (5, 0.7, true) keep that type."""
    parameters: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise UsageError(
                f"--param {item!r} is not key=value", hint="e.g. --param max_new_tokens=32"
            )
        try:
            value: Any = json.loads(raw)
        except ValueError:
            value = raw
        parameters[key.strip()] = value
    return parameters


def register(app: typer.Typer) -> None:
    """Add `ask` to the root app."""
    app.command("ask")(ask)
