"""`qa-console config show|set`: the effective settings, where each came from, and changing one."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from qa_console.cli.context import state
from qa_console.cli.output import JsonFlag, Output, print_rich

if TYPE_CHECKING:
    from qa_console.settings import Settings

config_app = typer.Typer(help="Show or change the settings.", no_args_is_help=True)


@config_app.command("show")
def show(ctx: typer.Context, as_json: JsonFlag = False) -> None:
    """Print every setting, its value and its source (default, file:line, env, flag)."""
    settings = state(ctx).settings()
    data = {"config_file": str(settings.config_file), "settings": settings.to_dict()}
    Output(as_json).result(data, lambda: _print_settings(settings))


def _print_settings(settings: Settings) -> None:
    from rich.table import Table

    table = Table(title=f"settings (file: {settings.config_file})", title_justify="left")
    table.add_column("key")
    table.add_column("value")
    table.add_column("source", style="dim")
    for entry in settings.entries():
        table.add_row(entry.key, "-" if entry.value is None else entry.value, entry.source)
    print_rich(table)


@config_app.command("set")
def set_(
    ctx: typer.Context,
    key: Annotated[str, typer.Argument(help="Setting to change, e.g. bucket or execution_role.")],
    value: Annotated[str, typer.Argument(help="Its new value.")],
) -> None:
    """Write KEY = VALUE into the settings file (--config, QA_CONSOLE_CONFIG, or the user's)."""
    from qa_console.cli import output
    from qa_console.settings import write_setting

    cli_state = state(ctx)
    path = write_setting(key, value, cli_state.settings().config_file)
    output.info(f"{key} = {value!r} written to {path}")


def register(app: typer.Typer) -> None:
    app.add_typer(config_app, name="config")
