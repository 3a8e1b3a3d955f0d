"""`qa-console expose NAME`: the endpoint NAME behind a public HTTPS API with an API key.

    qa-console expose biography-bot
    qa-console expose biography-bot --rate 5 --burst 10 --quota 1000 --cors-origin https://x.io
    qa-console ask --backend biography-bot-api "Who was ...?"

A thin face over ops/expose/flow.py. The URL goes to stdout; the key is kept in a file only the
user can read and printed only with --show-key.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from qa_console.cli.context import state
from qa_console.cli.output import JsonFlag, Output, info, print_result

if TYPE_CHECKING:
    from qa_console.ops.expose.flow import ExposeOutcome


def register(app: typer.Typer) -> None:
    """Add `expose` to the root app."""
    app.command("expose")(expose)


def expose(
    ctx: typer.Context,
    name: Annotated[
        str | None, typer.Argument(help="The endpoint (default: setting endpoint_name).")
    ] = None,
    stage: Annotated[str, typer.Option("--stage", help="API stage name.")] = "prod",
    rate: Annotated[float, typer.Option("--rate", help="Steady requests per second.")] = 10.0,
    burst: Annotated[int, typer.Option("--burst", help="Requests allowed in a burst.")] = 20,
    quota: Annotated[
        int, typer.Option("--quota", help="Requests per day per key (0: no quota).")
    ] = 10_000,
    cors_origin: Annotated[
        str, typer.Option("--cors-origin", help="Origin allowed to call from a browser.")
    ] = "*",
    show_key: Annotated[
        bool, typer.Option("--show-key", help="Print the API key (else only where it is kept).")
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """Expose an endpoint as an HTTP API (API Gateway + Lambda, API key, usage plan, CORS);
    adds the http backend NAME-api. Exposing again updates it and keeps the key."""
    from qa_console.ops.expose.api import ExposeRequest
    from qa_console.ops.expose.flow import expose_endpoint

    out = Output(as_json)
    cli = state(ctx)
    request = ExposeRequest(
        endpoint=name or str(cli.settings().endpoint_name),
        stage=stage,
        rate=rate,
        burst=burst,
        quota_per_day=quota or None,
        cors_origin=cors_origin,
    )
    with out.progress(transient=True) as progress:
        outcome = expose_endpoint(cli.target(), request, progress=progress)
    out.result(outcome.to_dict(show_key), lambda: _print(outcome, show_key))


def _print(outcome: ExposeOutcome, show_key: bool) -> None:
    result = outcome.result
    verb = "updated" if result.updated else "created"
    info(
        f"API {result.api_id} {verb} for endpoint {result.endpoint} (stage {result.stage}); "
        f"the key is in {outcome.key_file}" + ("" if show_key else " (--show-key prints it)")
    )
    if show_key:
        info(f"key: {result.key_value}")
    info(f"backend {outcome.backend} added to {outcome.plugins_file}")
    info(f"OpenAPI document: {outcome.openapi_file}")
    info(f"try it: {outcome.curl()}")
    print_result(result.url)
