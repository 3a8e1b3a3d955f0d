"""The Lambda proxy integration's two documents: the event API Gateway sends, the reply it wants.

Event: API Gateway REST (v1) proxy format, every key present with null where AWS sends null, so a
handler that works here meets the same shapes on AWS. Reply: {statusCode, headers,
multiValueHeaders, body, isBase64Encoded} and nothing else; anything else is what API Gateway
calls a "Malformed Lambda proxy response" and answers 502.
"""

from __future__ import annotations

import base64
import fnmatch
import json
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

PROXY_RESPONSE_KEYS = {"statusCode", "headers", "multiValueHeaders", "body", "isBase64Encoded"}
# Headers API Gateway sets itself: the function's values are dropped, not forwarded.
_DROPPED_RESPONSE_HEADERS = {"content-length", "transfer-encoding", "connection", "date", "server"}


@dataclass(frozen=True)
class IncomingRequest:
    method: str
    path: str  # without the stage: "/ask"
    stage: str
    headers: list[tuple[str, str]]
    query: list[tuple[str, str]]
    body: bytes
    source_ip: str
    domain_name: str


@dataclass(frozen=True)
class ProxyReply:
    status: int
    headers: list[tuple[str, str]]
    body: bytes


class MalformedProxyResponse(ValueError):
    """The function's reply is not a valid proxy response (API Gateway answers 502)."""


def is_binary(content_type: str | None, binary_media_types: tuple[str, ...]) -> bool:
    if not content_type:
        return False
    media_type = content_type.split(";", 1)[0].strip().lower()
    return any(fnmatch.fnmatch(media_type, pattern.lower()) for pattern in binary_media_types)


def _single_and_multi(pairs: list[tuple[str, str]]) -> tuple[dict[str, str], dict[str, list[str]]]:
    single: dict[str, str] = {}
    multi: dict[str, list[str]] = {}
    for name, value in pairs:
        single[name] = value  # API Gateway keeps the last value in the single-value map
        multi.setdefault(name, []).append(value)
    return single, multi


def build_event(
    request: IncomingRequest,
    *,
    api_id: str,
    account_id: str,
    resource: dict[str, Any],
    path_parameters: dict[str, str],
    stage_variables: dict[str, str],
    binary_media_types: tuple[str, ...],
    request_id: str,
    api_key: tuple[str, str] | None,  # (value, id) when the method required one
) -> dict[str, Any]:
    headers, multi_headers = _single_and_multi(request.headers)
    query, multi_query = _single_and_multi(request.query)
    content_type = next((v for k, v in request.headers if k.lower() == "content-type"), None)
    body: str | None = None
    base64_encoded = False
    if request.body:
        if is_binary(content_type, binary_media_types):
            body = base64.b64encode(request.body).decode()
            base64_encoded = True
        else:
            body = request.body.decode(errors="replace")
    now = datetime.now(UTC)
    user_agent = headers.get("user-agent") or headers.get("User-Agent")
    return {
        "resource": resource.get("path", "/"),
        "path": request.path,
        "httpMethod": request.method,
        "headers": headers or None,
        "multiValueHeaders": multi_headers or None,
        "queryStringParameters": query or None,
        "multiValueQueryStringParameters": multi_query or None,
        "pathParameters": path_parameters or None,
        "stageVariables": stage_variables or None,
        "requestContext": {
            "resourceId": resource.get("id"),
            "resourcePath": resource.get("path", "/"),
            "httpMethod": request.method,
            "extendedRequestId": request_id[:16],
            "requestTime": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "path": f"/{request.stage}{request.path}",
            "accountId": account_id,
            "protocol": "HTTP/1.1",
            "stage": request.stage,
            "domainPrefix": request.domain_name.split(".", 1)[0],
            "requestTimeEpoch": int(time.time() * 1000),
            "requestId": request_id,
            "identity": {
                "cognitoIdentityPoolId": None,
                "cognitoIdentityId": None,
                "apiKey": api_key[0] if api_key else None,
                "apiKeyId": api_key[1] if api_key else None,
                "principalOrgId": None,
                "cognitoAuthenticationType": None,
                "userArn": None,
                "userAgent": user_agent,
                "accountId": None,
                "caller": None,
                "sourceIp": request.source_ip,
                "accessKey": None,
                "cognitoAuthenticationProvider": None,
                "user": None,
            },
            "domainName": request.domain_name,
            "apiId": api_id,
        },
        "body": body,
        "isBase64Encoded": base64_encoded,
    }


def parse_reply(
    payload: str | None, accept: str | None, binary_media_types: tuple[str, ...]
) -> ProxyReply:
    """Turn the function's return value (JSON text) into the HTTP reply, or raise Malformed."""
    try:
        reply = json.loads(payload) if payload is not None else None
    except ValueError as exc:
        raise MalformedProxyResponse(f"not JSON: {exc}") from exc
    if not isinstance(reply, dict):
        raise MalformedProxyResponse("the response is not a JSON object")
    extra = set(reply) - PROXY_RESPONSE_KEYS
    if extra:
        raise MalformedProxyResponse(f"unexpected keys {sorted(extra)}")
    status = reply.get("statusCode")
    if isinstance(status, str) and status.isdigit():
        status = int(status)
    if not isinstance(status, int) or isinstance(status, bool) or not 100 <= status <= 599:
        raise MalformedProxyResponse(f"statusCode {status!r} is not an HTTP status")
    body = reply.get("body")
    if body is not None and not isinstance(body, str):
        raise MalformedProxyResponse("body must be a string")
    encoded = reply.get("isBase64Encoded", False)
    if not isinstance(encoded, bool):
        raise MalformedProxyResponse("isBase64Encoded must be a boolean")

    headers: list[tuple[str, str]] = []
    multi = reply.get("multiValueHeaders") or {}
    single = reply.get("headers") or {}
    if not isinstance(multi, dict) or not isinstance(single, dict):
        raise MalformedProxyResponse("headers and multiValueHeaders must be objects")
    for name, values in multi.items():
        if not isinstance(values, list):
            raise MalformedProxyResponse(f"multiValueHeaders[{name!r}] must be a list")
        headers.extend((name, _header_value(name, v)) for v in values)
    for name, value in single.items():
        if not any(n.lower() == name.lower() for n, _ in headers):  # multiValueHeaders wins
            headers.append((name, _header_value(name, value)))
    headers = [(n, v) for n, v in headers if n.lower() not in _DROPPED_RESPONSE_HEADERS]
    if not any(n.lower() == "content-type" for n, _ in headers):
        headers.append(("Content-Type", "application/json"))  # API Gateway's default

    data = (body or "").encode()
    if encoded and body:
        # API Gateway turns base64 into bytes only when the caller accepts a binary media type.
        first_accept = (accept or "").split(",", 1)[0]
        if is_binary(first_accept, binary_media_types):
            try:
                data = base64.b64decode(body, validate=True)
            except ValueError as exc:
                raise MalformedProxyResponse("body is not valid base64") from exc
    return ProxyReply(status, headers, data)


def _header_value(name: str, value: Any) -> str:
    if isinstance(value, dict | list):
        raise MalformedProxyResponse(f"header {name!r} has a non-scalar value")
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)
