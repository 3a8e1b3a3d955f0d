"""`qa-console history`: the questions asked so far, newest first, from the SQLite store."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from qa_console.cli.output import JsonFlag, Output, info, print_rich

if TYPE_CHECKING:
    from qa_console.store import HistoryEntry


def history(
    as_json: JsonFlag = False,
    limit: Annotated[
        int, typer.Option("--limit", "-n", min=1, help="How many entries, newest first.")
    ] = 20,
) -> None:
    """Show the answered questions: when, which backend, latency, question and answer."""
    from qa_console.store import open_store

    with open_store() as store:
        entries = store.recent(limit)
    data = {"entries": [entry.to_dict() for entry in entries]}
    Output(as_json).result(data, lambda: _print_entries(entries))


def _print_entries(entries: list[HistoryEntry]) -> None:
    if not entries:
        info('no questions asked yet: try qa-console ask "..."')
        return
    from rich.markup import escape
    from rich.table import Table

    table = Table(title="history (newest first)", title_justify="left")
    for column in ("time (UTC)", "backend", "latency", "question", "answer"):
        table.add_column(column)
    for entry in entries:
        latency = "-" if entry.latency_ms is None else f"{entry.latency_ms:.0f} ms"
        table.add_row(
            entry.created_at[:19].replace("T", " "),
            escape(entry.backend),
            latency,
            escape(entry.question),
            escape(entry.answer),
        )
    print_rich(table)


def register(app: typer.Typer) -> None:
    """Add `history` to the root app."""
    app.command("history")(history)
