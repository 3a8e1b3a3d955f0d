"""Ship log lines to the local CloudWatch Logs in batches: the one log shipper of the local AWS.

The SageMaker runtime writes its model containers' lines (group `/aws/sagemaker/Endpoints/<name>`,
streams `<variant>/<instance-id>`) and the gateway its Lambda sandboxes' (`/aws/lambda/<name>`)
through a LogShipper each, so that `qa-console logs` and live tail have real lines to show. Which
group and stream a line goes to is each service's business; how lines get there is this one's:

- `write` never blocks and never raises: lines go to a bounded queue (`max_queued`). Past it (the
  logs service is unreachable, or lines come faster than it takes them) new lines are dropped,
  with one warning; logging must never block or crash an invocation.
- One thread sends them. It takes the first waiting line, gathers more for up to
  `flush_interval_s` or until a batch is full, then makes one put_log_events per stream, cut to
  CloudWatch's limits (below). A line is in CloudWatch about `flush_interval_s` after it was
  written (0.2 s by default; live tail pushes every 1 s), and a burst of lines costs a few calls,
  not one per line.
- The group and stream are created on first use, and again if they were deleted behind its back
  (a teardown). A put that fails drops its lines, with one warning: no retrying forever.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)

# PutLogEvents limits (CloudWatch Logs API reference). The overhead counts against both the
# event's and the batch's size.
EVENT_OVERHEAD_BYTES = 26
MAX_EVENT_BYTES = 256 * 1024 - EVENT_OVERHEAD_BYTES  # one message, in UTF-8
MAX_BATCH_EVENTS = 10_000
MAX_BATCH_BYTES = 1_048_576  # messages plus 26 bytes per event
MAX_BATCH_SPAN_MS = 24 * 3600 * 1000  # a batch's events, in time order, within 24 hours
MAX_QUEUED_EVENTS = 100_000  # about 10-100 MB of lines waiting: past it, drop
DEFAULT_FLUSH_INTERVAL_S = 0.2


@dataclass(frozen=True)
class LogEvent:
    group: str
    stream: str
    timestamp_ms: int
    message: str
    size: int  # the message's UTF-8 bytes plus the per-event overhead


def put_batches(events: list[LogEvent]) -> Iterator[list[LogEvent]]:
    """One stream's events as put_log_events batches: in time order, each within the count,
    byte and 24-hour limits."""
    batch: list[LogEvent] = []
    size = 0
    for event in sorted(events, key=lambda e: e.timestamp_ms):  # stable for equal times
        if batch and (
            len(batch) >= MAX_BATCH_EVENTS
            or size + event.size > MAX_BATCH_BYTES
            or event.timestamp_ms - batch[0].timestamp_ms > MAX_BATCH_SPAN_MS
        ):
            yield batch
            batch, size = [], 0
        batch.append(event)
        size += event.size
    if batch:
        yield batch


class LogShipper:
    """A bounded queue of log lines and the thread that puts them to CloudWatch Logs."""

    def __init__(
        self,
        logs_client: Callable[[], Any],
        *,
        flush_interval_s: float = DEFAULT_FLUSH_INTERVAL_S,
        max_queued: int = MAX_QUEUED_EVENTS,
    ) -> None:
        self._client_factory = logs_client
        self._client: Any = None
        self._client_lock = threading.Lock()
        self.flush_interval_s = flush_interval_s
        self._queue: queue.Queue[LogEvent | None] = queue.Queue(max_queued)
        self.dropped = 0  # lines that never reached CloudWatch
        self._warned: set[str] = set()
        self._lock = threading.Lock()
        self._settled = threading.Condition(self._lock)
        self._pending = 0  # written and neither sent nor dropped yet
        self._thread: threading.Thread | None = None
        self._closed = False
        self._groups: set[str] = set()
        self._streams: set[tuple[str, str]] = set()

    @property
    def client(self) -> Any:
        """The boto3 logs client, made on first use (building one costs ~0.1 s)."""
        with self._client_lock:
            if self._client is None:
                self._client = self._client_factory()
            return self._client

    def write(self, group: str, stream: str, message: str) -> None:
        """Queue one line for the stream (from any thread; returns at once, never raises)."""
        data = message.encode("utf-8", "replace")
        if len(data) > MAX_EVENT_BYTES:
            data = data[:MAX_EVENT_BYTES]
            message = data.decode("utf-8", "ignore")
        if not message:
            message, data = " ", b" "  # CloudWatch refuses empty messages; keep the blank line
        event = LogEvent(
            group, stream, int(time.time() * 1000), message, len(data) + EVENT_OVERHEAD_BYTES
        )
        with self._lock:
            if self._closed:
                return
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="cloudwatch-logs", daemon=True
                )
                self._thread.start()
            self._pending += 1
        try:
            self._queue.put_nowait(event)
        except queue.Full:
            self._done(1)
            self._drop(
                1,
                "full",
                "%d log lines are waiting for CloudWatch Logs (unreachable or slower than the "
                "lines come): dropping new lines until they drain",
                self._queue.maxsize,
            )

    def flush(self, timeout_s: float = 10.0) -> bool:
        """Wait until every line written so far was sent or dropped. True if it was."""
        deadline = time.monotonic() + timeout_s
        with self._settled:
            while self._pending:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._settled.wait(remaining)
        return True

    def close(self, timeout_s: float = 5.0) -> None:
        """Send what is queued (for up to timeout_s), then stop. Later lines are ignored."""
        with self._lock:
            self._closed = True
            thread = self._thread
        if thread is not None:
            with contextlib.suppress(queue.Full):
                self._queue.put(None, timeout=timeout_s)
            thread.join(timeout_s)

    # --- the sending thread ---------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            batch, stop = self._gather(first)
            self._send(batch)
            self._done(len(batch))
            if stop:
                return

    def _gather(self, first: LogEvent) -> tuple[list[LogEvent], bool]:
        """The first line and what follows it within the flush interval, up to one full batch."""
        batch, size = [first], first.size
        deadline = time.monotonic() + self.flush_interval_s
        while len(batch) < MAX_BATCH_EVENTS and size < MAX_BATCH_BYTES:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            try:
                item = self._queue.get(timeout=remaining)
            except queue.Empty:
                break
            if item is None:  # close(): send this batch, then stop
                return batch, True
            batch.append(item)
            size += item.size
        return batch, False

    def _send(self, batch: list[LogEvent]) -> None:
        by_stream: dict[tuple[str, str], list[LogEvent]] = defaultdict(list)
        for event in batch:
            by_stream[(event.group, event.stream)].append(event)
        for (group, stream), events in by_stream.items():
            for chunk in put_batches(events):
                try:
                    self._put(group, stream, chunk)
                except Exception as error:  # best effort: see the module docstring
                    self._drop(
                        len(chunk),
                        "failed",
                        "cannot write to CloudWatch Logs (%s): dropping log lines",
                        error,
                    )

    def _put(self, group: str, stream: str, events: list[LogEvent]) -> None:
        client = self.client
        if (group, stream) not in self._streams:
            self._create(group, stream)
        entries = [{"timestamp": e.timestamp_ms, "message": e.message} for e in events]
        try:
            client.put_log_events(logGroupName=group, logStreamName=stream, logEvents=entries)
        except client.exceptions.ResourceNotFoundException:
            self._groups.discard(group)  # deleted behind our back: create again, retry once
            self._create(group, stream)
            client.put_log_events(logGroupName=group, logStreamName=stream, logEvents=entries)

    def _create(self, group: str, stream: str) -> None:
        client = self.client
        exists = client.exceptions.ResourceAlreadyExistsException
        if group not in self._groups:
            with contextlib.suppress(exists):
                client.create_log_group(logGroupName=group)
            self._groups.add(group)
        with contextlib.suppress(exists):
            client.create_log_stream(logGroupName=group, logStreamName=stream)
        self._streams.add((group, stream))

    def _done(self, count: int) -> None:
        with self._settled:
            self._pending -= count
            self._settled.notify_all()

    def _drop(self, count: int, why: str, warning: str, *args: Any) -> None:
        """Count lines that will never arrive; warn once for each reason."""
        with self._lock:
            self.dropped += count
            first = why not in self._warned
            self._warned.add(why)
        if first:
            log.warning(warning, *args)


@dataclass(frozen=True)
class LogStream:
    """One stream of a shipper: where one container's or one sandbox's lines go."""

    shipper: LogShipper
    group: str
    name: str

    def write(self, message: str) -> None:
        self.shipper.write(self.group, self.name, message)
