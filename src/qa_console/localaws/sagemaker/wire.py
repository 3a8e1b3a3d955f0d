"""The sagemaker-runtime error responses, shaped so botocore raises the same exception classes.

botocore's rest-json parser takes the error code from the `x-amzn-ErrorType` header (or `__type`
in the body) and the message from `message`/`Message`; the members of a modeled error (ModelError's
OriginalStatusCode, OriginalMessage, LogStreamArn) are read from the JSON body. The texts follow
what SageMaker answers, so messages users paste into a search engine find the real explanations.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from typing import Any

# Request body limits, as SageMaker enforces them (bytes).
REALTIME_MAX_PAYLOAD = 6 * 1024 * 1024
SERVERLESS_MAX_PAYLOAD = 4 * 1024 * 1024

CONTAINER = "primary"


@dataclass
class WireError(Exception):
    """An error response of the runtime API: HTTP status, error code and JSON body members."""

    status: int
    code: str | None
    message: str
    members: dict[str, Any] = field(default_factory=dict)

    def __str__(self) -> str:
        return f"{self.code or self.status}: {self.message}"

    def body(self) -> bytes:
        payload: dict[str, Any] = {"message": self.message, **self.members}
        return json.dumps(payload).encode("utf-8")

    def headers(self, request_id: str) -> dict[str, str]:
        headers = {"Content-Type": "application/json", "x-amzn-RequestId": request_id}
        if self.code:
            headers["x-amzn-ErrorType"] = self.code
        return headers


def new_request_id() -> str:
    return str(uuid.uuid4())


def validation_error(message: str) -> WireError:
    return WireError(400, "ValidationError", message)


def endpoint_not_found(name: str, account: str) -> WireError:
    return validation_error(f"Endpoint {name} of account {account} not found.")


def endpoint_not_in_service(name: str, account: str, status: str) -> WireError:
    return validation_error(
        f"Endpoint {name} of account {account} is not in service (status: {status}); "
        "wait until it is InService."
    )


def payload_too_large(limit: int) -> WireError:
    # SageMaker's front end answers 413 with no error type: botocore reports the code "413".
    return WireError(413, None, f"HTTP content length exceeded {limit} bytes.")


def throttled(name: str, max_concurrency: int) -> WireError:
    return WireError(
        400,
        "ThrottlingException",
        f"Rate exceeded: serverless endpoint {name} is already serving MaxConcurrency="
        f"{max_concurrency} requests.",
    )


def model_not_ready(name: str, waited_s: float) -> WireError:
    return WireError(
        429,
        "ModelNotReadyException",
        f"The model of endpoint {name} is still loading (waited {waited_s:.0f} s); retry shortly.",
    )


def internal_failure(message: str) -> WireError:
    return WireError(500, "InternalFailure", message)


@dataclass(frozen=True)
class LogLocation:
    """Where an endpoint's container logs are, for the text and LogStreamArn of a ModelError."""

    region: str
    account: str
    endpoint: str

    @property
    def group(self) -> str:
        return f"/aws/sagemaker/Endpoints/{self.endpoint}"

    @property
    def arn(self) -> str:
        return f"arn:aws:logs:{self.region}:{self.account}:log-group:{self.group}"

    @property
    def console_url(self) -> str:
        return (
            f"https://{self.region}.console.aws.amazon.com/cloudwatch/home?region={self.region}"
            f"#logEventViewer:group={self.group}"
        )


def model_error(original_status: int, original_message: str, where: LogLocation) -> WireError:
    """ModelError (424): the container answered with an error, died, or did not answer in time."""
    kind = "client" if 400 <= original_status < 500 else "server"
    message = (
        f"Received {kind} error ({original_status}) from {CONTAINER} with message "
        f'"{original_message}". See {where.console_url} in account {where.account} '
        "for more information."
    )
    return WireError(
        424,
        "ModelError",
        message[:2048],
        {
            "OriginalStatusCode": original_status,
            "OriginalMessage": original_message[:2048],
            "LogStreamArn": where.arn,
        },
    )


def handler_failure_message(message: str) -> str:
    """The body the Hugging Face inference toolkit sends when a handler function raises (400)."""
    body = {"code": 400, "type": "InternalServerException", "message": message}
    return json.dumps(body, indent=2)


TIMEOUT_MESSAGE = (
    f"Your invocation timed out while waiting for a response from container {CONTAINER}. "
    "Review the latency metrics for each container in Amazon CloudWatch, resolve the issue, "
    "and try again."
)
