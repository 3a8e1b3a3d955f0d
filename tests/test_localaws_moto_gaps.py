"""Each gap of stock moto that the launcher closes (localaws/motoserver/patches.py), tested through
the real local AWS over a socket with plain boto3. A moto upgrade that changes what is patched
fails one of these."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from fixtures_localaws import LocalAws, wait_for_snapshot

ROLE_ARN = "arn:aws:iam::123456789012:role/qa-console-sagemaker"
FAST_WAIT = {"Delay": 0.5, "MaxAttempts": 60}

# The instance families moto 5.2.5's whitelist rejects, all of which SageMaker hosts.
NEW_INSTANCE_TYPES = [
    "ml.g5.xlarge",
    "ml.g6.2xlarge",
    "ml.m6i.large",
    "ml.m7i.xlarge",
    "ml.c6i.large",
    "ml.c7i.2xlarge",
    "ml.inf2.xlarge",
    "ml.t3.medium",
    "ml.p4d.24xlarge",
    "ml.p5.48xlarge",
]


@pytest.fixture
def sagemaker(local_aws: LocalAws) -> Any:
    return local_aws.client("sagemaker")


@pytest.fixture(scope="session")
def served_model_url(local_aws: LocalAws, echo_archive: Path) -> str:
    """A model archive that loads (the echo handler): since the local AWS gates InService on the
    model's health check as SageMaker does, a lifecycle test needs a model that would serve."""
    s3 = local_aws.client("s3")
    s3.create_bucket(Bucket="moto-gaps-models")
    s3.upload_file(str(echo_archive), "moto-gaps-models", "echo/model.tar.gz")
    return "s3://moto-gaps-models/echo/model.tar.gz"


@pytest.fixture
def name(request: pytest.FixtureRequest) -> str:
    """A name unique to the test (the session's local AWS is shared)."""
    return "".join(char for char in request.node.name if char.isalnum())[-50:]


@pytest.fixture
def make_model(sagemaker: Any, served_model_url: str) -> Any:
    def make(client: Any, name: str, **extra: Any) -> str:
        client.create_model(
            ModelName=name,
            ExecutionRoleArn=ROLE_ARN,
            PrimaryContainer={"Image": "local/none:1", "ModelDataUrl": served_model_url},
            **extra,
        )
        return name

    return make


def make_config(sagemaker: Any, name: str, model: str, **variant: Any) -> str:
    production_variant = {"VariantName": "AllTraffic", "ModelName": model}
    production_variant.update(variant or {"InstanceType": "ml.m5.large", "InitialInstanceCount": 1})
    sagemaker.create_endpoint_config(
        EndpointConfigName=name, ProductionVariants=[production_variant]
    )
    return name


def validation_message(call: Any) -> str:
    with pytest.raises(ClientError) as caught:
        call()
    assert caught.value.response["Error"]["Code"] == "ValidationException"
    return str(caught.value.response["Error"]["Message"])


def test_update_endpoint_goes_updating_then_in_service_on_the_new_config(
    make_model: Any, sagemaker: Any, name: str
) -> None:
    model = make_model(sagemaker, name)
    first = make_config(sagemaker, f"{name}-a", model)
    second = make_config(
        sagemaker,
        f"{name}-b",
        model,
        ServerlessConfig={"MemorySizeInMB": 2048, "MaxConcurrency": 3},
    )
    sagemaker.create_endpoint(EndpointName=name, EndpointConfigName=first)
    sagemaker.get_waiter("endpoint_in_service").wait(EndpointName=name, WaiterConfig=FAST_WAIT)

    arn = sagemaker.update_endpoint(EndpointName=name, EndpointConfigName=second)["EndpointArn"]

    during = sagemaker.describe_endpoint(EndpointName=name)
    assert arn == during["EndpointArn"]
    assert during["EndpointStatus"] == "Updating"
    assert during["EndpointConfigName"] == first  # still serving the old config
    assert during["PendingDeploymentSummary"]["EndpointConfigName"] == second
    assert "Cannot update in-progress endpoint" in validation_message(
        lambda: sagemaker.update_endpoint(EndpointName=name, EndpointConfigName=first)
    )
    sagemaker.get_waiter("endpoint_in_service").wait(EndpointName=name, WaiterConfig=FAST_WAIT)
    after = sagemaker.describe_endpoint(EndpointName=name)
    assert after["EndpointConfigName"] == second
    assert "PendingDeploymentSummary" not in after
    assert after["ProductionVariants"][0]["CurrentServerlessConfig"] == {
        "MemorySizeInMB": 2048,
        "MaxConcurrency": 3,
    }
    assert after["LastModifiedTime"] >= during["LastModifiedTime"]


