"""Folding log lines into what a person reads: a run of health checks as one line, a Python
traceback as one block.

SageMaker pings a container's /ping every few seconds, so an idle endpoint's log is mostly
health checks; a failed model load is a traceback spread over a dozen events. Both are easier
to read as one entry each.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

from qa_console.ops.logs.lines import LogLine

TRACEBACK_START = "Traceback (most recent call last):"
HEALTH_CHECK = re.compile(r"\bGET /ping\b|\s/ping\b")
CHAIN_SEPARATORS = ("During handling of the above exception", "The above exception was")
MAX_TRACEBACK_LINES = 500  # a traceback whose exception line never came ends here

Kind = Literal["line", "health_checks", "traceback"]


@dataclass
class LogEntry:
    """One thing to show: a line, `count` folded health checks, or a traceback's lines."""

    kind: Kind
    first: LogLine
    lines: list[LogLine] = field(default_factory=list)

    @property
    def count(self) -> int:
        return len(self.lines)

    @property
    def text(self) -> str:
        if self.kind == "health_checks":
            return f"{self.count} health check{'s' if self.count != 1 else ''}"
        return "\n".join(line.message for line in self.lines)

    def to_dict(self) -> dict[str, Any]:
        return {
            "time": self.first.time.isoformat(),
            "timestamp_ms": self.first.timestamp_ms,
            "stream": self.first.stream,
            "kind": self.kind,
            "count": self.count,
            "message": self.text,
        }


def is_health_check(message: str) -> bool:
    return HEALTH_CHECK.search(message) is not None


def _is_traceback_body(message: str) -> bool:
    """Frames ("  File ...", their source lines) and the lines that chain one exception to the
    next ("During handling of the above exception...", blank lines, a new traceback header)."""
    return (
        message[:1].isspace()
        or message == ""
        or message.startswith(CHAIN_SEPARATORS)
        or message == TRACEBACK_START
    )


def fold(lines: Iterable[LogLine]) -> Iterator[LogEntry]:
    """`lines` (oldest first) as entries: consecutive health checks of one stream folded, each
    traceback (start line to its exception line, chained exceptions included) kept together."""
    pending: LogEntry | None = None
    # A traceback past its exception line: still open to a chained exception that follows.
    ended = False
    for line in lines:
        message = line.message
        same_stream = pending is not None and line.stream == pending.first.stream
        in_traceback = pending is not None and pending.kind == "traceback" and same_stream
        if pending is not None and in_traceback and not (ended and not _chains(message)):
            pending.lines.append(line)
            # The first line that is not a frame is the exception line.
            ended = not _is_traceback_body(message) or pending.count >= MAX_TRACEBACK_LINES
            continue
        in_run = pending is not None and pending.kind == "health_checks" and same_stream
        if pending is not None and in_run and is_health_check(message):
            pending.lines.append(line)
            continue
        if pending is not None:
            yield pending
            pending = None
        ended = False
        if message.startswith(TRACEBACK_START):
            pending = LogEntry("traceback", line, [line])
        elif is_health_check(message):
            pending = LogEntry("health_checks", line, [line])
        else:
            yield LogEntry("line", line, [line])
    if pending is not None:
        yield pending


def _chains(message: str) -> bool:
    """Whether a line after an exception line continues the traceback (a chained exception)."""
    return message == "" or message.startswith(CHAIN_SEPARATORS)
