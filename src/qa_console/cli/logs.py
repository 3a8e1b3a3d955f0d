"""`qa-console logs NAME`: an endpoint's CloudWatch log, all streams merged, health checks and
tracebacks folded; `--follow` keeps printing new lines until Ctrl-C (or `--for SECONDS`)."""

from __future__ import annotations

import contextlib
import functools
from typing import TYPE_CHECKING, Annotated

import typer

from qa_console.cli.context import state
from qa_console.cli.output import JsonFlag, Output, print_result

if TYPE_CHECKING:
    from collections.abc import Iterable

    from qa_console.ops.logs.fold import LogEntry


def register(app: typer.Typer) -> None:
    """Add `logs` to the root app."""
    app.command("logs", no_args_is_help=True)(logs)


def logs(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The endpoint whose log to show.")],
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Keep printing new lines until Ctrl-C.")
    ] = False,
    since: Annotated[
        str | None, typer.Option("--since", help="Only lines this recent: 30s, 10m, 2h, 1d.")
    ] = None,
    text: Annotated[
        str | None, typer.Option("--filter", help="Only lines containing this text.")
    ] = None,
    for_s: Annotated[
        float | None,
        typer.Option("--for", help="With --follow: stop after this many seconds.", min=0),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Show the CloudWatch log of endpoint NAME (/aws/sagemaker/Endpoints/NAME). With --json:
    one object {"entries": [...]}, or with --follow one JSON object per line as lines arrive."""
    from qa_console.ops.logs.fold import fold
    from qa_console.ops.logs.follow import follow as follow_group
    from qa_console.ops.logs.lines import endpoint_log_group
    from qa_console.ops.logs.read import read_lines
    from qa_console.ops.logs.since import start_time_ms

    target = state(ctx).target()
    group = endpoint_log_group(name)
    start_ms = start_time_ms(since)
    out = Output(as_json)
    if not follow:
        entries = list(fold(read_lines(target, group, start_ms=start_ms, text=text)))
        out.result({"entries": [e.to_dict() for e in entries]}, lambda: _print_entries(entries))
        return
    # Ctrl-C ends a follow as the user meant it to: exit 0, no "interrupted".
    with contextlib.suppress(KeyboardInterrupt):
        for batch in follow_group(target, group, start_ms=start_ms, text=text, for_s=for_s):
            for entry in fold(batch):
                out.result_line(entry.to_dict(), functools.partial(_print_entry, entry))


def _print_entries(entries: Iterable[LogEntry]) -> None:
    for entry in entries:
        _print_entry(entry)


def _print_entry(entry: LogEntry) -> None:
    """`2026-12-07 09:20:01 i-0abc  text`: UTC time, the instance (the stream's last part), and
    the line, the traceback block, or "(12 health checks)"."""
    stamp = entry.first.time.strftime("%Y-%m-%d %H:%M:%S")
    where = entry.first.stream.rsplit("/", 1)[-1]
    text = f"({entry.text})" if entry.kind == "health_checks" else entry.text
    print_result(f"{stamp} {where}  {text}")