def test_update_endpoint_refuses_what_sagemaker_refuses(
    make_model: Any, sagemaker: Any, name: str
) -> None:
    model = make_model(sagemaker, name)
    config = make_config(sagemaker, name, model)
    assert "Could not find endpoint" in validation_message(
        lambda: sagemaker.update_endpoint(EndpointName=f"{name}-none", EndpointConfigName=config)
    )
    sagemaker.create_endpoint(EndpointName=name, EndpointConfigName=config)
    assert "Cannot update in-progress endpoint" in validation_message(
        lambda: sagemaker.update_endpoint(EndpointName=name, EndpointConfigName=config)
    )
    sagemaker.get_waiter("endpoint_in_service").wait(EndpointName=name, WaiterConfig=FAST_WAIT)
    assert "Could not find endpoint configuration" in validation_message(
        lambda: sagemaker.update_endpoint(EndpointName=name, EndpointConfigName=f"{name}-none")
    )


@pytest.mark.parametrize("instance_type", NEW_INSTANCE_TYPES)
def test_any_ml_instance_type_is_accepted(
    make_model: Any, sagemaker: Any, name: str, instance_type: str
) -> None:
    model = make_model(sagemaker, name)
    make_config(sagemaker, name, model, InstanceType=instance_type, InitialInstanceCount=1)
    variant = sagemaker.describe_endpoint_config(EndpointConfigName=name)["ProductionVariants"][0]
    assert variant["InstanceType"] == instance_type


@pytest.mark.parametrize("instance_type", ["m5.large", "ml.m5", "ml..large", "gpu"])
def test_malformed_instance_types_are_still_refused(
    make_model: Any, sagemaker: Any, name: str, instance_type: str
) -> None:
    model = make_model(sagemaker, name)
    message = validation_message(
        lambda: make_config(
            sagemaker, name, model, InstanceType=instance_type, InitialInstanceCount=1
        )
    )
    assert instance_type in message


def test_new_endpoint_is_creating_before_in_service(
    make_model: Any, sagemaker: Any, name: str
) -> None:
    model = make_model(sagemaker, name)
    config = make_config(sagemaker, name, model)
    sagemaker.create_endpoint(EndpointName=name, EndpointConfigName=config)
    assert sagemaker.describe_endpoint(EndpointName=name)["EndpointStatus"] == "Creating"
    listed = sagemaker.list_endpoints(NameContains=name)["Endpoints"]
    assert [item["EndpointStatus"] for item in listed] == ["Creating"]

    polls: list[str] = []
    sagemaker.meta.events.register(
        "after-call.sagemaker.DescribeEndpoint",
        lambda parsed, **_: polls.append(parsed.get("EndpointStatus", "")),
    )
    sagemaker.get_waiter("endpoint_in_service").wait(EndpointName=name, WaiterConfig=FAST_WAIT)
    assert polls[-1] == "InService"
    assert "Creating" in polls  # the waiter really waited
    assert sagemaker.list_endpoints(NameContains=name, StatusEquals="InService")["Endpoints"]


def test_describe_omits_empty_members(make_model: Any, sagemaker: Any, name: str) -> None:
    model = make_model(sagemaker, name)
    config = make_config(sagemaker, name, model)
    sagemaker.create_endpoint(EndpointName=name, EndpointConfigName=config)

    described_model = sagemaker.describe_model(ModelName=model)
    assert "VpcConfig" not in described_model
    assert "Containers" not in described_model
    assert "DataCaptureConfig" not in sagemaker.describe_endpoint_config(EndpointConfigName=config)
    assert "DataCaptureConfig" not in sagemaker.describe_endpoint(EndpointName=name)


