"""The worker supervisor both services share (localaws/workers.py), through each service over real
sockets: a worker that dies before it is ready is started again after a growing back-off, a
model container starts in a clean environment, and payloads cross the worker protocol as bytes."""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from fixtures_gateway import STAGE, GatewayApi, build_key_api
from fixtures_runtime import PROFILE, RuntimeStack, handler_archive
from qa_console.localaws.apigateway import local_invoke_url

DIES_AT_LOAD_HANDLER = """
import os


def model_fn(model_dir):
    os._exit(3)
"""

ENVIRON_HANDLER = """
import json
import os


def model_fn(model_dir):
    return None


def transform_fn(model, body, content_type, accept):
    return json.dumps(dict(os.environ))
"""

BYTES_HANDLER = """
def model_fn(model_dir):
    return None


def transform_fn(model, body, content_type, accept):
    return body[::-1]
"""


def _messages(logs: Any, group: str) -> list[str]:
    try:
        pages = logs.get_paginator("filter_log_events").paginate(logGroupName=group)
        return [event["message"] for page in pages for event in page["events"]]
    except logs.exceptions.ResourceNotFoundException:
        return []


def _delays(messages: list[str], pattern: str) -> list[int]:
    return [int(found.group(1)) for m in messages if (found := re.search(pattern, m))]


def test_a_model_worker_that_dies_before_ready_is_restarted_with_back_off(
    runtime_aws: RuntimeStack, tmp_path: Path
) -> None:
    archive = handler_archive(tmp_path, DIES_AT_LOAD_HANDLER, name="dies-at-load")
    runtime_aws.set_settings(max_workers=1)  # one slot, so one back-off to read in the log
    runtime_aws.deploy("dies-at-load", archive, wait=False)
    logs = runtime_aws.client("logs")
    group = "/aws/sagemaker/Endpoints/dies-at-load"
    restart = r"exited \(exit code 3\); restarting it in (\d+) s"
    try:
        deadline = time.monotonic() + 60
        messages: list[str] = []
        while len(_delays(messages, restart)) < 3:
            assert time.monotonic() < deadline, messages
            time.sleep(0.2)
            runtime_aws.runtime.logs.flush()
            messages = _messages(logs, group)
        assert _delays(messages, restart)[:3] == [1, 2, 4]
        pids = _delays(messages, r"starting worker pid (\d+)")
        assert len(set(pids)) == len(pids) >= 3  # each start is a new process
        (pool,) = runtime_aws.describe("dies-at-load")
        assert pool["state"] == "loading" and pool["restarts"] >= 3  # never ready, still trying
    finally:
        runtime_aws.client("sagemaker").delete_endpoint(EndpointName="dies-at-load")


def test_a_lambda_sandbox_that_dies_before_ready_delays_the_next_start(
    gateway_api: GatewayApi,
) -> None:
    stack = gateway_api.stack
    role = stack.client("iam").get_role(RoleName="gateway-test-lambda")["Role"]["Arn"]
    name = "gw-dies-at-import"
    api_id, key = build_key_api(
        stack.client("lambda"),
        stack.client("apigateway"),
        name=name,
        role=role,
        handler="import os\n\nos._exit(3)\n",
        throttle={"rateLimit": 1000.0, "burstLimit": 1000},
    )
    url = local_invoke_url(stack.gateway_url, api_id, STAGE, "ask")
    logs = stack.client("logs")
    next_start = r"the next sandbox of gw-dies-at-import starts in (\d+) s"
    calls = 0
    messages: list[str] = []
    deadline = time.monotonic() + 60
    while len(_delays(messages, next_start)) < 3:
        assert time.monotonic() < deadline, messages
        response = httpx.post(url, headers={"x-api-key": key}, content="{}", timeout=30)
        calls += 1
        assert response.status_code == 502 and response.json() == {
            "message": "Internal server error"
        }
        time.sleep(0.1)
        messages = _messages(logs, f"/aws/lambda/{name}")
    stack.app.state.gateway.logs.flush()
    messages = _messages(logs, f"/aws/lambda/{name}")
    delays = _delays(messages, next_start)
    assert delays == [1, 2, 4, 8, 16][: len(delays)]
    starts = sum(m.startswith("INIT_START") for m in messages)
    assert starts == len(delays)  # every start died before it was ready, and was counted
    assert calls > starts  # the calls in between were refused without starting a process
    assert sum("Runtime exited with error: exit status 3" in m for m in messages) == starts


def test_a_model_container_gets_a_clean_environment(
    runtime_aws: RuntimeStack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The runtime's own variables stay out of the container; what reaches the local AWS, the
    # model's variables and SageMaker's are in it.
    monkeypatch.setenv("QA_CONSOLE_NOT_FOR_CONTAINERS", "secret")
    monkeypatch.setenv("AWS_PROFILE", PROFILE)  # a profile of the runtime's own
    runtime_aws.deploy("environ", handler_archive(tmp_path, ENVIRON_HANDLER, name="environ"))
    client = runtime_aws.client("sagemaker-runtime")
    env = json.loads(client.invoke_endpoint(EndpointName="environ", Body=b"{}")["Body"].read())
    assert "QA_CONSOLE_NOT_FOR_CONTAINERS" not in env and "AWS_PROFILE" not in env
    assert env["QA_RUNTIME_TEST"] == "environ"  # the model's Environment
    assert env["SAGEMAKER_ENDPOINT_NAME"] == "environ"
    assert env["AWS_ENDPOINT_URL"] == runtime_aws.moto_url
    assert env["AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME"] == runtime_aws.runtime_url
    assert env["AWS_REGION"] == runtime_aws.region
    assert env["OMP_NUM_THREADS"] == os.environ.get("OMP_NUM_THREADS", "1")
    assert env["PATH"] == os.environ["PATH"]


def test_binary_payloads_cross_the_worker_protocol_unchanged(
    runtime_aws: RuntimeStack, tmp_path: Path
) -> None:
    runtime_aws.deploy("bytes", handler_archive(tmp_path, BYTES_HANDLER, name="bytes"))
    client = runtime_aws.client("sagemaker-runtime")
    for body in (bytes(range(256)) * 4, os.urandom(5 * 1024 * 1024)):  # small, and past 1 MiB
        response = client.invoke_endpoint(
            EndpointName="bytes", Body=body, ContentType="application/octet-stream"
        )
        assert response["Body"].read() == body[::-1]
