"""`qa-console logs` and the ops.logs library against the embedded local AWS over sockets: lines
are written with put_log_events into a fresh endpoint log group per test."""

from __future__ import annotations

import json
import signal
import subprocess
import threading
import time
import uuid
from typing import Any

import pytest

from fixtures_foundation import CONSOLE_SCRIPT, run_cli
from fixtures_localaws import LocalAws
from qa_console.errors import UsageError
from qa_console.ops.logs.fold import fold
from qa_console.ops.logs.follow import SeenEvents, follow
from qa_console.ops.logs.lines import endpoint_log_group
from qa_console.ops.logs.read import last_lines, read_lines

TRACEBACK = [
    "Traceback (most recent call last):",
    '  File "/opt/ml/code/inference.py", line 12, in model_fn',
    "    model = load(model_dir)",
    "ValueError: config.json is missing",
]


def _now_ms() -> int:
    return int(time.time() * 1000)


def _endpoint(local_aws: LocalAws, streams: dict[str, list[tuple[int, str]]]) -> str:
    """A fresh endpoint name whose log group holds `streams` (name -> [(timestamp, text)])."""
    name = f"logs-{uuid.uuid4().hex[:8]}"
    logs = local_aws.client("logs")
    group = endpoint_log_group(name)
    logs.create_log_group(logGroupName=group)
    for stream, events in streams.items():
        logs.create_log_stream(logGroupName=group, logStreamName=stream)
        if events:
            logs.put_log_events(
                logGroupName=group,
                logStreamName=stream,
                logEvents=[{"timestamp": ts, "message": text} for ts, text in events],
            )
    return name


def _logs(*args: str) -> Any:
    return run_cli("--target", "local", "logs", *args)


def test_two_streams_merge_in_time_order(local_aws: LocalAws) -> None:
    t = _now_ms() - 60_000
    name = _endpoint(
        local_aws,
        {
            "AllTraffic/i-a": [(t, "a first"), (t + 20, "a third")],
            "AllTraffic/i-b": [(t + 10, "b second"), (t + 30, "b fourth")],
        },
    )
    lines = read_lines(local_aws.target, endpoint_log_group(name))
    assert [line.message for line in lines] == ["a first", "b second", "a third", "b fourth"]

    run = _logs(name)
    assert run.returncode == 0, run.stderr
    out = run.stdout
    assert (
        out.index("a first") < out.index("b second") < out.index("a third") < out.index("b fourth")
    )


def test_since_and_filter_select_lines(local_aws: LocalAws) -> None:
    now = _now_ms()
    name = _endpoint(
        local_aws,
        {"AllTraffic/i-a": [(now - 3 * 3600_000, "old line"), (now - 1000, "recent error here"),
                            (now - 500, "recent ok")]},
    )  # fmt: skip
    recent = _logs(name, "--since", "10m", "--json")
    assert recent.returncode == 0, recent.stderr
    messages = [entry["message"] for entry in json.loads(recent.stdout)["entries"]]
    assert messages == ["recent error here", "recent ok"]

    filtered = _logs(name, "--filter", "error here", "--json")
    assert [e["message"] for e in json.loads(filtered.stdout)["entries"]] == ["recent error here"]

    bad = _logs(name, "--since", "ten minutes")
    assert bad.returncode == 2
    assert "duration" in bad.stderr


def test_traceback_is_one_block_and_pings_fold(local_aws: LocalAws) -> None:
    t = _now_ms() - 10_000
    pings = [(t + i, '127.0.0.1 - "GET /ping HTTP/1.1" 200') for i in range(5)]
    after = [(t + 10 + i, text) for i, text in enumerate(TRACEBACK)]
    name = _endpoint(
        local_aws, {"AllTraffic/i-a": [*pings, (t + 8, "loading model"), *after, (t + 30, "bye")]}
    )
    run = _logs(name, "--json")
    assert run.returncode == 0, run.stderr
    entries = json.loads(run.stdout)["entries"]
    assert [(e["kind"], e["count"]) for e in entries] == [
        ("health_checks", 5),
        ("line", 1),
        ("traceback", 4),
        ("line", 1),
    ]
    assert entries[0]["message"] == "5 health checks"
    assert entries[2]["message"] == "\n".join(TRACEBACK)
    human = _logs(name)
    assert "(5 health checks)" in human.stdout
    assert human.stdout.count("GET /ping") == 0


