"""The one log shipper of the local AWS, against moto's real CloudWatch Logs on loopback: floods
split into PutLogEvents batches within CloudWatch's limits, groups and streams made when needed,
and a logs service that does not answer costs dropped lines and one warning, never a blocked
writer."""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from fixtures_runtime import free_port
from qa_console.localaws.cloudwatch.shipper import (
    EVENT_OVERHEAD_BYTES,
    MAX_BATCH_BYTES,
    MAX_BATCH_EVENTS,
    MAX_BATCH_SPAN_MS,
    MAX_EVENT_BYTES,
    LogEvent,
    LogShipper,
    put_batches,
)

REGION = "us-east-1"


def _logs_client(endpoint_url: str, **config: Any) -> Any:
    import boto3
    from botocore.config import Config

    return boto3.client(
        "logs",
        region_name=REGION,
        endpoint_url=endpoint_url,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(**config),
    )


@pytest.fixture(scope="module")
def moto_logs() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=free_port(), verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


def _puts(shipper: LogShipper) -> list[list[dict[str, Any]]]:
    """The logEvents of every put_log_events the shipper makes from now on."""
    puts: list[list[dict[str, Any]]] = []
    shipper.client.meta.events.register(
        "provide-client-params.cloudwatch-logs.PutLogEvents",
        lambda params, **_: puts.append(list(params["logEvents"])),
    )
    return puts


def _messages(endpoint_url: str, group: str, stream: str) -> list[str]:
    pages = _logs_client(endpoint_url).get_paginator("filter_log_events")
    return [
        event["message"]
        for page in pages.paginate(logGroupName=group, logStreamNames=[stream])
        for event in page["events"]
    ]


def test_a_flood_is_split_into_batches_within_cloudwatch_limits(moto_logs: str) -> None:
    shipper = LogShipper(lambda: _logs_client(moto_logs), flush_interval_s=0.2)
    puts = _puts(shipper)
    group, stream = "/test/flood", "AllTraffic/i-0flood"
    lines = [f"line {index:05d}" for index in range(25_000)]
    big = ["b" * (200 * 1024)] * 12  # 2.4 MB: more than two batches by bytes alone
    for line in [*lines, *big, "x" * (300 * 1024), "", "é" * MAX_EVENT_BYTES]:
        shipper.write(group, stream, line)
    assert shipper.flush(timeout_s=120)
    shipper.close()

    total = len(lines) + len(big) + 3
    assert sum(len(put) for put in puts) == total and shipper.dropped == 0
    assert len(puts) >= 3 + 3  # 25,000 events need three batches, 2.4 MB another three
    for put in puts:
        assert len(put) <= MAX_BATCH_EVENTS
        size = sum(len(e["message"].encode()) + EVENT_OVERHEAD_BYTES for e in put)
        assert size <= MAX_BATCH_BYTES
        times = [e["timestamp"] for e in put]
        assert times == sorted(times) and times[-1] - times[0] <= MAX_BATCH_SPAN_MS

    stored = _messages(moto_logs, group, stream)
    assert stored[: len(lines)] == lines  # all there, in the order written
    assert len(stored) == total
    too_long, blank, wide = stored[-3:]
    assert too_long == "x" * MAX_EVENT_BYTES  # cut to CloudWatch's event limit
    assert blank == " "  # CloudWatch refuses empty messages; the blank line stays a line
    assert len(wide.encode()) <= MAX_EVENT_BYTES and set(wide) == {"é"}  # cut on a character


def test_batches_keep_time_order_and_a_24_hour_span() -> None:
    hour = 3600 * 1000
    # Events of a stream as threads queue them: not quite in time order, over 50 hours.
    times = [(index * 7919) % 50 * hour + index for index in range(200)]
    events = [LogEvent("g", "s", when, f"m{when}", 40) for when in times]
    batches = list(put_batches(events))
    assert [e.timestamp_ms for batch in batches for e in batch] == sorted(times)
    assert all(b[-1].timestamp_ms - b[0].timestamp_ms <= MAX_BATCH_SPAN_MS for b in batches)
    assert len(batches) == 3  # 0-24 h, 24-48 h, 48-50 h


def test_group_and_stream_are_created_on_first_use_and_again_after_a_delete(
    moto_logs: str,
) -> None:
    shipper = LogShipper(lambda: _logs_client(moto_logs), flush_interval_s=0.05)
    logs = _logs_client(moto_logs)
    group = "/aws/lambda/created-on-first-use"
    shipper.write(group, "first", "one")
    assert shipper.flush()
    assert [
        s["logStreamName"] for s in logs.describe_log_streams(logGroupName=group)["logStreams"]
    ] == ["first"]
    logs.delete_log_group(logGroupName=group)  # a teardown, behind the shipper's back
    shipper.write(group, "first", "two")
    shipper.write(group, "second", "three")
    assert shipper.flush()
    shipper.close()
    assert _messages(moto_logs, group, "first") == ["two"]
    assert _messages(moto_logs, group, "second") == ["three"]
    assert shipper.dropped == 0


def test_an_unanswering_logs_service_costs_lines_and_one_warning_never_a_blocked_writer(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # A port that takes connections and never answers: every put hangs until its read timeout.
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(64)
    endpoint = f"http://127.0.0.1:{silent.getsockname()[1]}"
    try:
        shipper = LogShipper(
            lambda: _logs_client(
                endpoint, connect_timeout=1, read_timeout=1, retries={"max_attempts": 1}
            ),
            flush_interval_s=0.01,
            max_queued=50,
        )
        sending = threading.Event()
        shipper.client.meta.events.register(
            "before-send.cloudwatch-logs.*", lambda **_: sending.set()
        )
        caplog.set_level(logging.WARNING, logger="qa_console.localaws.cloudwatch.shipper")
        shipper.write("/test/silent", "s", "the first line")
        assert sending.wait(30)  # the shipper's thread now waits on the silent service
        for index in range(5_000):
            shipper.write("/test/silent", "s", f"line {index}")  # returns at once, never raises
        assert shipper.flush(timeout_s=60)
        shipper.close()
    finally:
        silent.close()
    assert shipper.dropped == 5_001  # nothing arrived, and nothing is left waiting
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 2, warnings  # one per reason, however many lines
    assert sum("50 log lines are waiting" in w for w in warnings) == 1
    assert sum("cannot write to CloudWatch Logs" in w for w in warnings) == 1
