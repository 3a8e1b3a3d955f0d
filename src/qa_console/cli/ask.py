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
    as_json: Annotated[
        bool,
        typer.Option(
            "--json", help="Print one JSON object: answer, backend, latency_ms, question."
        ),
    ] = False,
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
    """Ask one question and print the answer."""
    from qa_console import registry
    from qa_console.backends.base import Stopwatch, check_question
    from qa_console.cli import output

    text = check_question(sys.stdin.read() if question == "-" else question)
    parameters = parse_params(params or [])
    instances = registry.read_instances()
    settings = state(ctx).settings()
    name = backend or settings.backend or registry.first_instance(instances)
    instance = registry.build(registry.pick(instances, name), settings.values())

    if stream and not as_json:
        watch = Stopwatch()
        pieces = []
        for piece in instance.stream(text, parameters):
            pieces.append(piece)
            sys.stdout.write(piece)
            sys.stdout.flush()
        sys.stdout.write("\n")
        sys.stdout.flush()
        answer_text, latency_ms = "".join(pieces), watch.ms
    else:
        answer = instance.ask(text, parameters)
        answer_text, latency_ms = answer.text, answer.latency_ms
        if as_json:
            output.print_json(
                {
                    "answer": answer_text,
                    "backend": name,
                    "latency_ms": round(latency_ms, 3),
                    "question": text,
                }
            )
        else:
            output.print_result(answer_text)

    from qa_console.store import save_answer

    save_error = save_answer(text, answer_text, name, latency_ms, parameters)
    if save_error:
        output.warn(save_error)


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
