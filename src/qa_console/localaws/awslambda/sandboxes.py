"""Run Lambda functions locally: warm sandboxes per function, Lambda's lifecycle and its logs.

Each sandbox is a Python process running inference/lambda_worker.py, started, watched and killed
by localaws/workers.py (which the SageMaker runtime's containers share). It imports the handler
once and then serves invocations one at a time, like a Lambda sandbox: module-level state (a
boto3 client, a loaded model) survives between requests, a crash or a hang costs only that
process, and the gateway kills it at the function's timeout.

What is Lambda's own is here:
- one invocation at a time per sandbox; up to `max_workers` sandboxes per function serve
  concurrent requests, more wait for one (then throttled); idle ones are reclaimed after 10 min;
- Lambda's 10 s init timeout, and its init errors (Runtime.ImportModuleError, ...) reported to
  each invocation from a fresh sandbox, as Lambda retries a failed init;
- a sandbox that dies before it is ready (its module ended the process, init timed out) delays
  the function's next start by the restart back-off (1, 2, 4 ... 60 s); meanwhile invocations
  fail at once with Runtime.ExitError rather than start process after process;
- what the function prints, plus the platform's START / END / REPORT lines ("Task timed out",
  "Runtime exited" on failure), in CloudWatch Logs group /aws/lambda/NAME, one stream per
  sandbox, as Lambda writes them.
"""

from __future__ import annotations

import math
import queue
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from qa_console.inference.lambda_worker import MARKER
from qa_console.inference.worker_protocol import Message
from qa_console.localaws.cloudwatch.shipper import LogShipper, LogStream
from qa_console.localaws.workers import (
    OUTPUT_WAIT_S,
    REAP_WAIT_S,
    RestartBackoff,
    WorkerProcess,
    harness,
    worker_environment,
)

HARNESS = "lambda_worker.py"
INIT_TIMEOUT_S = 10.0  # Lambda's limit for the init phase
IDLE_TTL_S = 600.0  # an idle sandbox is reclaimed after this long
MAX_RESPONSE_BYTES = 6 * 1024 * 1024  # Lambda's synchronous response limit


@dataclass(frozen=True)
class FunctionSpec:
    """What the control plane says about one function version; a change means new sandboxes."""

    arn: str
    name: str
    version: str
    handler: str
    runtime: str
    timeout_s: float
    memory_mb: int
    environment: tuple[tuple[str, str], ...]
    code_sha256: str
    code_dir: Path
    region: str

    @property
    def log_group(self) -> str:
        return f"/aws/lambda/{self.name}"


Outcome = Literal["ok", "function_error", "timeout", "crash", "throttled"]


@dataclass
class InvokeResult:
    outcome: Outcome
    payload: str | None = None  # the handler's return value, as JSON text
    error: dict[str, Any] | None = None
    duration_ms: float = 0.0


def _now_ms() -> int:
    return int(time.time() * 1000)


def _iso_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _ms_since(started: float) -> float:
    return (time.perf_counter() - started) * 1000


def _failure(outcome: Outcome, error_type: str, message: str, duration_ms: float) -> InvokeResult:
    error = {"errorMessage": message, "errorType": error_type}
    return InvokeResult(outcome, error=error, duration_ms=duration_ms)


def _crash(message: str, error_type: str = "Runtime.ExitError") -> InvokeResult:
    """A sandbox that could not be started or did not get through its init."""
    return _failure("crash", error_type, message, 0.0)


