"""The worker processes that serve one endpoint variant: slots, dispatch, time-outs, restarts.

A pool has one *slot* per worker process: `workers_per_instance` for each instance of the variant
(as the Hugging Face container starts SAGEMAKER_MODEL_SERVER_WORKERS model-server workers on each
instance). A slot has its instance's id, like SageMaker's (`i-0123...`, the log stream's suffix),
and at most one live `ModelWorker`: a process running inference/sagemaker_worker.py, started,
watched and killed by localaws/workers.py, which both services share. A request (`Call`) goes to
the least busy ready worker; each worker runs several requests at once on its own threads, so
requests to one endpoint overlap instead of queueing behind one another, and the processes use
several cores.

What goes wrong, and what the pool does:
- a worker dies (a handler called os._exit, a segfault): its in-flight calls get `crashed`, and
  the slot starts a new worker, at once if the old one had been serving for a while, else after
  the slot's restart back-off (1, 2, 4 ... 60 s) so a model that kills its process at start-up
  does not spin;
- a call takes longer than the timeout (the caller abandons it): the worker is *retired* - it
  takes no new calls, a replacement starts in its slot, and it is killed once its other calls are
  answered, since a hung handler thread cannot be stopped any other way;
- the model cannot be loaded (model_fn raised, no code/inference.py, the model data cannot be
  fetched): waiting and new calls get `load_failed` with the reason until a restart loads it.

Everything here runs on plain threads; the asyncio side only awaits `Call.queue`. Methods with
names starting `_on_` run on a worker's reader thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import threading
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from qa_console.inference.worker_protocol import Message
from qa_console.localaws.cloudwatch.shipper import LogStream
from qa_console.localaws.workers import RestartBackoff, WorkerProcess

# Messages after which nothing more arrives for a call.
FINAL = frozenset({"result", "end", "error", "crashed", "load_failed", "unavailable"})


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
        self.worker: ModelWorker | None = None
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

    def invoke_message(self) -> tuple[Message, bytes]:
        message = {
            "type": "invoke",
            "id": self.rid,
            "content_type": self.content_type,
            "accept": self.accept,
            "stream": self.stream,
        }
        return message, self.body


@dataclass
class Slot:
    index: int
    instance_id: str
    log: LogStream
    worker: ModelWorker | None = None
    backoff: RestartBackoff = field(default_factory=RestartBackoff)
    timer: threading.Timer | None = None


class ModelWorker(WorkerProcess):
    """One model-container process in a slot: the calls it is running, whether it is retiring."""

    def __init__(
        self, pool: EndpointPool, slot: Slot, model_dir: Path, environment: Mapping[str, str]
    ) -> None:
        super().__init__(
            "sagemaker_worker.py",
            [
                "--model-dir",
                str(model_dir),
                "--threads",
                str(pool.threads),
                "--max-batch-size",
                str(pool.max_batch_size),
                "--max-batch-delay-ms",
                str(pool.max_batch_delay_ms),
            ],
            env=environment,
            cwd=model_dir,
            log=slot.log,
        )
        self.pool = pool
        self.slot = slot
        self.instance_id = slot.instance_id
        self.retiring = False
        self.calls: dict[str, Call] = {}
        self.hung: set[str] = set()

    def on_ready(self) -> None:
        self.pool._on_ready(self)

    def on_load_failed(self, message: Message) -> None:
        self.pool._on_load_failed(self)

    def on_message(self, message: Message, body: bytes) -> None:
        self.pool._on_message(self, message, body)

    def on_exit(self, code: int) -> None:
        self.pool._on_exit(self, code)


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
        log_stream: Callable[[str], LogStream],
        on_health: Callable[[str | None], None] = lambda problem: None,
        max_batch_size: int = 1,
        max_batch_delay_ms: float = 0.0,
    ) -> None:
        """`environment` is a worker's whole environment (workers.worker_environment);
        `log_stream` gives an instance id's CloudWatch Logs stream; `on_health` hears None when
        the model loaded, else why no worker can serve it (the endpoint's health check).
        `max_batch_size`/`max_batch_delay_ms`: each worker's dynamic batching (1: none), which
        the worker applies when its handler can batch (inference/sagemaker_worker.py)."""
        self.max_batch_size = max(1, max_batch_size)
        self.max_batch_delay_ms = max(0.0, max_batch_delay_ms)
        self.on_health = on_health
        self.endpoint = endpoint
        self.variant = variant
        self.key = key
        self.threads = threads
        self.fetch = fetch
        self.environment = dict(environment)
        self.state = "fetching"  # fetching | loading | ready | failed | closed
        self.error: str | None = None
        self.model_dir: Path | None = None
        per_instance = max(1, workers_per_instance)
        count = max(1, instances) * per_instance
        ids = [instance_id(key, index // per_instance) for index in range(count)]
        self._streams = {iid: log_stream(iid) for iid in ids}  # one per instance
        self.slots = [Slot(index, iid, self._streams[iid]) for index, iid in enumerate(ids)]
        self.retired: list[ModelWorker] = []
        self.waiting: list[Call] = []
        self.closed = False
        self.stats = PoolStats()
        self.ready = threading.Event()  # set once any worker has loaded the model
        self.settled = threading.Event()  # set once the pool is ready or has failed
        self._lock = threading.RLock()
        self._fetch_backoff = RestartBackoff(first_s=2.0)
        self._fetch_timer: threading.Timer | None = None

    def log(self, instance: str, line: str) -> None:
        """A line of the runtime's own in the instance's log stream, beside its container's."""
        self._streams[instance].write(line)

    # --- life cycle ---------------------------------------------------------------------------

    def start(self) -> None:
        """Fetch the model data and start the workers, in the background."""
        threading.Thread(
            target=self._fetch_and_spawn, name=f"fetch-{self.endpoint}", daemon=True
        ).start()

    def _fetch_and_spawn(self) -> None:
        from qa_console.localaws.sagemaker.container import IncompatibleModel

        try:
            model_dir = self.fetch()
        except IncompatibleModel as error:  # final, as in the container: no retry will load it
            self.log(self.slots[0].instance_id, f"ERROR {error}")
            self._fail(str(error))
            return
        except Exception as error:
            with self._lock:
                if self.closed:
                    return
                delay = self._fetch_backoff.failed()
                # Try again later: the object may be uploaded again, or S3 was restarting.
                self._fetch_timer = threading.Timer(delay, self._fetch_and_spawn)
                self._fetch_timer.daemon = True
                self._fetch_timer.start()
            message = f"the model data could not be fetched: {error}"
            self.log(self.slots[0].instance_id, f"ERROR {message}; trying again in {delay:.0f} s")
            self._fail(message)
            return
        with self._lock:
            if self.closed:
                return
            self._fetch_backoff.succeeded()
            self.model_dir = model_dir
            self.state, self.error = "loading", None
            for slot in self.slots:
                self._spawn(slot)

    def _spawn(self, slot: Slot) -> None:
        """Start a worker in the slot (lock held)."""
        assert self.model_dir is not None
        slot.timer = None
        worker = ModelWorker(self, slot, self.model_dir, self.environment)
        slot.worker = worker
        try:
            worker.start()
        except OSError as error:  # out of processes or file descriptors: try again later
            slot.worker = None
            delay = self._schedule_restart(slot, slot.backoff.failed())
            self.log(
                slot.instance_id,
                f"ERROR the worker process could not start: {error}; trying again in {delay:.0f} s",
            )
            return
        self.log(slot.instance_id, f"starting worker pid {worker.pid} ({self.threads} threads)")

    def _fail(self, message: str) -> None:
        """No worker can serve: the pool has failed with this reason, and so do waiting calls."""
        with self._lock:
            if self.closed:
                return
            self.error = message
            if self._pick() is not None:  # another worker serves: describe() shows the error
                return
            self.state = "failed"
            waiting, self.waiting = self.waiting, []
        self.settled.set()
        self.on_health(message)
        for call in waiting:
            call.deliver(("load_failed", message))

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
            worker.kill()

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
        worker.send(*call.invoke_message())

    def abandon(self, call: Call, reason: str) -> None:
        """The caller stopped waiting: reason 'timeout' (retire the worker) or 'cancel'."""
        stop: ModelWorker | None = None
        cancel: ModelWorker | None = None
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
            stop.kill()
        if cancel is not None:
            cancel.send({"type": "cancel", "id": call.rid})

    def _pick(self) -> ModelWorker | None:
        ready = [
            slot.worker
            for slot in self.slots
            if slot.worker is not None and slot.worker.state == "ready"
        ]
        return min(ready, key=lambda worker: len(worker.calls)) if ready else None

    def _assign(self, worker: ModelWorker, call: Call) -> None:
        worker.calls[call.rid] = call
        call.worker = worker

    def _retire(self, worker: ModelWorker) -> None:
        """No new calls for this worker; its slot gets a new one (lock held)."""
        worker.retiring = True
        self.retired.append(worker)
        if worker.slot.worker is worker:
            worker.slot.worker = None
            if not self.closed:
                self._spawn(worker.slot)

    # --- reports from the workers' reader threads ---------------------------------------------

    def _on_message(self, worker: ModelWorker, message: Message, body: bytes) -> None:
        kind, rid = message["type"], message.get("id")
        if kind == "chunk":
            call = worker.calls.get(rid) if rid is not None else None
            if call is not None:
                call.deliver(("chunk", rid, body, message.get("content_type")))
            return
        if kind not in ("result", "end", "error") or rid is None:
            return  # nothing else is a reply; a newer worker may send more than this knows
        with self._lock:
            call = worker.calls.pop(rid, None)
            worker.hung.discard(rid)
            if kind == "error":
                self.stats.failed += 1
            else:
                self.stats.served += 1
            stop = worker.retiring and not worker.calls
        if call is not None:
            if kind == "result":
                if message.get("model_ms") is not None:
                    call.model_ms = float(message["model_ms"])
                call.deliver(("result", rid, body, message.get("content_type"), call.model_ms))
            elif kind == "end":
                call.deliver(("end", rid))
            else:
                call.deliver(
                    ("error", rid, int(message.get("status") or 500), message.get("message"))
                )
        if stop:
            worker.kill()

    def _on_ready(self, worker: ModelWorker) -> None:
        dispatch: list[tuple[ModelWorker, Call]] = []
        with self._lock:
            if worker.retiring or self.closed:
                return
            self.state, self.error = "ready", None
            self.stats.load_ms = worker.load_ms
            while self.waiting:
                call = self.waiting.pop(0)
                target = self._pick()
                assert target is not None
                self._assign(target, call)
                dispatch.append((target, call))
        self.ready.set()
        self.settled.set()
        self.on_health(None)
        for target, call in dispatch:
            target.send(*call.invoke_message())

    def _on_load_failed(self, worker: ModelWorker) -> None:
        self._fail(f"the model failed to load: {worker.failure}")

    def _on_exit(self, worker: ModelWorker, code: int) -> None:
        with self._lock:
            orphans = list(worker.calls.values())
            worker.calls.clear()
            if worker in self.retired:
                self.retired.remove(worker)
            slot = worker.slot
            restart = slot.worker is worker and not self.closed
            delay = 0.0
            if restart:
                slot.worker = None
                self.stats.restarts += 1
                delay = self._schedule_restart(slot, slot.backoff.after_exit(worker))
        for call in orphans:
            call.deliver(("crashed", code))
        if restart:
            why = "failed to load the model" if worker.failure is not None else "exited"
            self.log(
                worker.instance_id,
                f"worker pid {worker.pid} {why} (exit code {code}); restarting it in {delay:.0f} s",
            )

    def _schedule_restart(self, slot: Slot, delay: float) -> float:
        """Start a new worker in the slot after `delay` (lock held)."""
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
