"""The local API gateway serving a REST API with a Lambda proxy integration, over real sockets."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from fixtures_gateway import STAGE, GatewayApi, lambda_log_messages


def test_post_with_key_runs_the_handler_with_a_rest_proxy_event(gateway_api: GatewayApi) -> None:
    response = gateway_api.call(
        "POST",
        "ask?lang=en&lang=fr&q=1",
        headers={
            "x-api-key": gateway_api.key,
            "x-custom": "v1",
            "content-type": "application/json",
        },
        content=json.dumps({"question": "Who?"}),
    )
    assert response.status_code == 200, response.text
    assert response.headers["x-echo"] == "yes"
    assert response.headers.get_list("set-cookie") == ["a=1", "b=2"]
    assert response.headers["content-type"] == "application/json"
    reply = response.json()
    event = reply["event"]
    assert json.loads(event["body"]) == {"question": "Who?"}
    assert event["isBase64Encoded"] is False
    assert (event["resource"], event["path"], event["httpMethod"]) == ("/ask", "/ask", "POST")
    assert event["headers"]["x-custom"] == "v1"
    assert event["multiValueHeaders"]["x-custom"] == ["v1"]
    assert event["queryStringParameters"] == {"lang": "fr", "q": "1"}
    assert event["multiValueQueryStringParameters"] == {"lang": ["en", "fr"], "q": ["1"]}
    assert event["pathParameters"] is None and event["stageVariables"] is None
    context = event["requestContext"]
    assert context["stage"] == STAGE and context["apiId"] == gateway_api.api_id
    assert context["path"] == f"/{STAGE}/ask" and context["resourcePath"] == "/ask"
    assert context["identity"]["apiKey"] == gateway_api.key
    assert context["identity"]["apiKeyId"]
    assert context["identity"]["sourceIp"] == "127.0.0.1"
    assert context["requestId"] == response.headers["x-amzn-requestid"]
    # The function's environment, its context object, and the way back to the local AWS.
    assert reply["env"]["GREETING"] == "hello from ask"
    assert reply["env"]["AWS_ENDPOINT_URL"] == gateway_api.stack.aws_endpoint_url
    assert reply["env"]["AWS_LAMBDA_FUNCTION_NAME"] == "gw-ask"
    assert reply["context"]["function_name"] == "gw-ask"
    assert reply["context"]["aws_request_id"] == context["requestId"]
    assert reply["context"]["memory_limit_in_mb"] == 256
    assert reply["context"]["invoked_function_arn"].endswith(":function:gw-ask")
    assert reply["context"]["log_group_name"] == "/aws/lambda/gw-ask"
    assert 0 < reply["context"]["remaining_ms"] <= 10_000


def test_missing_wrong_or_other_stage_api_key_is_forbidden(gateway_api: GatewayApi) -> None:
    for headers in ({}, {"x-api-key": "not-a-key"}, {"x-api-key": gateway_api.other_stage_key}):
        response = gateway_api.call("POST", "ask", headers=headers, content="{}")
        assert response.status_code == 403, headers
        assert response.json() == {"message": "Forbidden"}
        assert response.headers["x-amzn-errortype"] == "ForbiddenException"


def test_a_key_created_just_now_is_accepted(gateway_api: GatewayApi) -> None:
    apigw = gateway_api.stack.client("apigateway")
    key = apigw.create_api_key(name="gw-fresh", enabled=True)
    plan = apigw.create_usage_plan(
        name="gw-fresh-plan", apiStages=[{"apiId": gateway_api.api_id, "stage": STAGE}]
    )
    gateway_api.call("POST", "ask", headers={"x-api-key": key["value"]}, content="{}")  # warm
    apigw.create_usage_plan_key(usagePlanId=plan["id"], keyId=key["id"], keyType="API_KEY")
    response = gateway_api.call("POST", "ask", headers={"x-api-key": key["value"]}, content="{}")
    assert response.status_code == 200, response.text


def test_usage_plan_burst_is_enforced_with_429(gateway_api: GatewayApi) -> None:
    statuses = []
    for _ in range(8):
        response = gateway_api.call(
            "POST", "ask", headers={"x-api-key": gateway_api.throttled_key}, content="{}"
        )
        statuses.append(response.status_code)
        if response.status_code == 429:
            assert response.json() == {"message": "Too Many Requests"}
            break
    assert statuses == [200, 200, 429]
    # Another key of the same API is not slowed down by that one.
    other = gateway_api.call("POST", "ask", headers={"x-api-key": gateway_api.key}, content="{}")
    assert other.status_code == 200


def test_usage_plan_quota_is_enforced_with_429(gateway_api: GatewayApi) -> None:
    apigw = gateway_api.stack.client("apigateway")
    key = apigw.create_api_key(name="gw-quota", enabled=True)
    plan = apigw.create_usage_plan(
        name="gw-quota-plan",
        apiStages=[{"apiId": gateway_api.api_id, "stage": STAGE}],
        quota={"limit": 2, "period": "DAY"},
    )
    apigw.create_usage_plan_key(usagePlanId=plan["id"], keyId=key["id"], keyType="API_KEY")
    headers = {"x-api-key": key["value"]}
    statuses = [gateway_api.call("POST", "ask", headers=headers).status_code for _ in range(2)]
    over = gateway_api.call("POST", "ask", headers=headers)
    assert statuses == [200, 200]
    assert over.status_code == 429
    assert over.json() == {"message": "Limit Exceeded"}


def test_unknown_route_method_or_stage_is_refused_like_api_gateway(gateway_api: GatewayApi) -> None:
    missing = gateway_api.call("GET", "nowhere")
    assert missing.status_code == 403
    assert missing.json() == {"message": "Missing Authentication Token"}
    wrong_method = gateway_api.call("GET", "ask", headers={"x-api-key": gateway_api.key})
    assert wrong_method.status_code == 403
    assert wrong_method.json() == {"message": "Missing Authentication Token"}
    base = gateway_api.stack.gateway_url
    wrong_stage = httpx.get(f"{base}/restapis/{gateway_api.api_id}/nostage/_user_request_/ask")
    assert wrong_stage.status_code == 403
    assert wrong_stage.json() == {"message": "Forbidden"}


def test_cors_preflight_answers_from_the_mock_integration(gateway_api: GatewayApi) -> None:
    response = gateway_api.call(
        "OPTIONS",
        "ask",
        headers={"origin": "http://example.test", "access-control-request-method": "POST"},
    )
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == "*"
    assert response.headers["access-control-allow-methods"] == "POST,OPTIONS"
    assert "X-Api-Key" in response.headers["access-control-allow-headers"]


def test_path_parameters_and_greedy_proxy_resources(gateway_api: GatewayApi) -> None:
    item = gateway_api.call("GET", "items/42").json()["event"]
    assert item["resource"] == "/items/{id}"
    assert item["pathParameters"] == {"id": "42"}
    files = gateway_api.call("DELETE", "files/a/b/c.txt").json()["event"]
    assert files["resource"] == "/files/{proxy+}"
    assert files["httpMethod"] == "DELETE"
    assert files["pathParameters"] == {"proxy": "a/b/c.txt"}


def test_stage_paths_by_host_header_and_alone(gateway_api: GatewayApi) -> None:
    base = gateway_api.stack.gateway_url
    by_host = httpx.get(
        f"{base}/{STAGE}/items/7",
        headers={"host": f"{gateway_api.api_id}.execute-api.localhost"},
    )
    assert by_host.status_code == 200
    assert by_host.json()["event"]["requestContext"]["apiId"] == gateway_api.api_id
    alone = httpx.get(f"{base}/{STAGE}/items/8")
    assert alone.status_code == 200
    assert alone.json()["event"]["pathParameters"] == {"id": "8"}


def test_a_handler_calling_aws_reaches_the_local_aws(gateway_api: GatewayApi) -> None:
    response = gateway_api.call("POST", "caller", content="{}")
    assert response.status_code == 200, response.text
    assert response.json() == {"account": "123456789012"}


def test_the_sandbox_gets_lambda_variables_and_the_local_endpoints(
    gateway_api: GatewayApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    # What the launcher exports to its process reaches the function, so that a handler calling
    # sagemaker-runtime reaches the local runtime; the gateway's own other variables do not.
    monkeypatch.setenv("AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME", "http://127.0.0.1:9")
    monkeypatch.setenv("QA_CONSOLE_NOT_FOR_LAMBDA", "secret")
    env = gateway_api.call("POST", "environ", content="{}").json()
    assert env["AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME"] == "http://127.0.0.1:9"
    assert env["AWS_ENDPOINT_URL"] == gateway_api.stack.aws_endpoint_url
    assert "QA_CONSOLE_NOT_FOR_LAMBDA" not in env
    assert env["GREETING"] == "hello from environ"
    assert env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] == "256"
    assert env["AWS_REGION"] == "us-east-1" and env["_HANDLER"] == "handlers.environ"
    assert env["AWS_LAMBDA_LOG_GROUP_NAME"] == "/aws/lambda/gw-environ"
    assert env["AWS_LAMBDA_LOG_STREAM_NAME"].split("/")[-1].startswith("[$LATEST]")
    assert env["AWS_ACCESS_KEY_ID"] and env["AWS_SECRET_ACCESS_KEY"]


def test_sandboxes_stay_warm_and_serve_concurrent_requests_in_parallel(
    gateway_api: GatewayApi,
) -> None:
    first = gateway_api.call("POST", "sandbox?sleep=0").json()
    second = gateway_api.call("POST", "sandbox?sleep=0").json()
    assert second["pid"] == first["pid"]  # the same warm process, its module state kept
    assert second["calls"] == first["calls"] + 1
    with ThreadPoolExecutor(4) as pool:
        replies = list(pool.map(lambda _: gateway_api.call("POST", "sandbox?sleep=1.5"), range(4)))
    assert all(r.status_code == 200 for r in replies)
    assert len({r.json()["pid"] for r in replies}) > 1  # not one after another in one process


def test_gateway_responses_put_cors_headers_on_errors(gateway_api: GatewayApi) -> None:
    gateway_api.stack.client("apigateway").put_gateway_response(
        restApiId=gateway_api.api_id,
        responseType="DEFAULT_4XX",
        responseParameters={
            "gatewayresponse.header.Access-Control-Allow-Origin": "method.request.header.origin"
        },
    )
    response = gateway_api.call("POST", "ask", headers={"origin": "http://site.test"})
    assert response.status_code == 403
    assert response.headers["access-control-allow-origin"] == "http://site.test"
    assert response.json() == {"message": "Forbidden"}


def test_a_function_without_invoke_permission_is_a_500(gateway_api: GatewayApi) -> None:
    response = gateway_api.call("POST", "noperm", content="{}")
    assert response.status_code == 500
    assert response.json() == {"message": "Internal server error"}


def test_invocations_are_logged_to_cloudwatch_like_lambda(gateway_api: GatewayApi) -> None:
    response = gateway_api.call("GET", "items/logged")
    request_id = response.headers["x-amzn-requestid"]
    messages = lambda_log_messages(gateway_api.stack, "gw-ask", f"REPORT RequestId: {request_id}")
    own = [m for m in messages if request_id in m]
    assert [m.split(" ")[0] for m in own] == ["START", "echo", "END", "REPORT"]
    assert own[1] == f"echo handling {request_id}\n"
    assert "Duration:" in own[3] and "Memory Size: 256 MB" in own[3]
