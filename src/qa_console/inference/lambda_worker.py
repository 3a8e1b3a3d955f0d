"""The Lambda runtime inside one worker process: imports the handler once, then runs invocations.

This file is run as a script (`python -P -u runner.py ...`) in a fresh process per Lambda "sandbox",
so it imports only the standard library and never qa_console: the function's code must see the
interpreter as Lambda's Python runtime shows it, with the task root first on sys.path.

Protocol with the gateway (pworker.py): length-prefixed JSON messages on the socket whose file
descriptor is passed as argv[1]. The worker sends {"type": "ready"} once the handler is imported
(or with the import error), then answers each {"type": "invoke"} with {"type": "result"}.
Everything the function prints goes to fd 1/2, which the gateway reads as log lines; after each
invocation the worker writes MARKER + request id on its own line so the gateway knows that all of
that invocation's output has been read. Multi-line log records are written with \\r in place of
\\n (as Lambda's runtime does) so that one record stays one CloudWatch event.
"""

from __future__ import annotations

import importlib
import json
import logging
import os
import resource
import socket
import struct
import sys
import threading
import time
import traceback
from typing import Any

MARKER = "\x1e"
_HEADER = struct.Struct(">I")


def send(sock: socket.socket, message: dict[str, Any]) -> None:
    data = json.dumps(message).encode()
    sock.sendall(_HEADER.pack(len(data)) + data)


def recv(sock: socket.socket) -> dict[str, Any] | None:
    header = _recv_exact(sock, _HEADER.size)
    if header is None:
        return None
    (size,) = _HEADER.unpack(header)
    data = _recv_exact(sock, size)
    return None if data is None else json.loads(data)


def _recv_exact(sock: socket.socket, size: int) -> bytes | None:
    chunks = bytearray()
    while len(chunks) < size:
        chunk = sock.recv(size - len(chunks))
        if not chunk:
            return None
        chunks += chunk
    return bytes(chunks)


class LambdaContext:
    """The context object of Lambda's Python runtime (the attributes handlers actually use)."""

    def __init__(self, info: dict[str, Any]) -> None:
        self.function_name: str = info["function_name"]
        self.function_version: str = info.get("function_version", "$LATEST")
        self.invoked_function_arn: str = info["invoked_function_arn"]
        self.memory_limit_in_mb: int = int(info["memory_limit_in_mb"])
        self.aws_request_id: str = info["aws_request_id"]
        self.log_group_name: str = info["log_group_name"]
        self.log_stream_name: str = info["log_stream_name"]
        self.identity = None
        self.client_context = None
        self._deadline_ms: int = int(info["deadline_ms"])

    def get_remaining_time_in_millis(self) -> int:
        return max(0, self._deadline_ms - int(time.time() * 1000))


class _RequestIdFilter(logging.Filter):
    request_id = ""

    def filter(self, record: logging.LogRecord) -> bool:
        record.aws_request_id = self.request_id
        return True


class _OneEventFormatter(logging.Formatter):
    """Lambda's log format; newlines become \\r so a traceback stays one log event."""

    def format(self, record: logging.LogRecord) -> str:
        return super().format(record).replace("\n", "\r")


def _install_logging(request_filter: _RequestIdFilter) -> None:
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(
        _OneEventFormatter(
            "[%(levelname)s]\t%(asctime)s.%(msecs)03dZ\t%(aws_request_id)s\t%(message)s",
            "%Y-%m-%dT%H:%M:%S",
        )
    )
    handler.formatter.converter = time.gmtime  # type: ignore[union-attr]
    handler.addFilter(request_filter)
    logging.getLogger().addHandler(handler)


def _error(exc: BaseException, error_type: str | None = None) -> dict[str, Any]:
    frames = traceback.extract_tb(exc.__traceback__)
    return {
        "errorMessage": str(exc),
        "errorType": error_type or type(exc).__name__,
        "stackTrace": [line.rstrip("\n") for line in traceback.format_list(frames)],
    }


def _log_error(error: dict[str, Any]) -> None:
    lines = [f"[ERROR] {error['errorType']}: {error['errorMessage']}"]
    if error.get("stackTrace"):
        lines.append("Traceback (most recent call last):")
        lines.extend(error["stackTrace"])
    sys.stderr.write("\r".join(lines).replace("\n", "\r") + "\n")


def _watch_parent(parent: int) -> None:
    """Exit when the gateway dies, even in the middle of a hung invocation (no orphans)."""
    while True:
        if os.getppid() != parent:
            os._exit(1)
        time.sleep(1.0)


class InitError(Exception):
    """The handler cannot be loaded; carries the errorType Lambda's Python runtime reports."""

    def __init__(self, error_type: str, message: str) -> None:
        super().__init__(message)
        self.error_type = error_type


def _load_handler(handler: str) -> Any:
    module_path, _, function_name = handler.replace("/", ".").rpartition(".")
    if not module_path or not function_name:
        raise InitError(
            "Runtime.MalformedHandlerName", f"Bad handler '{handler}': not enough values"
        )
    try:
        module = importlib.import_module(module_path)
    except ImportError as exc:
        raise InitError(
            "Runtime.ImportModuleError", f"Unable to import module '{module_path}': {exc}"
        ) from exc
    except SyntaxError as exc:
        raise InitError(
            "Runtime.UserCodeSyntaxError", f"Syntax error in module '{module_path}': {exc}"
        ) from exc
    function = getattr(module, function_name, None)
    if not callable(function):
        raise InitError(
            "Runtime.HandlerNotFound",
            f"Handler '{function_name}' missing on module '{module_path}'",
        )
    return function


def _max_memory_mb() -> int:
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)  # KiB on Linux


def main() -> None:
    fd, task_root, handler_name = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    sys.path.insert(0, task_root)
    threading.Thread(target=_watch_parent, args=(os.getppid(),), daemon=True).start()
    sock = socket.socket(fileno=fd)
    request_filter = _RequestIdFilter()
    _install_logging(request_filter)

    started = time.perf_counter()
    handler = None
    init_error = None
    try:
        handler = _load_handler(handler_name)
    except InitError as exc:
        init_error = {"errorMessage": str(exc), "errorType": exc.error_type, "stackTrace": []}
    except Exception as exc:  # the module raised while being imported
        init_error = _error(exc)
    init_ms = (time.perf_counter() - started) * 1000
    send(sock, {"type": "ready", "init_ms": init_ms, "error": init_error})

    while (message := recv(sock)) is not None:
        request_id = message["context"]["aws_request_id"]
        request_filter.request_id = request_id
        error = init_error
        payload = None
        if handler is not None:
            try:
                result = handler(message["event"], LambdaContext(message["context"]))
            except Exception as exc:
                error = _error(exc)
            else:
                try:
                    payload = json.dumps(result)
                except (TypeError, ValueError) as exc:
                    error = {
                        "errorMessage": f"Unable to marshal response: {exc}",
                        "errorType": "Runtime.MarshalError",
                        "stackTrace": [],
                    }
        if error is not None:
            _log_error(error)
        sys.stdout.flush()
        sys.stderr.flush()
        os.write(1, f"{MARKER}{request_id}\n".encode())
        send(
            sock,
            {
                "type": "result",
                "payload": payload,
                "error": error,
                "max_memory_mb": _max_memory_mb(),
            },
        )
        if init_error is not None:
            return  # like Lambda: a failed init is retried in a fresh sandbox


if __name__ == "__main__":
    main()
