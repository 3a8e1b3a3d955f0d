"""The http backend: ask the public API (API Gateway + Lambda, or anything speaking its contract).

Wire contract:
    POST {"question": "...", "parameters": {...}} -> {"answer": "...", "latency_ms": ...}
An API key, when configured, goes in the `x-api-key` header and appears in no message, listing or
log line.

Retries happen only where a repeat cannot double the work or hide a real answer:
  - connection failures (refused, DNS, connect timeout): the request never reached the server;
  - 429, 502, 503: the gateway or server says it did not process the request (throttled,
    no healthy upstream, overloaded), honouring Retry-After, with exponential backoff.
Not retried:
  - a read timeout after the request was sent, and 504: the model may still be working on it, and
    a repeat would likely take as long again, so the user's time budget (`timeout_s`) is spent
    once; the caller gets TimeoutError_ (exit 4) and can raise the timeout;
  - a connection dropped mid-reply, and every other status: the reply is the answer.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from qa_console.backends.base import Answer, Backend, BackendOption, Health, Stopwatch
from qa_console.errors import AuthError, BackendError, ConfigError, TimeoutError_


def _import_httpx_without_its_cli() -> Any:
    """httpx's __init__ imports its command-line tool (click, rich, pygments: ~40 ms, a sixth of
    `qa-console ask`'s start-up) and falls back to a stub when that import fails, as it does when
    the CLI extra is not installed. Make it fail for this one import, then lift the block, so a
    later `import httpx._main` elsewhere still works."""
    if "httpx" in sys.modules or "httpx._main" in sys.modules:
        import httpx
    else:
        sys.modules["httpx._main"] = None  # type: ignore[assignment]
        try:
            import httpx
        finally:
            del sys.modules["httpx._main"]
    return httpx


if TYPE_CHECKING:
    import httpx
else:
    httpx = _import_httpx_without_its_cli()

RETRY_STATUSES = frozenset({429, 502, 503})
BACKOFF_S = 0.25  # first wait; doubles each retry
MAX_WAIT_S = 10.0  # cap on any single wait, Retry-After included
HEALTH_QUESTION = "ping"


class HttpBackend(Backend):
    kind: ClassVar[str] = "http"
    description: ClassVar[str] = "a question-answering HTTP API (API Gateway URL or compatible)"
    options: ClassVar[tuple[BackendOption, ...]] = (
        BackendOption("url", "URL to POST questions to", required=True),
        BackendOption("api_key_env", "environment variable holding the API key (x-api-key)"),
        BackendOption("api_key_file", "file holding the API key (what `qa-console expose` writes)"),
        BackendOption("api_key", "the API key itself (prefer api_key_env)", secret=True),
        BackendOption("timeout_s", "seconds to wait for an answer", default=30.0, type=float),
        BackendOption(
            "retries", "retries after a connection failure, 429, 502 or 503", default=2, type=int
        ),
    )

    def __init__(self, name: str, **options: Any) -> None:
        super().__init__(name, **options)
        url = self.settings["url"]
        if not url.startswith(("http://", "https://")):
            raise ConfigError(f"url {url!r} must start with http:// or https://")
        if self.settings["timeout_s"] <= 0:
            raise ConfigError("timeout_s must be positive")
        if self.settings["retries"] < 0:
            raise ConfigError("retries must be 0 or more")

    @property
    def url(self) -> str:
        return str(self.settings["url"])

    def _api_key(self) -> str | None:
        """The key from the environment variable, else the key file, else the option."""
        variable = self.settings["api_key_env"]
        if variable and os.environ.get(variable):
            return os.environ[variable]
        key_file = self.settings["api_key_file"]
        if key_file:
            try:
                return Path(key_file).expanduser().read_text(encoding="utf-8").strip() or None
            except OSError as error:
                raise ConfigError(
                    f"backend {self.name!r}: cannot read its API key file {key_file}: "
                    f"{error.strerror}",
                    hint="expose the endpoint again (qa-console expose NAME) to write it",
                ) from None
        return self.settings["api_key"] or None

    def ask(self, question: str, parameters: Mapping[str, Any] | None = None) -> Answer:
        return self._ask(question, parameters, retries=self.settings["retries"])

    def _ask(self, question: str, parameters: Mapping[str, Any] | None, retries: int) -> Answer:
        headers = {"accept": "application/json"}
        key = self._api_key()
        if key:
            headers["x-api-key"] = key
        body = {"question": question, "parameters": dict(parameters or {})}
        timeout = httpx.Timeout(self.settings["timeout_s"])
        watch = Stopwatch()
        # Plain-http URLs (the embedded local gateway) skip building a TLS context: loading the CA
        # bundle costs ~40 ms of every `qa-console ask`, and no redirect to https is followed.
        transport = httpx.HTTPTransport(verify=False) if self.url.startswith("http://") else None
        with httpx.Client(timeout=timeout, headers=headers, transport=transport) as client:
            attempt = 0
            while True:
                try:
                    response = client.post(self.url, json=body)
                except (httpx.ConnectError, httpx.ConnectTimeout) as error:
                    if attempt < retries:
                        attempt += 1
                        time.sleep(_backoff(attempt, None))
                        continue
                    raise BackendError(
                        f"cannot connect to {self.url}: {_reason(error)}",
                        hint=f"is the API up? check the url of backend {self.name!r}"
                        + (f" (tried {attempt + 1} times)" if attempt else ""),
                    ) from None
                except httpx.TimeoutException:
                    raise TimeoutError_(
                        f"{self.url} did not answer within {self.settings['timeout_s']:g} s",
                        hint=f"raise timeout_s of backend {self.name!r} in plugins.toml",
                    ) from None
                except httpx.HTTPError as error:
                    raise BackendError(f"request to {self.url} failed: {_reason(error)}") from None
                if response.status_code in RETRY_STATUSES and attempt < retries:
                    attempt += 1
                    time.sleep(_backoff(attempt, response.headers.get("retry-after")))
                    continue
                return self._answer(response, watch.ms)

    def _answer(self, response: httpx.Response, latency_ms: float) -> Answer:
        status = response.status_code
        if status in (401, 403):
            variable = self.settings["api_key_env"]
            if self._api_key() is None:
                hint = (
                    f"set {variable} to the API key"
                    if variable
                    else f"give backend {self.name!r} an api_key_env in plugins.toml"
                )
            else:
                hint = "the API key was refused: check it (`qa-console expose NAME --show-key`)"
            raise AuthError(
                f"{self.url} refused the request ({status}): {_server_message(response)}", hint=hint
            )
        if status == 504:
            raise TimeoutError_(
                f"{self.url} timed out upstream (504): {_server_message(response)}",
                hint="the model took longer than the gateway allows; try again or ask less",
            )
        if status == 404:
            raise BackendError(
                f"{self.url} not found (404): {_server_message(response)}",
                hint=f"check the url of backend {self.name!r} (stage and path)",
            )
        if status == 429:
            raise BackendError(
                f"{self.url} is throttling requests (429): {_server_message(response)}",
                hint="wait and try again, or raise the usage plan's limits",
            )
        if 400 <= status < 500:
            raise BackendError(
                f"{self.url} rejected the question ({status}): {_server_message(response)}"
            )
        if status >= 500:
            raise BackendError(f"{self.url} failed ({status}): {_server_message(response)}")
        if not 200 <= status < 300:
            raise BackendError(f"{self.url} replied with unexpected status {status}")
        try:
            data = response.json()
        except ValueError:
            content_type = response.headers.get("content-type", "no content-type")
            raise BackendError(
                f"{self.url} replied with non-JSON ({content_type}): {_snippet(response.text)}",
                hint="is the url the API's ask route?",
            ) from None
        if not isinstance(data, dict) or not isinstance(data.get("answer"), str):
            raise BackendError(
                f'{self.url} replied without an "answer" string: {_snippet(response.text)}',
                hint='the API must reply {"answer": "...", "latency_ms": ...}',
            )
        extra: dict[str, Any] = {"status": status}
        if isinstance(data.get("latency_ms"), int | float):
            extra["server_latency_ms"] = float(data["latency_ms"])
        return Answer(text=data["answer"], backend=self.name, latency_ms=latency_ms, extra=extra)

    def health(self) -> Health:
        """One real question, without retries: proves the URL, the key and the model all work."""
        watch = Stopwatch()
        try:
            answer = self._ask(HEALTH_QUESTION, None, retries=0)
        except (BackendError, AuthError, TimeoutError_) as error:
            return Health(ok=False, detail=error.message, latency_ms=watch.ms)
        return Health(
            ok=True, detail=f"answered {_snippet(answer.text, 40)!r}", latency_ms=answer.latency_ms
        )


def _backoff(attempt: int, retry_after: str | None) -> float:
    if retry_after is not None:
        try:
            return min(max(float(retry_after), 0.0), MAX_WAIT_S)
        except ValueError:
            pass  # an HTTP date: fall back to our own backoff
    return min(BACKOFF_S * 2 ** (attempt - 1), MAX_WAIT_S)


def _reason(error: Exception) -> str:
    return str(error) or type(error).__name__


def _server_message(response: httpx.Response) -> str:
    """The server's own words: a JSON body's message/error/detail field, else the text's start."""
    try:
        data = response.json()
    except ValueError:
        data = None
    if isinstance(data, dict):
        for key in ("message", "Message", "error", "detail", "errorMessage"):
            if isinstance(data.get(key), str) and data[key]:
                return _snippet(data[key])
    return _snippet(response.text) or response.reason_phrase or "no message"


def _snippet(text: str, limit: int = 200) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
