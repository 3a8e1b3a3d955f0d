"""moto's WSGI app as the supervisor serves it: a health route, and change tracking for persistence.

Every request runs under the snapshotter's shared lock, after its body has been read off the
socket (so a slow upload never holds a snapshot up), and a successful mutating request marks the
control plane dirty. Reads (GET/HEAD, Describe*/List*/Get*... actions) do not, so the runtime's
and the waiters' polling never cause snapshots.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qs

from qa_console.localaws.motoserver.persistence import Snapshotter
from qa_console.localaws.state import HEALTH_PATH, INVENTORY_PATH

READ_ACTION_PREFIXES = (
    "Describe",
    "List",
    "Get",
    "BatchGet",
    "Search",
    "Simulate",
    "Filter",
    "Lookup",
    "StartLiveTail",
    "Query",
    "Scan",
    "Head",
    "Check",
    "Validate",
    "Test",
    "Estimate",
    "Preview",
)
READ_METHODS = ("GET", "HEAD", "OPTIONS")
SPOOL_BYTES = 8 * 1024 * 1024

StartResponse = Callable[..., Any]


class Activity:
    """When the last request of any part arrived (for the idle timeout)."""

    def __init__(self) -> None:
        self.last = time.monotonic()

    def touch(self) -> None:
        self.last = time.monotonic()


def action_of(environ: dict[str, Any], form_body: bytes | None) -> str | None:
    """The API action of a JSON (X-Amz-Target) or query-protocol (Action=) request."""
    target = environ.get("HTTP_X_AMZ_TARGET")
    if target:
        return str(target).rsplit(".", 1)[-1]
    query = parse_qs(environ.get("QUERY_STRING", ""))
    if "Action" in query:
        return query["Action"][0]
    if form_body:
        actions = parse_qs(form_body.decode("utf-8", "replace")).get("Action")
        if actions:
            return actions[0]
    return None


def is_mutation(environ: dict[str, Any], form_body: bytes | None) -> bool:
    if environ.get("REQUEST_METHOD", "GET").upper() in READ_METHODS:
        return False
    action = action_of(environ, form_body)
    if action is None:
        return True  # REST-style POST/PUT/DELETE/PATCH (S3, Lambda, API Gateway)
    return not action.startswith(READ_ACTION_PREFIXES)


class MotoApp:
    """The supervisor's WSGI entry for moto."""

    def __init__(self, snapshotter: Snapshotter, activity: Activity) -> None:
        from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

        self._moto = DomainDispatcherApplication(create_backend_app)
        self._snapshotter = snapshotter
        self._activity = activity

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("PATH_INFO") == HEALTH_PATH:
            return self._health(start_response)
        if environ.get("PATH_INFO") == INVENTORY_PATH:
            with self._snapshotter.lock.shared():
                return _json(start_response, inventory())
        self._activity.touch()
        form_body = self._buffer_body(environ)
        mutation = is_mutation(environ, form_body)
        status: list[int] = []

        def tracking_start_response(code: str, headers: Any, *args: Any) -> Any:
            status.append(int(code.split()[0]))
            return start_response(code, headers, *args)

        with self._snapshotter.lock.shared():
            result = self._moto(environ, tracking_start_response)
            if mutation and status and status[0] < 400:
                self._snapshotter.mark_dirty()
        return result

    def _buffer_body(self, environ: dict[str, Any]) -> bytes | None:
        """Read the body before taking the lock; the form body of query-protocol requests."""
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return None
        if length <= 0 or environ.get("wsgi.input_terminated"):
            return None
        source = environ["wsgi.input"]
        spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES)  # noqa: SIM115 - moto reads it
        remaining = length
        while remaining > 0:
            chunk = source.read(min(remaining, 1024 * 1024))
            if not chunk:
                break
            spool.write(chunk)
            remaining -= len(chunk)
        spool.seek(0)
        environ["wsgi.input"] = spool
        content_type = environ.get("CONTENT_TYPE", "")
        if content_type.startswith("application/x-www-form-urlencoded") and length < 1 << 20:
            body = spool.read()
            spool.seek(0)
            return bytes(body)
        return None

    def _health(self, start_response: StartResponse) -> list[bytes]:
        import moto

        return _json(
            start_response,
            {
                "ok": True,
                "component": "moto",
                "pid": os.getpid(),
                "moto_version": moto.__version__,
                "state_dir": str(self._snapshotter.directory.parent),
                "snapshot": self._snapshotter.last_snapshot,
                "dirty": self._snapshotter.dirty,
                "changes": self._snapshotter.generation,
                "saved_changes": self._snapshotter.saved_generation,
            },
        )


def _json(start_response: StartResponse, data: Any) -> list[bytes]:
    body = json.dumps(data, default=str).encode()
    start_response(
        "200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
    )
    return [body]


def inventory() -> dict[str, Any]:
    """The SageMaker endpoints and S3 buckets of every account and region, read in place (what
    `qa-console local status` lists, without it loading boto3)."""
    from moto.s3.models import s3_backends
    from moto.sagemaker.models import sagemaker_backends

    endpoints = [
        {
            "name": endpoint.endpoint_name,
            "status": endpoint.endpoint_status,
            "region": region,
            "account": account,
        }
        for account, region, backend in sagemaker_backends.iter_backends()
        for endpoint in list(getattr(backend, "endpoints", {}).values())
    ]
    buckets = [
        {"name": name, "account": account}
        for account, _, backend in s3_backends.iter_backends()
        for name in list(getattr(backend, "buckets", {}))
    ]
    return {
        "endpoints": sorted(endpoints, key=lambda item: (item["name"], item["region"])),
        "buckets": sorted(buckets, key=lambda item: item["name"]),
    }
