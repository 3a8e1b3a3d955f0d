"""Following a log group: new lines as they arrive, in batches, until a deadline or Ctrl-C.

Two ways to hear about new lines:
- StartLiveTail, where the logs client has it and the service answers: CloudWatch pushes
  events over one streaming response.
- Otherwise (the embedded local AWS; moto answers StartLiveTail with one snapshot and closes),
  FilterLogEvents every POLL_INTERVAL_S from just before the newest line seen. Windows overlap
  so a line stored late with an older timestamp is not missed, and the lines already shown
  are remembered (the last MAX_REMEMBERED of them, so memory stays bounded) to show each once.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from qa_console.ops.logs.lines import LogLine
from qa_console.ops.logs.read import filter_events, filter_pattern, logs_errors

if TYPE_CHECKING:
    from qa_console.ops.aws.target import Target

POLL_INTERVAL_S = 0.5
OVERLAP_MS = 5_000  # how far back each poll looks again: CloudWatch stores lines out of order
MAX_REMEMBERED = 10_000
Batch = list[LogLine]


class SeenEvents:
    """The keys (LogLine.key) of the last `limit` events shown: bounded memory."""

    def __init__(self, limit: int = MAX_REMEMBERED) -> None:
        self._order: deque[str] = deque()
        self._ids: set[str] = set()
        self._limit = limit

    def add(self, key: str) -> bool:
        """Remember `key`; False when it was seen already."""
        if key in self._ids:
            return False
        self._ids.add(key)
        self._order.append(key)
        if len(self._order) > self._limit:
            self._ids.discard(self._order.popleft())
        return True


def follow(
    target: Target,
    group: str,
    *,
    start_ms: int | None = None,
    text: str | None = None,
    for_s: float | None = None,
    live_tail: bool = True,
    sleep: Callable[[float], None] = time.sleep,
) -> Iterator[Batch]:
    """Batches of new lines of `group` (from `start_ms`, default now; containing `text`),
    oldest first, until `for_s` seconds have passed (None: until the caller stops)."""
    deadline = None if for_s is None else time.monotonic() + for_s
    start = int(time.time() * 1000) if start_ms is None else start_ms
    newest = start
    seen = SeenEvents()
    logs = target.client("logs")
    if live_tail:
        streamed = _live_tail(logs, group, text, deadline)
        for batch in streamed or ():
            fresh = [line for line in batch if line.timestamp_ms >= start and seen.add(line.key)]
            if fresh:
                newest = max(newest, *(line.timestamp_ms for line in fresh))
                yield fresh
    # Polling picks up where live tail stopped (at once, where there was none).
    yield from _poll(target, logs, group, start, newest, text, deadline, seen, sleep)


def _poll(
    target: Target,
    logs: Any,
    group: str,
    start: int,
    newest: int,
    text: str | None,
    deadline: float | None,
    seen: SeenEvents,
    sleep: Callable[[float], None],
) -> Iterator[Batch]:
    """FilterLogEvents from OVERLAP_MS before the newest line seen, every POLL_INTERVAL_S;
    only the overlap is read again, so MAX_REMEMBERED keys cover any likely log rate."""
    while deadline is None or time.monotonic() < deadline:
        with logs_errors(target, group):
            events = list(
                filter_events(logs, group, start_ms=max(start, newest - OVERLAP_MS), text=text)
            )
        fresh = sorted(
            (line for line in map(LogLine.from_event, events) if seen.add(line.key)),
            key=lambda line: (line.timestamp_ms, line.stream),
        )
        if fresh:
            newest = max(newest, fresh[-1].timestamp_ms)
            yield fresh
        sleep(
            POLL_INTERVAL_S
            if deadline is None
            else max(0.0, min(POLL_INTERVAL_S, deadline - time.monotonic()))
        )


def _live_tail(
    logs: Any, group: str, text: str | None, deadline: float | None
) -> Iterator[Batch] | None:
    """The batches of a live-tail session, or None when the client or service has none. The
    iterator ends when the service closes the session; the caller polls on from there."""
    from botocore.exceptions import BotoCoreError, ClientError

    if not hasattr(logs, "start_live_tail"):
        return None
    try:
        groups = logs.describe_log_groups(logGroupNamePrefix=group)["logGroups"]
        # StartLiveTail takes ARNs; describe_log_groups' "arn" ends in ":*", "logGroupArn" not.
        arns = [g.get("logGroupArn") or g["arn"] for g in groups if g["logGroupName"] == group]
        if not arns:
            return None  # the first poll names the missing group
        request: dict[str, Any] = {"logGroupIdentifiers": [arns[0].removesuffix(":*")]}
        if text:
            request["logEventFilterPattern"] = filter_pattern(text)
        response = logs.start_live_tail(**request)
    except (ClientError, BotoCoreError, KeyError):
        # No live tail here (UnknownOperation, NotImplemented), not allowed (a role with
        # logs:FilterLogEvents only), or its streaming host unreachable (a custom endpoint
        # without the "streaming-" host): polling still works, or fails with the real reason
        # (a missing group, a denied FilterLogEvents) through the one AWS error translator.
        return None
    return _session_batches(response, deadline)


def _session_batches(response: dict[str, Any], deadline: float | None) -> Iterator[Batch]:
    stream = response.get("responseStream") or []
    try:
        for message in stream:
            update = message.get("sessionUpdate") if isinstance(message, dict) else None
            if update:
                yield [LogLine.from_event(event) for event in update.get("sessionResults", [])]
            if deadline is not None and time.monotonic() >= deadline:
                return
    except Exception:  # a broken stream is the cue to poll, not a failure
        return
    finally:
        close = getattr(stream, "close", None)
        if callable(close):
            close()
