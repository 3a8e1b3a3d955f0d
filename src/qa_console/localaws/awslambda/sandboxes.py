"""Run Lambda functions locally: warm worker processes per function, Lambda's lifecycle and logs.

Each worker is a separate Python process (runner.py) that imports the handler once and then
serves invocations one at a time, like a Lambda sandbox: module-level state (a boto3 client, a
loaded model) survives between requests, a crash or a hang costs only that process, and the
gateway kills it on timeout. Several workers per function serve concurrent requests.

What the function prints, plus the platform's START / END / REPORT lines (and "Task timed out",
"Runtime exited" on failure), go to CloudWatch Logs group /aws/lambda/NAME, one stream per
worker, as Lambda writes them.
"""

from __future__ import annotations

import contextlib
import math
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from qa_console.inference import lambda_worker as runner
from qa_console.localaws.cloudwatch.shipper import LogShipper

RUNNER = Path(runner.__file__).resolve()
INIT_TIMEOUT_S = 10.0  # Lambda's limit for the init phase
IDLE_TTL_S = 600.0  # an idle sandbox is reclaimed after this long
MAX_RESPONSE_BYTES = 6 * 1024 * 1024  # Lambda's synchronous response limit
_FORWARDED_ENV = ("AWS_DISABLE_HOST_PREFIX_INJECTION", "AWS_SESSION_TOKEN")


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


