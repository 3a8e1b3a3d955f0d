"""Ship log lines to CloudWatch Logs in batches, the way Lambda's log agent does.

Functions print many short lines; one put_log_events per line would make logging slower than
the function. Lines are queued and a background thread flushes them every `interval` seconds
(or sooner when a batch fills), creating the group and stream on first use. Delivery is best
effort: when the local AWS is unreachable, lines are dropped with one warning, never retried
forever, so logging can never block or crash an invocation.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)

MAX_EVENTS_PER_PUT = 1000  # AWS allows 10,000; smaller batches keep each call short
MAX_MESSAGE_BYTES = 256 * 1024 - 26  # CloudWatch's event limit minus its per-event overhead


@dataclass(frozen=True)
class LogEvent:
    group: str
    stream: str
    timestamp_ms: int
    message: str


class LogShipper:
    """A queue of log events and the thread that puts them to CloudWatch Logs."""

    def __init__(self, logs_client: Callable[[], Any], interval: float = 0.5) -> None:
        self._client_factory = logs_client
        self._client: Any = None
        self._interval = interval
        self._queue: queue.Queue[LogEvent | None] = queue.Queue()
        self._known_streams: set[tuple[str, str]] = set()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._flushed = threading.Condition()
        self._pending = 0
        self._warned = False

    def emit(self, group: str, stream: str, message: str, timestamp_ms: int | None = None) -> None:
        if not message:
            return  # CloudWatch rejects empty messages
        data = message.encode()
        if len(data) > MAX_MESSAGE_BYTES:
            message = data[:MAX_MESSAGE_BYTES].decode(errors="ignore")
        when = timestamp_ms if timestamp_ms is not None else int(time.time() * 1000)
        with self._flushed:
            self._pending += 1
        self._start()
        self._queue.put(LogEvent(group, stream, when, message))

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until everything emitted so far was sent (or dropped). True if it was."""
        deadline = time.monotonic() + timeout
        with self._flushed:
            while self._pending:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._flushed.wait(remaining)
        return True

    def close(self, timeout: float = 5.0) -> None:
        self.flush(timeout)
        with self._lock:
            thread, self._thread = self._thread, None
        if thread is not None:
            self._queue.put(None)
            thread.join(timeout)

    def _start(self) -> None:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="gateway-cwlogs", daemon=True
                )
                self._thread.start()

    def _run(self) -> None:
        stop = False
        while not stop:
            batch: list[LogEvent] = []
            item = self._queue.get()
            if item is None:
                break
            batch.append(item)
            deadline = time.monotonic() + self._interval
            while len(batch) < MAX_EVENTS_PER_PUT:
                try:
                    item = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
                except queue.Empty:
                    break
                if item is None:
                    stop = True
                    break
                batch.append(item)
            self._send(batch)
            with self._flushed:
                self._pending -= len(batch)
                self._flushed.notify_all()

    def _send(self, batch: list[LogEvent]) -> None:
        by_stream: dict[tuple[str, str], list[LogEvent]] = defaultdict(list)
        for event in batch:
            by_stream[(event.group, event.stream)].append(event)
        for (group, stream), events in by_stream.items():
            # put_log_events wants chronological order; sorted() is stable for equal times.
            events.sort(key=lambda e: e.timestamp_ms)
            try:
                self._put(group, stream, events)
            except Exception as exc:  # best effort, see the module docstring
                if not self._warned:
                    log.warning("dropping Lambda log lines for %s: %s", group, exc)
                    self._warned = True

    def _put(self, group: str, stream: str, events: list[LogEvent]) -> None:
        if self._client is None:
            self._client = self._client_factory()
        client = self._client
        if (group, stream) not in self._known_streams:
            for call, kwargs in (
                (client.create_log_group, {"logGroupName": group}),
                (client.create_log_stream, {"logGroupName": group, "logStreamName": stream}),
            ):
                with contextlib.suppress(client.exceptions.ResourceAlreadyExistsException):
                    call(**kwargs)
            self._known_streams.add((group, stream))
        client.put_log_events(
            logGroupName=group,
            logStreamName=stream,
            logEvents=[{"timestamp": e.timestamp_ms, "message": e.message} for e in events],
        )
