"""`qa-console up`: dataset to a live API in one resumable run, ending in the chat.

    qa-console up                       # the biography bot on the embedded local AWS
    qa-console up --no-tui              # end with the endpoint, the URL and three answers
    qa-console --target prod up --base-model google/flan-t5-base --instance-type auto

A thin face over qa_console/up.py.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from qa_console.cli.context import state
from qa_console.cli.output import JsonFlag, Output, print_result
from qa_console.cli.package import FastPathOption

if TYPE_CHECKING:
    from qa_console.up import UpOutcome


def register(app: typer.Typer) -> None:
    """Add `up` to the root app."""
    app.command("up")(up)


def up(
    ctx: typer.Context,
    data: Annotated[
        str | None, typer.Option("--data", help="Training data (default: the shipped dataset).")
    ] = None,
    base_model: Annotated[
        str, typer.Option("--base-model", help="'tiny' (offline) or a Hugging Face model id.")
    ] = "tiny",
    output: Annotated[Path, typer.Option("--output", "-o", help="The model folder.")] = Path(
        "artifacts/model"
    ),
    max_steps: Annotated[
        int | None, typer.Option("--max-steps", help="Training steps (default: the model's).")
    ] = None,
    name: Annotated[
        str | None, typer.Option("--name", help="Endpoint name (default: setting endpoint_name).")
    ] = None,
    instance_type: Annotated[
        str | None,
        typer.Option(
            "--instance-type", help="A real-time endpoint (or 'auto'); default serverless."
        ),
    ] = None,
    expose: Annotated[
        bool, typer.Option("--expose/--no-expose", help="Put the endpoint behind an HTTP API.")
    ] = True,
    fast_path: FastPathOption = "auto",
    no_tui: Annotated[
        bool, typer.Option("--no-tui", help="Print the result instead of opening the chat.")
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """Train, package, check, upload, check IAM, deploy, expose and ask: every unchanged step
    is skipped, and an interrupted run goes on from the step it stopped at."""
    from qa_console.up import UpRequest, run_up

    out = Output(as_json)
    cli = state(ctx)
    settings = cli.settings()
    request = UpRequest(
        endpoint=name or str(settings.endpoint_name),
        output_dir=output,
        base_model=base_model,
        data=data,
        max_steps=max_steps,
        instance_type=instance_type,
        expose=expose,
        fast_path=fast_path,
    )
    with out.progress() as progress:
        outcome = run_up(cli.target(), settings, request, progress=progress)
    interactive = sys.stdin.isatty() and sys.stdout.isatty()
    if interactive and not (no_tui or as_json):
        from qa_console.cli import tui

        if expose:
            tui.open_app(ctx, outcome.backend)
        else:  # chat with the endpoint itself, for this run (nothing is added to plugins.toml)
            endpoint = {"endpoint": outcome.endpoint}
            tui.open_app(ctx, outcome.endpoint, {outcome.endpoint: ("sagemaker", endpoint)})
        return
    out.result(outcome.to_dict(), lambda: _print(outcome))


def _print(outcome: UpOutcome) -> None:
    for step in outcome.steps:
        verb = "skipped (unchanged)" if step.skipped else f"done in {step.seconds:.1f} s"
        print_result(f"{step.step:<8} {verb}")
    print_result(f"endpoint {outcome.endpoint}")
    if outcome.url:
        print_result(f"API      {outcome.url}  (backend {outcome.backend})")
    for pair in outcome.answers:
        print_result(f"Q: {pair['question']}\nA: {pair['answer']}")