class Worker:
    """One sandbox: a runner process, its protocol socket and the thread reading its output."""

    def __init__(self, spec: FunctionSpec, env: Mapping[str, str], logs: LogShipper) -> None:
        self.spec = spec
        self.logs = logs
        day = datetime.now(UTC).strftime("%Y/%m/%d")
        self.log_stream = f"{day}/[{spec.version}]{uuid.uuid4().hex}"
        self.init_ms: float | None = None  # reported on the first REPORT line only
        self.last_used = time.monotonic()
        self._marker_lock = threading.Lock()
        self._markers: dict[str, threading.Event] = {}
        parent_sock, child_sock = socket.socketpair()
        self.sock = parent_sock
        full_env = dict(env, AWS_LAMBDA_LOG_STREAM_NAME=self.log_stream)
        self._log("INIT_START Runtime Version: local:" + spec.runtime)
        try:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-P",
                    "-u",
                    str(RUNNER),
                    str(child_sock.fileno()),
                    str(spec.code_dir),
                    spec.handler,
                ],
                pass_fds=(child_sock.fileno(),),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                env=full_env,
                cwd=spec.code_dir,
                start_new_session=True,  # so a kill also reaches what the handler spawned
            )
        finally:
            child_sock.close()
        self._reader = threading.Thread(target=self._read_output, daemon=True)
        self._reader.start()

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    def _log(self, message: str) -> None:
        self.logs.emit(self.spec.log_group, self.log_stream, message + "\n")

    def _read_output(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            line = raw.decode(errors="replace").rstrip("\n")
            # The marker may follow output the handler left without a final newline.
            text, marker, request_id = line.partition(runner.MARKER)
            if text:
                self.logs.emit(
                    self.spec.log_group, self.log_stream, text.replace("\r", "\n") + "\n"
                )
            if marker:
                with self._marker_lock:
                    event = self._markers.get(request_id)
                if event is not None:
                    event.set()

    def wait_ready(self) -> dict[str, Any] | None:
        """Wait for the init phase; None when the process died or took too long."""
        self.sock.settimeout(INIT_TIMEOUT_S)
        try:
            message = runner.recv(self.sock)
        except OSError:
            message = None
        if message is not None:
            self.init_ms = float(message.get("init_ms", 0.0))
        return message

    def invoke(
        self, event: dict[str, Any], request_id: str, context: dict[str, Any]
    ) -> InvokeResult:
        spec = self.spec
        self.last_used = time.monotonic()
        started = time.perf_counter()
        deadline = started + spec.timeout_s
        done = threading.Event()
        with self._marker_lock:
            self._markers[request_id] = done
        self._log(f"START RequestId: {request_id} Version: {spec.version}")
        message: dict[str, Any] | None = None
        timed_out = False
        try:
            runner.send(self.sock, {"type": "invoke", "event": event, "context": context})
            self.sock.settimeout(max(0.001, deadline - time.perf_counter()))
            message = runner.recv(self.sock)
        except TimeoutError:
            timed_out = True
        except OSError:
            message = None
        duration_ms = (time.perf_counter() - started) * 1000

        if message is not None:
            done.wait(2.0)  # the output the handler wrote before returning is logged first
            result = self._result_from(message, duration_ms)
        elif timed_out:
            self.kill()
            self._reader.join(2.0)
            self._log(
                f"{_iso_now()} {request_id} Task timed out after {spec.timeout_s:.2f} seconds"
            )
            result = InvokeResult(
                "timeout",
                error={
                    "errorMessage": f"Task timed out after {spec.timeout_s:.2f} seconds",
                    "errorType": "Sandbox.Timedout",
                },
                duration_ms=duration_ms,
            )
        else:
            status = self._exit_status()
            self._reader.join(2.0)
            self._log(
                f"RequestId: {request_id} Error: Runtime exited with error: {status}\n"
                "Runtime.ExitError"
            )
            result = InvokeResult(
                "crash",
                error={
                    "errorMessage": f"RequestId: {request_id} Error: Runtime exited: {status}",
                    "errorType": "Runtime.ExitError",
                },
                duration_ms=duration_ms,
            )
        with self._marker_lock:
            self._markers.pop(request_id, None)
        self._log(f"END RequestId: {request_id}")
        memory = message.get("max_memory_mb") if message else None
        report = (
            f"REPORT RequestId: {request_id}\tDuration: {duration_ms:.2f} ms\t"
            f"Billed Duration: {math.ceil(duration_ms)} ms\tMemory Size: {spec.memory_mb} MB\t"
            f"Max Memory Used: {memory if memory is not None else '-'} MB"
        )
        if self.init_ms is not None:
            report += f"\tInit Duration: {self.init_ms:.2f} ms"
            self.init_ms = None
        if result.outcome == "timeout":
            report += "\tStatus: timeout"
        self._log(report)
        self.last_used = time.monotonic()
        return result

    def _result_from(self, message: dict[str, Any], duration_ms: float) -> InvokeResult:
        if message.get("error"):
            return InvokeResult("function_error", error=message["error"], duration_ms=duration_ms)
        payload = message.get("payload")
        if payload is not None and len(payload.encode()) > MAX_RESPONSE_BYTES:
            return InvokeResult(
                "function_error",
                error={
                    "errorMessage": "Response payload size exceeded maximum allowed payload size",
                    "errorType": "Function.ResponseSizeTooLarge",
                },
                duration_ms=duration_ms,
            )
        return InvokeResult("ok", payload=payload, duration_ms=duration_ms)

    def _exit_status(self) -> str:
        try:
            code = self.proc.wait(2.0)
        except subprocess.TimeoutExpired:
            self.kill()
            return "signal: killed"
        if code < 0:
            return f"signal: {signal.Signals(-code).name.removeprefix('SIG').lower()}"
        return f"exit status {code}"

    def kill(self) -> None:
        # The whole session, so what the handler spawned goes too; only while the process is
        # unreaped, as after that its pid (= its group id) may belong to another worker.
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                self.proc.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(5.0)
        self.sock.close()


@dataclass
class FunctionPool:
    """The sandboxes of one function version, up to `max_workers` running at once."""

    spec: FunctionSpec
    env: Callable[[FunctionSpec], Mapping[str, str]]  # read at each start: the env may change
    logs: LogShipper
    max_workers: int
    idle: list[Worker] = field(default_factory=list)
    busy: set[Worker] = field(default_factory=set)
    running: int = 0
    retired: bool = False
    cond: threading.Condition = field(default_factory=threading.Condition)

    def invoke(self, event: dict[str, Any], request_id: str, wait_s: float) -> InvokeResult:
        worker, ready_error = self._acquire(wait_s)
        if worker is None:
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
            "log_stream_name": worker.log_stream,
            "deadline_ms": _now_ms() + int(self.spec.timeout_s * 1000),
        }
        try:
            return worker.invoke(event, request_id, context)
        finally:
            self._release(worker)

    def _acquire(self, wait_s: float) -> tuple[Worker | None, InvokeResult | None]:
        deadline = time.monotonic() + wait_s
        with self.cond:
            while True:
                self._reap_idle()
                if self.idle:
                    worker = self.idle.pop()
                    if worker.alive:
                        self.busy.add(worker)
                        return worker, None
                    self.running -= 1
                    continue
                if self.running < self.max_workers:
                    self.running += 1
                    break
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return None, None
                self.cond.wait(remaining)
        return self._start_worker()

    def _start_worker(self) -> tuple[Worker | None, InvokeResult | None]:
        try:
            worker = Worker(self.spec, self.env(self.spec), self.logs)
        except OSError as exc:
            self._forget()
            return None, InvokeResult(
                "crash", error={"errorMessage": str(exc), "errorType": "Runtime.Unknown"}
            )
        ready = worker.wait_ready()
        if ready is None:
            worker.kill()
            self._forget()
            return None, InvokeResult(
                "crash",
                error={
                    "errorMessage": "the runtime failed to start",
                    "errorType": "Runtime.ExitError",
                },
            )
        with self.cond:
            self.busy.add(worker)
        return worker, None

    def _forget(self) -> None:
        with self.cond:
            self.running -= 1
            self.cond.notify()

    def _release(self, worker: Worker) -> None:
        with self.cond:
            self.busy.discard(worker)
            if worker.alive and not self.retired:
                self.idle.append(worker)
            else:
                self.running -= 1
                worker.kill()
            self.cond.notify()

    def _reap_idle(self) -> None:
        now = time.monotonic()
        keep = []
        for worker in self.idle:
            if now - worker.last_used > IDLE_TTL_S or not worker.alive:
                worker.kill()
                self.running -= 1
            else:
                keep.append(worker)
        self.idle = keep

    def retire(self, kill_busy: bool = False) -> None:
        """Stop the idle sandboxes now; busy ones when their invocation ends (or now: kill_busy)."""
        with self.cond:
            self.retired = True
            for worker in self.idle:
                worker.kill()
                self.running -= 1
            self.idle = []
            busy = list(self.busy) if kill_busy else []
            self.cond.notify_all()
        for worker in busy:  # their invocations end as crashes and release them
            worker.kill()


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
        env: dict[str, str] = {
            "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
            "LANG": "en_US.UTF-8",
            "TZ": ":UTC",
            "PYTHONUNBUFFERED": "1",
            "AWS_ENDPOINT_URL": self.aws_endpoint_url,
        }
        for key, value in os.environ.items():
            if key.startswith("AWS_ENDPOINT_URL_") or key in _FORWARDED_ENV:
                env[key] = value
        env.update(dict(spec.environment))
        env.update(
            {
                "AWS_ACCESS_KEY_ID": os.environ.get("AWS_ACCESS_KEY_ID", "testing"),
                "AWS_SECRET_ACCESS_KEY": os.environ.get("AWS_SECRET_ACCESS_KEY", "testing"),
                "AWS_REGION": spec.region,
                "AWS_DEFAULT_REGION": spec.region,
                "AWS_EXECUTION_ENV": f"AWS_Lambda_{spec.runtime}",
                "AWS_LAMBDA_FUNCTION_NAME": spec.name,
                "AWS_LAMBDA_FUNCTION_VERSION": spec.version,
                "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(spec.memory_mb),
                "AWS_LAMBDA_LOG_GROUP_NAME": spec.log_group,
                "LAMBDA_TASK_ROOT": str(spec.code_dir),
                "LAMBDA_RUNTIME_DIR": str(RUNNER.parent),
                "_HANDLER": spec.handler,
            }
        )
        return env

    def close(self) -> None:
        with self._lock:
            self._closed = True
            pools, self._pools = list(self._pools.values()), {}
        for pool in pools:
            pool.retire(kill_busy=True)
