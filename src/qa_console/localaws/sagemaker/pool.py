"""The worker processes that serve one endpoint variant: start, dispatch, time out, restart.

A pool has one *slot* per worker process: `workers_per_instance` for each instance of the variant
(as the Hugging Face container starts SAGEMAKER_MODEL_SERVER_WORKERS model-server workers on each
instance). A slot has its instance's id, like SageMaker's (`i-0123...`, the log stream's suffix),
and at most one live worker process (worker.py). A request (`Call`) goes to the least busy ready
worker; each worker runs several requests at once on its own threads, so requests to one endpoint
overlap instead of queueing behind one another, and the processes use several cores.

What goes wrong, and what the pool does:
- a worker dies (a handler called os._exit, a segfault): its in-flight calls get `crashed`, and
  the slot starts a new worker, at once if the old one had been serving for a while, else after a
  growing back-off (1, 2, 4 ... 60 s) so a model that kills its process at start-up does not spin;
- a call takes longer than the timeout (the caller abandons it): the worker is *retired* - it
  takes no new calls, a replacement starts in its slot, and it is killed once its other calls are
  answered, since a hung handler thread cannot be stopped any other way;
- model_fn fails (or there is no code/inference.py): waiting and new calls get `load_failed` with
  the reason until a restart loads the model.

Everything here runs on plain threads; the asyncio side only awaits `Call.queue`. Methods with
names starting `_on_` run on a worker's reader thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from multiprocessing.connection import Connection
from pathlib import Path
from typing import IO, Any

# The model container's process: a script in qa_console/inference (code that runs in another
# interpreter), found through the package so it works from a wheel as from a checkout.
WORKER_SCRIPT = Path(str(resources.files("qa_console.inference").joinpath("sagemaker_worker.py")))
# Messages after which nothing more arrives for a call.
FINAL = frozenset({"result", "end", "error", "crashed", "load_failed", "unavailable"})
QUICK_DEATH_S = 10.0  # a worker dying sooner than this after it was ready counts as a failure
MAX_BACKOFF_S = 60.0

LogFunction = Callable[[str, str], None]  # (instance_id, line)


def instance_id(deployment_key: str, index: int) -> str:
    """A stable EC2-like id per deployment and instance: the log stream's name suffix."""
    return "i-0" + hashlib.sha256(f"{deployment_key}:{index}".encode()).hexdigest()[:16]