class Sandbox(WorkerProcess):
    """One sandbox: a lambda_worker.py process, its log stream, the invocation it is running."""

    def __init__(self, spec: FunctionSpec, env: Mapping[str, str], logs: LogShipper) -> None:
        day = datetime.now(UTC).strftime("%Y/%m/%d")
        self.log_stream = f"{day}/[{spec.version}]{uuid.uuid4().hex}"
        super().__init__(
            HARNESS,
            ["--task-root", str(spec.code_dir), "--handler", spec.handler],
            env=dict(env, AWS_LAMBDA_LOG_STREAM_NAME=self.log_stream),
            cwd=spec.code_dir,
            log=LogStream(logs, spec.log_group, self.log_stream),
        )
        self.spec = spec
        self.init_ms: float | None = None  # reported on the first REPORT line only
        self.init_error: dict[str, Any] | None = None
        self.last_used = time.monotonic()
        self._replies: queue.Queue[Message | None] = queue.Queue()
        self._marker_lock = threading.Lock()
        self._markers: dict[str, threading.Event] = {}

    def platform_log(self, message: str) -> None:
        self.log.write(message + "\n")

    def init(self) -> InvokeResult | None:
        """Start the sandbox and wait for its init phase. None when it can take invocations (its
        handler may have failed to import: each invocation then reports that); else the failure,
        and the sandbox is gone. OSError when no process could be started."""
        self.platform_log("INIT_START Runtime Version: local:" + self.spec.runtime)
        self.start()
        if not self.settled.wait(INIT_TIMEOUT_S):
            self.kill()
            self.exited.wait(REAP_WAIT_S)
            self.platform_log(
                f"INIT_REPORT Init Duration: {INIT_TIMEOUT_S * 1000:.2f} ms\tPhase: init\t"
                "Status: timeout"
            )
            return _crash(f"the runtime did not finish its init in {INIT_TIMEOUT_S:.0f} s")
        if self.state == "failed":
            self.exited.wait(OUTPUT_WAIT_S)  # its error lines are logged before START
            return None
        if self.state != "ready":  # it died before the handshake
            self.platform_log(f"Error: Runtime exited with error: {self.exit_status()}")
            self.platform_log(
                f"INIT_REPORT Init Duration: {self._lived_ms():.2f} ms\tPhase: init\t"
                "Status: error\tError Type: Runtime.ExitError"
            )
            return _crash(f"the runtime exited during init: {self.exit_status()}")
        return None

    def invoke(
        self, event: dict[str, Any], request_id: str, context: dict[str, Any]
    ) -> InvokeResult:
        spec = self.spec
        self.last_used = time.monotonic()
        started = time.perf_counter()
        done = threading.Event()
        with self._marker_lock:
            self._markers[request_id] = done
        self.platform_log(f"START RequestId: {request_id} Version: {spec.version}")
        message: Message | None = None
        if self.init_error is not None:
            result = InvokeResult("function_error", error=self.init_error)
        else:
            message, result = self._run(event, request_id, context, started, done)
        with self._marker_lock:
            self._markers.pop(request_id, None)
        self.platform_log(f"END RequestId: {request_id}")
        memory = message.get("max_memory_mb") if message else None
        report = (
            f"REPORT RequestId: {request_id}\tDuration: {result.duration_ms:.2f} ms\t"
            f"Billed Duration: {math.ceil(result.duration_ms)} ms\t"
            f"Memory Size: {spec.memory_mb} MB\t"
            f"Max Memory Used: {memory if memory is not None else '-'} MB"
        )
        if self.init_ms is not None:
            report += f"\tInit Duration: {self.init_ms:.2f} ms"
            self.init_ms = None
        if result.outcome == "timeout":
            report += "\tStatus: timeout"
        self.platform_log(report)
        self.last_used = time.monotonic()
        return result

    def _run(
        self,
        event: dict[str, Any],
        request_id: str,
        context: dict[str, Any],
        started: float,
        done: threading.Event,
    ) -> tuple[Message | None, InvokeResult]:
        """Send the invocation and wait for its end: result, the timeout or the process's exit."""
        remaining = started + self.spec.timeout_s - time.perf_counter()
        try:
            sent = self.send({"type": "invoke", "event": event, "context": context})
            reply = self._replies.get(timeout=max(0.001, remaining)) if sent else None
        except queue.Empty:
            return None, self._timed_out(request_id, started)
        if reply is None:
            return None, self._exited(request_id, started)
        done.wait(OUTPUT_WAIT_S)  # the output the handler wrote before returning is logged first
        return reply, self._result_from(reply, _ms_since(started))

    def _timed_out(self, request_id: str, started: float) -> InvokeResult:
        self.kill()
        duration_ms = _ms_since(started)
        self.exited.wait(REAP_WAIT_S)
        text = f"Task timed out after {self.spec.timeout_s:.2f} seconds"
        self.platform_log(f"{_iso_now()} {request_id} {text}")
        return _failure("timeout", "Sandbox.Timedout", text, duration_ms)

    def _exited(self, request_id: str, started: float) -> InvokeResult:
        duration_ms = _ms_since(started)
        if not self.exited.wait(OUTPUT_WAIT_S):  # closed its socket but lingers
            self.kill()
            self.exited.wait(REAP_WAIT_S)
        status = self.exit_status()
        self.platform_log(
            f"RequestId: {request_id} Error: Runtime exited with error: {status}\nRuntime.ExitError"
        )
        text = f"RequestId: {request_id} Error: Runtime exited: {status}"
        return _failure("crash", "Runtime.ExitError", text, duration_ms)

    def _result_from(self, message: Message, duration_ms: float) -> InvokeResult:
        if message.get("error"):
            return InvokeResult("function_error", error=message["error"], duration_ms=duration_ms)
        payload = message.get("payload")
        if payload is not None and len(payload.encode()) > MAX_RESPONSE_BYTES:
            return _failure(
                "function_error",
                "Function.ResponseSizeTooLarge",
                "Response payload size exceeded maximum allowed payload size",
                duration_ms,
            )
        return InvokeResult("ok", payload=payload, duration_ms=duration_ms)

    def _lived_ms(self) -> float:
        return ((self.exited_at or time.monotonic()) - self.started_at) * 1000

    # --- hooks (the sandbox's reader and log threads) ---------------------------------------------

    def on_line(self, line: str) -> None:
        # The marker may follow output the handler left without a final newline.
        text, marker, request_id = line.partition(MARKER)
        if text:
            self.log.write(text.replace("\r", "\n") + "\n")
        if marker:
            with self._marker_lock:
                event = self._markers.get(request_id)
            if event is not None:
                event.set()

    def on_ready(self) -> None:
        self.init_ms = self.load_ms

    def on_load_failed(self, message: Message) -> None:
        self.init_ms = float(message.get("load_ms") or 0.0)
        self.init_error = message.get("error") or {
            "errorMessage": self.failure,
            "errorType": "Runtime.Unknown",
        }

    def on_message(self, message: Message, body: bytes) -> None:
        self._replies.put(message)

    def on_exit(self, code: int) -> None:
        self._replies.put(None)


