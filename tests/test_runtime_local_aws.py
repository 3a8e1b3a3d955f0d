"""The runtime inside the embedded local AWS (the launcher's supervisor): the whole path a user
takes, and update_endpoint, which stock moto lacks and the launcher adds."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from fixtures_localaws import LocalAws
from fixtures_runtime import ECHO_HANDLER, ROLE_ARN, handler_archive
from qa_console.backends.sagemaker import SageMakerBackend


def create_endpoint(local_aws: LocalAws, name: str, archive: Path, suffix: str = "") -> str:
    """Upload the archive and create model + endpoint config with plain boto3; returns the
    config name."""
    s3 = local_aws.client("s3")
    sagemaker = local_aws.client("sagemaker")
    bucket = "runtime-local-aws"
    if bucket not in [b["Name"] for b in s3.list_buckets()["Buckets"]]:
        s3.create_bucket(Bucket=bucket)
    key = f"{name}{suffix}/model.tar.gz"
    s3.upload_file(str(archive), bucket, key)
    sagemaker.create_model(
        ModelName=f"{name}{suffix}",
        ExecutionRoleArn=ROLE_ARN,
        PrimaryContainer={"Image": "hf", "ModelDataUrl": f"s3://{bucket}/{key}"},
    )
    sagemaker.create_endpoint_config(
        EndpointConfigName=f"{name}{suffix}",
        ProductionVariants=[
            {
                "VariantName": "AllTraffic",
                "ModelName": f"{name}{suffix}",
                "InstanceType": "ml.m5.large",
                "InitialInstanceCount": 1,
            }
        ],
    )
    return f"{name}{suffix}"


def wait_in_service(local_aws: LocalAws, name: str, timeout_s: float = 30) -> None:
    sagemaker = local_aws.client("sagemaker")
    deadline = time.monotonic() + timeout_s
    while sagemaker.describe_endpoint(EndpointName=name)["EndpointStatus"] != "InService":
        assert time.monotonic() < deadline, f"{name} never became InService"
        time.sleep(0.2)


def invoke_until(client: Any, name: str, body: dict, timeout_s: float = 60) -> dict:
    """Invoke until the model has loaded (the first answers may be ModelNotReadyException)."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            response = client.invoke_endpoint(EndpointName=name, Body=json.dumps(body))
            return json.loads(response["Body"].read())
        except client.exceptions.ModelNotReadyException:
            assert time.monotonic() < deadline, "the model never loaded"
            time.sleep(0.5)


def test_a_tarball_deployed_with_boto3_answers_through_the_sagemaker_backend(
    local_aws: LocalAws, t5_archive: Path
) -> None:
    sagemaker = local_aws.client("sagemaker")
    config = create_endpoint(local_aws, "bio-bot", t5_archive)
    sagemaker.create_endpoint(EndpointName="bio-bot", EndpointConfigName=config)
    wait_in_service(local_aws, "bio-bot")
    runtime = local_aws.client("sagemaker-runtime")
    served = invoke_until(runtime, "bio-bot", {"inputs": "who was ada lovelace"})
    answer = SageMakerBackend("bio", endpoint="bio-bot", target="local").ask("who was ada lovelace")
    assert answer.text == served[0]["generated_text"]
    assert answer.extra["variant"] == "AllTraffic"


def test_update_endpoint_swaps_the_model_without_failing_requests(
    local_aws: LocalAws, tmp_path: Path
) -> None:
    sagemaker = local_aws.client("sagemaker")
    runtime = local_aws.client("sagemaker-runtime")
    v1 = handler_archive(tmp_path, ECHO_HANDLER, name="echo-v1")
    v2 = handler_archive(tmp_path, ECHO_HANDLER, name="echo-v2")
    sagemaker.create_endpoint(
        EndpointName="swapped", EndpointConfigName=create_endpoint(local_aws, "swapped", v1)
    )
    wait_in_service(local_aws, "swapped")
    assert invoke_until(runtime, "swapped", {"action": "echo"})["model"] == "echo-v1"

    sagemaker.update_endpoint(
        EndpointName="swapped", EndpointConfigName=create_endpoint(local_aws, "swapped", v2, "-v2")
    )
    seen = []
    deadline = time.monotonic() + 60
    while not seen or seen[-1] != "echo-v2":
        assert time.monotonic() < deadline, f"still serving {seen[-1:]} after the update"
        # Every request during the update is answered, by the old model or the new one.
        seen.append(invoke_until(runtime, "swapped", {"action": "echo"}, timeout_s=5)["model"])
        time.sleep(0.1)
    assert set(seen) <= {"echo-v1", "echo-v2"}
    wait_in_service(local_aws, "swapped")
    assert invoke_until(runtime, "swapped", {"action": "echo"})["model"] == "echo-v2"
