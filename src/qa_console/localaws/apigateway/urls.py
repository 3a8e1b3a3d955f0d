"""Where a REST API stage answers: on AWS, or on the local gateway.

The local gateway serves every API at one unambiguous path (several APIs can share a stage
name), so clients need no DNS tricks:

    {gateway}/restapis/{api_id}/{stage}/_user_request_/{path}

It also answers `{gateway}/{stage}/{path}` with a Host header `{api_id}.execute-api.<anything>`,
and `{gateway}/{stage}/{path}` alone when the stage and path name exactly one API.

The launcher exports the gateway's base URL as QA_CONSOLE_LOCAL_GATEWAY_URL next to
AWS_ENDPOINT_URL; when it is set, invoke_url gives the local URL, else the real execute-api URL.
"""

from __future__ import annotations

import os

GATEWAY_URL_ENV = "QA_CONSOLE_LOCAL_GATEWAY_URL"
USER_REQUEST = "_user_request_"


def local_invoke_url(base_url: str, api_id: str, stage: str, path: str = "") -> str:
    return f"{base_url.rstrip('/')}/restapis/{api_id}/{stage}/{USER_REQUEST}/{path.lstrip('/')}"


def invoke_url(
    api_id: str,
    stage: str,
    path: str = "",
    *,
    region: str | None = None,
    base_url: str | None = None,
) -> str:
    """The URL a client calls for `path` of the API's stage (local when the gateway is exported)."""
    base = base_url or os.environ.get(GATEWAY_URL_ENV)
    if base:
        return local_invoke_url(base, api_id, stage, path)
    region = (
        region
        or os.environ.get("AWS_REGION")
        or os.environ.get("AWS_DEFAULT_REGION")
        or "us-east-1"
    )
    return f"https://{api_id}.execute-api.{region}.amazonaws.com/{stage}/{path.lstrip('/')}"
