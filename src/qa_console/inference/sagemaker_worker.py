"""The model container: one process that loads code/inference.py and answers requests.

Run as a script by the local runtime (qa_console/localaws/sagemaker/pool.py, through
localaws/workers.py), `python -P -u .../inference/sagemaker_worker.py --fd N --model-dir DIR
--threads K`, never with `-m`: importing qa_console's packages would cost start-up time and put
names on sys.path that a handler's own imports could collide with (`-P` keeps this folder off it).

The parent talks to it over the inherited socket N in worker_protocol.py's frames (a JSON message
and a raw body), and reads its stdout and stderr (one pipe) as the container's log. Messages,
parent -> worker:

    {"type": "invoke", "id", "content_type", "accept", "stream"} + body   one request
    {"type": "cancel", "id"}              the caller went away; stop streaming
    {"type": "shutdown"}

worker -> parent:

    {"type": "ready", "load_ms"}              model_fn returned
    {"type": "load_failed", "reason"}         the model cannot be served (traceback on stderr)
    {"type": "result", "id", "content_type", "model_ms"} + body
                                              a whole response, and the handler's time for it
    {"type": "chunk", "id", "content_type"} + body    one piece of a streamed response
    {"type": "end", "id"}                     the stream is complete
    {"type": "error", "id", "status", "message"}
                                              the handler raised (status as the toolkit gives it)

The handler is called through handler_contract.py's HandlerHost, the Hugging Face toolkit's
sequence (model_fn once; input_fn -> predict_fn -> output_fn, or transform_fn, per request). A
response that is an iterator (say output_fn returns a generator) is a stream: each item is one
PayloadPart of invoke_endpoint_with_response_stream; plain invoke_endpoint gets them joined.

Requests run on a thread pool of K threads, so one worker serves K requests at once while sharing
one copy of the model. Every request is answered by its id, so the parent does not care in which
order or grouping they are computed. If the parent goes away (the socket closes) the worker exits
at once. Standard library only, like the two files it loads by path.

Dynamic batching (`--max-batch-size N --max-batch-delay-ms D`, as TorchServe's batch_size and
max_batch_delay): when the handler says its predict_fn takes lists (ACCEPTS_BATCHES), concurrent
non-streaming requests are gathered for up to D ms or until N are waiting, then answered with one
predict_fn call (HandlerHost.invoke_batch). Gathering is adaptive: it only waits while the model
is already computing something. A request that finds the worker idle goes at once, with whatever
else is queued, so a lone caller never pays the delay; under load, requests pile up behind the
running call and leave together as soon as it ends (or the delay passes, or N are waiting).

The gathering lives here rather than in the runtime because only this process has imported the
handler and knows whether it can batch, and because requests and answers stay one message each:
the protocol does not change, and a failed item (or a failed batch, retried one request at a
time) is answered by its own id.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

HERE = Path(__file__).resolve().parent
DEFAULT_CONTENT_TYPE = "application/json"


def _sibling(filename: str) -> ModuleType:
    """A stdlib-only file of this folder, loaded by path under a private name: importing it as
    qa_console.inference.* would import the packages above it."""
    import importlib.util

    name = "_qa_console_" + filename.removesuffix(".py")
    spec = importlib.util.spec_from_file_location(name, HERE / filename)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def _is_stream(value: Any) -> bool:
    return isinstance(value, Iterator) or (
        isinstance(value, Iterable)
        and not isinstance(value, bytes | bytearray | memoryview | str | dict | list | tuple)
    )


def _to_bytes(item: Any) -> bytes:
    """What the container sends for a handler's result: bytes as is, str as UTF-8, else JSON."""
    if isinstance(item, bytes | bytearray | memoryview):
        return bytes(item)
    if isinstance(item, str):
        return item.encode("utf-8")
    return json.dumps(item).encode("utf-8")


def _response_type(request: Request) -> str:
    accept = request.accept
    return accept if accept and accept != "*/*" else DEFAULT_CONTENT_TYPE


def log(message: str) -> None:
    """One line of the container's log (stderr; the parent forwards it to CloudWatch Logs)."""
    sys.stderr.write(message.rstrip("\n") + "\n")
    sys.stderr.flush()


