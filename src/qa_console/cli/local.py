"""`qa-console local up|down|status|env`: the embedded local AWS (moto + SageMaker runtime + API
gateway on loopback). It also starts by itself whenever the `local` target is used."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import typer

from qa_console.cli.context import state
from qa_console.cli.output import JsonFlag, Output, info, print_result

if TYPE_CHECKING:
    from qa_console.localaws.launcher import UpResult

local_app = typer.Typer(
    help="Start, stop and inspect the embedded local AWS (moto, SageMaker runtime, API gateway).",
    no_args_is_help=True,
)


@local_app.command("up")
def up(ctx: typer.Context, as_json: JsonFlag = False) -> None:
    """Start the local AWS (or find the running one) and print where it listens."""
    from qa_console.localaws import launcher

    out = Output(as_json)
    out.info("starting the local AWS...")
    result = launcher.up(state(ctx).settings().region)
    out.result(result.to_dict(), lambda: _print_up(result))


def _print_up(result: UpResult) -> None:
    verb = "started" if result.started else "already running"
    info(f"local AWS {verb} (pid {result.state.pid}) in {result.seconds:.2f} s")
    for name in result.state.ports:
        print_result(
            f"{name:<8} {result.state.url(name)}  {result.state.components.get(name, 'ok')}"
        )
    info('use it from a shell with: eval "$(qa-console local env)"')


@local_app.command("down")
def down(as_json: JsonFlag = False) -> None:
    """Stop the local AWS after it saves its state (buckets, objects, endpoints...)."""
    from qa_console.localaws import launcher

    result = launcher.stop()
    Output(as_json).result(result.to_dict(), lambda: print_result(_stopped(result.to_dict())))


def _stopped(data: dict[str, Any]) -> str:
    if not data["was_running"]:
        return "local AWS is not running"
    how = "killed after the grace period" if data["forced"] else "stopped"
    return (
        f"local AWS {how} (pid {data['pid']}) in {data['seconds']:.2f} s; "
        f"state kept in {data['state_dir']}"
    )


@local_app.command("status")
def status(as_json: JsonFlag = False) -> None:
    """What runs, on which ports, since when, and the SageMaker endpoints and S3 buckets in it."""
    from qa_console.localaws import launcher

    data = launcher.status().to_dict()
    Output(as_json).result(data, lambda: print_result("\n".join(_status_lines(data))))


@local_app.command("env")
def env(ctx: typer.Context, as_json: JsonFlag = False) -> None:
    """Print `export` lines that point the AWS CLI and boto3 in a shell at the local AWS
    (starting it if needed): eval "$(qa-console local env)"."""
    import shlex

    from qa_console.localaws import launcher

    env = launcher.up(state(ctx).settings().region).env
    lines = "\n".join(f"export {name}={shlex.quote(value)}" for name, value in env.items())
    Output(as_json).result({"env": env}, lambda: print_result(lines))


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
