"""The container log lines, batched into the local CloudWatch Logs with put_log_events.

SageMaker writes an endpoint's container output to the group `/aws/sagemaker/Endpoints/<name>`,
one stream per instance, `<variant>/<instance-id>`. The runtime does the same so `qa-console logs`
and live tail have real lines to show. Lines are queued and sent by one thread about once a second
(one put_log_events per stream per flush, not one call per line), creating the group and stream
the first time they are needed. If the logs service is unreachable, lines are dropped with one
warning on stderr: logging must never take the runtime down.
"""

from __future__ import annotations

import contextlib
import queue
import sys
import threading
import time
from collections import defaultdict
from typing import Any

MAX_EVENT_BYTES = 256 * 1024 - 26  # CloudWatch's limit per event, minus its per-event overhead
MAX_BATCH_EVENTS = 10_000
MAX_BATCH_BYTES = 1_000_000
MAX_QUEUED = (
    100_000  # lines waiting to be sent; past this (logs unreachable, a flood) drop new ones
)


def group_name(endpoint: str) -> str:
    return f"/aws/sagemaker/Endpoints/{endpoint}"


def stream_name(variant: str, instance_id: str) -> str:
    return f"{variant}/{instance_id}"


class LogWriter:
    """Queues (group, stream, line) and ships them in batches from a background thread."""

    def __init__(self, client: Any, flush_interval_s: float = 1.0) -> None:
        self.client = client
        self.flush_interval_s = flush_interval_s
        self._queue: queue.Queue[tuple[str, str, int, str] | None] = queue.Queue(MAX_QUEUED)
        self.dropped = 0
        self._created: set[tuple[str, str]] = set()
        self._groups: set[str] = set()
        self._warned = False
        self._thread = threading.Thread(target=self._run, name="cloudwatch-logs", daemon=True)
        self._started = False
        self._flushed = threading.Condition()
        self._pending = 0

    def start(self) -> None:
        if not self._started:
            self._started = True
            self._thread.start()

    def write(self, group: str, stream: str, line: str) -> None:
        """Queue one line (any thread, never blocks)."""
        message = line.encode("utf-8")[:MAX_EVENT_BYTES].decode("utf-8", "ignore") or " "
        with self._flushed:
            self._pending += 1
        try:
            self._queue.put_nowait((group, stream, int(time.time() * 1000), message))
        except queue.Full:
            with self._flushed:
                self._pending -= 1
            self.dropped += 1

    def flush(self, timeout_s: float = 10.0) -> bool:
        """Wait until everything queued so far has been sent (or dropped). True if it was."""
        deadline = time.monotonic() + timeout_s
        with self._flushed:
            while self._pending:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not self._thread.is_alive():
                    return False
                self._flushed.wait(remaining)
        return True

    def close(self, timeout_s: float = 5.0) -> None:
        """Send what is queued, then stop the thread."""
        if self._started:
            with contextlib.suppress(queue.Full):
                self._queue.put(None, timeout=timeout_s)
            self._thread.join(timeout_s)

    def _run(self) -> None:
        stopping = False
        while not stopping:
            batch: list[tuple[str, str, int, str]] = []
            try:
                item = self._queue.get(timeout=self.flush_interval_s)
                if item is None:
                    stopping = True
                else:
                    batch.append(item)
                    time.sleep(min(0.2, self.flush_interval_s))  # let a burst of lines gather
            except queue.Empty:
                continue
            while True:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    stopping = True
                else:
                    batch.append(item)
            self._ship(batch)
            with self._flushed:
                self._pending -= len(batch)
                self._flushed.notify_all()

    def _ship(self, batch: list[tuple[str, str, int, str]]) -> None:
        by_stream: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
        for group, stream, timestamp, message in batch:
            by_stream[(group, stream)].append({"timestamp": timestamp, "message": message})
        for (group, stream), events in by_stream.items():
            events.sort(key=lambda event: event["timestamp"])
            for chunk in _chunks(events):
                try:
                    self._put(group, stream, chunk)
                except Exception as error:
                    if not self._warned:
                        self._warned = True
                        sys.stderr.write(f"local runtime: cannot write CloudWatch logs: {error}\n")

    def _put(self, group: str, stream: str, events: list[dict[str, Any]]) -> None:
        if (group, stream) not in self._created:
            self._create(group, stream)
        try:
            self.client.put_log_events(logGroupName=group, logStreamName=stream, logEvents=events)
        except self.client.exceptions.ResourceNotFoundException:
            # Deleted behind our back (a teardown): create again and retry once.
            self._created.discard((group, stream))
            self._groups.discard(group)
            self._create(group, stream)
            self.client.put_log_events(logGroupName=group, logStreamName=stream, logEvents=events)

    def _create(self, group: str, stream: str) -> None:
        exists = self.client.exceptions.ResourceAlreadyExistsException
        if group not in self._groups:
            with contextlib.suppress(exists):
                self.client.create_log_group(logGroupName=group)
            self._groups.add(group)
        with contextlib.suppress(exists):
            self.client.create_log_stream(logGroupName=group, logStreamName=stream)
        self._created.add((group, stream))


def _chunks(events: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """Split into put_log_events-sized batches (count and bytes limits)."""
    chunks: list[list[dict[str, Any]]] = [[]]
    size = 0
    for event in events:
        event_size = len(event["message"].encode("utf-8")) + 26
        if len(chunks[-1]) >= MAX_BATCH_EVENTS or size + event_size > MAX_BATCH_BYTES:
            chunks.append([])
            size = 0
        chunks[-1].append(event)
        size += event_size
    return [chunk for chunk in chunks if chunk]
