"""The one translator from boto3/botocore failures to the errors a user can act on.

Every AWS call that a user's input, credentials or permissions can make fail runs inside

    with aws_errors("upload s3://bucket/key", target=target, resource="bucket bucket",
                    permission="s3:PutObject"):
        s3.upload_part(...)

and what escapes is a QAConsoleError naming the action, the resource and, where it helps, the
permission, with a hint worded for the target (the embedded local AWS or a profile). Failures
that are not AWS's (a bug in our code) pass through untouched, traceback and all.

Callers that branch on a particular AWS answer (a 404 that means "create it") test
`error_code(error)` on the ClientError first and let everything else reach the translator.
"""

from __future__ import annotations

import contextlib
import dataclasses
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from qa_console.errors import (
    AuthError,
    BackendError,
    ConfigError,
    OperationError,
    QAConsoleError,
    TimeoutError_,
    UsageError,
)

if TYPE_CHECKING:
    from qa_console.ops.aws.target import Target

AUTH_CODES = frozenset(
    {
        "AccessDenied",
        "AccessDeniedException",
        "AllAccessDisabled",
        "AuthFailure",
        "AuthorizationError",
        "IncompleteSignature",
        "InvalidAccessKeyId",
        "InvalidClientTokenId",
        "InvalidSignatureException",
        "MissingAuthenticationToken",
        "NotAuthorized",
        "SignatureDoesNotMatch",
        "UnauthorizedOperation",
        "UnrecognizedClientException",
    }
)
EXPIRED_CODES = frozenset(
    {"ExpiredToken", "ExpiredTokenException", "InvalidToken", "RequestExpired"}
)
THROTTLE_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "TooManyRequestsException",
        "RequestLimitExceeded",
        "SlowDown",
    }
)
QUOTA_CODES = frozenset(
    {"ResourceLimitExceeded", "LimitExceededException", "ServiceQuotaExceededException"}
)
NOT_FOUND_CODES = frozenset(
    {
        "404",
        "NoSuchBucket",
        "NoSuchEntity",
        "NoSuchKey",
        "NoSuchUpload",
        "NotFound",
        "NotFoundException",
        "ResourceNotFound",
        "ResourceNotFoundException",
    }
)
IN_USE_CODES = frozenset({"ResourceInUse", "ResourceInUseException", "ConflictException"})
VALIDATION_CODES = frozenset(
    {
        "BadRequestException",
        "InvalidParameterCombination",
        "InvalidParameterValue",
        "InvalidRequest",
        "MalformedPolicyDocument",
        "ValidationError",
        "ValidationException",
    }
)
WRONG_REGION_CODES = frozenset(
    {"PermanentRedirect", "AuthorizationHeaderMalformed", "IllegalLocationConstraintException"}
)
# S3 denials say only "Access Denied": name the IAM action from the operation that was denied.
S3_PERMISSIONS = {
    "AbortMultipartUpload": "s3:AbortMultipartUpload",
    "CompleteMultipartUpload": "s3:PutObject",
    "CreateBucket": "s3:CreateBucket",
    "CreateMultipartUpload": "s3:PutObject",
    "DeleteObject": "s3:DeleteObject",
    "DeleteObjects": "s3:DeleteObject",
    "GetObject": "s3:GetObject",
    "HeadBucket": "s3:ListBucket",
    "HeadObject": "s3:GetObject",
    "ListMultipartUploads": "s3:ListBucketMultipartUploads",
    "ListObjectsV2": "s3:ListBucket",
    "ListParts": "s3:ListMultipartUploadParts",
    "PutObject": "s3:PutObject",
    "UploadPart": "s3:PutObject",
}
# What SageMaker's runtime says when the model's own code failed to answer in time.
MODEL_TIMEOUT_TEXT = "timed out while waiting for a response"
_NOT_FOUND_TEXT = re.compile(r"could not find|does not exist|not found|cannot find", re.I)


@dataclass(frozen=True)
class Call:
    """What was being done when AWS failed, for the message.

    action:     a verb phrase, "upload s3://bucket/key" ("cannot <action>: ...")
    target:     where the call went (for the hints), when known
    resource:   what it was about, "endpoint biography-bot" (named in not-found messages)
    permission: the IAM action it needs, "s3:PutObject" (named in access-denied messages)
    logs:       where the resource's logs explain a failure, "qa-console logs biography-bot"
    """

    action: str
    target: Target | None = None
    resource: str | None = None
    permission: str | None = None
    logs: str | None = None

    @property
    def where(self) -> str:
        return f" in {self.target.describe()}" if self.target is not None else ""