@dataclass
class FunctionPool:
    """The sandboxes of one function version, up to `max_workers` running at once."""

    spec: FunctionSpec
    env: Callable[[FunctionSpec], Mapping[str, str]]  # read at each start: the env may change
    logs: LogShipper
    max_workers: int
    idle: list[Sandbox] = field(default_factory=list)
    busy: set[Sandbox] = field(default_factory=set)
    running: int = 0
    retired: bool = False
    cond: threading.Condition = field(default_factory=threading.Condition)
    backoff: RestartBackoff = field(default_factory=RestartBackoff)
    next_start: float = 0.0  # monotonic: no new sandbox before (restart back-off)
    start_failure: str = ""  # why the last sandbox did not get ready

    def invoke(self, event: dict[str, Any], request_id: str, wait_s: float) -> InvokeResult:
        sandbox, ready_error = self._acquire(wait_s)
        if sandbox is None:
            return ready_error or InvokeResult(
                "throttled",
                error={"errorMessage": "Rate Exceeded.", "errorType": "TooManyRequests"},
            )
        context = {
            "function_name": self.spec.name,
            "function_version": self.spec.version,
            "invoked_function_arn": self.spec.arn,
            "memory_limit_in_mb": self.spec.memory_mb,
            "aws_request_id": request_id,
            "log_group_name": self.spec.log_group,
            "log_stream_name": sandbox.log_stream,
            "deadline_ms": _now_ms() + int(self.spec.timeout_s * 1000),
        }
        try:
            return sandbox.invoke(event, request_id, context)
        finally:
            self._release(sandbox)

    def _acquire(self, wait_s: float) -> tuple[Sandbox | None, InvokeResult | None]:
        deadline = time.monotonic() + wait_s
        with self.cond:
            while True:
                self._reap_idle()
                if self.idle:
                    sandbox = self.idle.pop()
                    if sandbox.alive:
                        self.busy.add(sandbox)
                        return sandbox, None
                    self.running -= 1
                    continue
                backing_off = self.next_start - time.monotonic()
                if backing_off > 0:
                    return None, _crash(
                        f"the runtime failed to start ({self.start_failure}); the next sandbox "
                        f"starts in {backing_off:.1f} s"
                    )
                if self.running < self.max_workers:
                    self.running += 1
                    break
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return None, None
                self.cond.wait(remaining)
        return self._start_sandbox()

    def _start_sandbox(self) -> tuple[Sandbox | None, InvokeResult | None]:
        sandbox = Sandbox(self.spec, self.env(self.spec), self.logs)
        try:
            failure = sandbox.init()
        except OSError as exc:  # out of processes or file descriptors
            failure = _crash(str(exc), "Runtime.Unknown")
        if failure is not None:
            with self.cond:
                self.start_failure = (failure.error or {}).get("errorMessage", "")
                delay = self.backoff.failed()
                self.next_start = time.monotonic() + delay
            sandbox.platform_log(
                f"(local gateway) the next sandbox of {self.spec.name} starts in {delay:.0f} s "
                f"at the earliest: {self.backoff.failures} in a row died before they were ready"
            )
            self._forget()
            return None, failure
        with self.cond:
            if sandbox.state == "ready":
                self.backoff.succeeded()
            self.busy.add(sandbox)
        return sandbox, None

    def _forget(self) -> None:
        with self.cond:
            self.running -= 1
            self.cond.notify()

    def _release(self, sandbox: Sandbox) -> None:
        with self.cond:
            self.busy.discard(sandbox)
            if sandbox.alive and not self.retired:
                self.idle.append(sandbox)
            else:
                self.running -= 1
                sandbox.kill()
            self.cond.notify()

    def _reap_idle(self) -> None:
        now = time.monotonic()
        keep = []
        for sandbox in self.idle:
            if now - sandbox.last_used > IDLE_TTL_S or not sandbox.alive:
                sandbox.kill()
                self.running -= 1
            else:
                keep.append(sandbox)
        self.idle = keep

    def retire(self, kill_busy: bool = False) -> None:
        """Stop the idle sandboxes now; busy ones when their invocation ends (or now: kill_busy)."""
        with self.cond:
            self.retired = True
            for sandbox in self.idle:
                sandbox.kill()
                self.running -= 1
            self.idle = []
            busy = list(self.busy) if kill_busy else []
            self.cond.notify_all()
        for sandbox in busy:  # their invocations end as crashes and release them
            sandbox.kill()


