"""`qa-console tui`: open the terminal UI (chat with a backend, recent history).

textual is imported inside the command only, so every other command starts without it.
"""

from __future__ import annotations

from typing import Annotated

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
    """Open the terminal UI: chat with a backend and browse the history."""
    from qa_console.chat import ChatSession

    settings = state(ctx).settings()
    if backend is not None:
        ChatSession(settings.values()).resolve(backend)  # an unknown name fails here, listed

    from qa_console.tui.app import QAConsoleApp

    QAConsoleApp(backend=backend or settings.backend, settings=settings.values()).run()


def register(app: typer.Typer) -> None:
    """Add `tui` to the root app."""
    app.command("tui")(tui)
