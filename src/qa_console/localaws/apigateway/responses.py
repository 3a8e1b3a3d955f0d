"""The answers API Gateway gives on its own: gateway responses (errors) and MOCK integrations.

Errors carry API Gateway's status, body and x-amzn-ErrorType, and honour the API's gateway
responses (put_gateway_response on the type, else DEFAULT_4XX / DEFAULT_5XX): a status override,
headers from static values or request headers (how CORS headers get onto a 403), and a body
template with $context.error.message(String). MOCK integrations answer from the integration
response whose status the request template selects, with its static header mappings: enough for
a CORS preflight. Templates are used as written (no VTL beyond the error variables).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from qa_console.localaws.apigateway.proxy import ProxyReply


@dataclass(frozen=True)
class GatewayError:
    response_type: str
    status: int
    message: str
    error_type: str


MISSING_AUTHENTICATION_TOKEN = GatewayError(
    "MISSING_AUTHENTICATION_TOKEN",
    403,
    "Missing Authentication Token",
    "MissingAuthenticationTokenException",
)
FORBIDDEN = GatewayError("DEFAULT_4XX", 403, "Forbidden", "ForbiddenException")
INVALID_API_KEY = GatewayError("INVALID_API_KEY", 403, "Forbidden", "ForbiddenException")
THROTTLED = GatewayError("THROTTLED", 429, "Too Many Requests", "TooManyRequestsException")
QUOTA_EXCEEDED = GatewayError("QUOTA_EXCEEDED", 429, "Limit Exceeded", "LimitExceededException")
REQUEST_TOO_LARGE = GatewayError(
    "REQUEST_TOO_LARGE", 413, "Request Too Long", "RequestTooLongException"
)
INTEGRATION_FAILURE = GatewayError(
    "DEFAULT_5XX", 502, "Internal server error", "InternalServerErrorException"
)
INTEGRATION_TIMEOUT = GatewayError(
    "INTEGRATION_TIMEOUT", 504, "Endpoint request timed out", "InternalServerErrorException"
)
CONFIGURATION_ERROR = GatewayError(
    "API_CONFIGURATION_ERROR", 500, "Internal server error", "InternalServerErrorException"
)

_STATIC = re.compile(r"^'(.*)'$", re.S)


def _mapped_value(source: str, request_headers: dict[str, str]) -> str | None:
    """The value of a mapping expression: 'static' or method.request.header.NAME."""
    if static := _STATIC.match(source):
        return static.group(1)
    prefix = "method.request.header."
    if source.lower().startswith(prefix):
        return request_headers.get(source[len(prefix) :].lower())
    return None


def error_reply(
    error: GatewayError,
    gateway_responses: dict[str, dict[str, Any]],
    request_headers: dict[str, str],
    request_id: str,
) -> ProxyReply:
    custom = gateway_responses.get(error.response_type)
    if custom is None:
        custom = gateway_responses.get("DEFAULT_4XX" if error.status < 500 else "DEFAULT_5XX", {})
    status = int(custom.get("statusCode") or error.status)
    headers = [("Content-Type", "application/json"), ("x-amzn-ErrorType", error.error_type)]
    for target, source in (custom.get("responseParameters") or {}).items():
        name = target.removeprefix("gatewayresponse.header.")
        value = _mapped_value(source, request_headers)
        if name != target and value is not None:
            headers.append((name, value))
    template = (custom.get("responseTemplates") or {}).get("application/json")
    if template:
        body = template.replace("$context.error.messageString", json.dumps(error.message))
        body = body.replace("$context.error.message", error.message)
        body = body.replace("$context.requestId", request_id)
    else:
        body = json.dumps({"message": error.message})
    return ProxyReply(status, headers, body.encode())


def mock_reply(
    method: dict[str, Any], content_type: str | None, request_headers: dict[str, str]
) -> ProxyReply | None:
    """The MOCK integration's answer, or None when no integration response fits."""
    integration = method.get("methodIntegration") or {}
    templates = integration.get("requestTemplates") or {}
    template = templates.get((content_type or "application/json").split(";")[0].strip())
    if template is None:
        template = templates.get("application/json", "")
    status = 200
    if found := re.search(r'"statusCode"\s*:\s*(\d{3})', template or ""):
        status = int(found.group(1))
    responses: dict[str, dict[str, Any]] = integration.get("integrationResponses") or {}
    chosen = responses.get(str(status))
    if chosen is None:  # the default response is the one without a selection pattern
        chosen = next((r for r in responses.values() if not r.get("selectionPattern")), None)
    if chosen is None:
        return None
    headers = []
    for target, source in (chosen.get("responseParameters") or {}).items():
        name = target.removeprefix("method.response.header.")
        value = _mapped_value(source, request_headers)
        if name != target and value is not None:
            headers.append((name, value))
    if not any(n.lower() == "content-type" for n, _ in headers):
        headers.append(("Content-Type", "application/json"))
    body = ((chosen.get("responseTemplates") or {}).get("application/json") or "").encode()
    return ProxyReply(int(chosen.get("statusCode", status)), headers, body)
