"""The sagemaker backend: ask a SageMaker endpoint with sagemaker-runtime invoke_endpoint.

The same code talks to AWS and to the embedded local AWS: the target ('local' or an AWS profile)
only decides where botocore sends the calls (see ops/aws/target.py). The request is the handler's
contract, `{"inputs": question, "parameters": {...}}`, and the reply `[{"generated_text": ...}]`.

Retries: botocore's standard mode retries throttling, 5xx and connection errors. It never retries
a ModelError (424: the model answered with an error; asking again gets the same), and this
backend also stops it retrying a read timeout: the model may still be working, and a repeat
would spend the user's time budget (`timeout_s`) again.

Imports boto3 only when a question is asked: listing backends must stay instant.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator, Mapping
from functools import cached_property
from typing import TYPE_CHECKING, Any, ClassVar

from qa_console.backends.base import (
    Answer,
    Backend,
    BackendOption,
    Health,
    Stopwatch,
    check_question,
)
from qa_console.errors import BackendError, ConfigError, QAConsoleError, TimeoutError_

if TYPE_CHECKING:
    from qa_console.ops.aws.target import Target

HEALTH_QUESTION = "ping"
# A ModelError's log window: the last lines from just before the request, looked for a few
# times because a container's lines reach CloudWatch a moment after its answer.
LOG_WINDOW_LINES = 10
LOG_WINDOW_BEFORE_MS = 2_000
LOG_WINDOW_ATTEMPTS = 3
LOG_WINDOW_PAUSE_S = 0.3
_INVOKE_OPERATIONS = ("InvokeEndpoint", "InvokeEndpointWithResponseStream")


class SageMakerBackend(Backend):
    kind: ClassVar[str] = "sagemaker"
    description: ClassVar[str] = "a SageMaker endpoint (sagemaker-runtime), on AWS or the local AWS"
    supports_streaming: ClassVar[bool] = True
    options: ClassVar[tuple[BackendOption, ...]] = (
        BackendOption("endpoint", "SageMaker endpoint name", required=True),
        BackendOption("region", "AWS region (default: the region setting)"),
        BackendOption(
            "target", "'local' or an AWS profile (default: the target setting, else 'local')"
        ),
        BackendOption("timeout_s", "seconds to wait for an answer", default=60.0, type=float),
        BackendOption(
            "parameters",
            "default generation parameters, e.g. {max_new_tokens = 32}",
            default=None,
            type=dict,
        ),
    )

    def __init__(self, name: str, **options: Any) -> None:
        super().__init__(name, **options)
        if self.settings["timeout_s"] <= 0:
            raise ConfigError("timeout_s must be positive")
        self._clients: dict[str, Any] = {}

    # --- where --------------------------------------------------------------------------------

    @property
    def endpoint(self) -> str:
        return str(self.settings["endpoint"])

    @cached_property
    def target(self) -> Target:
        """Where the calls go: the `target` and `region` options (plugins.toml, else the
        settings the registry filled in), else the embedded local AWS in us-east-1."""
        from qa_console.ops.aws.target import resolve

        with self._aws_errors():
            return resolve(self.settings.get("target"), self.settings.get("region"))

    def _aws_errors(self) -> contextlib.AbstractContextManager[None]:
        """boto3/botocore failures inside become typed errors naming this backend's endpoint."""
        from qa_console.ops.aws.errors import aws_errors

        return aws_errors(
            f"ask {self.name}",
            target=self.__dict__.get("target"),  # None while the target itself is resolved
            resource=f"endpoint {self.endpoint}",
            permission="sagemaker:InvokeEndpoint",
            logs=f"qa-console logs {self.endpoint} (/aws/sagemaker/Endpoints/{self.endpoint})",
        )

    def _client(self, service: str) -> Any:
        if service not in self._clients:
            timeout = float(self.settings["timeout_s"])
            target = self.target
            with self._aws_errors():
                made = target.client(
                    service, read_timeout=timeout, connect_timeout=min(timeout, 10.0)
                )
            if service == "sagemaker-runtime":
                for operation in _INVOKE_OPERATIONS:
                    made.meta.events.register_first(
                        f"needs-retry.sagemaker-runtime.{operation}", _no_retry_after_read_timeout
                    )
            self._clients[service] = made
        return self._clients[service]

    @contextlib.contextmanager
    def _invocation(self) -> Iterator[None]:
        """One call to the runtime: a read timeout is this backend's time budget running out;
        a ModelError carries the endpoint's log lines of that moment (the handler's traceback)."""
        from botocore.exceptions import ReadTimeoutError

        from qa_console.ops.aws.errors import error_code

        started_ms = int(time.time() * 1000)
        model_failed = False
        try:
            with self._aws_errors():
                try:
                    yield
                except ReadTimeoutError:
                    raise self._timeout() from None
                except Exception as error:
                    model_failed = error_code(error) == "ModelError"
                    raise
        except QAConsoleError as error:
            if model_failed:
                error.details = (*error.details, *self._log_window(started_ms))
            raise

    def _log_window(self, started_ms: int) -> tuple[str, ...]:
        """The endpoint's last log lines from just before `started_ms` on, as detail lines.
        Containers' lines reach CloudWatch a moment after the answer, so look a few times."""
        from qa_console.ops.logs.lines import endpoint_log_group
        from qa_console.ops.logs.read import last_lines

        group = endpoint_log_group(self.endpoint)
        for attempt in range(LOG_WINDOW_ATTEMPTS):
            if attempt:
                time.sleep(LOG_WINDOW_PAUSE_S)
            lines = last_lines(
                self.target, group, LOG_WINDOW_LINES, start_ms=started_ms - LOG_WINDOW_BEFORE_MS
            )
            if lines:
                return (f"the endpoint's log around the failure ({group}):", *lines)
        return ()

    def _request(self, question: str, parameters: Mapping[str, Any] | None) -> bytes:
        merged = {**(self.settings["parameters"] or {}), **(parameters or {})}
        return json.dumps({"inputs": check_question(question), "parameters": merged}).encode()

    # --- the protocol -------------------------------------------------------------------------

    def ask(self, question: str, parameters: Mapping[str, Any] | None = None) -> Answer:
        body = self._request(question, parameters)
        watch = Stopwatch()
        client = self._client("sagemaker-runtime")
        with self._invocation():
            response = client.invoke_endpoint(
                EndpointName=self.endpoint,
                Body=body,
                ContentType="application/json",
                Accept="application/json",
            )
            payload = response["Body"].read()
        return Answer(
            text=self._answer_text(payload),
            backend=self.name,
            latency_ms=watch.ms,
            extra={
                "endpoint": self.endpoint,
                "variant": response.get("InvokedProductionVariant"),
            },
        )

    def stream(self, question: str, parameters: Mapping[str, Any] | None = None) -> Iterator[str]:
        """Yield pieces as the endpoint sends them.

        Each PayloadPart is read as lines: a JSON line with a "token" (or "generated_text") is one
        piece, as a streaming handler or TGI-style `data:` lines give. A handler that answers in
        one piece (this project's, a JSON list) is yielded once, when the stream ends.
        """
        body = self._request(question, parameters)
        client = self._client("sagemaker-runtime")
        with self._invocation():
            response = client.invoke_endpoint_with_response_stream(
                EndpointName=self.endpoint,
                Body=body,
                ContentType="application/json",
                Accept="application/json",
            )
        buffer = b""  # the incomplete last line
        whole = b""  # lines that are not streamed pieces: one JSON reply, parsed at the end
        with self._invocation():
            for event in response["Body"]:
                buffer += event.get("PayloadPart", {}).get("Bytes", b"")
                *lines, buffer = buffer.split(b"\n")
                for line in lines:
                    piece = _piece(line)
                    if piece is None:
                        whole += line + b"\n"
                    elif piece:
                        yield piece
        whole += buffer
        if whole.strip():
            piece = _piece(whole) if b"\n" not in whole.strip() else None
            yield piece if piece is not None else self._answer_text(whole)

    def health(self) -> Health:
        """describe_endpoint says InService, then one tiny question is answered."""
        watch = Stopwatch()
        try:
            client = self._client("sagemaker")
            with self._aws_errors():
                described = client.describe_endpoint(EndpointName=self.endpoint)
            status = described.get("EndpointStatus")
            if status != "InService":
                return Health(
                    ok=False,
                    detail=f"endpoint {self.endpoint} is {status}, not InService",
                    latency_ms=watch.ms,
                )
            answer = self.ask(HEALTH_QUESTION, {"max_new_tokens": 4})
        except QAConsoleError as error:
            detail = error.message + (f" ({error.hint})" if error.hint else "")
            return Health(ok=False, detail=detail, latency_ms=watch.ms)
        return Health(
            ok=True,
            detail=f"{self.endpoint} is InService and answered {answer.text[:40]!r}",
            latency_ms=answer.latency_ms,
        )

    # --- replies and errors -------------------------------------------------------------------

    def _answer_text(self, payload: bytes) -> str:
        try:
            data = json.loads(payload)
        except ValueError:
            raise BackendError(
                f"endpoint {self.endpoint} replied with non-JSON: {_snippet(payload)}",
                hint='its handler must answer [{"generated_text": "..."}]',
            ) from None
        text = _generated_text(data)
        if text is None:
            raise BackendError(
                f"endpoint {self.endpoint} replied without a generated_text: {_snippet(payload)}",
                hint='its handler must answer [{"generated_text": "..."}]',
            )
        return text

    def _timeout(self) -> TimeoutError_:
        return TimeoutError_(
            f"endpoint {self.endpoint} did not answer within {self.settings['timeout_s']:g} s",
            hint=f"raise timeout_s of backend {self.name!r}, or ask for fewer tokens",
        )