def test_given_members_are_still_returned(make_model: Any, sagemaker: Any, name: str) -> None:
    vpc = {"SecurityGroupIds": ["sg-12345678"], "Subnets": ["subnet-12345678"]}
    model = make_model(sagemaker, name, VpcConfig=vpc)
    assert sagemaker.describe_model(ModelName=model)["VpcConfig"] == vpc
    capture = {
        "EnableCapture": True,
        "InitialSamplingPercentage": 50,
        "DestinationS3Uri": "s3://capture-bucket/prefix",
        "CaptureOptions": [{"CaptureMode": "Input"}],
    }
    sagemaker.create_endpoint_config(
        EndpointConfigName=name,
        ProductionVariants=[
            {
                "VariantName": "AllTraffic",
                "ModelName": model,
                "InstanceType": "ml.m5.large",
                "InitialInstanceCount": 1,
            }
        ],
        DataCaptureConfig=capture,
    )
    described = sagemaker.describe_endpoint_config(EndpointConfigName=name)
    assert described["DataCaptureConfig"]["DestinationS3Uri"] == capture["DestinationS3Uri"]


def test_serverless_config_round_trips(make_model: Any, sagemaker: Any, name: str) -> None:
    model = make_model(sagemaker, name)
    serverless = {"MemorySizeInMB": 3072, "MaxConcurrency": 7}
    make_config(sagemaker, name, model, ServerlessConfig=serverless)
    variant = sagemaker.describe_endpoint_config(EndpointConfigName=name)["ProductionVariants"][0]
    assert variant["ServerlessConfig"] == serverless
    assert "InstanceType" not in variant
    sagemaker.create_endpoint(EndpointName=name, EndpointConfigName=name)
    summary = sagemaker.describe_endpoint(EndpointName=name)["ProductionVariants"][0]
    assert summary["CurrentServerlessConfig"] == serverless
    assert summary["DesiredServerlessConfig"] == serverless
    assert "MemorySizeInMB" in validation_message(
        lambda: make_config(
            sagemaker,
            f"{name}-bad",
            model,
            ServerlessConfig={"MemorySizeInMB": 1536, "MaxConcurrency": 1},
        )
    )


def test_async_inference_config_round_trips_to_config_and_endpoint(
    make_model: Any, sagemaker: Any, name: str
) -> None:
    model = make_model(sagemaker, name)
    async_config = {
        "OutputConfig": {
            "S3OutputPath": "s3://async-bucket/out/",
            "S3FailurePath": "s3://async-bucket/failed/",
        },
        "ClientConfig": {"MaxConcurrentInvocationsPerInstance": 4},
    }
    sagemaker.create_endpoint_config(
        EndpointConfigName=name,
        ProductionVariants=[
            {
                "VariantName": "AllTraffic",
                "ModelName": model,
                "InstanceType": "ml.m5.large",
                "InitialInstanceCount": 1,
            }
        ],
        AsyncInferenceConfig=async_config,
    )
    assert (
        sagemaker.describe_endpoint_config(EndpointConfigName=name)["AsyncInferenceConfig"]
        == async_config
    )
    sagemaker.create_endpoint(EndpointName=name, EndpointConfigName=name)
    assert sagemaker.describe_endpoint(EndpointName=name)["AsyncInferenceConfig"] == async_config
    plain = make_config(sagemaker, f"{name}-plain", model)
    assert "AsyncInferenceConfig" not in sagemaker.describe_endpoint_config(
        EndpointConfigName=plain
    )


def test_existing_names_are_refused_not_replaced(
    make_model: Any, sagemaker: Any, name: str
) -> None:
    model = make_model(sagemaker, name)
    config = make_config(sagemaker, name, model)
    sagemaker.create_endpoint(EndpointName=name, EndpointConfigName=config)
    created = sagemaker.describe_endpoint(EndpointName=name)["CreationTime"]

    assert "Cannot create already existing model" in validation_message(
        lambda: make_model(sagemaker, name)
    )
    assert "Cannot create already existing endpoint configuration" in validation_message(
        lambda: make_config(sagemaker, name, model)
    )
    assert "Cannot create already existing endpoint" in validation_message(
        lambda: sagemaker.create_endpoint(EndpointName=name, EndpointConfigName=config)
    )
    assert sagemaker.describe_endpoint(EndpointName=name)["CreationTime"] == created