@contextlib.contextmanager
def aws_errors(
    action: str,
    *,
    target: Target | None = None,
    resource: str | None = None,
    permission: str | None = None,
    logs: str | None = None,
) -> Iterator[None]:
    """Run AWS calls; re-raise their failures as typed errors (see the module docstring)."""
    try:
        yield
    except QAConsoleError:
        raise
    except Exception as error:
        translated = translate(error, Call(action, target, resource, permission, logs))
        if translated is None:
            raise
        raise translated from None


def error_code(error: BaseException) -> str:
    """The AWS error code of a ClientError ("NoSuchKey"), or ""."""
    response = getattr(error, "response", None)
    if isinstance(response, dict):
        return str(response.get("Error", {}).get("Code", ""))
    return ""


def error_status(error: BaseException) -> int | None:
    response = getattr(error, "response", None)
    if isinstance(response, dict):
        status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        return int(status) if status is not None else None
    return None


def translate(error: BaseException, call: Call) -> QAConsoleError | None:
    """The typed error for an AWS failure during `call`, or None when it is not AWS's."""
    from boto3 import exceptions as b3
    from botocore import exceptions as bc

    if isinstance(error, bc.ClientError):
        response = error.response
        details = response.get("Error", {})
        call = _with_permission(call, str(getattr(error, "operation_name", "")))
        return _client_error(
            call,
            str(details.get("Code", "")),
            str(details.get("Message", "")),
            error_status(error),
            response,
        )
    if isinstance(error, b3.S3UploadFailedError):
        # boto3's transfer manager keeps only the text of the ClientError it caught.
        match = re.search(
            r"An error occurred \(([^)]+)\) when calling the (\w+) operation[^:]*: (.*)", str(error)
        )
        if match is None:
            return BackendError(f"cannot {call.action}: {error}")
        code, operation, message = match.groups()
        return _client_error(_with_permission(call, operation), code, message, None, {})
    return _botocore_error(error, call, bc) or (
        BackendError(f"cannot {call.action}: {error}") if isinstance(error, b3.Boto3Error) else None
    )


def _with_permission(call: Call, operation: str) -> Call:
    """`call` naming the IAM action of a denied S3 operation when the caller named none."""
    if call.permission is None and operation in S3_PERMISSIONS:
        return dataclasses.replace(call, permission=S3_PERMISSIONS[operation])
    return call


def _botocore_error(error: BaseException, call: Call, bc: Any) -> QAConsoleError | None:
    target = call.target
    if isinstance(error, bc.ProfileNotFound):
        profile = getattr(error, "kwargs", {}).get("profile") or (target and target.name)
        return ConfigError(
            f"AWS profile {profile!r} does not exist",
            hint="use --target local for the embedded local AWS, or a profile from "
            "~/.aws/config (aws configure --profile NAME)",
        )
    credentials = (
        bc.NoCredentialsError,
        bc.PartialCredentialsError,
        bc.CredentialRetrievalError,
        bc.TokenRetrievalError,
        bc.SSOError,
    )
    if isinstance(error, credentials):
        where = f" for {target.describe()}" if target is not None else ""
        return AuthError(
            f"cannot {call.action}: no AWS credentials{where}",
            hint=target.hints.no_credentials if target is not None else "run `aws configure`",
        )
    if isinstance(error, bc.NoRegionError):
        return ConfigError(
            f"cannot {call.action}: no AWS region is set",
            hint="qa-console config set region us-east-1 (or pass --region)",
        )
    if isinstance(error, bc.ReadTimeoutError):
        return TimeoutError_(
            f"cannot {call.action}: AWS did not answer in time{call.where}",
            hint="try again; a long call may need a larger timeout",
        )
    unreachable = (bc.EndpointConnectionError, bc.ConnectTimeoutError, bc.ConnectionClosedError)
    if isinstance(error, unreachable):
        url = str(getattr(error, "kwargs", {}).get("endpoint_url") or "")
        host = "/".join(url.split("/")[:3]) if "://" in url else "AWS"
        return BackendError(
            f"cannot {call.action}: cannot reach {host}{call.where}",
            hint=target.hints.unreachable if target is not None else "check the network",
        )
    if isinstance(error, bc.ParamValidationError):
        return UsageError(f"cannot {call.action}: {error}")
    if isinstance(error, bc.BotoCoreError):
        return BackendError(f"cannot {call.action}: {error}")
    return None