def _no_retry_after_read_timeout(caught_exception: Exception | None = None, **_: Any) -> None:
    """needs-retry hook: a read timeout is final (raising here ends botocore's retry loop)."""
    from botocore.exceptions import ReadTimeoutError

    if isinstance(caught_exception, ReadTimeoutError):
        raise caught_exception


def _generated_text(data: Any) -> str | None:
    """The answer in a handler's reply: [{"generated_text"}], nested lists, a dict, or a string."""
    while isinstance(data, list) and data:
        data = data[0]
    if isinstance(data, str):
        return data
    if isinstance(data, dict):
        for key in ("generated_text", "answer"):
            if isinstance(data.get(key), str):
                return str(data[key])
    return None


def _piece(line: bytes) -> str | None:
    """One streamed line's text: {"token": ...} (or TGI's {"token": {"text": ...}}), else None."""
    text = line.strip()
    if text.startswith(b"data:"):
        text = text[len(b"data:") :].strip()
    if not text:
        return ""
    try:
        data = json.loads(text)
    except ValueError:
        return None
    if isinstance(data, dict) and "token" in data:
        token = data["token"]
        if isinstance(token, dict):
            token = token.get("text", "")
        return str(token)
    if isinstance(data, dict) and isinstance(data.get("generated_text"), str):
        return str(data["generated_text"])
    return None


def _snippet(payload: bytes | str, limit: int = 200) -> str:
    text = payload.decode("utf-8", "replace") if isinstance(payload, bytes) else payload
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
