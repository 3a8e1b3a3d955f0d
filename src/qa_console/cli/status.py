"""`qa-console status [NAME]` and `qa-console teardown NAME`: look at an endpoint, or remove what
qa-console created for it."""

from __future__ import annotations

import sys
from typing import Annotated, Any

import typer

from qa_console.cli.context import state
from qa_console.cli.output import JsonFlag, Output, info, print_result, print_rich
from qa_console.errors import UsageError


def register(app: typer.Typer) -> None:
    """Add `status` and `teardown` to the root app."""
    app.command("status")(status)
    app.command("teardown", no_args_is_help=True)(teardown)


def status(
    ctx: typer.Context,
    name: Annotated[
        str | None, typer.Argument(help="An endpoint (default: all, in brief).")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """An endpoint's status, variants, image, model URL, created time and $/hour; or every
    endpoint of the target and region."""
    from qa_console.ops.deploy.status import endpoint_status, list_endpoints

    target = state(ctx).target()
    out = Output(as_json)
    if name is None:
        rows = list_endpoints(target)
        out.result({"endpoints": rows}, lambda: _print_list(rows, target.describe()))
        return
    data = endpoint_status(target, name)
    out.result(data, lambda: _print_status(data))


def _print_list(rows: list[dict[str, Any]], where: str) -> None:
    from rich.table import Table

    if not rows:
        info(f"no endpoints in {where}; create one with `qa-console deploy artifacts/model`")
        return
    table = Table(title=f"endpoints in {where}", title_justify="left")
    for column in ("name", "status", "created", "by qa-console"):
        table.add_column(column)
    for row in rows:
        table.add_row(
            row["name"],
            _coloured(row["status"]),
            row["created"][:19],
            "yes" if row["managed"] else "",
        )
    print_rich(table)


def _coloured(status: str) -> str:
    colour = {"InService": "green", "Failed": "red"}.get(status, "yellow")
    return f"[{colour}]{status}[/]"


def _print_status(data: dict[str, Any]) -> None:
    from rich.markup import escape

    print_result(f"{data['name']}  {data['status']}")
    if data.get("failure_reason"):
        what = "failed" if data["status"] == "Failed" else "the last update failed"
        info(f"[red]{what}:[/] {escape(str(data['failure_reason']))}")
    print_result(f"  config    {data['config']}")
    for variant in data["variants"]:
        if "serverless" in variant:
            size = variant["serverless"]
            what = f"serverless {size['memory_mb']} MB, max concurrency {size['max_concurrency']}"
            cost = variant["cost"]
            price = f"~${cost['usd_per_1000_requests']:.4f} per 1,000 requests"
        else:
            what = f"{variant['instance_count']} x {variant['instance_type']}"
            price = (
                f"${variant.get('usd_per_hour', 0):.3f}/hour" if "usd_per_hour" in variant else ""
            )
        print_result(f"  variant   {variant['name']}: {what}  {price}".rstrip())
        print_result(f"  image     {variant.get('image')}")
        print_result(f"  model     {variant.get('model_url')}")
    if data.get("async_output"):
        print_result(f"  answers   {data['async_output']}")
    for scaling in data["autoscaling"]:
        print_result(f"  autoscale {scaling['min']}..{scaling['max']} instances")
    print_result(f"  created   {data['created'][:19]}, changed {data['last_modified'][:19]}")
    if data["usd_per_month"] is not None:
        print_result(
            f"  cost      ${data['usd_per_hour']:.3f}/hour, ${data['usd_per_month']:.2f}/month"
        )
    print_result(f"  recorded  {len(data['recorded'])} resource(s) created by qa-console")


def teardown(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The endpoint whose resources to delete.")],
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="List what would go; delete nothing.")
    ] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask before deleting.")] = False,
    purge_s3: Annotated[
        bool, typer.Option("--purge-s3", help="Also delete the uploaded model in S3.")
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """Delete what qa-console created for endpoint NAME (API, Lambda, autoscaling, endpoint,
    configs, models, roles), in dependency order; S3 data stays unless --purge-s3."""
    from qa_console.ops.teardown import planned
    from qa_console.ops.teardown import teardown as run_teardown

    target = state(ctx).target()
    out = Output(as_json)
    if not dry_run and not yes:
        items = planned(target, name)
        if not items:
            run_teardown(target, name, dry_run=True)  # raises the one-line "no record" error
        if not sys.stdin.isatty():
            raise UsageError(
                f"teardown of {name} deletes {len(items)} resource(s); confirm with --yes",
                hint=f"see them first: qa-console teardown {name} --dry-run",
            )
        for item in items:
            info(f"  {item.kind} {item.name}")
        if not typer.confirm(f"delete these {len(items)} resource(s) of {name}?", err=True):
            raise typer.Abort()
    with out.progress(transient=True) as progress:
        result = run_teardown(target, name, dry_run=dry_run, purge_s3=purge_s3, progress=progress)
    out.result(result.to_dict(), lambda: _print_teardown(result.to_dict()))


def _print_teardown(data: dict[str, Any]) -> None:
    verb = "would delete" if data["dry_run"] else "deleted"
    for item in data["deleted"]:
        print_result(f"{verb} {item['kind']} {item['name']}")
    for item in data["already_gone"]:
        print_result(f"already gone {item['kind']} {item['name']}")
    for item in data["kept"]:
        print_result(f"kept {item['kind']} {item['name']} (--purge-s3 deletes it)")