class Call:
    """One request on its way through a pool; the asyncio side awaits `queue`."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        body: bytes,
        content_type: str | None,
        accept: str | None,
        stream: bool = False,
    ) -> None:
        self.rid = uuid.uuid4().hex
        self.loop = loop
        self.queue: asyncio.Queue[tuple[Any, ...]] = asyncio.Queue()
        self.body = body
        self.content_type = content_type
        self.accept = accept
        self.stream = stream
        self.worker: WorkerProcess | None = None
        self.closed = False  # answered or abandoned: later messages are dropped
        self.model_ms: float | None = None  # the handler's own time, when the worker says

    @property
    def instance_id(self) -> str | None:
        return self.worker.instance_id if self.worker is not None else None

    def deliver(self, message: tuple[Any, ...]) -> None:
        """Hand a message to the awaiting side (from any thread)."""
        if self.closed:
            return
        if message[0] in FINAL:
            self.closed = True
        # RuntimeError: the event loop is gone, the runtime is shutting down.
        with contextlib.suppress(RuntimeError):
            self.loop.call_soon_threadsafe(self.queue.put_nowait, message)

    def invoke_message(self) -> tuple[Any, ...]:
        return ("invoke", self.rid, self.body, self.content_type, self.accept, self.stream)


@dataclass
class Slot:
    index: int
    instance_id: str
    worker: WorkerProcess | None = None
    failures: int = 0
    timer: threading.Timer | None = None


class WorkerProcess:
    """One worker.py process: its connection, its log pipes, the calls it is running."""

    def __init__(self, pool: EndpointPool, slot: Slot) -> None:
        self.pool = pool
        self.slot = slot
        self.instance_id = slot.instance_id
        self.state = "starting"  # starting | ready | failed | exited
        self.retiring = False
        self.calls: dict[str, Call] = {}
        self.hung: set[str] = set()
        self.started_at = time.monotonic()
        self.ready_at: float | None = None
        self.process: subprocess.Popen[bytes] | None = None
        self.connection: Connection | None = None
        self._send_lock = threading.Lock()

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    def start(self, model_dir: Path, threads: int, environment: Mapping[str, str]) -> None:
        parent, child = socket.socketpair()
        try:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-u",
                    str(WORKER_SCRIPT),
                    "--fd",
                    str(child.fileno()),
                    "--model-dir",
                    str(model_dir),
                    "--threads",
                    str(threads),
                ],
                pass_fds=(child.fileno(),),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                cwd=model_dir,
                env={**os.environ, **environment},
                start_new_session=True,  # a Ctrl-C at the terminal reaches the runtime, not this
            )
        except BaseException:
            parent.close()
            raise
        finally:
            child.close()
        self.connection = Connection(parent.detach())
        assert self.process.stdout is not None and self.process.stderr is not None
        for pipe in (self.process.stdout, self.process.stderr):
            threading.Thread(target=self._pump, args=(pipe,), daemon=True).start()
        threading.Thread(target=self._read, name=f"worker-{self.pid}", daemon=True).start()

    def send(self, message: tuple[Any, ...]) -> bool:
        """Send to the worker; False if it is gone (its reader thread reports the exit)."""
        if self.connection is None:
            return False
        try:
            with self._send_lock:
                self.connection.send(message)
            return True
        except (OSError, ValueError):
            return False

    def stop(self) -> None:
        """Kill the process; the reader thread then sees the connection close and reports."""
        if self.process is not None and self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.kill()

    def _read(self) -> None:
        assert self.connection is not None and self.process is not None
        while True:
            try:
                message = self.connection.recv()
            except (EOFError, OSError, ValueError):
                break
            self.pool._on_message(self, message)
        try:
            code = self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:  # closed its end but still running: make sure
            self.process.kill()
            code = self.process.wait()
        self.connection.close()
        self.pool._on_exit(self, code)

    def _pump(self, pipe: IO[bytes]) -> None:
        """Forward the worker's stdout/stderr lines: they are the container's log."""
        with pipe:
            for raw in iter(pipe.readline, b""):
                self.pool.log(self.instance_id, raw.decode("utf-8", "replace").rstrip("\n"))


@dataclass
class PoolStats:
    served: int = 0
    failed: int = 0
    restarts: int = 0
    load_ms: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)


class EndpointPool:
    """The workers of one deployment of one endpoint variant."""

    def __init__(
        self,
        *,
        endpoint: str,
        variant: str,
        key: str,
        instances: int,
        threads: int,
        workers_per_instance: int = 1,
        fetch: Callable[[], Path],
        environment: Mapping[str, str],
        log: LogFunction,
    ) -> None:
        self.endpoint = endpoint
        self.variant = variant
        self.key = key
        self.threads = threads
        self.fetch = fetch
        self.environment = dict(environment)
        self.log = log
        self.state = "fetching"  # fetching | loading | ready | failed | closed
        self.error: str | None = None
        self.model_dir: Path | None = None
        per_instance = max(1, workers_per_instance)
        self.slots = [
            Slot(index, instance_id(key, index // per_instance))
            for index in range(max(1, instances) * per_instance)
        ]
        self.retired: list[WorkerProcess] = []
        self.waiting: list[Call] = []
        self.closed = False
        self.stats = PoolStats()
        self.ready = threading.Event()  # set once any worker has loaded the model
        self.settled = threading.Event()  # set once the pool is ready or has failed
        self._lock = threading.RLock()
        self._fetch_failures = 0
        self._fetch_timer: threading.Timer | None = None

    # --- life cycle ---------------------------------------------------------------------------

    def start(self) -> None:
        """Fetch the model data and start the workers, in the background."""
        threading.Thread(
            target=self._fetch_and_spawn, name=f"fetch-{self.endpoint}", daemon=True
        ).start()

    def _fetch_and_spawn(self) -> None:
        try:
            model_dir = self.fetch()
        except Exception as error:
            with self._lock:
                if self.closed:
                    return
                self._fetch_failures += 1
                delay = min(2.0**self._fetch_failures, MAX_BACKOFF_S)
                message = f"the model data could not be fetched: {error}"
                self.state, self.error = "failed", message
                waiting, self.waiting = self.waiting, []
                # Try again later: the object may be uploaded again, or S3 was restarting.
                self._fetch_timer = threading.Timer(delay, self._fetch_and_spawn)
                self._fetch_timer.daemon = True
                self._fetch_timer.start()
            self.log(self.slots[0].instance_id, f"ERROR {message}; trying again in {delay:.0f} s")
            self.settled.set()
            for call in waiting:
                call.deliver(("load_failed", message))
            return
        with self._lock:
            if self.closed:
                return
            self.model_dir = model_dir
            self.state, self.error = "loading", None
            for slot in self.slots:
                self._spawn(slot)

    def _spawn(self, slot: Slot) -> None:
        """Start a worker in the slot (lock held)."""
        assert self.model_dir is not None
        slot.timer = None
        worker = WorkerProcess(self, slot)
        slot.worker = worker
        try:
            worker.start(self.model_dir, self.threads, self.environment)
        except OSError as error:  # out of processes or file descriptors: try again later
            slot.worker = None
            delay = self._schedule_restart(slot, quick=True)
            self.log(
                slot.instance_id,
                f"ERROR the worker process could not start: {error}; trying again in {delay:.0f} s",
            )
            return
        self.log(slot.instance_id, f"starting worker pid {worker.pid} ({self.threads} threads)")

    def close(self, *, drain: bool = False) -> None:
        """Stop serving. drain=True lets calls in flight finish first (an endpoint update)."""
        with self._lock:
            self.closed = True
            self.state = "closed"
            if self._fetch_timer is not None:
                self._fetch_timer.cancel()
            waiting, self.waiting = self.waiting, []
            workers = list(self.retired)
            for slot in self.slots:
                if slot.timer is not None:
                    slot.timer.cancel()
                if slot.worker is not None:
                    workers.append(slot.worker)
                    slot.worker = None
            for worker in workers:
                worker.retiring = True
                if worker not in self.retired:
                    self.retired.append(worker)
            to_stop = [worker for worker in workers if not drain or not worker.calls]
        for call in waiting:
            call.deliver(("unavailable", "the endpoint changed while this request waited"))
        for worker in to_stop:
            worker.stop()

    # --- requests -----------------------------------------------------------------------------

    def submit(self, call: Call) -> None:
        """Send the call to a ready worker, or queue it until one is ready. Never blocks long."""
        with self._lock:
            if self.closed:
                call.deliver(("unavailable", "the endpoint changed while this request waited"))
                return
            worker = self._pick()
            if worker is None:
                if self.error is not None and self.state == "failed":
                    call.deliver(("load_failed", self.error))
                else:
                    self.waiting.append(call)
                return
            self._assign(worker, call)
        worker.send(call.invoke_message())

    def abandon(self, call: Call, reason: str) -> None:
        """The caller stopped waiting: reason 'timeout' (retire the worker) or 'cancel'."""
        stop: WorkerProcess | None = None
        cancel: WorkerProcess | None = None
        with self._lock:
            call.closed = True
            if call in self.waiting:
                self.waiting.remove(call)
                return
            worker = call.worker
            if worker is None or worker.calls.pop(call.rid, None) is None:
                return
            if reason == "timeout":
                worker.hung.add(call.rid)
                if not worker.retiring:
                    self.log(
                        worker.instance_id,
                        f"request {call.rid} timed out; replacing worker "
                        f"pid {worker.pid} once its other requests finish",
                    )
                    self._retire(worker)
                if not worker.calls:
                    stop = worker
            else:
                cancel = worker
        if stop is not None:
            stop.stop()
        if cancel is not None:
            cancel.send(("cancel", call.rid))

    def _pick(self) -> WorkerProcess | None:
        ready = [
            slot.worker
            for slot in self.slots
            if slot.worker is not None and slot.worker.state == "ready"
        ]
        return min(ready, key=lambda worker: len(worker.calls)) if ready else None

    def _assign(self, worker: WorkerProcess, call: Call) -> None:
        worker.calls[call.rid] = call
        call.worker = worker

    def _retire(self, worker: WorkerProcess) -> None:
        """No new calls for this worker; its slot gets a new one (lock held)."""
        worker.retiring = True
        self.retired.append(worker)
        if worker.slot.worker is worker:
            worker.slot.worker = None
            if not self.closed:
                self._spawn(worker.slot)

    # --- reports from the workers' reader threads ---------------------------------------------

    def _on_message(self, worker: WorkerProcess, message: tuple[Any, ...]) -> None:
        kind = message[0]
        if kind == "chunk":
            call = worker.calls.get(message[1])
            if call is not None:
                call.deliver(message)
            return
        if kind == "ready":
            self._on_ready(worker, float(message[1]))
            return
        if kind == "load_failed":
            self._on_load_failed(worker, str(message[1]))
            return
        stop = False
        with self._lock:
            call = worker.calls.pop(message[1], None)
            worker.hung.discard(message[1])
            if kind == "error":
                self.stats.failed += 1
            else:
                self.stats.served += 1
            stop = worker.retiring and not worker.calls
        if call is not None:
            if kind == "result" and len(message) > 4:
                call.model_ms = float(message[4])
            call.deliver(message)
        if stop:
            worker.stop()

    def _on_ready(self, worker: WorkerProcess, load_ms: float) -> None:
        dispatch: list[tuple[WorkerProcess, Call]] = []
        with self._lock:
            worker.state = "ready"
            worker.ready_at = time.monotonic()
            if worker.retiring or self.closed:
                return
            self.state, self.error = "ready", None
            self.stats.load_ms = load_ms
            while self.waiting:
                call = self.waiting.pop(0)
                target = self._pick()
                assert target is not None
                self._assign(target, call)
                dispatch.append((target, call))
        self.ready.set()
        self.settled.set()
        for target, call in dispatch:
            target.send(call.invoke_message())

    def _on_load_failed(self, worker: WorkerProcess, reason: str) -> None:
        message = f"the model failed to load: {reason}"
        with self._lock:
            worker.state = "failed"
            self.error = message
            if self._pick() is not None:
                return
            self.state = "failed"
            waiting, self.waiting = self.waiting, []
        self.settled.set()
        for call in waiting:
            call.deliver(("load_failed", message))

    def _on_exit(self, worker: WorkerProcess, code: int) -> None:
        with self._lock:
            orphans = list(worker.calls.values())
            worker.calls.clear()
            previous_state, worker.state = worker.state, "exited"
            if worker in self.retired:
                self.retired.remove(worker)
            slot = worker.slot
            restart = slot.worker is worker and not self.closed
            delay = 0.0
            if restart:
                slot.worker = None
                self.stats.restarts += 1
                quick = worker.ready_at is None or (
                    time.monotonic() - worker.ready_at < QUICK_DEATH_S
                )
                delay = self._schedule_restart(slot, quick=quick)
        for call in orphans:
            call.deliver(("crashed", code))
        if restart:
            why = "failed to load the model" if previous_state == "failed" else "exited"
            self.log(
                worker.instance_id,
                f"worker pid {worker.pid} {why} (exit code {code}); restarting it in {delay:.0f} s",
            )

    def _schedule_restart(self, slot: Slot, *, quick: bool) -> float:
        """Start a new worker in the slot after a back-off that grows with quick deaths."""
        slot.failures = slot.failures + 1 if quick else 0
        delay = min(2.0 ** (slot.failures - 1), MAX_BACKOFF_S) if slot.failures else 0.0
        timer = threading.Timer(delay, self._restart, args=(slot,))
        timer.daemon = True
        slot.timer = timer
        timer.start()
        return delay

    def _restart(self, slot: Slot) -> None:
        with self._lock:
            if self.closed or slot.worker is not None:
                return
            self._spawn(slot)

    # --- reporting ----------------------------------------------------------------------------

    def in_flight(self) -> int:
        with self._lock:
            busy = sum(len(slot.worker.calls) for slot in self.slots if slot.worker is not None)
            return busy + len(self.waiting)

    def describe(self) -> dict[str, Any]:
        with self._lock:
            return {
                "variant": self.variant,
                "deployment": self.key,
                "state": self.state,
                "error": self.error,
                "load_ms": self.stats.load_ms,
                "served": self.stats.served,
                "failed": self.stats.failed,
                "restarts": self.stats.restarts,
                "waiting": len(self.waiting),
                "workers": [
                    {
                        "instance_id": slot.instance_id,
                        "pid": slot.worker.pid if slot.worker is not None else None,
                        "state": slot.worker.state if slot.worker is not None else "restarting",
                        "in_flight": len(slot.worker.calls) if slot.worker is not None else 0,
                    }
                    for slot in self.slots
                ],
            }
