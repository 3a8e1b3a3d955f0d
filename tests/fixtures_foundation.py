"""Fixtures for the foundation tests: a real question-answering HTTP API on 127.0.0.1, a plugins
file pointing at it, and a runner for the installed `qa-console` console script."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

CONSOLE_SCRIPT = Path(sys.executable).parent / "qa-console"
API_KEY = "sekrit-key-123"
HANG_LIMIT_S = 30.0  # a hanging request is released after this, so the server always stops


@dataclass
class Recorded:
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> dict:
        return json.loads(self.body)


class FakeApi:
    """The public API's contract over real HTTP, with routes that misbehave on purpose.

    /ask                    answers "answer to: <question>"
    /auth                   the same, but only with x-api-key == API_KEY (else 403)
    /status/<code>          replies <code> with {"message": "server says <code>"}
    /flaky/<code>/<n>       replies <code> (Retry-After: 0) to the first n hits, then answers
    /slow/<seconds>         answers after sleeping
    /hang                   answers only when released (teardown, or HANG_LIMIT_S)
    /text                   200 with an HTML body
    /noanswer               200 with JSON lacking "answer"
    /drop                   closes the connection without replying
    """

    def __init__(self, listen: bool = True) -> None:
        """listen=False binds the port but refuses connections until `listen()` is called."""
        self.hits: Counter[str] = Counter()
        self.requests: list[Recorded] = []
        self.release = threading.Event()
        self._lock = threading.Lock()
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # http.server calls do_<METHOD>
                length = int(self.headers.get("content-length") or 0)
                record = Recorded(
                    self.path,
                    {key.lower(): value for key, value in self.headers.items()},
                    self.rfile.read(length),
                )
                with api._lock:
                    api.hits[self.path] += 1
                    api.requests.append(record)
                    hit = api.hits[self.path]
                api.handle(self, record, hit)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler, bind_and_activate=False)
        self.server.daemon_threads = True
        self.server.server_bind()
        self.port = self.server.server_address[1]
        self._thread: threading.Thread | None = None
        if listen:
            self.listen()

    def listen(self) -> None:
        self.server.server_activate()
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def url(self, path: str = "/ask") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def stop(self) -> None:
        self.release.set()
        if self._thread is not None:
            self.server.shutdown()
        self.server.server_close()

    def wait_for_hit(self, path: str, timeout_s: float = 20.0) -> None:
        deadline = time.monotonic() + timeout_s
        while self.hits[path] == 0:
            if time.monotonic() > deadline:
                raise AssertionError(f"no request reached {path} within {timeout_s} s")
            time.sleep(0.02)

    # ---------------------------------------------------------------------------- routes

    def handle(self, handler: BaseHTTPRequestHandler, record: Recorded, hit: int) -> None:
        parts = record.path.strip("/").split("/")
        route = parts[0]
        if route == "auth" and record.headers.get("x-api-key") != API_KEY:
            return _reply(handler, 403, {"message": "Forbidden"})
        if route == "status":
            code = int(parts[1])
            return _reply(handler, code, {"message": f"server says {code}"})
        if route == "flaky" and hit <= int(parts[2]):
            code = int(parts[1])
            return _reply(handler, code, {"message": f"try later {code}"}, {"Retry-After": "0"})
        if route == "slow":
            time.sleep(float(parts[1]))
        if route == "hang":
            self.release.wait(HANG_LIMIT_S)
        if route == "text":
            return _reply_raw(handler, 200, b"<html>oops</html>", "text/html")
        if route == "noanswer":
            return _reply(handler, 200, {"result": "no answer field"})
        if route == "drop":
            handler.close_connection = True
            handler.connection.shutdown(2)
            return None
        question = record.json().get("question", "")
        return _reply(handler, 200, {"answer": f"answer to: {question}", "latency_ms": 1.25})


def _reply(
    handler: BaseHTTPRequestHandler,
    code: int,
    data: object,
    headers: dict[str, str] | None = None,
) -> None:
    _reply_raw(handler, code, json.dumps(data).encode(), "application/json", headers)


def _reply_raw(
    handler: BaseHTTPRequestHandler,
    code: int,
    body: bytes,
    content_type: str,
    headers: dict[str, str] | None = None,
) -> None:
    try:
        handler.send_response(code)
        handler.send_header("content-type", content_type)
        handler.send_header("content-length", str(len(body)))
        for key, value in (headers or {}).items():
            handler.send_header(key, value)
        handler.end_headers()
        handler.wfile.write(body)
    except (BrokenPipeError, ConnectionResetError):
        pass  # the client gave up (timeout or interrupt): nothing to answer


@pytest.fixture
def fake_api() -> Iterator[FakeApi]:
    api = FakeApi()
    try:
        yield api
    finally:
        api.stop()


def write_plugins(path: Path, tables: dict[str, dict[str, object]]) -> Path:
    """Write a plugins.toml with one [backends.NAME] table per entry (strings, numbers only)."""
    lines = []
    for name, options in tables.items():
        lines.append(f"[backends.{name}]")
        for key, value in options.items():
            lines.append(f"{key} = {json.dumps(value)}")
        lines.append("")
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


@pytest.fixture
def api_plugins(fake_api: FakeApi, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A plugins file named by QA_CONSOLE_PLUGINS with http instances on the fake API:
    `t` (/ask), `keyed` (/auth, key from QA_TEST_API_KEY), and one per misbehaving route."""
    path = write_plugins(
        tmp_path / "plugins.toml",
        {
            "t": {"kind": "http", "url": fake_api.url("/ask")},
            "keyed": {
                "kind": "http",
                "url": fake_api.url("/auth"),
                "api_key_env": "QA_TEST_API_KEY",
            },
            "e403": {"kind": "http", "url": fake_api.url("/status/403")},
            "e500": {"kind": "http", "url": fake_api.url("/status/500"), "retries": 0},
            "text": {"kind": "http", "url": fake_api.url("/text")},
            "slow": {"kind": "http", "url": fake_api.url("/slow/3"), "timeout_s": 0.5},
            "hang": {"kind": "http", "url": fake_api.url("/hang"), "timeout_s": 60},
        },
    )
    monkeypatch.setenv("QA_CONSOLE_PLUGINS", str(path))
    return path


def run_cli(
    *args: str,
    input: str | None = None,
    env: dict[str, str] | None = None,
    timeout: float = 60,
) -> subprocess.CompletedProcess[str]:
    """Run the installed console script with this test's environment (plus `env`)."""
    return subprocess.run(
        [str(CONSOLE_SCRIPT), *args],
        input=input,
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=timeout,
        check=False,
    )
