"""Worker processes of the local AWS, started, watched, killed and restarted one way for both.

The SageMaker runtime's model containers (sagemaker/pool.py, each running
inference/sagemaker_worker.py) and the gateway's Lambda sandboxes (awslambda/sandboxes.py,
inference/lambda_worker.py) are both a Python process running a standard-library harness from
qa_console/inference that loads the user's code, so that a handler that raises, hangs or dies
costs only its own process. What they share is here:

- start: `python -P -u <harness> --fd N ...` with one end of a socket pair inherited, in a clean
  environment (`worker_environment`: the service's variables and what boto3 needs to reach the
  local AWS, nothing else of this process's: not its QA_CONSOLE_* settings, not a real profile),
  in a session of its own (a Ctrl-C at the terminal reaches the supervisor, not the workers, and
  a kill reaches what the handler spawned), stdin closed;
- talk: inference/worker_protocol.py frames (a JSON message and a raw body), one reader thread
  per process;
- handshake: the first message is `ready` (load_ms) or `load_failed` (reason); `settled` is set
  by either, or by an exit before either;
- log: stdout and stderr are one pipe, read line by line into the worker's CloudWatch Logs stream
  (cloudwatch/shipper.py), so the handler's prints and the harness's own lines keep their order;
- exit: when the socket closes the process is reaped (killed if it lingers), its output read to
  the end, and the exit code reported;
- kill: SIGKILL to the whole session, only while the process is unreaped;
- restart back-off (`RestartBackoff`): 1, 2, 4 ... 60 s after each worker in a row that died
  young, so code that kills its process at start-up does not spin the machine.

What is each service's own stays with it: when to start and stop processes, which requests go to
which one, what the answers mean. A service subclasses WorkerProcess and overrides the `on_*`
hooks, which run on the worker's reader thread (`on_line`: its log thread) and must not block.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import Literal

from qa_console.inference.worker_protocol import Channel, Message
from qa_console.localaws.cloudwatch.shipper import LogStream

REAP_WAIT_S = 5.0  # a worker that closed its socket gets this long to exit before SIGKILL
OUTPUT_WAIT_S = 2.0  # how long an exit waits for output still in the pipe (or held by a child)
# Variables of this process a worker gets, besides the endpoint settings (AWS_ENDPOINT_URL_*).
FORWARDED_ENV = ("AWS_DISABLE_HOST_PREFIX_INJECTION", "AWS_SESSION_TOKEN")

WorkerState = Literal["starting", "ready", "failed", "exited"]


def harness(name: str) -> Path:
    """A harness script of qa_console/inference, found through the package (a wheel or a
    checkout alike)."""
    return Path(str(resources.files("qa_console.inference").joinpath(name)))


def worker_environment(
    aws_endpoint_url: str,
    region: str,
    *,
    own: Mapping[str, str],
    platform: Mapping[str, str],
) -> dict[str, str]:
    """A worker's whole environment, as a container or a sandbox on AWS gets one.

    PATH and unbuffered output; what boto3 needs to reach the local AWS (AWS_ENDPOINT_URL, this
    process's AWS_ENDPOINT_URL_* so that, say, sagemaker-runtime calls reach the local runtime);
    then `own` (the model's or the function's variables, which may change the endpoints); then
    credentials (this process's, else moto's fake ones) and the region, and `platform` (the
    service's reserved variables), which nothing overrides."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
        "PYTHONUNBUFFERED": "1",
        "AWS_ENDPOINT_URL": aws_endpoint_url,
    }
    for key, value in os.environ.items():
        if key.startswith("AWS_ENDPOINT_URL_") or key in FORWARDED_ENV:
            env[key] = value
    env.update(own)
    env.update(
        {
            "AWS_ACCESS_KEY_ID": os.environ.get("AWS_ACCESS_KEY_ID", "testing"),
            "AWS_SECRET_ACCESS_KEY": os.environ.get("AWS_SECRET_ACCESS_KEY", "testing"),
            "AWS_REGION": region,
            "AWS_DEFAULT_REGION": region,
        }
    )
    env.update(platform)
    return env


class WorkerProcess:
    """One harness process: its socket, its log pipe, its handshake and its exit."""

    def __init__(
        self,
        harness_name: str,
        args: Sequence[str],
        *,
        env: Mapping[str, str],
        cwd: Path,
        log: LogStream,
    ) -> None:
        self.script = harness(harness_name)
        self.args = list(args)
        self.env = dict(env)
        self.cwd = cwd
        self.log = log
        self.state: WorkerState = "starting"
        self.load_ms: float | None = None
        self.failure: str | None = None  # load_failed's reason
        self.exit_code: int | None = None
        self.started_at = time.monotonic()
        self.ready_at: float | None = None
        self.exited_at: float | None = None
        self.settled = threading.Event()  # ready, failed or exited
        self.exited = threading.Event()  # reaped, its output read, on_exit called
        self.process: subprocess.Popen[bytes] | None = None
        self.channel: Channel | None = None
        self._output: threading.Thread | None = None

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    @property
    def alive(self) -> bool:
        return self.process is not None and not self.exited.is_set() and self.process.poll() is None

    def start(self) -> None:
        """Start the process and its two threads; OSError when it cannot be started."""
        parent, child = socket.socketpair()
        try:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-P",
                    "-u",
                    str(self.script),
                    "--fd",
                    str(child.fileno()),
                    *self.args,
                ],
                pass_fds=(child.fileno(),),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                cwd=self.cwd,
                env=self.env,
                start_new_session=True,
            )
        except BaseException:
            parent.close()
            raise
        finally:
            child.close()
        self.started_at = time.monotonic()
        self.channel = Channel(parent)
        self._output = threading.Thread(
            target=self._read_output, name=f"worker-{self.pid}-log", daemon=True
        )
        self._output.start()
        threading.Thread(target=self._read_messages, name=f"worker-{self.pid}", daemon=True).start()

    def send(self, message: Message, body: bytes = b"") -> bool:
        """Send to the worker; False if it is gone (its reader thread reports the exit)."""
        if self.channel is None:
            return False
        try:
            self.channel.send(message, body)
            return True
        except OSError:
            return False

    def kill(self) -> None:
        """SIGKILL the worker's session; its reader thread then sees the socket close and reports.
        Only while the process is unreaped: after, its pid (= its group id) may be another's."""
        process = self.process
        if process is None or process.poll() is not None:
            return
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            with contextlib.suppress(ProcessLookupError):
                process.kill()

    def exit_status(self) -> str:
        """The exit as Lambda words it: `exit status 3`, `signal: killed`."""
        code = self.exit_code
        if code is None:
            return "still running"
        if code < 0:
            return f"signal: {signal.Signals(-code).name.removeprefix('SIG').lower()}"
        return f"exit status {code}"

    # --- hooks for the service ------------------------------------------------------------------

    def on_line(self, line: str) -> None:
        """A line of the worker's stdout or stderr: by default, one event of its log stream."""
        self.log.write(line)

    def on_ready(self) -> None:
        """The handshake said ready (load_ms is set)."""

    def on_load_failed(self, message: Message) -> None:
        """The handshake said load_failed (failure is set); the harness exits next."""

    def on_message(self, message: Message, body: bytes) -> None:
        """Any message after the handshake."""

    def on_exit(self, code: int) -> None:
        """The process is gone and its output has been read."""

    # --- the worker's threads -------------------------------------------------------------------

    def _read_messages(self) -> None:
        assert self.channel is not None and self.process is not None
        while True:
            try:
                frame = self.channel.recv()
            except (OSError, ValueError):  # ValueError: not our protocol; treat as gone
                frame = None
            if frame is None:
                break
            self._dispatch(*frame)
        try:
            code = self.process.wait(timeout=REAP_WAIT_S)
        except subprocess.TimeoutExpired:  # closed its end but still running: make sure
            self.kill()
            code = self.process.wait()
        self.channel.close()
        if self._output is not None:
            self._output.join(OUTPUT_WAIT_S)
        self.exit_code, self.exited_at, self.state = code, time.monotonic(), "exited"
        self.settled.set()
        self.exited.set()
        self.on_exit(code)

    def _dispatch(self, message: Message, body: bytes) -> None:
        kind = message["type"]
        if self.state == "starting" and kind == "ready":
            self.load_ms = float(message.get("load_ms") or 0.0)
            self.ready_at, self.state = time.monotonic(), "ready"
            self.settled.set()
            self.on_ready()
        elif self.state == "starting" and kind == "load_failed":
            self.failure = str(message.get("reason") or "the worker could not load its code")
            self.state = "failed"
            self.settled.set()
            self.on_load_failed(message)
        else:
            self.on_message(message, body)

    def _read_output(self) -> None:
        assert self.process is not None and self.process.stdout is not None
        with self.process.stdout as pipe:
            for raw in iter(pipe.readline, b""):
                self.on_line(raw.decode("utf-8", "replace").rstrip("\n"))


