"""Reading a log group: every stream, merged in time order, through FilterLogEvents' pages."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from qa_console.errors import QAConsoleError
from qa_console.ops.aws.errors import aws_errors
from qa_console.ops.logs.lines import LogLine

if TYPE_CHECKING:
    from qa_console.ops.aws.target import Target

MAX_PAGES = 1000  # a bound on one read; 1000 pages of up to 10,000 events is plenty for a CLI


def logs_errors(target: Target, group: str) -> contextlib.AbstractContextManager[None]:
    """aws_errors for a call on `group`: a missing group is a UsageError naming it."""
    return aws_errors(
        f"read the logs of {group}",
        target=target,
        resource=f"log group {group}",
        permission="logs:FilterLogEvents",
    )


def filter_pattern(text: str) -> str:
    """The CloudWatch filter pattern matching lines that contain `text`: a quoted term matches
    the text as it is, spaces and punctuation included."""
    return '"' + text.replace('"', '\\"') + '"'


def filter_events(
    logs: Any,
    group: str,
    *,
    start_ms: int | None = None,
    end_ms: int | None = None,
    text: str | None = None,
) -> Iterator[dict[str, Any]]:
    """The raw events of every page of one FilterLogEvents query (bounded by MAX_PAGES)."""
    request: dict[str, Any] = {"logGroupName": group}
    if start_ms is not None:
        request["startTime"] = start_ms
    if end_ms is not None:
        request["endTime"] = end_ms
    if text:
        request["filterPattern"] = filter_pattern(text)
    for _ in range(MAX_PAGES):
        page = logs.filter_log_events(**request)
        yield from page.get("events", [])
        token = page.get("nextToken")
        if not token or token == request.get("nextToken"):
            return
        request["nextToken"] = token


def read_lines(
    target: Target,
    group: str,
    *,
    start_ms: int | None = None,
    end_ms: int | None = None,
    text: str | None = None,
) -> list[LogLine]:
    """Every event of `group` (from `start_ms`, containing `text`), oldest first across
    streams. UsageError with a hint when the group does not exist."""
    logs = target.client("logs")
    with logs_errors(target, group):
        events = list(filter_events(logs, group, start_ms=start_ms, end_ms=end_ms, text=text))
    # CloudWatch interleaves by time per page only; sort so two streams read as one story.
    return sorted(
        (LogLine.from_event(event) for event in events),
        key=lambda line: (line.timestamp_ms, line.stream),
    )


def last_lines(
    target: Target,
    group: str,
    count: int = 20,
    *,
    start_ms: int | None = None,
    end_ms: int | None = None,
) -> list[str]:
    """The texts of the last `count` lines of `group` (between `start_ms` and `end_ms`); []
    when the group is missing or cannot be read: callers use these to explain another
    failure, never to fail."""
    try:
        lines = read_lines(target, group, start_ms=start_ms, end_ms=end_ms)
    except QAConsoleError:  # a hint must never hide the error it explains
        return []
    return [line.message for line in lines[-count:]]
