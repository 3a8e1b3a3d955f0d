"""The local API Gateway: serves the REST APIs of the embedded local AWS on loopback.

REST APIs built with plain boto3 calls (apigateway + lambda) against the local control plane are
served at `/restapis/{api_id}/{stage}/_user_request_/{path}` (and `/{stage}/{path}`, see urls.py),
running each Lambda proxy integration's handler from the function's own zip in worker processes,
with API keys, usage-plan throttles and quotas enforced as API Gateway does.

    app = create_gateway_app(aws_endpoint_url, region, work_dir)   # a Starlette app
    local_invoke_url(gateway_url, api_id, stage, "ask")             # what a client calls

Starlette is imported only by create_gateway_app, so local_invoke_url stays cheap to import.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from qa_console.localaws.apigateway.urls import local_invoke_url, url_template

if TYPE_CHECKING:
    from starlette.applications import Starlette

__all__ = ["create_gateway_app", "local_invoke_url", "url_template"]


def create_gateway_app(
    aws_endpoint_url: str, region: str, work_dir: Path, **options: object
) -> Starlette:
    """The gateway as a Starlette app; see app.create_gateway_app for the options."""
    from qa_console.localaws.apigateway.app import create_gateway_app as create

    return create(aws_endpoint_url, region, work_dir, **options)  # type: ignore[arg-type]
