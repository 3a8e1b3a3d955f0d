"""Following an endpoint's log from a worker thread, stoppable, handing on folded batches.

ops.logs.follow polls forever; here its `sleep` checks whether the worker was cancelled, so a
screen that stops following (or a new endpoint chosen) ends the thread within one poll. Live
tail is off: its streaming response blocks without a way to notice the cancel, and polling
every half second reads the same lines.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from qa_console.errors import QAConsoleError
from qa_console.ops.logs.fold import LogEntry, fold
from qa_console.ops.logs.follow import follow
from qa_console.ops.logs.lines import endpoint_log_group

if TYPE_CHECKING:
    from qa_console.ops.aws.target import Target

GROUP_RETRY_S = 1.0


class Stopped(Exception):
    """The worker was cancelled: unwinds the follow generator from inside its sleep."""


def follow_endpoint(
    target: Target,
    endpoint: str,
    *,
    start_ms: int | None,
    on_batch: Callable[[list[LogEntry]], object],
    cancelled: Callable[[], bool],
    wait_for_group: bool = False,
    on_waiting: Callable[[str], object] | None = None,
) -> None:
    """Hand each batch of new entries of `endpoint`'s log to `on_batch` until `cancelled()`.

    wait_for_group: a deploy's endpoint has no log group until its container starts, so a
    missing group (or any read error before the first line) is retried every GROUP_RETRY_S
    instead of raised."""

    def sleep(seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if cancelled():
                raise Stopped
            time.sleep(min(0.1, seconds))
        if cancelled():
            raise Stopped

    group = endpoint_log_group(endpoint)
    told = delivered = False
    try:
        while not cancelled():
            try:
                for batch in follow(target, group, start_ms=start_ms, live_tail=False, sleep=sleep):
                    if cancelled():
                        return
                    on_batch(list(fold(batch)))
                    delivered = True
            except QAConsoleError:
                # Retried only before the first line: a restarted follow reads from start_ms
                # again, which would show what was shown already.
                if not wait_for_group or delivered:
                    raise
                if not told and on_waiting is not None:
                    on_waiting(f"waiting for the log group {group} to appear")
                    told = True
                sleep(GROUP_RETRY_S)
    except Stopped:
        return
