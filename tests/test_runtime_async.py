"""InvokeEndpointAsync: input from S3, the result (or the failure) written to S3."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from fixtures_runtime import RuntimeStack


def wait_for_object(s3, url: str, timeout_s: float = 20.0) -> bytes:
    bucket, _, key = url.removeprefix("s3://").partition("/")
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        except s3.exceptions.NoSuchKey:
            assert time.monotonic() < deadline, f"{url} never appeared"
            time.sleep(0.1)


def test_async_invocation_writes_the_result_to_the_output_path(
    runtime_aws: RuntimeStack, echo_archive: Path
) -> None:
    runtime_aws.deploy(
        "async-echo",
        echo_archive,
        async_output="s3://runtime-test-models/async/out",
        async_failure="s3://runtime-test-models/async/failed",
    )
    s3 = runtime_aws.client("s3")
    question = json.dumps({"action": "echo", "inputs": "who?"})
    s3.put_object(Bucket="runtime-test-models", Key="async/in/q1.json", Body=question)
    client = runtime_aws.client("sagemaker-runtime")
    response = client.invoke_endpoint_async(
        EndpointName="async-echo",
        InputLocation="s3://runtime-test-models/async/in/q1.json",
        ContentType="application/json",
        InferenceId="question-1",
    )
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 202
    assert response["InferenceId"] == "question-1"
    assert response["OutputLocation"].startswith("s3://runtime-test-models/async/out/")
    assert response["OutputLocation"].endswith(".out")
    result = json.loads(wait_for_object(s3, response["OutputLocation"]))
    assert result["echo"] == {"action": "echo", "inputs": "who?"}

    failing = json.dumps({"action": "raise", "message": "cannot answer q2"})
    s3.put_object(Bucket="runtime-test-models", Key="async/in/q2.json", Body=failing)
    failed = client.invoke_endpoint_async(
        EndpointName="async-echo", InputLocation="s3://runtime-test-models/async/in/q2.json"
    )
    assert failed["FailureLocation"].startswith("s3://runtime-test-models/async/failed/")
    assert b"cannot answer q2" in wait_for_object(s3, failed["FailureLocation"])


def test_async_invocation_needs_an_async_endpoint(
    runtime_aws: RuntimeStack, echo_endpoint: str
) -> None:
    client = runtime_aws.client("sagemaker-runtime")
    with pytest.raises(client.exceptions.ValidationError, match="AsyncInferenceConfig"):
        client.invoke_endpoint_async(
            EndpointName=echo_endpoint, InputLocation="s3://runtime-test-models/x.json"
        )
