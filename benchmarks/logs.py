"""How soon a log line is in the local CloudWatch Logs, and how fast a flood is shipped.

Starts moto's server on loopback and the local AWS's one log shipper
(qa_console/localaws/cloudwatch/shipper.py) with its default flush interval, then measures:
  latency   from `write` of one line to the line being returned by filter_log_events (polled
            every 10 ms), one line at a time with a pause between them: what a follower such as
            `qa-console logs --follow` or live tail can see at best
  flood     N lines written as fast as one thread can, until the last is stored: lines per
            second, and how many put_log_events calls it took
  follow    from `write` of one line to `qa-console logs --follow`'s iterator (ops/logs/follow.py,
            polling as it does against moto) yielding it: p50/p95 over N samples

Usage: .venv/bin/python benchmarks/logs.py [--lines 50] [--flood 50000] [--follow-samples 20]
Bounded: at most 200 latency samples (10 s timeout each), a flood of at most 200,000 lines, at
most 200 follow samples (10 s timeout each, the follower stops after 120 s at the latest).
"""

from __future__ import annotations

import argparse
import queue
import random
import statistics
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import boto3
from moto.server import ThreadedMotoServer

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from fixtures_runtime import free_port
from qa_console.localaws.cloudwatch.shipper import LogShipper
from qa_console.ops.aws.target import Connection, Target
from qa_console.ops.logs.follow import follow

REGION = "us-east-1"
GROUP = "/aws/sagemaker/Endpoints/bench-logs"


def client(endpoint_url: str) -> Any:
    return boto3.client(
        "logs",
        region_name=REGION,
        endpoint_url=endpoint_url,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def seen_at(logs: Any, stream: str, text: str, since_ms: int, timeout_s: float = 10.0) -> float:
    """perf_counter() when a line containing `text` is first returned by filter_log_events."""
    started = time.perf_counter()
    while time.perf_counter() - started < timeout_s:
        events = logs.filter_log_events(
            logGroupName=GROUP, logStreamNames=[stream], startTime=since_ms
        )["events"]
        if any(text in event["message"] for event in events):
            return time.perf_counter()
        time.sleep(0.01)
    raise TimeoutError(f"{text!r} not visible after {timeout_s} s")


def percentile(sorted_values: list[float], fraction: float) -> float:
    return sorted_values[int(fraction * (len(sorted_values) - 1))]


def follow_latencies(endpoint_url: str, shipper: LogShipper, samples: int) -> list[float]:
    """Seconds from shipper.write of one line to follow() yielding it, `samples` times."""
    target = Target(
        "bench",
        REGION,
        connect=lambda: Connection(
            endpoint_urls={"*": endpoint_url},
            credentials={"aws_access_key_id": "testing", "aws_secret_access_key": "testing"},
        ),
    )
    arrivals: queue.Queue[tuple[float, str]] = queue.Queue()

    def follower() -> None:
        for batch in follow(target, GROUP, for_s=120):
            now = time.perf_counter()
            for line in batch:
                arrivals.put((now, line.message))

    threading.Thread(target=follower, daemon=True).start()
    time.sleep(1.0)  # the follower's first poll is under way
    latencies = []
    for index in range(samples):
        text = f"follow {index} {uuid.uuid4().hex}"
        written = time.perf_counter()
        shipper.write(GROUP, "follow", text)
        while True:
            seen, message = arrivals.get(timeout=10)
            if message == text:
                latencies.append(seen - written)
                break
        time.sleep(random.uniform(0.1, 0.6))  # not in step with the poll interval
    return sorted(latencies)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--lines", type=int, default=50)
    parser.add_argument("--flood", type=int, default=50_000)
    parser.add_argument("--follow-samples", type=int, default=20)
    args = parser.parse_args()
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=free_port(), verbose=False)
    moto.start()
    host, port = moto.get_host_and_port()
    url = f"http://{host}:{port}"
    shipper = LogShipper(lambda: client(url))
    logs = client(url)
    try:
        shipper.write(GROUP, "warm-up", "warm-up")  # the group, the stream and the client
        assert shipper.flush(30)
        latencies = []
        for index in range(min(args.lines, 200)):
            text = f"latency {index} {uuid.uuid4().hex}"
            since = int(time.time() * 1000) - 1000
            written = time.perf_counter()
            shipper.write(GROUP, "latency", text)
            latencies.append(seen_at(logs, "latency", text, since) - written)
            time.sleep(0.1)
        latencies.sort()
        p95 = latencies[int(0.95 * (len(latencies) - 1))]
        print(
            f"write -> visible: median {statistics.median(latencies) * 1000:.0f} ms, "
            f"p95 {p95 * 1000:.0f} ms, max {latencies[-1] * 1000:.0f} ms "
            f"({len(latencies)} lines, flush interval {shipper.flush_interval_s} s)"
        )

        follows = follow_latencies(url, shipper, min(args.follow_samples, 200))
        print(
            f"write -> follow yields it: p50 {percentile(follows, 0.5) * 1000:.0f} ms, "
            f"p95 {percentile(follows, 0.95) * 1000:.0f} ms, max {follows[-1] * 1000:.0f} ms "
            f"({len(follows)} lines)"
        )

        puts: list[int] = []
        shipper.client.meta.events.register(
            "provide-client-params.cloudwatch-logs.PutLogEvents",
            lambda params, **_: puts.append(len(params["logEvents"])),
        )
        count = min(args.flood, 200_000)
        started = time.perf_counter()
        for index in range(count):
            shipper.write(GROUP, "flood", f"flood line {index:06d} " + "x" * 60)
        written = time.perf_counter() - started
        assert shipper.flush(300)
        shipped = time.perf_counter() - started
        print(
            f"flood of {count} lines: written in {written:.2f} s, all stored after {shipped:.2f} s "
            f"({count / shipped:,.0f} lines/s), {len(puts)} put_log_events "
            f"(largest {max(puts)} events), dropped {shipper.dropped}"
        )
    finally:
        shipper.close()
        moto.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