@dataclass(frozen=True)
class Request:
    id: str
    body: bytes
    content_type: str
    accept: str | None
    stream: bool


@dataclass(frozen=True)
class Batching:
    max_size: int = 1  # 1: every request is its own predict_fn call
    max_delay_ms: float = 0.0


class Gatherer:
    """Collects requests into groups of up to `max_size` and hands each group to `flush` (on its
    own thread, so the connection's reader never waits).

    `busy` says whether the model is computing already. While it is, the first waiting request
    waits up to `max_delay_ms` for company: the model could not start on it sooner anyway. When
    it is not, waiting would only add latency, so the group leaves at once. `poke` re-checks
    after the model finishes something. Without `busy` every group waits out the delay (a fixed
    batching window)."""

    def __init__(
        self, batching: Batching, flush: Any, busy: Callable[[], bool] | None = None
    ) -> None:
        self.batching = batching
        self.flush = flush
        self.busy = busy or (lambda: True)
        self.pending: list[Request] = []
        self.changed = threading.Condition()
        threading.Thread(target=self._run, name="batcher", daemon=True).start()

    def add(self, request: Request) -> bool:
        """Queue `request`; False when it should rather go at once, alone (nothing queued and
        the model idle), which spares a lone request the hand-off to the batcher's thread."""
        with self.changed:
            if not self.pending and not self.busy():
                return False
            self.pending.append(request)
            self.changed.notify()
            return True

    def poke(self) -> None:
        """The model finished a call: a group that was waiting for it may go now."""
        with self.changed:
            self.changed.notify()

    def _run(self) -> None:
        while True:
            self.flush(self._next_group())

    def _next_group(self) -> list[Request]:
        with self.changed:
            while not self.pending:
                self.changed.wait()
            deadline = time.monotonic() + self.batching.max_delay_ms / 1000.0
            while len(self.pending) < self.batching.max_size and self.busy():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self.changed.wait(remaining)
            group = self.pending[: self.batching.max_size]
            del self.pending[: len(group)]
            return group