def test_aws_managed_policies_are_loaded(local_aws: LocalAws, name: str) -> None:
    iam = local_aws.client("iam")
    policy_arn = "arn:aws:iam::aws:policy/AmazonSageMakerFullAccess"
    policy = iam.get_policy(PolicyArn=policy_arn)["Policy"]
    assert policy["PolicyName"] == "AmazonSageMakerFullAccess"
    iam.create_role(
        RoleName=name,
        AssumeRolePolicyDocument='{"Version": "2012-10-17", "Statement": []}',
    )
    iam.attach_role_policy(RoleName=name, PolicyArn=policy_arn)
    attached = iam.list_attached_role_policies(RoleName=name)["AttachedPolicies"]
    assert [item["PolicyArn"] for item in attached] == [policy_arn]


def test_requests_build_only_the_iam_partition_in_use(local_aws: LocalAws, name: str) -> None:
    """Stock moto builds the IAM backend of all six partitions (AWS-managed policies included)
    on every account lookup; only the partition that is used may exist."""
    local_aws.client("s3").create_bucket(Bucket=name.lower()[:60])
    local_aws.client("iam").create_user(UserName=name)
    meta = wait_for_snapshot(local_aws.endpoint_url)
    iam_partitions = {
        region for _, attribute, _, region in meta["backends"] if attribute == "iam_backends"
    }
    assert iam_partitions == {"aws"}


def test_the_iam_policy_simulator_is_installed(local_aws: LocalAws) -> None:
    """iam_simulator.py (another module) is wired into the supervisor's moto."""
    iam = local_aws.client("iam")
    policy = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}],
    }
    results = iam.simulate_custom_policy(
        PolicyInputList=[json.dumps(policy)], ActionNames=["s3:GetObject", "s3:PutObject"]
    )["EvaluationResults"]
    decisions = {item["EvalActionName"]: item["EvalDecision"] for item in results}
    assert decisions == {"s3:GetObject": "allowed", "s3:PutObject": "implicitDeny"}


def test_training_jobs_fail_at_once_saying_the_local_aws_runs_none(
    sagemaker: Any, name: str
) -> None:
    sagemaker.create_training_job(
        TrainingJobName=name,
        AlgorithmSpecification={"TrainingImage": "local/none:1", "TrainingInputMode": "File"},
        RoleArn=ROLE_ARN,
        OutputDataConfig={"S3OutputPath": f"s3://no-bucket/{name}/output"},
        ResourceConfig={"InstanceType": "ml.g5.xlarge", "InstanceCount": 1, "VolumeSizeInGB": 30},
        StoppingCondition={"MaxRuntimeInSeconds": 3600},
    )
    job = sagemaker.describe_training_job(TrainingJobName=name)
    assert (job["TrainingJobStatus"], job["SecondaryStatus"]) == ("Failed", "Failed")
    assert "runs none" in job["FailureReason"] and "qa-console train" in job["FailureReason"]
    assert "ModelArtifacts" not in job  # stock moto pointed at a model.tar.gz never written
    assert job["SecondaryStatusTransitions"][-1]["Status"] == "Failed"


def test_usage_plan_limits_update_as_numbers(local_aws: LocalAws, name: str) -> None:
    apigw = local_aws.client("apigateway")
    plan = apigw.create_usage_plan(
        name=name,
        throttle={"rateLimit": 10.0, "burstLimit": 20},
        quota={"limit": 5, "period": "DAY"},
    )
    updated = apigw.update_usage_plan(
        usagePlanId=plan["id"],
        patchOperations=[
            {"op": "replace", "path": "/throttle/rateLimit", "value": "0.5"},
            {"op": "replace", "path": "/quota/limit", "value": "1000"},
        ],
    )
    assert updated["throttle"]["rateLimit"] == 0.5
    assert updated["quota"]["limit"] == 1000
