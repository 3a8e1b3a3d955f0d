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
from collections.abc import Iterator, Mapping
from functools import cached_property
from typing import Any, ClassVar

from qa_console.backends.base import (
    Answer,
    Backend,
    BackendOption,
    Health,
    Stopwatch,
    check_question,
)
from qa_console.errors import (
    AuthError,
    BackendError,
    ConfigError,
    QAConsoleError,
    TimeoutError_,
    UsageError,
)

HEALTH_QUESTION = "ping"
AUTH_CODES = frozenset(
    {
        "AccessDenied",
        "AccessDeniedException",
        "UnrecognizedClientException",
        "InvalidClientTokenId",
        "InvalidSignatureException",
        "SignatureDoesNotMatch",
        "IncompleteSignature",
        "ExpiredToken",
        "ExpiredTokenException",
        "MissingAuthenticationToken",
    }
)
TIMEOUT_TEXT = "timed out while waiting for a response"
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

    def _setting(self, key: str, fallback: str) -> str:
        """An option (plugins.toml, else the settings the registry filled in), else the fallback."""
        return str(self.settings.get(key) or fallback)

    @cached_property
    def target(self) -> str:
        return self._setting("target", "local")

    @cached_property
    def region(self) -> str:
        return self._setting("region", "us-east-1")

    def _where(self) -> str:
        return f"{self.target} ({self.region})"

    @contextlib.contextmanager
    def _aws_errors(self) -> Iterator[None]:
        """boto3/botocore failures inside become the typed errors of _translate."""
        try:
            yield
        except QAConsoleError:
            raise
        except Exception as error:
            raise self._translate(error) from None

    def _client(self, service: str) -> Any:
        if service not in self._clients:
            from qa_console.ops.aws.target import client

            timeout = float(self.settings["timeout_s"])
            with self._aws_errors():
                made = client(
                    service,
                    self.target,
                    self.region,
                    read_timeout=timeout,
                    connect_timeout=min(timeout, 10.0),
                )
            if service == "sagemaker-runtime":
                for operation in _INVOKE_OPERATIONS:
                    made.meta.events.register_first(
                        f"needs-retry.sagemaker-runtime.{operation}", _no_retry_after_read_timeout
                    )
            self._clients[service] = made
        return self._clients[service]

    def _request(self, question: str, parameters: Mapping[str, Any] | None) -> bytes:
        merged = {**(self.settings["parameters"] or {}), **(parameters or {})}
        return json.dumps({"inputs": check_question(question), "parameters": merged}).encode()

    # --- the protocol -------------------------------------------------------------------------

    def ask(self, question: str, parameters: Mapping[str, Any] | None = None) -> Answer:
        body = self._request(question, parameters)
        watch = Stopwatch()
        with self._aws_errors():
            response = self._client("sagemaker-runtime").invoke_endpoint(
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
        with self._aws_errors():
            response = self._client("sagemaker-runtime").invoke_endpoint_with_response_stream(
                EndpointName=self.endpoint,
                Body=body,
                ContentType="application/json",
                Accept="application/json",
            )
        buffer = b""  # the incomplete last line
        whole = b""  # lines that are not streamed pieces: one JSON reply, parsed at the end
        with self._aws_errors():
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
            with self._aws_errors():
                described = self._client("sagemaker").describe_endpoint(EndpointName=self.endpoint)
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

    def _translate(self, error: Exception) -> QAConsoleError:
        """A boto3/botocore failure as the typed error a user can act on."""
        from botocore import exceptions as bx

        where = self._where()
        local = self.target == "local"
        if isinstance(error, bx.ProfileNotFound):
            return ConfigError(
                f"AWS profile {self.target!r} does not exist",
                hint="set target to 'local' or to a profile from ~/.aws/config",
            )
        if isinstance(error, bx.NoCredentialsError | bx.PartialCredentialsError):
            return AuthError(
                f"no AWS credentials for {where}",
                hint=f"run `aws configure --profile {self.target}` (or `aws sso login`), "
                "or use the local AWS with --target local",
            )
        if isinstance(error, bx.ReadTimeoutError):
            return self._timeout()
        if isinstance(error, bx.ConnectTimeoutError | bx.EndpointConnectionError):
            return BackendError(
                f"cannot reach SageMaker runtime for {where}: {error}",
                hint="start the local AWS with `qa-console local up`"
                if local
                else "check the network and the region",
            )
        if isinstance(error, bx.EventStreamError):
            response = error.response.get("Error", {})
            return BackendError(
                f"endpoint {self.endpoint} failed while answering: {response.get('Message')}",
                hint=self._logs_hint(),
            )
        if not isinstance(error, bx.ClientError):
            return BackendError(f"endpoint {self.endpoint}: {type(error).__name__}: {error}")
        response = error.response
        code = str(response.get("Error", {}).get("Code", ""))
        message = str(response.get("Error", {}).get("Message", ""))
        status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if code in AUTH_CODES or status == 403:
            return AuthError(
                f"{where} refused the request ({code}): {message}",
                hint="the credentials need sagemaker:InvokeEndpoint on this endpoint",
            )
        validation = code in ("ValidationError", "ValidationException")
        if validation and ("not found" in message or "Could not find endpoint" in message):
            return UsageError(
                f"endpoint {self.endpoint} does not exist in {where}",
                hint="see the endpoints with `qa-console local status`, or deploy one"
                if local
                else "check the endpoint name and region, or deploy it",
            )
        if validation and "not in service" in message:
            return BackendError(
                f"endpoint {self.endpoint} is not InService yet: {message}",
                hint="wait for the deploy to finish (`qa-console local status` shows it)"
                if local
                else "wait for the deploy to finish (aws sagemaker describe-endpoint)",
            )
        if code == "ModelError":
            original = str(response.get("OriginalMessage") or message)
            if TIMEOUT_TEXT in original:
                return TimeoutError_(
                    f"endpoint {self.endpoint} timed out: the model did not answer within "
                    "the endpoint's per-request limit (60 s on SageMaker)",
                    hint="ask for fewer tokens, or use an async endpoint for long requests",
                )
            return BackendError(
                f"the model of endpoint {self.endpoint} failed "
                f"({response.get('OriginalStatusCode', '?')}): {_original_text(original)}",
                hint=self._logs_hint(),
            )
        if code == "ModelNotReadyException":
            return BackendError(
                f"the model of endpoint {self.endpoint} is still loading",
                hint="try again in a few seconds",
            )
        if code in ("ThrottlingException", "Throttling", "TooManyRequestsException"):
            return BackendError(
                f"endpoint {self.endpoint} is throttling requests: {message}",
                hint="too many requests at once (a serverless endpoint's MaxConcurrency): "
                "wait and retry, or raise MaxConcurrency",
            )
        if status == 413:
            return UsageError(f"the request is too large for endpoint {self.endpoint}: {message}")
        return BackendError(f"endpoint {self.endpoint} failed ({code or status}): {message}")

    def _timeout(self) -> TimeoutError_:
        return TimeoutError_(
            f"endpoint {self.endpoint} did not answer within {self.settings['timeout_s']:g} s",
            hint=f"raise timeout_s of backend {self.name!r}, or ask for fewer tokens",
        )

    def _logs_hint(self) -> str:
        return f"the endpoint's logs say why: /aws/sagemaker/Endpoints/{self.endpoint}"


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


def _original_text(original: str) -> str:
    """The message inside the container's JSON error body, when it is one."""
    try:
        data = json.loads(original)
    except ValueError:
        return original
    if isinstance(data, dict) and isinstance(data.get("message"), str):
        return str(data["message"])
    return original


def _snippet(payload: bytes | str, limit: int = 200) -> str:
    text = payload.decode("utf-8", "replace") if isinstance(payload, bytes) else payload
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
