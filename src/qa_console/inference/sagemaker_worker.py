"""The model container: one process that loads code/inference.py and answers requests.

Run as a script, `python -u .../inference/sagemaker_worker.py --fd N --model-dir DIR --threads K`,
not with `-m`: importing qa_console's packages would cost start-up time and put names on sys.path
that a handler's own imports could collide with.

The parent (pool.py) talks to it over an inherited socket (a multiprocessing Connection), and reads
its stdout/stderr as the container's log. Messages, parent -> worker:

    ("invoke", rid, body, content_type, accept, stream)
    ("cancel", rid)            the caller went away; stop streaming
    ("shutdown",)

worker -> parent:

    ("ready", load_ms)                       model_fn returned
    ("load_failed", message)                 the model cannot be served (traceback is on stderr)
    ("result", rid, body, content_type, ms)  a whole response, and the handler's time for it
    ("chunk", rid, data, content_type)       one piece of a streamed response
    ("end", rid)                             the stream is complete
    ("error", rid, status, message)          the handler raised (status as the toolkit gives it)

The handler is called through inference/handler_contract.py's HandlerHost, the Hugging Face
toolkit's sequence (model_fn once; input_fn -> predict_fn -> output_fn, or transform_fn, per
request). A response that is an iterator (say output_fn returns a generator) is a stream: each item
is one PayloadPart of invoke_endpoint_with_response_stream; plain invoke_endpoint gets them joined.

Requests run on a thread pool of K threads, so one worker serves K requests at once while sharing
one copy of the model. If the parent goes away (the connection closes) the worker exits at once.
Standard library only, like handler_contract.py.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
import traceback
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

CONTRACT_PATH = Path(__file__).resolve().with_name("handler_contract.py")
DEFAULT_CONTENT_TYPE = "application/json"


def _contract() -> Any:
    """handler_contract.py (the toolkit's call sequence, stdlib only), loaded by path under a
    private name: importing it as qa_console.inference.* would import the packages above it."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("_qa_console_handler_contract", CONTRACT_PATH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
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


def log(message: str) -> None:
    """One line of the container's log (stderr; the parent forwards it to CloudWatch Logs)."""
    sys.stderr.write(message.rstrip("\n") + "\n")
    sys.stderr.flush()


class Worker:
    def __init__(self, connection: Connection, model_dir: Path, threads: int) -> None:
        self.connection = connection
        self.model_dir = model_dir
        self.send_lock = threading.Lock()
        self.cancelled: set[str] = set()
        self.loaded = threading.Event()
        self.host: Any = None
        self.executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="invoke")

    def send(self, message: tuple[Any, ...]) -> None:
        with self.send_lock:
            self.connection.send(message)

    def read_forever(self) -> None:
        """Take requests off the connection; exit the process when the parent is gone."""
        while True:
            try:
                message = self.connection.recv()
            except (EOFError, OSError):
                os._exit(0)
            kind = message[0]
            if kind == "invoke":
                self.executor.submit(self.invoke, *message[1:])
            elif kind == "cancel":
                self.cancelled.add(message[1])
            elif kind == "shutdown":
                os._exit(0)

    def invoke(
        self,
        rid: str,
        body: bytes,
        content_type: str | None,
        accept: str | None,
        stream: bool,
    ) -> None:
        self.loaded.wait()  # the parent sends nothing before "ready"; this only makes sure
        started = time.perf_counter()
        response_type = accept if accept and accept != "*/*" else DEFAULT_CONTENT_TYPE
        try:
            response, _ = self.host.invoke(body, content_type or DEFAULT_CONTENT_TYPE, accept)
            if not _is_stream(response):
                body = _to_bytes(response)
                elapsed = (time.perf_counter() - started) * 1000.0
                self.send(("result", rid, body, response_type, elapsed))
            elif stream:
                for item in response:
                    if rid in self.cancelled:
                        break
                    self.send(("chunk", rid, _to_bytes(item), response_type))
                self.send(("end", rid))
            else:
                body = b"".join(_to_bytes(item) for item in response)
                elapsed = (time.perf_counter() - started) * 1000.0
                self.send(("result", rid, body, response_type, elapsed))
        except Exception as error:  # the handler's failure is the caller's ModelError
            log(f"ERROR request {rid} failed: {type(error).__name__}: {error}")
            log(traceback.format_exc())
            self.send(("error", rid, 400, f"{error}" or type(error).__name__))
        finally:
            self.cancelled.discard(rid)

    def run(self) -> int:
        threading.Thread(target=self.read_forever, name="connection", daemon=True).start()
        log(f"loading model from {self.model_dir}")
        started = time.perf_counter()
        try:
            script = self.model_dir / "code" / "inference.py"
            if not script.is_file():
                raise FileNotFoundError(
                    "model.tar.gz has no code/inference.py, so there is nothing to serve it "
                    "with: package the model with its handler (qa-console package) and deploy again"
                )
            contract = _contract()
            self.host = contract.HandlerHost(
                contract.load_handler(script.parent), str(self.model_dir)
            )
            self.host.load()
        except BaseException as error:
            log(f"ERROR model load failed: {type(error).__name__}: {error}")
            log(traceback.format_exc())
            self.send(("load_failed", f"{type(error).__name__}: {error}"))
            return 1
        load_ms = (time.perf_counter() - started) * 1000.0
        log(f"model loaded in {load_ms:.0f} ms (pid {os.getpid()})")
        self.loaded.set()
        self.send(("ready", load_ms))
        threading.Event().wait()  # serve until the parent closes the connection or says shutdown
        return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--fd", type=int, required=True)
    parser.add_argument("--model-dir", type=Path, required=True)
    parser.add_argument("--threads", type=int, default=4)
    args = parser.parse_args(argv)
    worker = Worker(Connection(args.fd), args.model_dir, args.threads)
    return worker.run()


if __name__ == "__main__":
    # Running as a script put this folder first on sys.path; take it off so that a handler's
    # `import handler` or `import worker` finds its own modules, as in the container.
    here = str(Path(__file__).resolve().parent)
    sys.path[:] = [entry for entry in sys.path if str(Path(entry or ".").resolve()) != here]
    sys.exit(main())
