"""The ASGI parts of the local AWS (the SageMaker runtime and the API gateway), as mounted by the
supervisor.

Each part is a package beside this module with a factory
`create_<name>_app(aws_endpoint_url: str, region: str, work_dir: Path) -> ASGI app`, imported
lazily: a part that is missing or fails to build is replaced by a stand-in that answers every
request with a 503 saying why, so moto and the other part still serve, and `local status` shows
the reason. Every part is wrapped so that GET /_localaws/health answers with the supervisor's pid
(clients use it to tell a live local AWS from a stale state file) and requests count as activity.
"""

from __future__ import annotations

import importlib
import json
import logging
import os
import traceback
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from qa_console.localaws.motoserver.app import Activity
from qa_console.localaws.state import HEALTH_PATH

log = logging.getLogger("qa_console.localaws.components")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

# name -> (module, factory)
FACTORIES = {
    "runtime": ("qa_console.localaws.sagemaker", "create_runtime_app"),
    "gateway": ("qa_console.localaws.apigateway", "create_gateway_app"),
}


@dataclass
class Component:
    name: str
    app: ASGIApp
    status: str  # "ok", or why the part is unavailable


def load(name: str, aws_endpoint_url: str, region: str, work_dir: Path) -> Component:
    """Build one part, or a stand-in that explains why it could not be built."""
    module_name, factory_name = FACTORIES[name]
    try:
        module = importlib.import_module(module_name)
        factory = getattr(module, factory_name)
        work_dir.mkdir(parents=True, exist_ok=True)
        app = factory(aws_endpoint_url=aws_endpoint_url, region=region, work_dir=work_dir)
        return Component(name, app, "ok")
    except ImportError as error:
        reason = f"not installed ({error})"
        log.warning("local %s unavailable: %s", name, reason)
    except Exception as error:
        reason = f"failed to start: {type(error).__name__}: {error}"
        log.warning("local %s unavailable: %s\n%s", name, reason, traceback.format_exc())
    return Component(name, unavailable_app(name, reason), f"unavailable: {reason}")


def unavailable_app(name: str, reason: str) -> ASGIApp:
    """An ASGI app that answers 503 ServiceUnavailable, in AWS's JSON error shape."""
    body = json.dumps(
        {
            "__type": "ServiceUnavailable",
            "message": f"the local {name} of qa-console is unavailable: {reason}",
        }
    ).encode()

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        await _send_json(send, 503, body, [(b"x-amzn-errortype", b"ServiceUnavailable")])

    return app


async def _send_json(
    send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    """One whole JSON response."""
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                *(headers or []),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def with_health(component: Component, activity: Activity) -> ASGIApp:
    """Wrap a part so GET /_localaws/health answers for it and requests count as activity."""
    inner = component.app

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            if scope.get("path") == HEALTH_PATH and scope.get("method") == "GET":
                body = json.dumps(
                    {
                        "ok": True,
                        "component": component.name,
                        "pid": os.getpid(),
                        "status": component.status,
                    }
                ).encode()
                await _send_json(send, 200, body)
                return
            activity.touch()
        await inner(scope, receive, send)

    return app
