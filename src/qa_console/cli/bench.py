"""`qa-console bench`: load one or more backends with questions and compare them.

    qa-console bench --backend bio-local --backend bio-sagemaker --requests 200 -c 4
    qa-console bench --backend biography-bot-api --json
    qa-console bench --report docs/bench.md

A thin face over qa_console/bench.py. Each run's results are kept under the data dir
(bench/<time>.json); the table (or --json) goes to stdout.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from qa_console.cli.context import state
from qa_console.cli.output import JsonFlag, Output, print_rich
from qa_console.errors import UsageError


def register(app: typer.Typer) -> None:
    """Add `bench` to the root app."""
    app.command("bench")(bench)


def bench(
    ctx: typer.Context,
    backends: Annotated[
        list[str] | None,
        typer.Option("--backend", "-b", help="A backend instance (repeat to compare)."),
    ] = None,
    requests: Annotated[int, typer.Option("--requests", "-n", help="Requests per backend.")] = 100,
    concurrency: Annotated[
        int, typer.Option("--concurrency", "-c", help="Clients asking at once.")
    ] = 1,
    report: Annotated[
        Path | None, typer.Option("--report", help="Also write the table as Markdown here.")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Cold start, p50/p95/p99 latency, throughput and errors of backends, side by side."""
    from qa_console.bench import markdown_report, run_benchmark, save
    from qa_console.chat import ChatSession
    from qa_console.events import ProgressEvent

    out = Output(as_json)
    if report is not None and not report.expanduser().parent.is_dir():
        # Checked before any load, so a typo does not cost a whole run's measurements.
        raise UsageError(
            f"--report: the folder {report.expanduser().parent} does not exist",
            hint="create it first, or pass a path in an existing folder",
        )
    session = ChatSession(state(ctx).settings().values())
    # Every name resolved before any load, so an unknown one fails at once (no flag: the default).
    names = [session.resolve(name) for name in backends] if backends else [session.resolve()]
    results = []
    with out.progress(transient=True) as progress:
        for name in names:

            def tick(done: int, name: str = name) -> None:
                progress(ProgressEvent(name, f"{done}/{requests} requests", done, requests))

            results.append(
                run_benchmark(session, name, requests=requests, concurrency=concurrency,
                              on_request=tick)
            )  # fmt: skip
    summaries = [item.summary() for item in results]
    kept = save(results)
    if report is not None:
        report.expanduser().write_text(markdown_report(summaries), encoding="utf-8")
    out.info(f"results kept in {kept}")
    out.result({"results": summaries, "file": str(kept)}, lambda: _print(summaries))


def _print(summaries: list[dict[str, Any]]) -> None:
    from rich.table import Table

    table = Table(title="benchmark", title_justify="left")
    columns = ("backend", "clients", "cold start", "p50", "p95", "p99", "answers/s", "errors")
    for column in columns:
        table.add_column(column, justify="left" if column == "backend" else "right")
    for item in summaries:
        errors = sum(item["errors"].values())
        table.add_row(
            item["backend"],
            str(item["concurrency"]),
            _ms(item["cold_start_ms"]),
            _ms(item["p50_ms"]),
            _ms(item["p95_ms"]),
            _ms(item["p99_ms"]),
            "-" if item["throughput_rps"] is None else f"{item['throughput_rps']:.1f}",
            f"[red]{errors}[/]" if errors else "0",
        )
    print_rich(table, piped_width=120)
    for item in summaries:
        if item["usd_per_1000_requests"] is not None:
            print_rich(
                f"{item['backend']}: ${item['usd_per_1000_requests']:.5f} per 1,000 requests "
                f"({item['cost_basis']})"
            )
        if item["first_error"]:
            print_rich(f"[red]{item['backend']}[/]: {item['first_error']}")


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} ms"
