"""The AWS errors of the runtime, raised by boto3 as the same exception classes as on AWS."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from fixtures_runtime import (
    BROKEN_LOAD_HANDLER,
    SLOW_LOAD_HANDLER,
    RuntimeStack,
    handler_archive,
)


def invoke(client, endpoint: str, body: object) -> dict:
    response = client.invoke_endpoint(
        EndpointName=endpoint, Body=json.dumps(body), ContentType="application/json"
    )
    return json.loads(response["Body"].read())


def test_unknown_endpoint_is_a_validation_error(runtime_aws: RuntimeStack) -> None:
    client = runtime_aws.client("sagemaker-runtime")
    with pytest.raises(client.exceptions.ValidationError) as caught:
        invoke(client, "no-such-endpoint", {})
    assert caught.value.response["Error"]["Message"] == (
        "Endpoint no-such-endpoint of account 123456789012 not found."
    )
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


def test_endpoint_not_in_service_is_a_validation_error(
    runtime_aws: RuntimeStack, echo_archive: Path
) -> None:
    runtime_aws.deploy("not-in-service", echo_archive)
    runtime_aws.set_endpoint_status("not-in-service", "Failed")
    time.sleep(runtime_aws.settings.cache_s + 0.1)
    client = runtime_aws.client("sagemaker-runtime")
    with pytest.raises(client.exceptions.ValidationError, match="not in service"):
        invoke(client, "not-in-service", {})


def test_handler_exception_is_a_model_error_with_the_original_status(
    runtime_aws: RuntimeStack, echo_endpoint: str
) -> None:
    client = runtime_aws.client("sagemaker-runtime")
    with pytest.raises(client.exceptions.ModelError) as caught:
        invoke(client, echo_endpoint, {"action": "raise", "message": "no answer for you"})
    error = caught.value.response
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 424
    assert error["OriginalStatusCode"] == 400  # what the Hugging Face toolkit answers
    assert "no answer for you" in error["OriginalMessage"]
    assert error["LogStreamArn"] == (
        "arn:aws:logs:us-east-1:123456789012:log-group:/aws/sagemaker/Endpoints/echo"
    )
    assert "Received client error (400) from primary" in error["Error"]["Message"]
    # The endpoint keeps serving after a handler error.
    assert invoke(client, echo_endpoint, {"action": "echo"})["model"] == "echo-v1"


def test_payload_over_6_mb_is_refused_like_sagemaker(
    runtime_aws: RuntimeStack, echo_endpoint: str
) -> None:
    client = runtime_aws.client("sagemaker-runtime")
    with pytest.raises(ClientError) as caught:
        client.invoke_endpoint(EndpointName=echo_endpoint, Body=b"x" * (6 * 1024 * 1024 + 1))
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 413
    assert "content length exceeded 6291456 bytes" in str(caught.value)
    # Just under the limit goes through.
    padding = "y" * (5 * 1024 * 1024)
    assert (
        invoke(client, echo_endpoint, {"action": "echo", "pad": padding})["echo"]["pad"] == padding
    )


def test_serverless_limits_payload_to_4_mb_and_throttles_past_max_concurrency(
    runtime_aws: RuntimeStack, echo_archive: Path
) -> None:
    runtime_aws.deploy("serverless", echo_archive, serverless_max_concurrency=1)
    client = runtime_aws.client("sagemaker-runtime")
    with pytest.raises(ClientError) as caught:
        client.invoke_endpoint(EndpointName="serverless", Body=b"x" * (4 * 1024 * 1024 + 1))
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 413

    results: list[object] = []
    slow = threading.Thread(
        target=lambda: results.append(
            invoke(client, "serverless", {"action": "sleep", "seconds": 2})
        )
    )
    slow.start()
    deadline = time.monotonic() + 10
    while not any(w["in_flight"] for p in runtime_aws.describe("serverless") for w in p["workers"]):
        assert time.monotonic() < deadline, "the first request never reached the worker"
        time.sleep(0.02)
    with pytest.raises(ClientError) as throttled:
        invoke(client, "serverless", {"action": "echo"})
    assert throttled.value.response["Error"]["Code"] == "ThrottlingException"
    assert "MaxConcurrency=1" in throttled.value.response["Error"]["Message"]
    slow.join()
    assert results and results[0]["echo"]["action"] == "sleep"  # type: ignore[index]
    assert invoke(client, "serverless", {"action": "echo"})["model"] == "echo-v1"


def test_model_still_loading_is_model_not_ready(runtime_aws: RuntimeStack, tmp_path: Path) -> None:
    runtime_aws.set_settings(load_wait_s=0.5)
    archive = handler_archive(tmp_path, SLOW_LOAD_HANDLER.replace("SECONDS", "4"), name="slow")
    runtime_aws.deploy("slow-load", archive, wait=False)
    runtime_aws.wait_in_service("slow-load")
    client = runtime_aws.client("sagemaker-runtime")
    with pytest.raises(client.exceptions.ModelNotReadyException, match="still loading"):
        invoke(client, "slow-load", {})
    assert runtime_aws.runtime.wait_ready("slow-load", timeout_s=30)
    assert invoke(client, "slow-load", {}) == {"model": "loaded"}


def test_tarball_without_handler_fails_clearly(runtime_aws: RuntimeStack, tmp_path: Path) -> None:
    runtime_aws.deploy("no-handler", handler_archive(tmp_path, None), wait=False)
    runtime_aws.wait_in_service("no-handler")
    runtime_aws.runtime.wait_ready("no-handler", timeout_s=30)
    client = runtime_aws.client("sagemaker-runtime")
    with pytest.raises(client.exceptions.ModelError) as caught:
        invoke(client, "no-handler", {})
    assert caught.value.response["OriginalStatusCode"] == 500
    assert "no code/inference.py" in caught.value.response["OriginalMessage"]


def test_model_fn_failure_is_reported_to_callers(runtime_aws: RuntimeStack, tmp_path: Path) -> None:
    runtime_aws.deploy("broken-load", handler_archive(tmp_path, BROKEN_LOAD_HANDLER), wait=False)
    runtime_aws.wait_in_service("broken-load")
    assert not runtime_aws.runtime.wait_ready("broken-load", timeout_s=30), "failed to load"
    client = runtime_aws.client("sagemaker-runtime")
    with pytest.raises(client.exceptions.ModelError) as caught:
        invoke(client, "broken-load", {})
    message = caught.value.response["OriginalMessage"]
    assert "failed to load" in message and "weights are missing" in message


def test_missing_model_data_fails_clearly_then_recovers_when_uploaded(
    runtime_aws: RuntimeStack, echo_archive: Path
) -> None:
    sagemaker = runtime_aws.client("sagemaker")
    runtime_aws.upload(echo_archive, "placeholder/model.tar.gz")  # creates the bucket
    url = "s3://runtime-test-models/late/model.tar.gz"
    sagemaker.create_model(
        ModelName="late-model",
        ExecutionRoleArn="arn:aws:iam::123456789012:role/runtime-test",
        PrimaryContainer={"Image": "hf", "ModelDataUrl": url},
    )
    variant = {"VariantName": "AllTraffic", "ModelName": "late-model"}
    variant.update(InstanceType="ml.m5.large", InitialInstanceCount=1)
    sagemaker.create_endpoint_config(EndpointConfigName="late-config", ProductionVariants=[variant])
    sagemaker.create_endpoint(EndpointName="late", EndpointConfigName="late-config")
    runtime_aws.wait_in_service("late")
    assert not runtime_aws.runtime.wait_ready("late", timeout_s=30)
    client = runtime_aws.client("sagemaker-runtime")
    with pytest.raises(client.exceptions.ModelError) as caught:
        invoke(client, "late", {"action": "echo"})
    assert "could not be fetched" in caught.value.response["OriginalMessage"]

    runtime_aws.upload(echo_archive, "late/model.tar.gz")
    deadline = time.monotonic() + 30
    while True:  # the runtime fetches again after a back-off, or sees the new ETag
        try:
            assert invoke(client, "late", {"action": "echo"})["model"] == "echo-v1"
            break
        except client.exceptions.ModelError:
            assert time.monotonic() < deadline, runtime_aws.describe("late")
            time.sleep(0.3)