class RestartBackoff:
    """How long to wait before starting a worker again.

    No wait after a worker that served a while (`settle_s` after it was ready); after one that
    died young (never ready, or within settle_s) 1 s, then 2, 4 ... up to 60 s for each in a
    row, so that code which kills its process at start-up costs a process now and then, not a
    core. One per place a worker runs: a SageMaker instance slot, a Lambda function."""

    def __init__(self, *, first_s: float = 1.0, max_s: float = 60.0, settle_s: float = 10.0):
        self.first_s = first_s
        self.max_s = max_s
        self.settle_s = settle_s
        self.failures = 0

    def after_exit(self, worker: WorkerProcess) -> float:
        """Count the worker's end; the delay before its successor starts."""
        lived = (
            None
            if worker.ready_at is None
            else (worker.exited_at or time.monotonic()) - worker.ready_at
        )
        if lived is not None and lived >= self.settle_s:
            self.succeeded()
            return 0.0
        return self.failed()

    def failed(self) -> float:
        """One more start that did not last (a worker that could not even be started counts)."""
        self.failures += 1
        return self.delay()

    def succeeded(self) -> None:
        self.failures = 0

    def delay(self) -> float:
        if not self.failures:
            return 0.0
        return min(self.first_s * 2.0 ** (self.failures - 1), self.max_s)