def _client_error(
    call: Call, code: str, message: str, status: int | None, response: dict[str, Any]
) -> QAConsoleError:
    """An error AWS answered with, by its code (and HTTP status where codes vary)."""
    prefix = f"cannot {call.action}"
    model = _model_error(call, code, message, response)
    if model is not None:
        return model
    if code in AUTH_CODES or status == 403:
        needs = f" (needs {call.permission}" if call.permission else ""
        on = f" on {call.resource}" if call.permission and call.resource else ""
        return AuthError(
            f"{prefix}: access denied{needs}{on}{')' if needs else ''}: {message or code}",
            hint=f"grant {call.permission or 'the permission'} to your user or role "
            "(`qa-console iam check` lists what is missing), or use another AWS target",
        )
    if code in EXPIRED_CODES:
        return AuthError(f"{prefix}: the AWS session has expired", hint="log in again")
    if code in THROTTLE_CODES:
        return BackendError(
            f"{prefix}: AWS is throttling requests ({code}): {message}",
            hint="wait a moment and try again",
        )
    if code in QUOTA_CODES:
        return OperationError(
            f"{prefix}: an AWS quota is exhausted ({code}): {message}",
            hint="request a quota increase in the Service Quotas console, delete what you do "
            "not use, or choose another instance type",
        )
    if code in WRONG_REGION_CODES:
        return UsageError(
            f"{prefix}: {call.resource or 'the resource'} is in another region: {message}",
            hint="set the region it is in (qa-console config set region REGION) or choose "
            "another bucket",
        )
    if code in NOT_FOUND_CODES or (
        code in VALIDATION_CODES and _NOT_FOUND_TEXT.search(message) is not None
    ):
        what = call.resource or "it"
        return UsageError(
            f"{prefix}: {what} does not exist{call.where}",
            hint="check the name and the region (`qa-console status` lists endpoints)",
        )
    if code in IN_USE_CODES:
        return UsageError(
            f"{prefix}: {call.resource or 'the resource'} is busy ({code}): {message}",
            hint="wait for the operation under way to finish, then try again",
        )
    if code in VALIDATION_CODES:
        return UsageError(f"{prefix}: {message or code}")
    if status == 413:
        return UsageError(f"{prefix}: the request is too large: {message}")
    return BackendError(f"{prefix}: {code or status or 'error'}: {message}".rstrip(": "))


def _model_error(
    call: Call, code: str, message: str, response: dict[str, Any]
) -> QAConsoleError | None:
    """SageMaker runtime answers about the model behind an endpoint."""
    prefix = f"cannot {call.action}"
    logs = f"the logs say why: {call.logs}" if call.logs else "read the endpoint's logs"
    if code == "ModelError":
        original = str(response.get("OriginalMessage") or message)
        if MODEL_TIMEOUT_TEXT in original:
            return TimeoutError_(
                f"{prefix}: the model did not answer within the endpoint's per-request limit "
                "(60 s on SageMaker)",
                hint="ask for fewer tokens, or use an async endpoint for long requests",
            )
        status = response.get("OriginalStatusCode", "?")
        return BackendError(
            f"{prefix}: the model failed ({status}): {_original_text(original)}", hint=logs
        )
    if code == "ModelStreamError":
        return BackendError(f"{prefix}: the model failed while answering: {message}", hint=logs)
    if code == "ModelNotReadyException":
        return BackendError(
            f"{prefix}: the model is still loading", hint="try again in a few seconds"
        )
    if code in VALIDATION_CODES and "not in service" in message.lower():
        return BackendError(
            f"{prefix}: {call.resource or 'the endpoint'} is not InService yet: {message}",
            hint="wait for the deploy to finish (`qa-console status` shows it)",
        )
    if code in THROTTLE_CODES and call.logs is not None:
        return BackendError(
            f"{prefix}: {call.resource or 'the endpoint'} is throttling requests: {message}",
            hint="too many requests at once (a serverless endpoint's MaxConcurrency): wait and "
            "retry, or raise MaxConcurrency",
        )
    return None


def _original_text(original: str) -> str:
    """The handler's own message when SageMaker wrapped a JSON error body."""
    import json

    try:
        data = json.loads(original)
    except ValueError:
        return original
    if isinstance(data, dict):
        for key in ("message", "error", "errorMessage"):
            if isinstance(data.get(key), str):
                return str(data[key])
    return original
