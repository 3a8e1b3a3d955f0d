"""The local API gateway over real sockets: moto's server and the gateway app under uvicorn.

`gateway_stack` (session) runs moto's ThreadedMotoServer and the gateway on two free loopback
ports; boto3 clients get the endpoint explicitly, so nothing leaks into other tests' environment.
`gateway_api` (session) builds, with plain boto3 calls, the kind of API the expose feature makes:
Lambda functions from a zip, a REST API with an API-key-protected POST /ask (AWS_PROXY) and its
CORS preflight (MOCK), more routes for the failure cases, a deployment, API keys and usage plans.
"""

from __future__ import annotations

import io
import json
import socket
import textwrap
import threading
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

REGION = "us-east-1"
STAGE = "prod"

HANDLERS = textwrap.dedent(
    """
    import json
    import os
    import time


    def echo(event, context):
        print("echo handling", event["requestContext"]["requestId"])
        return {
            "statusCode": 200,
            "headers": {"Content-Type": "application/json", "X-Echo": "yes"},
            "multiValueHeaders": {"Set-Cookie": ["a=1", "b=2"]},
            "body": json.dumps({
                "event": event,
                "env": {k: os.environ.get(k) for k in (
                    "GREETING", "AWS_ENDPOINT_URL", "AWS_LAMBDA_FUNCTION_NAME", "AWS_REGION")},
                "context": {
                    "function_name": context.function_name,
                    "aws_request_id": context.aws_request_id,
                    "memory_limit_in_mb": context.memory_limit_in_mb,
                    "invoked_function_arn": context.invoked_function_arn,
                    "log_group_name": context.log_group_name,
                    "remaining_ms": context.get_remaining_time_in_millis(),
                },
            }),
        }


    def caller(event, context):
        import boto3  # reaches the local AWS through AWS_ENDPOINT_URL, as on Lambda

        identity = boto3.client("sts").get_caller_identity()
        return {"statusCode": 200, "body": json.dumps({"account": identity["Account"]})}


    CALLS = []


    def sandbox(event, context):
        CALLS.append(event["requestContext"]["requestId"])  # module state of this sandbox
        time.sleep(float(event["queryStringParameters"]["sleep"]))
        return {"statusCode": 200, "body": json.dumps({"pid": os.getpid(), "calls": len(CALLS)})}


    def environ(event, context):
        return {"statusCode": 200, "body": json.dumps(dict(os.environ))}


    def crash(event, context):
        print("about to crash")
        os._exit(3)


    def boom(event, context):
        raise ValueError("boom from the handler")


    def hang(event, context):
        print("hanging")
        time.sleep(60)


    def malformed(event, context):
        return {"statusCode": 200, "body": {"not": "a string"}}
    """
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class GatewayStack:
    aws_endpoint_url: str
    gateway_url: str
    app: Any

    def client(self, service: str) -> Any:
        import boto3

        return boto3.client(
            service,
            region_name=REGION,
            endpoint_url=self.aws_endpoint_url,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )


class UvicornThread:
    """An ASGI app served by uvicorn on a loopback port from a background thread."""

    def __init__(self, app: Any, port: int) -> None:
        import uvicorn

        self.server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
        )
        self.thread = threading.Thread(target=self.server.run, name="gateway-uvicorn", daemon=True)

    def __enter__(self) -> UvicornThread:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(15)


@pytest.fixture(scope="session")
def gateway_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayStack]:
    from moto.server import ThreadedMotoServer

    from qa_console.localaws.apigateway import create_gateway_app

    moto_port = free_port()
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=moto_port, verbose=False)
    moto.start()
    endpoint = f"http://127.0.0.1:{moto_port}"
    app = create_gateway_app(endpoint, REGION, tmp_path_factory.mktemp("gateway-work"))
    port = free_port()
    try:
        with UvicornThread(app, port):
            yield GatewayStack(endpoint, f"http://127.0.0.1:{port}", app)
    finally:
        moto.stop()


