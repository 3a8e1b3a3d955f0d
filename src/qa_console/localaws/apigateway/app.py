"""The local API Gateway: a Starlette app that serves the REST APIs of the local control plane.

One request goes through the steps API Gateway takes, each with API Gateway's own refusal:
find the API and stage (403 Forbidden), the resource and method (403 Missing Authentication
Token), check the API key and its usage plan (403 Forbidden) and the plan's limits (429), then run
the integration: MOCK answers from its integration response, AWS_PROXY runs the Lambda function
(500 when it cannot be invoked, 502 when it fails or answers malformed, 504 past the
integration's timeout, 29 s by default).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import threading
import time
import urllib.parse
import uuid
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from qa_console.localaws.apigateway import responses as gw
from qa_console.localaws.apigateway.catalog import Catalog, RestApi, Snapshot, Stage
from qa_console.localaws.apigateway.proxy import (
    IncomingRequest,
    MalformedProxyResponse,
    ProxyReply,
    build_event,
    parse_reply,
)
from qa_console.localaws.apigateway.routing import Match, match
from qa_console.localaws.apigateway.throttle import UsageLimiter
from qa_console.localaws.apigateway.urls import USER_REQUEST
from qa_console.localaws.awslambda.functions import (
    FunctionResolver,
    FunctionUnavailable,
    function_arn_from_uri,
    split_arn,
)
from qa_console.localaws.awslambda.sandboxes import InvokeResult, LambdaRuntime
from qa_console.localaws.cloudwatch.shipper import LogShipper

log = logging.getLogger(__name__)

METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
DEFAULT_INTEGRATION_TIMEOUT_MS = 29_000
MAX_REQUEST_BYTES = 10 * 1024 * 1024  # API Gateway's payload limit
_RESTAPIS_PATH = re.compile(rf"^/restapis/([^/]+)/([^/]+)/{USER_REQUEST}(/.*)?$")
_EXECUTE_API_HOST = re.compile(r"^([a-z0-9]+)\.execute-api\.", re.I)


@dataclass(frozen=True)
class Target:
    """The API, stage, resource and method a request resolved to."""

    api: RestApi
    stage: Stage
    route: Match
    method: dict[str, Any]


@dataclass(frozen=True)
class Refusal:
    error: gw.GatewayError
    api: RestApi | None = None
    detail: str = ""


class Gateway:
    """Owns the control-plane cache, the Lambda workers, the limits and the log shipper."""

    def __init__(
        self,
        aws_endpoint_url: str,
        region: str,
        work_dir: Path,
        *,
        max_age: float = 1.0,
        max_workers_per_function: int = 4,
    ) -> None:
        self.aws_endpoint_url = aws_endpoint_url
        self.region = region
        self._clients: dict[tuple[str, str], Any] = {}
        self._clients_lock = threading.Lock()
        self.catalog = Catalog(self.client("apigateway", region), max_age=max_age)
        self.functions = FunctionResolver(
            lambda r: self.client("lambda", r), aws_endpoint_url, Path(work_dir), max_age=max_age
        )
        self.logs = LogShipper(lambda: self.client("logs", region))
        self.runtime = LambdaRuntime(aws_endpoint_url, self.logs, max_workers_per_function)
        self.limiter = UsageLimiter()
        # Invocations run here, not in the request's thread, so that a request can answer 504 at
        # the integration timeout while its invocation runs on to the function's own timeout.
        self._executor = ThreadPoolExecutor(max_workers=32, thread_name_prefix="gateway-lambda")

    def client(self, service: str, region: str) -> Any:
        """A boto3 client of the local AWS (the gateway's own calls; fake keys if none are set)."""
        import boto3
        from botocore.config import Config

        with self._clients_lock:
            key = (service, region)
            if key not in self._clients:
                session = boto3.session.Session()
                credentials = {}
                if session.get_credentials() is None:
                    credentials = {
                        "aws_access_key_id": "testing",
                        "aws_secret_access_key": "testing",
                    }
                self._clients[key] = session.client(
                    service,
                    region_name=region,
                    endpoint_url=self.aws_endpoint_url,
                    config=Config(retries={"mode": "standard", "max_attempts": 3}, read_timeout=30),
                    **credentials,
                )
            return self._clients[key]

    def close(self) -> None:
        """Stop the Lambda workers and send the last log lines. Safe to call twice."""
        self.runtime.close()
        self._executor.shutdown(wait=False, cancel_futures=True)
        self.logs.close()

    async def handle(self, request: Request) -> Response:
        request_id = str(uuid.uuid4())
        arrived = time.monotonic()
        headers = {k.lower(): v for k, v in request.headers.items()}
        try:
            reply = await self._handle(request, request_id, arrived, headers)
        except Exception:  # e.g. the control plane is unreachable: answer as API Gateway would
            log.exception("%s %s failed", request.method, request.url.path)
            reply = gw.error_reply(gw.CONFIGURATION_ERROR, {}, headers, request_id)
        response = Response(content=reply.body, status_code=reply.status)
        response.raw_headers = [(k, v) for k, v in response.raw_headers if k == b"content-length"]
        for name, value in reply.headers:
            response.raw_headers.append(
                (name.encode("latin-1"), value.encode("latin-1", "replace"))
            )
        response.raw_headers.append((b"x-amzn-requestid", request_id.encode()))
        response.raw_headers.append((b"x-amz-apigw-id", request_id[:16].encode()))
        return response

    async def _handle(
        self, request: Request, request_id: str, arrived: float, headers: dict[str, str]
    ) -> ProxyReply:
        api_id, stage_name, path = _split_target(_route_path(request), headers.get("host", ""))
        if stage_name is None:
            return gw.error_reply(gw.MISSING_AUTHENTICATION_TOKEN, {}, headers, request_id)
        body = await request.body()

        snapshot = await run_in_threadpool(self.catalog.current)
        found = self._find(snapshot, api_id, stage_name, path, request.method, headers)
        if isinstance(found, Refusal):  # maybe created a moment ago: look again before refusing
            snapshot = await run_in_threadpool(self.catalog.fresh, arrived)
            found = self._find(snapshot, api_id, stage_name, path, request.method, headers)
        if isinstance(found, Refusal):
            if found.detail:
                log.warning("%s %s: %s", request.method, request.url.path, found.detail)
            responses = found.api.gateway_responses if found.api else {}
            return gw.error_reply(found.error, responses, headers, request_id)
        target, api_key = found
        responses = target.api.gateway_responses

        if len(body) > MAX_REQUEST_BYTES:
            return gw.error_reply(gw.REQUEST_TOO_LARGE, responses, headers, request_id)
        refused = self._check_limits(snapshot, target, api_key, request.method)
        if refused is not None:
            return gw.error_reply(refused, responses, headers, request_id)

        integration = target.method.get("methodIntegration") or {}
        kind = integration.get("type")
        if target.method.get("authorizationType", "NONE") != "NONE":
            return self._config_error(
                target, "only authorizationType NONE is served locally", headers, request_id
            )
        if kind == "MOCK":
            mocked = gw.mock_reply(target.method, headers.get("content-type"), headers)
            if mocked is None:
                return self._config_error(
                    target, "no integration response fits", headers, request_id
                )
            return mocked
        if kind != "AWS_PROXY":
            return self._config_error(
                target,
                f"integration type {kind!r} is not served locally (AWS_PROXY, MOCK are)",
                headers,
                request_id,
            )
        incoming = IncomingRequest(
            method=request.method,
            path=path,
            stage=stage_name,
            headers=[(k.decode("latin-1"), v.decode("latin-1")) for k, v in request.headers.raw],
            query=urllib.parse.parse_qsl(request.url.query, keep_blank_values=True),
            body=body,
            source_ip=request.client.host if request.client else "127.0.0.1",
            domain_name=headers.get("host", "localhost"),
        )
        return await self._invoke_lambda(
            target, integration, incoming, api_key, request_id, headers
        )

    def _find(
        self,
        snapshot: Snapshot,
        api_id: str | None,
        stage_name: str,
        path: str,
        method: str,
        headers: dict[str, str],
    ) -> tuple[Target, tuple[str, str] | None] | Refusal:
        if api_id is not None:
            candidates = [snapshot.apis[api_id]] if api_id in snapshot.apis else []
        else:
            candidates = [api for api in snapshot.apis.values() if stage_name in api.stages]
        candidates = [api for api in candidates if stage_name in api.stages]
        if not candidates:
            return Refusal(gw.FORBIDDEN)
        routed = [(api, m) for api in candidates if (m := match(api.tree, path)) is not None]
        if not routed:
            return Refusal(gw.MISSING_AUTHENTICATION_TOKEN, candidates[0])
        if len(routed) > 1:
            ids = ", ".join(api.id for api, _ in routed)
            return Refusal(
                gw.MISSING_AUTHENTICATION_TOKEN,
                routed[0][0],
                f"APIs {ids} all serve stage {stage_name!r} and path {path!r}: call "
                f"/restapis/API_ID/{stage_name}/{USER_REQUEST}{path} to pick one",
            )
        api, route = routed[0]
        methods = route.resource.get("resourceMethods") or {}
        method_config = methods.get(method) or methods.get("ANY")
        if method_config is None:
            return Refusal(gw.MISSING_AUTHENTICATION_TOKEN, api)
        target = Target(api, api.stages[stage_name], route, method_config)
        if not method_config.get("apiKeyRequired"):
            return target, None
        key = snapshot.keys_by_value.get(headers.get("x-api-key", ""))
        if key is None or not key.enabled or snapshot.plan_for(key.id, api.id, stage_name) is None:
            return Refusal(gw.INVALID_API_KEY, api)
        return target, (key.value, key.id)

    def _check_limits(
        self, snapshot: Snapshot, target: Target, api_key: tuple[str, str] | None, method: str
    ) -> gw.GatewayError | None:
        if api_key is None:
            return None
        plan = snapshot.plan_for(api_key[1], target.api.id, target.stage.name)
        if plan is None:
            return gw.INVALID_API_KEY
        method_key = f"{target.route.resource.get('path', '/')}/{method}"
        method_throttles = plan.stages.get((target.api.id, target.stage.name), {})
        verdict = self.limiter.check(
            plan.id,
            api_key[1],
            plan.throttle,
            method_throttles.get(method_key) or method_throttles.get("/*/*"),
            plan.quota,
            method_key,
        )
        if verdict == "throttled":
            return gw.THROTTLED
        if verdict == "quota":
            return gw.QUOTA_EXCEEDED
        return None

    def _config_error(
        self, target: Target, detail: str, headers: dict[str, str], request_id: str
    ) -> ProxyReply:
        log.warning("API %s stage %s: %s", target.api.id, target.stage.name, detail)
        return gw.error_reply(
            gw.CONFIGURATION_ERROR, target.api.gateway_responses, headers, request_id
        )

    async def _invoke_lambda(
        self,
        target: Target,
        integration: dict[str, Any],
        incoming: IncomingRequest,
        api_key: tuple[str, str] | None,
        request_id: str,
        headers: dict[str, str],
    ) -> ProxyReply:
        api, responses = target.api, target.api.gateway_responses
        try:
            function_arn = function_arn_from_uri(integration.get("uri", ""), target.stage.variables)
            _region, account, _, _ = split_arn(function_arn)
            resource_path = target.route.resource.get("path", "/").lstrip("/")
            source_arn = (
                f"arn:aws:execute-api:{self.region}:{account}:{api.id}/{target.stage.name}/"
                f"{incoming.method}/{resource_path}"
            )
            spec = await run_in_threadpool(
                self.functions.resolve,
                function_arn,
                source_arn,
                bool(integration.get("credentials")),
            )
        except FunctionUnavailable as exc:
            return self._config_error(target, str(exc), headers, request_id)
        except Exception as exc:  # the code could not be fetched or unpacked
            log.exception("API %s: cannot prepare the Lambda function", api.id)
            return self._config_error(
                target, f"cannot prepare the function: {exc}", headers, request_id
            )

        event = build_event(
            incoming,
            api_id=api.id,
            account_id=account,
            resource=target.route.resource,
            path_parameters=target.route.path_parameters,
            stage_variables=target.stage.variables,
            binary_media_types=api.binary_media_types,
            request_id=request_id,
            api_key=api_key,
        )
        timeout_ms = int(integration.get("timeoutInMillis") or DEFAULT_INTEGRATION_TIMEOUT_MS)
        future = self._executor.submit(self.runtime.invoke, spec, event, request_id)
        try:
            result: InvokeResult = await asyncio.wait_for(
                asyncio.wrap_future(future), timeout=max(0.05, timeout_ms / 1000)
            )
        except TimeoutError:
            return gw.error_reply(gw.INTEGRATION_TIMEOUT, responses, headers, request_id)
        if result.outcome != "ok":
            error = result.error or {}
            log.info(
                "Lambda %s failed (%s): %s: %s",
                spec.name,
                result.outcome,
                error.get("errorType"),
                error.get("errorMessage"),
            )
            return gw.error_reply(gw.INTEGRATION_FAILURE, responses, headers, request_id)
        try:
            reply = parse_reply(result.payload, headers.get("accept"), api.binary_media_types)
        except MalformedProxyResponse as exc:
            log.warning("Lambda %s: Malformed Lambda proxy response: %s", spec.name, exc)
            return gw.error_reply(gw.INTEGRATION_FAILURE, responses, headers, request_id)
        trace = (
            "X-Amzn-Trace-Id",
            f"Root=1-{int(time.time()):08x}-{request_id.replace('-', '')[:24]}",
        )
        return ProxyReply(reply.status, [*reply.headers, trace], reply.body)


def _route_path(request: Request) -> str:
    """The path below wherever the app is mounted."""
    path: str = request.scope["path"]
    root: str = request.scope.get("root_path", "")
    if root and path.startswith(root):
        path = path[len(root) :]
    return path or "/"


def _split_target(path: str, host: str) -> tuple[str | None, str | None, str]:
    """(api id or None, stage or None, path below the stage) of a request."""
    if explicit := _RESTAPIS_PATH.match(path):
        return explicit.group(1), explicit.group(2), explicit.group(3) or "/"
    api_id = by_host.group(1) if (by_host := _EXECUTE_API_HOST.match(host)) else None
    parts = path.lstrip("/").split("/", 1)
    if not parts[0]:
        return api_id, None, "/"
    return api_id, parts[0], "/" + (parts[1] if len(parts) > 1 else "")


def create_gateway_app(
    aws_endpoint_url: str,
    region: str,
    work_dir: Path,
    *,
    max_age: float = 1.0,
    max_workers_per_function: int = 4,
) -> Starlette:
    """The gateway as a Starlette app. `work_dir` keeps unpacked function code between runs.

    The app's lifespan closes the gateway; when it is mounted inside another app (whose
    lifespan does not reach it), call `app.state.gateway.close()` on shutdown instead.
    """
    gateway = Gateway(
        aws_endpoint_url,
        region,
        work_dir,
        max_age=max_age,
        max_workers_per_function=max_workers_per_function,
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            await run_in_threadpool(gateway.close)

    app = Starlette(
        routes=[Route("/{path:path}", gateway.handle, methods=METHODS)], lifespan=lifespan
    )
    app.state.gateway = gateway
    return app
