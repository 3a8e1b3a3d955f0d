"""`qa-console local up|down|status|env`: the embedded local AWS (moto + SageMaker runtime + API
gateway on loopback). It also starts by itself whenever the `local` target is used."""

from __future__ import annotations

import time
from typing import Annotated, Any

import typer

from qa_console.cli.context import state

local_app = typer.Typer(
    help="Start, stop and inspect the embedded local AWS (moto, SageMaker runtime, API gateway).",
    no_args_is_help=True,
)

JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON object.")]


@local_app.command("up")
def up(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """Start the local AWS (or find the running one) and print where it listens."""
    from qa_console.cli import output
    from qa_console.localaws import launcher

    region = state(ctx).settings().region
    if not as_json:
        output.info("starting the local AWS...")
    result = launcher.up(region)
    if as_json:
        output.print_json(result.to_dict())
        return
    verb = "started" if result.started else "already running"
    output.info(f"local AWS {verb} (pid {result.state.pid}) in {result.seconds:.2f} s")
    for name in result.state.ports:
        output.print_result(
            f"{name:<8} {result.state.url(name)}  {result.state.components.get(name, 'ok')}"
        )
    output.info('use it from a shell with: eval "$(qa-console local env)"')


@local_app.command("down")
def down(as_json: JsonOption = False) -> None:
    """Stop the local AWS after it saves its state (buckets, objects, endpoints...)."""
    from qa_console.cli import output
    from qa_console.localaws import launcher

    result = launcher.stop()
    if as_json:
        output.print_json(result.to_dict())
        return
    if not result.was_running:
        output.print_result("local AWS is not running")
        return
    how = "killed after the grace period" if result.forced else "stopped"
    output.print_result(
        f"local AWS {how} (pid {result.pid}) in {result.seconds:.2f} s; "
        f"state kept in {result.state_dir}"
    )


@local_app.command("status")
def status(as_json: JsonOption = False) -> None:
    """What runs, on which ports, since when, and the SageMaker endpoints and S3 buckets in it."""
    from qa_console.cli import output
    from qa_console.localaws import launcher

    result = launcher.status()
    if as_json:
        output.print_json(result.to_dict())
        return
    for line in _status_lines(result.to_dict()):
        output.print_result(line)


@local_app.command("env")
def env(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """Print `export` lines that point the AWS CLI and boto3 in a shell at the local AWS
    (starting it if needed): eval "$(qa-console local env)"."""
    import shlex

    from qa_console.cli import output
    from qa_console.localaws import launcher

    result = launcher.up(state(ctx).settings().region)
    if as_json:
        output.print_json(result.env)
        return
    for name, value in result.env.items():
        output.print_result(f"export {name}={shlex.quote(value)}")


def _status_lines(data: dict[str, Any]) -> list[str]:
    if not data["running"]:
        lines = [f"local AWS is not running (state dir {data['state_dir']})"]
        if data["stale_state_removed"]:
            lines.append("removed a stale state file left by a process that is gone")
        if data["snapshot"]:
            lines.append(
                f"saved state: {_snapshot(data['snapshot'])}; `qa-console local up` restores it"
            )
        return lines
    lines = [
        f"local AWS running (pid {data['pid']}, up {_duration(data['uptime_seconds'])}, "
        f"region {data['region']}, moto {data['versions'].get('moto', '?')})"
    ]
    for name, url in data["urls"].items():
        lines.append(f"  {name:<8} {url}  {data['components'].get(name, '?')}")
    lines.append(f"  state    {data['state_dir']}")
    if data["snapshot"]:
        lines.append(f"  saved    {_snapshot(data['snapshot'])}")
    lines.append(f"  log      {data['log_file']}")
    lines.append(f"SageMaker endpoints ({len(data['endpoints'])}):")
    lines.extend(
        f"  {item['name']}  {item['status']}  ({item['region']})" for item in data["endpoints"]
    )
    lines.append(f"S3 buckets ({len(data['buckets'])}):")
    lines.extend(f"  {name}" for name in data["buckets"])
    return lines


def _snapshot(info: dict[str, Any]) -> str:
    age = _duration(time.time() - float(info["written_at"]))
    return f"{info['bytes'] / 1e6:.1f} MB, {age} ago"


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h {minutes}m"
    if minutes:
        return f"{minutes}m {secs}s"
    return f"{secs}s"


def register(app: typer.Typer) -> None:
    """Add this module's commands to the root app."""
    app.add_typer(local_app, name="local")
