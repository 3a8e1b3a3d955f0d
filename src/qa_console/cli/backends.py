"""`qa-console backends list|check`: the backend instances and kinds, and whether each answers."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from qa_console.cli.context import state
from qa_console.cli.output import JsonFlag, Output, print_rich

if TYPE_CHECKING:
    from qa_console.chat import HealthRow

backends_app = typer.Typer(
    help="List backend instances and kinds; check they answer.", no_args_is_help=True
)


@backends_app.command("list")
def list_backends(
    as_json: JsonFlag = False,
    load: Annotated[
        bool,
        typer.Option("--load", help="Import every kind to report plugins that fail to load."),
    ] = False,
) -> None:
    """Instances from plugins.toml (secrets hidden) and kinds (built-in and entry points).

    Imports no backend module unless --load is given, so a slow or broken plugin cannot slow
    down or break the listing.
    """
    from qa_console import registry

    files = registry.plugin_files()
    instances = registry.read_instances(files)
    kinds = registry.kinds()
    kind_rows = [_kind_row(key, kind, load) for key, kind in kinds.items()]
    instance_rows: list[dict[str, Any]] = [
        {
            "name": spec.name,
            "kind": spec.kind,
            "options": spec.public_options(),
            "source": str(spec.source),
            "line": spec.line,
            "error": registry.kind_problem(spec, kinds),
        }
        for spec in instances.values()
    ]
    data = {"files": [str(path) for path in files], "instances": instance_rows, "kinds": kind_rows}
    Output(as_json).result(data, lambda: _print_listing(instance_rows, kind_rows))


def _print_listing(instance_rows: list[dict[str, Any]], kind_rows: list[dict[str, Any]]) -> None:
    from rich.markup import escape
    from rich.table import Table

    table = Table(title="backend instances", title_justify="left")
    for column in ("name", "kind", "options", "source"):
        table.add_column(column, style="dim" if column == "source" else None)
    for row in instance_rows:
        options = ", ".join(f"{key}={value}" for key, value in row["options"].items())
        if row["error"]:
            options = f"{options} ({row['error']})" if options else row["error"]
        table.add_row(
            escape(row["name"]),
            escape(row["kind"]),
            escape(options),
            f"{row['source']}:{row['line']}",
        )
    print_rich(table)

    kinds_table = Table(title="backend kinds", title_justify="left")
    for column in ("kind", "class", "origin", "status"):
        kinds_table.add_column(column)
    for row in kind_rows:
        status = row["status"] if row["error"] is None else f"[red]{escape(row['error'])}[/]"
        kinds_table.add_row(
            escape(row["name"]), escape(row["target"]), escape(row["origin"]), status
        )
    print_rich(kinds_table)


def _kind_row(key: str, kind: Any, load: bool) -> dict[str, Any]:
    """One kind's row; `key` is its registry name (a shadowed entry point's names its dist)."""
    from qa_console import registry

    error = registry.kind_status(kind)
    status = "installed"
    if error is None and load:
        try:
            registry.load_kind(kind.name)
            status = "loads"
        except Exception as exc:  # report every way a plugin can fail, keep listing the rest
            error = getattr(exc, "message", None) or f"{type(exc).__name__}: {exc}"
    return {
        "name": key,
        "target": kind.target,
        "origin": kind.origin,
        "status": status if error is None else "error",
        "error": error,
    }


@backends_app.command("check")
def check(
    ctx: typer.Context,
    names: Annotated[
        list[str] | None, typer.Argument(help="Instances to check (default: all).")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Ask each instance's health check; report health and round-trip latency.

    Exits 1 if any instance is unhealthy or fails to load.
    """
    from qa_console.chat import ChatSession

    rows = ChatSession(state(ctx).settings().values()).check(names)
    healthy = all(row.ok for row in rows)
    Output(as_json).result(
        {"backends": [row.to_dict() for row in rows], "ok": healthy}, lambda: _print_health(rows)
    )
    if not healthy:
        raise typer.Exit(1)


def _print_health(rows: list[HealthRow]) -> None:
    from rich.markup import escape
    from rich.table import Table

    table = Table(title="backend health", title_justify="left")
    for column in ("name", "kind", "health", "latency", "detail"):
        table.add_column(column)
    for row in rows:
        table.add_row(
            escape(row.name),
            escape(row.kind),
            "[green]ok[/]" if row.ok else "[red]unhealthy[/]",
            f"{row.latency_ms:.0f} ms",
            escape(row.detail),
        )
    print_rich(table)


def register(app: typer.Typer) -> None:
    """Add the `backends` group to the root app."""
    app.add_typer(backends_app, name="backends")
