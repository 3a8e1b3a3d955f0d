"""Load a backend with questions and measure it: cold start, latency percentiles, throughput,
errors. `qa-console bench` is the face; results are kept as JSON under the data dir so runs of
different backends (or of one backend over time) can be compared.

The questions are the shipped biography test split's (paraphrases never seen in training), asked
in turn. Requests go to the backend directly, not through ChatSession.ask, so a benchmark does
not flood the chat history.
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from qa_console.chat import ChatSession
from qa_console.errors import QAConsoleError, UsageError
from qa_console.paths import data_dir

MAX_REQUESTS = 100_000  # a bound on any one run, whatever the flag says
MAX_CONCURRENCY = 256


@dataclass
class BenchResult:
    backend: str
    kind: str
    requests: int
    concurrency: int
    cold_start_ms: float | None  # the first request on a freshly built backend
    latencies_ms: list[float] = field(default_factory=list)  # successful requests after it
    errors: dict[str, int] = field(default_factory=dict)  # error kind -> count
    first_error: str | None = None
    wall_s: float = 0.0
    started_at: str = ""
    usd_per_1000: float | None = None  # SageMaker backends: from the endpoint's pricing
    cost_basis: str | None = None  # how that figure was reached

    def summary(self) -> dict[str, Any]:
        answered = len(self.latencies_ms)
        return {
            "backend": self.backend,
            "kind": self.kind,
            "requests": self.requests,
            "concurrency": self.concurrency,
            "answered": answered,
            "errors": dict(self.errors),
            "first_error": self.first_error,
            "cold_start_ms": _round(self.cold_start_ms),
            "p50_ms": _round(percentile(self.latencies_ms, 50)),
            "p95_ms": _round(percentile(self.latencies_ms, 95)),
            "p99_ms": _round(percentile(self.latencies_ms, 99)),
            "throughput_rps": round(answered / self.wall_s, 2) if self.wall_s > 0 else None,
            "wall_s": round(self.wall_s, 3),
            "usd_per_1000_requests": None
            if self.usd_per_1000 is None
            else round(self.usd_per_1000, 6),
            "cost_basis": self.cost_basis,
            "started_at": self.started_at,
        }


def percentile(values: Sequence[float], pct: float) -> float | None:
    """The nearest-rank percentile (None for no values)."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return ordered[rank - 1]


def benchmark_questions() -> list[str]:
    """The shipped biography test split's questions."""
    from importlib import resources

    path = resources.files("qa_console").joinpath("data", "biography", "test.jsonl")
    lines = path.read_text(encoding="utf-8").splitlines()
    return [str(json.loads(line)["question"]) for line in lines if line.strip()]


def run_benchmark(
    session: ChatSession,
    name: str,
    *,
    requests: int,
    concurrency: int,
    questions: Sequence[str] | None = None,
    on_request: Callable[[int], None] | None = None,
) -> BenchResult:
    """Ask backend `name` `requests` questions from `concurrency` threads (after one cold
    request, counted in `requests`). Errors are counted by kind, not raised: a benchmark of a
    failing backend says how it fails."""
    if not 1 <= requests <= MAX_REQUESTS:
        raise UsageError(f"--requests must be 1 to {MAX_REQUESTS:,}", hint="e.g. --requests 200")
    if not 1 <= concurrency <= MAX_CONCURRENCY:
        raise UsageError(f"--concurrency must be 1 to {MAX_CONCURRENCY}", hint="e.g. -c 4")
    resolved = session.resolve(name)
    kind = session.instances[resolved].kind
    asked = list(questions or benchmark_questions())
    result = BenchResult(
        resolved,
        kind,
        requests,
        concurrency,
        None,
        started_at=datetime.now(UTC).isoformat(timespec="seconds"),
    )
    lock = threading.Lock()
    done = 0

    def ask(index: int) -> float | None:
        nonlocal done
        started = time.perf_counter()
        try:
            session.backend(resolved).ask(asked[index % len(asked)])
            elapsed: float | None = (time.perf_counter() - started) * 1000
        except QAConsoleError as error:
            elapsed = None
            with lock:
                label = type(error).__name__.rstrip("_")
                result.errors[label] = result.errors.get(label, 0) + 1
                result.first_error = result.first_error or str(error)
        with lock:
            done += 1
            if on_request is not None:
                on_request(done)
        return elapsed

    result.cold_start_ms = ask(0)
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="bench") as pool:
        timings = list(pool.map(ask, range(1, requests)))
    result.wall_s = time.perf_counter() - started
    result.latencies_ms = [value for value in timings if value is not None]
    _add_cost(result, session.backend(resolved))
    return result


def _add_cost(result: BenchResult, backend: Any) -> None:
    """For a SageMaker endpoint, what 1,000 requests cost at the measured speed: an instance's
    $/hour spread over the answers it gave per hour (kept this busy), or serverless duration
    at the p50 latency. Left out when the endpoint cannot be described."""
    from qa_console.backends.sagemaker import SageMakerBackend
    from qa_console.ops.deploy import pricing
    from qa_console.ops.deploy.status import endpoint_status

    summary = result.summary()
    if not isinstance(backend, SageMakerBackend) or not summary["answered"]:
        return
    try:
        status = endpoint_status(backend.target, backend.endpoint)
    except QAConsoleError:
        return
    hourly = status.get("usd_per_hour")
    if hourly:
        per_hour = float(summary["throughput_rps"]) * 3600
        result.usd_per_1000 = float(hourly) / per_hour * 1000
        types = ", ".join(str(v.get("instance_type")) for v in status["variants"])
        result.cost_basis = f"{types} at ${hourly}/hour, {summary['throughput_rps']} answers/s"
        return
    serverless = next((v["serverless"] for v in status["variants"] if "serverless" in v), None)
    if serverless:
        gigabytes = serverless["memory_mb"] / 1024
        seconds = float(summary["p50_ms"]) / 1000
        result.usd_per_1000 = gigabytes * seconds * pricing.SERVERLESS_USD_PER_GB_SECOND * 1000
        result.cost_basis = f"serverless {serverless['memory_mb']} MB for the p50 {seconds:.3f} s"


def save(results: Sequence[BenchResult], folder: Path | None = None) -> Path:
    """Keep a run's results as one JSON file (bench/<time>.json under the data dir)."""
    where = folder or data_dir() / "bench"
    where.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    path = where / f"{stamp}.json"
    payload = {"results": [item.summary() for item in results]}
    path.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    return path


def markdown_report(summaries: Sequence[dict[str, Any]]) -> str:
    """The results side by side as a Markdown table."""
    columns = [
        ("backend", "backend"),
        ("kind", "kind"),
        ("requests", "requests"),
        ("concurrency", "clients"),
        ("cold_start_ms", "cold start ms"),
        ("p50_ms", "p50 ms"),
        ("p95_ms", "p95 ms"),
        ("p99_ms", "p99 ms"),
        ("throughput_rps", "answers/s"),
        ("errors", "errors"),
    ]
    lines = [
        "| " + " | ".join(title for _, title in columns) + " |",
        "|" + " --- |" * len(columns),
    ]
    for summary in summaries:
        cells = []
        for key, _ in columns:
            value = summary.get(key)
            if key == "errors":
                value = ", ".join(f"{k} {v}" for k, v in value.items()) if value else "0"
            cells.append("-" if value is None else str(value))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)
