"""`qa-console tui`: open the terminal UI (chat with a backend, recent history).

textual is imported inside the command only, so every other command starts without it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

import typer

from qa_console.cli.context import state


def tui(
    ctx: typer.Context,
    backend: Annotated[
        str | None,
        typer.Option(
            "--backend",
            "-b",
            help="Backend instance to start with (default: setting 'backend', else the first).",
        ),
    ] = None,
) -> None:
    """Open the terminal UI: chat, train, package, check IAM, deploy and follow logs."""
    from qa_console.chat import ChatSession

    settings = state(ctx).settings()
    if backend is not None:
        ChatSession(settings.values()).resolve(backend)  # an unknown name fails here, listed
    open_app(ctx, backend or settings.backend)


def open_app(
    ctx: typer.Context,
    backend: str | None,
    session_backends: Mapping[str, tuple[str, Mapping[str, Any]]] | None = None,
) -> None:
    """Run the app on `backend`; session_backends: instances for this run only (name: kind,
    options), e.g. the endpoint `qa-console up` just deployed."""
    from qa_console.tui.app import QAConsoleApp

    settings = state(ctx).settings()
    QAConsoleApp(
        backend=backend, settings=settings.values(), session_backends=session_backends
    ).run()


def register(app: typer.Typer) -> None:
    """Add `tui` to the root app."""
    app.command("tui")(tui)