def test_missing_group_is_a_one_line_usage_error(local_aws: LocalAws) -> None:
    run = _logs(f"no-such-{uuid.uuid4().hex[:6]}")
    assert run.returncode == 2
    assert "Traceback" not in run.stderr
    errors = [line for line in run.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "does not exist" in errors[0]
    assert "hint:" in run.stderr
    with pytest.raises(UsageError):
        read_lines(local_aws.target, endpoint_log_group("no-such-endpoint-anywhere"))
    assert last_lines(local_aws.target, endpoint_log_group("no-such-endpoint-anywhere")) == []


def _write_later(local_aws: LocalAws, name: str, text: str, delay_s: float) -> threading.Thread:
    def write() -> None:
        time.sleep(delay_s)
        local_aws.client("logs").put_log_events(
            logGroupName=endpoint_log_group(name),
            logStreamName="AllTraffic/i-a",
            logEvents=[{"timestamp": _now_ms(), "message": text}],
        )

    thread = threading.Thread(target=write, daemon=True)
    thread.start()
    return thread


def test_follow_sees_a_line_written_after_it_started(local_aws: LocalAws) -> None:
    name = _endpoint(local_aws, {"AllTraffic/i-a": [(_now_ms() - 5000, "before follow")]})
    writer = _write_later(local_aws, name, "written while following", 1.0)
    seen: list[str] = []
    for batch in follow(local_aws.target, endpoint_log_group(name), for_s=8):
        seen.extend(line.message for line in batch)
        if "written while following" in seen:
            break
    writer.join(timeout=10)
    assert seen == ["written while following"]  # the older line is not repeated


def test_follow_json_cli_prints_one_object_per_line(local_aws: LocalAws) -> None:
    name = _endpoint(local_aws, {"AllTraffic/i-a": []})
    writer = _write_later(local_aws, name, "live line", 2.0)
    run = _logs(name, "--follow", "--json", "--for", "6")
    writer.join(timeout=10)
    assert run.returncode == 0, run.stderr
    objects = [json.loads(line) for line in run.stdout.splitlines() if line.strip()]
    assert [o["message"] for o in objects] == ["live line"]


def test_seen_events_memory_is_bounded() -> None:
    seen = SeenEvents(limit=3)
    assert all(seen.add(str(i)) for i in range(5))
    assert not seen.add("4")
    assert seen.add("0")  # forgotten once more than `limit` newer ids came


def test_fold_keeps_other_lines_apart() -> None:
    from qa_console.ops.logs.lines import LogLine

    lines = [LogLine(i, "s", text, str(i)) for i, text in enumerate(["a", "GET /ping", "b"])]
    assert [e.kind for e in fold(lines)] == ["line", "health_checks", "line"]


def test_follow_since_shows_earlier_lines_once(local_aws: LocalAws) -> None:
    """Live tail (moto answers with one snapshot and closes) then polling: no line twice."""
    name = _endpoint(local_aws, {"AllTraffic/i-a": [(_now_ms() - 5000, "before follow")]})
    writer = _write_later(local_aws, name, "then this", 1.0)
    seen: list[str] = []
    group = endpoint_log_group(name)
    for batch in follow(local_aws.target, group, start_ms=_now_ms() - 60_000, for_s=8):
        seen.extend(line.message for line in batch)
        if "then this" in seen:
            break
    writer.join(timeout=10)
    assert seen == ["before follow", "then this"]


def test_follow_of_a_missing_group_is_the_same_usage_error(local_aws: LocalAws) -> None:
    run = _logs(f"no-such-{uuid.uuid4().hex[:6]}", "--follow", "--for", "5")
    assert run.returncode == 2
    assert "does not exist" in run.stderr and "Traceback" not in run.stderr


def test_ctrl_c_ends_a_follow_with_exit_0(local_aws: LocalAws) -> None:
    name = _endpoint(local_aws, {"AllTraffic/i-a": []})
    writer = _write_later(local_aws, name, "seen before ctrl-c", 0.5)
    follower = subprocess.Popen(
        [str(CONSOLE_SCRIPT), "--target", "local", "logs", name, "--follow", "--for", "60"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert follower.stdout is not None
        first = follower.stdout.readline()  # blocks until the follower printed the line
        follower.send_signal(signal.SIGINT)
        _, errors = follower.communicate(timeout=30)
    finally:
        if follower.poll() is None:
            follower.kill()
            follower.wait(timeout=10)
    writer.join(timeout=10)
    assert "seen before ctrl-c" in first
    assert follower.returncode == 0, errors
    assert "interrupted" not in errors and "Traceback" not in errors


def test_durations_and_start_times() -> None:
    from qa_console.ops.logs.since import parse_duration_s, start_time_ms

    assert [parse_duration_s(text) for text in ("30s", "10m", "2h", "1d", "1.5H")] == [
        30,
        600,
        7200,
        86400,
        5400,
    ]
    assert start_time_ms("10m", now_s=1000.0) == 400_000
    assert start_time_ms(None) is None
    with pytest.raises(UsageError):
        parse_duration_s("10 minutes")


def test_a_chained_traceback_is_one_block() -> None:
    from qa_console.ops.logs.lines import LogLine

    texts = [
        *TRACEBACK,
        "",
        "During handling of the above exception, another exception occurred:",
        "",
        *TRACEBACK[:3],
        "RuntimeError: cannot load the model",
        "worker exiting",
    ]
    lines = [LogLine(i, "s", text, str(i)) for i, text in enumerate(texts)]
    entries = list(fold(lines))
    assert [(e.kind, e.count) for e in entries] == [("traceback", len(texts) - 1), ("line", 1)]
    assert entries[0].text.endswith("RuntimeError: cannot load the model")
