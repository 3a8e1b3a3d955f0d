"""Is the Hugging Face hub usable right now? Asked before any hub download, so that offline
(this project's default world) a command fails in seconds with a clear message instead of letting
the hub client retry for minutes."""

from __future__ import annotations

import os
import socket
import threading
from urllib.parse import urlparse

PROBE_TIMEOUT_S = 3.0
TRUE_VALUES = ("1", "true", "yes", "on")


def switched_off(*variables: str) -> str | None:
    """The first of these variables (e.g. HF_HUB_OFFLINE) that is set to a true value, or None."""
    for variable in variables:
        if os.environ.get(variable, "").strip().lower() in TRUE_VALUES:
            return variable
    return None


def endpoint() -> str:
    return os.environ.get("HF_ENDPOINT", "https://huggingface.co")


def reachable(url: str, timeout: float = PROBE_TIMEOUT_S) -> bool:
    """TCP connect to the URL's host within `timeout`, name lookup included (in a thread, since
    getaddrinfo itself has no timeout)."""
    parsed = urlparse(url)
    host = parsed.hostname or ""
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    result: list[bool] = []

    def probe() -> None:
        try:
            with socket.create_connection((host, port), timeout=timeout):
                result.append(True)
        except OSError:
            result.append(False)

    thread = threading.Thread(target=probe, daemon=True)
    thread.start()
    thread.join(timeout)
    return bool(result and result[0])
