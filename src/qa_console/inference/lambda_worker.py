"""The Lambda runtime inside one sandbox process: imports the handler once, then runs invocations.

Run as a script by the local gateway (qa_console/localaws/awslambda/sandboxes.py, through
localaws/workers.py), `python -P -u .../inference/lambda_worker.py --fd N --task-root DIR
--handler module.function`, in a fresh process per Lambda sandbox, so it imports only the standard
library and never qa_console: the function's code must see the interpreter as Lambda's Python
runtime shows it, with the task root first on sys.path (and, with `-P`, not this folder).

The gateway talks to it over the inherited socket N in worker_protocol.py's frames. The sandbox
sends {"type": "ready", "load_ms"} once the handler is imported, or {"type": "load_failed",
"reason", "error", "load_ms"} (the error as Lambda's errorType / errorMessage / stackTrace, also
logged) and exits: like Lambda, a failed init is tried again in a fresh sandbox. Then it answers
each {"type": "invoke", "event", "context"} with {"type": "result", "payload", "error",
"max_memory_mb"}, one at a time, on its main thread; another thread watches the socket and ends
the process when the gateway goes away, even in the middle of a hung invocation.

Everything the function prints goes to fd 1/2 (one pipe), which the gateway reads as log lines;
after each invocation the sandbox writes MARKER + request id on its own line so the gateway knows
that all of that invocation's output has been read. Multi-line log records are written with \\r
in place of \\n (as Lambda's runtime does) so that one record stays one CloudWatch event.
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import os
import queue
import resource
import socket
import sys
import threading
import time
import traceback
from pathlib import Path
from types import ModuleType
from typing import Any

MARKER = "\x1e"
HERE = Path(__file__).resolve().parent


def _sibling(filename: str) -> ModuleType:
    """A stdlib-only file of this folder (worker_protocol.py), loaded by path under a private
    name: the function's code must not find this folder or qa_console on sys.path."""
    import importlib.util

    name = "_qa_console_" + filename.removesuffix(".py")
    spec = importlib.util.spec_from_file_location(name, HERE / filename)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


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


def _invoke(handler: Any, message: dict[str, Any]) -> tuple[str | None, dict[str, Any] | None]:
    """(payload as JSON text, None) or (None, Lambda's error object)."""
    try:
        result = handler(message["event"], LambdaContext(message["context"]))
    except Exception as exc:
        return None, _error(exc)
    try:
        return json.dumps(result), None
    except (TypeError, ValueError) as exc:
        return None, {
            "errorMessage": f"Unable to marshal response: {exc}",
            "errorType": "Runtime.MarshalError",
            "stackTrace": [],
        }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--fd", type=int, required=True)
    parser.add_argument("--task-root", required=True)
    parser.add_argument("--handler", required=True)
    args = parser.parse_args(argv)
    protocol = _sibling("worker_protocol.py")
    channel = protocol.Channel(socket.socket(fileno=args.fd))
    sys.path.insert(0, args.task_root)
    request_filter = _RequestIdFilter()
    _install_logging(request_filter)

    started = time.perf_counter()
    try:
        handler = _load_handler(args.handler)
    except Exception as exc:  # the module raised while being imported, or is not a handler
        init_error = (
            {"errorMessage": str(exc), "errorType": exc.error_type, "stackTrace": []}
            if isinstance(exc, InitError)
            else _error(exc)
        )
        _log_error(init_error)
        sys.stderr.flush()
        reason = f"{init_error['errorType']}: {init_error['errorMessage']}"
        load_ms = (time.perf_counter() - started) * 1000
        channel.send(
            {"type": "load_failed", "reason": reason, "error": init_error, "load_ms": load_ms}
        )
        return 1
    channel.send({"type": "ready", "load_ms": (time.perf_counter() - started) * 1000})

    invocations: queue.Queue[dict[str, Any]] = queue.Queue()
    threading.Thread(
        target=protocol.serve_until_closed,
        args=(channel, lambda message, _body: invocations.put(message)),
        daemon=True,
    ).start()
    while True:
        message = invocations.get()
        request_id = message["context"]["aws_request_id"]
        request_filter.request_id = request_id
        payload, error = _invoke(handler, message)
        if error is not None:
            _log_error(error)
        sys.stdout.flush()
        sys.stderr.flush()
        os.write(1, f"{MARKER}{request_id}\n".encode())
        channel.send(
            {
                "type": "result",
                "payload": payload,
                "error": error,
                "max_memory_mb": _max_memory_mb(),
            }
        )


if __name__ == "__main__":
    sys.exit(main())
