"""From an integration URI to a runnable function: its configuration, code and permission.

The integration names the function in its URI. get_function gives the configuration (handler,
timeout, memory, environment, CodeSha256); the code is fetched once per CodeSha256 and unpacked
under the work dir. API Gateway may invoke the function only if the function's resource policy
lets apigateway.amazonaws.com call lambda:InvokeFunction for this API (add_permission, usually
with a SourceArn condition) or the integration has credentials (a role) to call it with. AWS
answers 500 without that, so the local gateway does too: a missing permission fails here first.
"""

from __future__ import annotations

import base64
import fnmatch
import json
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from qa_console.localaws.awslambda.code import extract_zip, fetch_code
from qa_console.localaws.awslambda.sandboxes import FunctionSpec

LAMBDA_URI = re.compile(
    r"^arn:aws[\w-]*:apigateway:[\w-]+:lambda:path/2015-03-31/functions/(?P<arn>.+)/invocations$"
)
_STAGE_VARIABLE = re.compile(r"\$\{stageVariables\.(\w+)\}")


class FunctionUnavailable(Exception):
    """The integration cannot call its function (API Gateway: 500, configuration error)."""


def function_arn_from_uri(uri: str, stage_variables: dict[str, str]) -> str:
    uri = _STAGE_VARIABLE.sub(lambda m: stage_variables.get(m.group(1), ""), uri)
    found = LAMBDA_URI.match(uri)
    if not found:
        raise FunctionUnavailable(f"integration URI {uri!r} does not name a Lambda function")
    return found.group("arn")


def split_arn(function_arn: str) -> tuple[str, str, str, str | None]:
    """(region, account, name, qualifier) of arn:aws:lambda:REGION:ACCOUNT:function:NAME[:Q]."""
    parts = function_arn.split(":")
    if len(parts) < 7 or parts[2] != "lambda" or parts[5] != "function":
        raise FunctionUnavailable(f"{function_arn!r} is not a Lambda function ARN")
    return parts[3], parts[4], parts[6], parts[7] if len(parts) > 7 else None


@dataclass
class _Entry:
    spec: FunctionSpec
    policy: list[dict[str, Any]]
    fetched_at: float


class FunctionResolver:
    def __init__(
        self,
        lambda_client: Callable[[str], Any],  # region -> boto3 lambda client
        aws_endpoint_url: str,
        work_dir: Path,
        max_age: float = 1.0,
    ) -> None:
        self._client = lambda_client
        self._endpoint = aws_endpoint_url
        self._code_root = work_dir / "lambda"
        self._max_age = max_age
        self._entries: dict[str, _Entry] = {}
        self._read_locks: dict[str, threading.Lock] = {}
        self._lock = threading.Lock()

    def resolve(self, function_arn: str, source_arn: str, has_credentials: bool) -> FunctionSpec:
        """The function's spec if API Gateway may invoke it for `source_arn`; else raise."""
        arrived = time.monotonic()
        entry = self._entry(function_arn, since=arrived - self._max_age)
        if not (has_credentials or policy_allows(entry.policy, source_arn)):
            entry = self._entry(function_arn, since=arrived)  # refused on stale data? re-read
            if not policy_allows(entry.policy, source_arn):
                raise FunctionUnavailable(
                    f"Invalid permissions on Lambda function {function_arn}: add a permission "
                    f"for apigateway.amazonaws.com to call lambda:InvokeFunction from {source_arn}"
                )
        return entry.spec

    def _entry(self, function_arn: str, since: float) -> _Entry:
        with self._lock:
            read_lock = self._read_locks.setdefault(function_arn, threading.Lock())
        with read_lock:  # one reader per function: concurrent first calls share its result
            entry = self._entries.get(function_arn)
            if entry is not None and entry.fetched_at >= since:
                return entry
            entry = self._read(function_arn)
            self._entries[function_arn] = entry
            return entry

    def _read(self, function_arn: str) -> _Entry:
        region, _account, name, qualifier = split_arn(function_arn)
        client = self._client(region)
        started = time.monotonic()
        kwargs: dict[str, Any] = {"FunctionName": name}
        if qualifier:
            kwargs["Qualifier"] = qualifier
        try:
            function = client.get_function(**kwargs)
        except client.exceptions.ResourceNotFoundException as exc:
            raise FunctionUnavailable(f"Lambda function {function_arn} does not exist") from exc
        config = function["Configuration"]
        if config.get("PackageType", "Zip") != "Zip" or not str(
            config.get("Runtime", "")
        ).startswith("python"):
            raise FunctionUnavailable(
                f"Lambda function {name} is {config.get('Runtime') or config.get('PackageType')}: "
                "the local gateway runs Python zip functions only"
            )
        sha = config["CodeSha256"]
        code_dir = self._code_root / f"{name}-{base64.b64decode(sha).hex()[:16]}"
        if not code_dir.is_dir():
            data = fetch_code(
                config["FunctionArn"], function.get("Code", {}).get("Location"), sha, self._endpoint
            )
            extract_zip(data, code_dir)
        try:
            policy_text = client.get_policy(**kwargs)["Policy"]
            statements = json.loads(policy_text).get("Statement", [])
        except client.exceptions.ResourceNotFoundException:
            statements = []
        spec = FunctionSpec(
            arn=config["FunctionArn"],
            name=name,
            version=config.get("Version", "$LATEST"),
            handler=config["Handler"],
            runtime=config["Runtime"],
            timeout_s=float(config.get("Timeout", 3)),
            memory_mb=int(config.get("MemorySize", 128)),
            environment=tuple(
                sorted((config.get("Environment") or {}).get("Variables", {}).items())
            ),
            code_sha256=sha,
            code_dir=code_dir,
            region=region,
        )
        return _Entry(spec, statements if isinstance(statements, list) else [statements], started)


def policy_allows(statements: list[dict[str, Any]], source_arn: str) -> bool:
    """Whether the function's resource policy lets API Gateway invoke it from `source_arn`."""
    applicable = [s for s in statements if _statement_applies(s, source_arn)]
    if any(s.get("Effect") == "Deny" for s in applicable):
        return False
    return any(s.get("Effect") == "Allow" for s in applicable)


def _listed(value: Any) -> list[str]:
    return [value] if isinstance(value, str) else list(value or [])


def _statement_applies(statement: dict[str, Any], source_arn: str) -> bool:
    principal = statement.get("Principal")
    if principal != "*":
        if not isinstance(principal, dict):
            return False
        services = _listed(principal.get("Service"))
        if "apigateway.amazonaws.com" not in services and "*" not in _listed(principal.get("AWS")):
            return False
    actions = [a.lower() for a in _listed(statement.get("Action"))]
    if not any(fnmatch.fnmatchcase("lambda:invokefunction", a) for a in actions):
        return False
    account = source_arn.split(":")[4]
    for operator, conditions in (statement.get("Condition") or {}).items():
        for key, expected in conditions.items():
            values = _listed(expected)
            if key.lower() == "aws:sourcearn":
                actual = source_arn
            elif key.lower() == "aws:sourceaccount":
                actual = account
            else:
                return False  # a key API Gateway does not send: the condition cannot hold
            if operator in ("ArnLike", "StringLike"):
                matched = any(fnmatch.fnmatchcase(actual, v) for v in values)
            elif operator in ("ArnEquals", "StringEquals"):
                matched = actual in values
            else:
                return False
            if not matched:
                return False
    return True