class LambdaRuntime:
    """Invoke functions by spec; one pool per function ARN, replaced when the spec changes."""

    def __init__(
        self,
        aws_endpoint_url: str,
        logs: LogShipper,
        max_workers_per_function: int = 4,
    ) -> None:
        self.aws_endpoint_url = aws_endpoint_url
        self.logs = logs
        self.max_workers = max_workers_per_function
        self._pools: dict[str, FunctionPool] = {}
        self._lock = threading.Lock()
        self._closed = False

    def invoke(self, spec: FunctionSpec, event: dict[str, Any], request_id: str) -> InvokeResult:
        """Run one invocation to its end (result, error, crash or the function's timeout)."""
        pool = self._pool(spec)
        return pool.invoke(event, request_id, wait_s=spec.timeout_s)

    def _pool(self, spec: FunctionSpec) -> FunctionPool:
        with self._lock:
            if self._closed:
                raise RuntimeError("the gateway is shut down")
            pool = self._pools.get(spec.arn)
            if pool is None or pool.spec != spec:
                if pool is not None:
                    pool.retire()
                pool = FunctionPool(spec, self.function_env, self.logs, self.max_workers)
                self._pools[spec.arn] = pool
            return pool

    def function_env(self, spec: FunctionSpec) -> dict[str, str]:
        """The variables Lambda sets, the function's own, and what boto3 needs to reach us."""
        return worker_environment(
            self.aws_endpoint_url,
            spec.region,
            own={"LANG": "en_US.UTF-8", "TZ": ":UTC", **dict(spec.environment)},
            platform={
                "AWS_EXECUTION_ENV": f"AWS_Lambda_{spec.runtime}",
                "AWS_LAMBDA_FUNCTION_NAME": spec.name,
                "AWS_LAMBDA_FUNCTION_VERSION": spec.version,
                "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(spec.memory_mb),
                "AWS_LAMBDA_LOG_GROUP_NAME": spec.log_group,
                "LAMBDA_TASK_ROOT": str(spec.code_dir),
                "LAMBDA_RUNTIME_DIR": str(harness(HARNESS).parent),
                "_HANDLER": spec.handler,
            },
        )

    def close(self) -> None:
        with self._lock:
            self._closed = True
            pools, self._pools = list(self._pools.values()), {}
        for pool in pools:
            pool.retire(kill_busy=True)