class Worker:
    def __init__(
        self, channel: Any, model_dir: Path, threads: int, batching: Batching | None = None
    ) -> None:
        self.channel = channel
        self.model_dir = model_dir
        self.cancelled: set[str] = set()
        self.loaded = threading.Event()
        self.host: Any = None
        self.executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="invoke")
        self.batching = batching or Batching()
        self.gatherer: Gatherer | None = None
        # Calls on the thread pool not finished yet: the gatherer's "is the model busy?"
        self.running = 0
        self.running_lock = threading.Lock()

    def handle(self, message: dict[str, Any], body: bytes) -> None:
        """One message from the parent (on the connection's thread)."""
        kind = message["type"]
        if kind == "invoke":
            self.submit(
                Request(
                    message["id"],
                    body,
                    message.get("content_type") or DEFAULT_CONTENT_TYPE,
                    message.get("accept"),
                    bool(message.get("stream")),
                )
            )
        elif kind == "cancel":
            self.cancelled.add(message["id"])
        elif kind == "shutdown":
            os._exit(0)

    def submit(self, request: Request) -> None:
        if self.gatherer is not None and not request.stream and self.gatherer.add(request):
            return
        self.run(self.invoke, request)

    def run(self, call: Callable[[Any], None], argument: Any) -> None:
        """`call(argument)` on the thread pool, counted in `running` until it finishes."""
        with self.running_lock:
            self.running += 1
        self.executor.submit(call, argument).add_done_callback(self._finished)

    def _finished(self, _: Future[None]) -> None:
        with self.running_lock:
            self.running -= 1
        if self.gatherer is not None:
            self.gatherer.poke()

    def busy(self) -> bool:
        return self.running > 0

    def start_gathering(self) -> None:
        """Batch from now on: groups go to invoke_batch, waiting only while the model is busy."""
        self.gatherer = Gatherer(
            self.batching, lambda group: self.run(self.invoke_batch, group), self.busy
        )

    def invoke(self, request: Request) -> None:
        self.loaded.wait()  # the parent sends nothing before "ready"; this only makes sure
        rid = request.id
        started = time.perf_counter()
        try:
            response, _ = self.host.invoke(request.body, request.content_type, request.accept)
            if _is_stream(response) and request.stream:
                for item in response:
                    if rid in self.cancelled:
                        break
                    self.send("chunk", rid, _to_bytes(item), content_type=_response_type(request))
                self.send("end", rid)
                return
            self.reply(request, response, started)
        except Exception as error:  # the handler's failure is the caller's ModelError
            self.reply_error(request, error)
        finally:
            self.cancelled.discard(rid)

    def invoke_batch(self, group: list[Request]) -> None:
        """A gathered group through one predict_fn call; if that call raises, one call each, so
        only the requests at fault get errors."""
        if len(group) == 1:
            self.invoke(group[0])
            return
        started = time.perf_counter()
        try:
            responses = self.host.invoke_batch(
                [(request.body, request.content_type, request.accept) for request in group]
            )
        except Exception as error:
            log(f"batch of {len(group)} failed ({type(error).__name__}: {error}); one at a time")
            for request in group:
                self.invoke(request)
            return
        for request, response in zip(group, responses, strict=True):
            if isinstance(response, Exception):
                self.reply_error(request, response)
            else:
                self.reply(request, response, started)
            self.cancelled.discard(request.id)

    def reply(self, request: Request, response: Any, started: float) -> None:
        """A whole response (a stream's parts joined, for a caller that did not stream)."""
        if _is_stream(response):
            body = b"".join(_to_bytes(item) for item in response)
        else:
            body = _to_bytes(response)
        elapsed = (time.perf_counter() - started) * 1000.0
        self.send(
            "result", request.id, body, content_type=_response_type(request), model_ms=elapsed
        )

    def reply_error(self, request: Request, error: BaseException) -> None:
        log(f"ERROR request {request.id} failed: {type(error).__name__}: {error}")
        log("".join(traceback.format_exception(error)).rstrip("\n"))
        self.send("error", request.id, status=400, message=f"{error}" or type(error).__name__)

    def send(self, kind: str, rid: str, body: bytes = b"", **fields: Any) -> None:
        self.channel.send({"type": kind, "id": rid, **fields}, body)

    def load(self) -> bool:
        """model_fn, then the handshake: ready, or load_failed with the reason."""
        log(f"loading model from {self.model_dir}")
        started = time.perf_counter()
        try:
            script = self.model_dir / "code" / "inference.py"
            if not script.is_file():
                raise FileNotFoundError(
                    "model.tar.gz has no code/inference.py, so there is nothing to serve it "
                    "with: package the model with its handler (qa-console package) and deploy again"
                )
            contract = _sibling("handler_contract.py")
            self.host = contract.HandlerHost(
                contract.load_handler(script.parent), str(self.model_dir)
            )
            self.host.load()
        except BaseException as error:
            log(f"ERROR model load failed: {type(error).__name__}: {error}")
            log(traceback.format_exc())
            self.channel.send({"type": "load_failed", "reason": f"{type(error).__name__}: {error}"})
            return False
        load_ms = (time.perf_counter() - started) * 1000.0
        log(f"model loaded in {load_ms:.0f} ms (pid {os.getpid()})")
        if self.batching.max_size > 1 and self.host.accepts_batches:
            log(
                f"dynamic batching: up to {self.batching.max_size} requests, "
                f"{self.batching.max_delay_ms:g} ms delay while busy"
            )
            self.start_gathering()
        self.loaded.set()
        self.channel.send({"type": "ready", "load_ms": load_ms})
        return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--fd", type=int, required=True)
    parser.add_argument("--model-dir", type=Path, required=True)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--max-batch-size", type=int, default=1)
    parser.add_argument("--max-batch-delay-ms", type=float, default=0.0)
    args = parser.parse_args(argv)
    protocol = _sibling("worker_protocol.py")
    worker = Worker(
        protocol.Channel(socket.socket(fileno=args.fd)),
        args.model_dir,
        args.threads,
        Batching(max(1, args.max_batch_size), max(0.0, args.max_batch_delay_ms)),
    )
    # Listening from the start: a parent that goes away while model_fn runs ends this process.
    threading.Thread(
        target=protocol.serve_until_closed, args=(worker.channel, worker.handle), daemon=True
    ).start()
    if not worker.load():
        return 1
    threading.Event().wait()  # serve until the parent closes the connection or says shutdown
    return 0


if __name__ == "__main__":
    sys.exit(main())