def lambda_zip(files: dict[str, str]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, text in files.items():
            archive.writestr(name, text)
    return buffer.getvalue()


@dataclass
class GatewayApi:
    """What `gateway_api` created: ids, key values and how to call it."""

    stack: GatewayStack
    api_id: str
    key: str
    throttled_key: str
    other_stage_key: str
    functions: dict[str, str] = field(default_factory=dict)  # route -> function name

    def url(self, path: str) -> str:
        from qa_console.localaws.apigateway import local_invoke_url

        return local_invoke_url(self.stack.gateway_url, self.api_id, STAGE, path)

    def call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        return httpx.request(method, self.url(path), timeout=30, **kwargs)


def _put_lambda_route(
    apigw: Any,
    api_id: str,
    parent: str,
    part: str,
    function_arn: str,
    method: str = "POST",
    key_required: bool = False,
    timeout_ms: int | None = None,
    region: str = REGION,
) -> str:
    resource = apigw.create_resource(restApiId=api_id, parentId=parent, pathPart=part)["id"]
    apigw.put_method(
        restApiId=api_id,
        resourceId=resource,
        httpMethod=method,
        authorizationType="NONE",
        apiKeyRequired=key_required,
    )
    extra = {"timeoutInMillis": timeout_ms} if timeout_ms else {}
    apigw.put_integration(
        restApiId=api_id,
        resourceId=resource,
        httpMethod=method,
        type="AWS_PROXY",
        integrationHttpMethod="POST",
        uri=f"arn:aws:apigateway:{region}:lambda:path/2015-03-31/functions/{function_arn}/invocations",
        **extra,
    )
    return str(resource)


def _put_cors_preflight(apigw: Any, api_id: str, resource: str) -> None:
    apigw.put_method(
        restApiId=api_id, resourceId=resource, httpMethod="OPTIONS", authorizationType="NONE"
    )
    headers = {
        "method.response.header.Access-Control-Allow-Origin": "'*'",
        "method.response.header.Access-Control-Allow-Methods": "'POST,OPTIONS'",
        "method.response.header.Access-Control-Allow-Headers": "'Content-Type,X-Api-Key'",
    }
    apigw.put_method_response(
        restApiId=api_id,
        resourceId=resource,
        httpMethod="OPTIONS",
        statusCode="200",
        responseParameters=dict.fromkeys(headers, False),
    )
    apigw.put_integration(
        restApiId=api_id,
        resourceId=resource,
        httpMethod="OPTIONS",
        type="MOCK",
        requestTemplates={"application/json": '{"statusCode": 200}'},
    )
    apigw.put_integration_response(
        restApiId=api_id,
        resourceId=resource,
        httpMethod="OPTIONS",
        statusCode="200",
        responseParameters=headers,
        responseTemplates={"application/json": ""},
    )


def _usage_plan_key(
    apigw: Any, name: str, stages: list[dict[str, str]], throttle: dict[str, Any]
) -> str:
    key = apigw.create_api_key(name=name, enabled=True)
    plan = apigw.create_usage_plan(name=f"{name}-plan", apiStages=stages, throttle=throttle)
    apigw.create_usage_plan_key(usagePlanId=plan["id"], keyId=key["id"], keyType="API_KEY")
    return str(key["value"])


def build_key_api(
    lam: Any,
    apigw: Any,
    *,
    name: str,
    role: str,
    handler: str,
    throttle: dict[str, Any],
    region: str = REGION,
) -> tuple[str, str]:
    """What the expose feature makes, in its smallest form: a function `name` running
    `handler` (the source of app.py, entry app.handler) behind an API-key-protected POST /ask
    (AWS_PROXY) deployed to STAGE, and a key in a usage plan with `throttle`.
    Returns the API id and the key's value (the gateway benchmark builds its API with it too)."""
    function_arn = lam.create_function(
        FunctionName=name,
        Runtime="python3.11",
        Role=role,
        Handler="app.handler",
        Code={"ZipFile": lambda_zip({"app.py": handler})},
    )["FunctionArn"]
    api_id = str(apigw.create_rest_api(name=name)["id"])
    lam.add_permission(
        FunctionName=name,
        StatementId="apigateway",
        Action="lambda:InvokeFunction",
        Principal="apigateway.amazonaws.com",
        SourceArn=f"arn:aws:execute-api:{region}:123456789012:{api_id}/*/POST/ask",
    )
    root = apigw.get_resources(restApiId=api_id)["items"][0]["id"]
    _put_lambda_route(apigw, api_id, root, "ask", function_arn, key_required=True, region=region)
    apigw.create_deployment(restApiId=api_id, stageName=STAGE)
    key = _usage_plan_key(apigw, name, [{"apiId": api_id, "stage": STAGE}], throttle)
    return api_id, key


@pytest.fixture(scope="session")
def gateway_api(gateway_stack: GatewayStack) -> GatewayApi:
    iam, lam, apigw = (gateway_stack.client(s) for s in ("iam", "lambda", "apigateway"))
    role = iam.create_role(
        RoleName="gateway-test-lambda",
        AssumeRolePolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"Service": "lambda.amazonaws.com"},
                        "Action": "sts:AssumeRole",
                    }
                ],
            }
        ),
    )["Role"]["Arn"]
    code = lambda_zip({"handlers.py": HANDLERS})
    api_id = apigw.create_rest_api(name="gateway-test")["id"]
    root = next(r["id"] for r in apigw.get_resources(restApiId=api_id)["items"] if r["path"] == "/")
    # route -> (handler, function timeout s, integration timeout ms, API key required)
    routes: dict[str, tuple[str, int, int | None, bool]] = {
        "ask": ("echo", 10, None, True),
        "caller": ("caller", 20, None, False),
        "environ": ("environ", 10, None, False),
        "sandbox": ("sandbox", 10, None, False),
        "crash": ("crash", 10, None, False),
        "boom": ("boom", 10, None, False),
        "hang": ("hang", 1, None, False),
        "slow": ("hang", 10, 700, False),
        "malformed": ("malformed", 10, None, False),
        "noimport": ("missing_function", 10, None, False),
        "noperm": ("echo", 10, None, False),
    }
    functions = {}
    for route, (handler, timeout, timeout_ms, key_required) in routes.items():
        name = f"gw-{route}"
        arn = lam.create_function(
            FunctionName=name,
            Runtime="python3.11",
            Role=role,
            Handler=f"handlers.{handler}",
            Code={"ZipFile": code},
            Timeout=timeout,
            MemorySize=256,
            Environment={"Variables": {"GREETING": f"hello from {route}"}},
        )["FunctionArn"]
        functions[route] = name
        if route != "noperm":  # API Gateway may call a function only with this permission
            lam.add_permission(
                FunctionName=name,
                StatementId="apigateway-invoke",
                Action="lambda:InvokeFunction",
                Principal="apigateway.amazonaws.com",
                SourceArn=f"arn:aws:execute-api:{REGION}:123456789012:{api_id}/*/*/*",
            )
        resource = _put_lambda_route(
            apigw, api_id, root, route, arn, key_required=key_required, timeout_ms=timeout_ms
        )
        if route == "ask":
            _put_cors_preflight(apigw, api_id, resource)

    # GET /items/{id} and ANY /files/{proxy+}: path parameters and the greedy match.
    echo_arn = lam.get_function(FunctionName="gw-ask")["Configuration"]["FunctionArn"]
    items = apigw.create_resource(restApiId=api_id, parentId=root, pathPart="items")["id"]
    _put_lambda_route(apigw, api_id, items, "{id}", echo_arn, method="GET")
    files = apigw.create_resource(restApiId=api_id, parentId=root, pathPart="files")["id"]
    _put_lambda_route(apigw, api_id, files, "{proxy+}", echo_arn, method="ANY")

    apigw.create_deployment(restApiId=api_id, stageName=STAGE)
    apigw.create_stage(
        restApiId=api_id,
        stageName="beta",
        deploymentId=apigw.get_deployments(restApiId=api_id)["items"][0]["id"],
    )
    roomy = {"rateLimit": 1000.0, "burstLimit": 1000}
    return GatewayApi(
        stack=gateway_stack,
        api_id=api_id,
        key=_usage_plan_key(apigw, "gw-main", [{"apiId": api_id, "stage": STAGE}], roomy),
        # burst 2 and a refill of one token per ~17 minutes: the third quick call is refused
        throttled_key=_usage_plan_key(
            apigw,
            "gw-throttled",
            [{"apiId": api_id, "stage": STAGE}],
            {"rateLimit": 0.001, "burstLimit": 2},
        ),
        other_stage_key=_usage_plan_key(
            apigw, "gw-beta", [{"apiId": api_id, "stage": "beta"}], roomy
        ),
        functions=functions,
    )


def lambda_log_messages(
    stack: GatewayStack, function: str, wanted: str, timeout: float = 15.0
) -> list[str]:
    """The messages of the function's log group once one contains `wanted` (bounded wait)."""
    logs = stack.client("logs")
    deadline = time.monotonic() + timeout
    messages: list[str] = []
    while time.monotonic() < deadline:
        try:
            events = logs.filter_log_events(logGroupName=f"/aws/lambda/{function}")["events"]
        except logs.exceptions.ResourceNotFoundException:
            events = []
        messages = [e["message"] for e in events]
        if any(wanted in m for m in messages):
            return messages
        time.sleep(0.2)
    return messages
