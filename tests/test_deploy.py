"""`qa-console deploy` against the embedded local AWS: every mode answers through the sagemaker
backend, a re-deploy is a blue/green update that answers throughout, a failed run rolls back
what it created, a dry run sends nothing, and teardown leaves nothing behind."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import pytest

from fixtures_deploy import KNOWN, answer, deploy_request, names_in
from fixtures_foundation import run_cli
from fixtures_localaws import LocalAws
from fixtures_package import read_entries, with_handler, write_archive
from qa_console.errors import AuthError, BackendError, OperationError, UsageError
from qa_console.ops.deploy.flow import deploy_model
from qa_console.ops.deploy.plan import plan_deploy
from qa_console.ops.deploy.rollout import Recorder, roll_out
from qa_console.ops.iam.fix import trust_policy
from qa_console.ops.teardown import teardown

BUCKET = "deploy-tests"


def test_a_serverless_deploy_answers_through_the_sagemaker_backend(
    local_aws: LocalAws, deploy_role: str, t5_archive: Path
) -> None:
    outcome = deploy_model(
        local_aws.target,
        t5_archive,
        deploy_request("dep-serverless", deploy_role),
        bucket=BUCKET,
        folder="m",
    )
    assert outcome.rollout is not None and outcome.rollout.status == "InService"
    assert not outcome.rollout.updated
    assert outcome.rollout.warmup["seconds"] > 0
    sagemaker = local_aws.client("sagemaker")
    config = sagemaker.describe_endpoint_config(EndpointConfigName=outcome.plan.config_name)
    serverless = config["ProductionVariants"][0]["ServerlessConfig"]
    assert serverless == {"MemorySizeInMB": 2048, "MaxConcurrency": 5}
    image = sagemaker.describe_model(ModelName=outcome.plan.model_name)["PrimaryContainer"]
    assert "huggingface-pytorch-inference" in image["Image"] and "-cpu-" in image["Image"]
    assert "transformers5." in image["Image"]  # the manifest's major version
    assert image["ModelDataUrl"] == f"s3://{BUCKET}/m/{t5_archive.name}"
    assert answer(local_aws, "dep-serverless") == KNOWN[1]


def test_a_real_time_deploy_picks_the_cheapest_instance_that_fits(
    local_aws: LocalAws, deploy_role: str, t5_archive: Path
) -> None:
    outcome = deploy_model(
        local_aws.target,
        t5_archive,
        deploy_request("dep-realtime", deploy_role, mode="realtime", budget_usd_per_hour=0.2),
        bucket=BUCKET,
    )
    assert outcome.plan.choice is not None
    assert outcome.plan.choice.instance.name == "ml.t2.medium"  # $0.056/h, 4 GiB: enough
    variant = local_aws.client("sagemaker").describe_endpoint_config(
        EndpointConfigName=outcome.plan.config_name
    )["ProductionVariants"][0]
    assert (variant["InstanceType"], variant["InitialInstanceCount"]) == ("ml.t2.medium", 1)
    assert answer(local_aws, "dep-realtime") == KNOWN[1]


def test_an_async_deploy_writes_its_answers_to_s3(
    local_aws: LocalAws, deploy_role: str, t5_archive: Path
) -> None:
    local_aws.client("s3").create_bucket(Bucket="deploy-answers")
    outcome = deploy_model(
        local_aws.target,
        t5_archive,
        deploy_request(
            "dep-async", deploy_role, mode="async", async_output="s3://deploy-answers/out/"
        ),
        bucket=BUCKET,
    )
    assert outcome.rollout is not None
    assert "generated_text" in outcome.rollout.warmup["reply"]  # read back from S3
    config = local_aws.client("sagemaker").describe_endpoint_config(
        EndpointConfigName=outcome.plan.config_name
    )
    assert config["AsyncInferenceConfig"]["OutputConfig"]["S3OutputPath"] == (
        "s3://deploy-answers/out/"
    )


def test_a_redeploy_is_a_blue_green_update_that_answers_throughout(
    local_aws: LocalAws, deploy_role: str, t5_archive: Path
) -> None:
    first = deploy_model(
        local_aws.target, t5_archive, deploy_request("dep-update", deploy_role), bucket=BUCKET
    )
    answers: list[str] = []
    failures: list[str] = []
    stop = threading.Event()

    def keep_asking() -> None:
        while not stop.is_set():
            try:
                answers.append(answer(local_aws, "dep-update"))
            except Exception as error:  # every failure is a finding
                failures.append(repr(error))

    asker = threading.Thread(target=keep_asking)
    asker.start()
    try:
        second = deploy_model(
            local_aws.target,
            t5_archive,
            deploy_request("dep-update", deploy_role, mode="realtime", instance_type="ml.m5.large"),
            bucket=BUCKET,
        )
    finally:
        stop.set()
        asker.join(timeout=60)
    assert second.rollout is not None and second.rollout.updated
    assert failures == [] and len(answers) > 0 and set(answers) == {KNOWN[1]}
    described = local_aws.client("sagemaker").describe_endpoint(EndpointName="dep-update")
    assert described["EndpointConfigName"] == second.plan.config_name
    retired = {item["name"] for item in second.rollout.retired}
    assert retired == {first.plan.config_name, first.plan.model_name}
    assert not retired & names_in(local_aws)


def test_a_failed_run_rolls_back_what_it_created(
    local_aws: LocalAws, deploy_role: str, t5_archive: Path, tmp_path: Path
) -> None:
    """The model loads but every question fails: the warm-up's ModelError undoes the run."""
    from qa_console.inference import model_handler

    broken = Path(model_handler.__file__).read_text() + (
        "\n\ndef predict_fn(data, model, context=None):\n"
        "    raise ValueError('broken on purpose')\n"
    )
    entries = with_handler(read_entries(t5_archive), broken)
    archive = write_archive(tmp_path / "model.tar.gz", entries)
    before = names_in(local_aws)
    with pytest.raises(BackendError) as caught:
        deploy_model(
            local_aws.target, archive, deploy_request("dep-rollback", deploy_role), bucket=BUCKET
        )
    assert "broken on purpose" in caught.value.message
    rolled_back = [line for line in caught.value.details if line.startswith("rolled back:")]
    assert [line.split()[2] for line in rolled_back] == [
        "sagemaker-endpoint",
        "sagemaker-endpoint-config",
        "sagemaker-model",
    ]
    assert names_in(local_aws) == before
    # The uploaded archive stays (S3 data is only purged on request), and only it is recorded.
    left = teardown(local_aws.target, "dep-rollback", dry_run=True)
    assert (left.deleted, [item["kind"] for item in left.kept]) == ([], ["s3-object"])


OLD_IMAGE = (
    "763104351884.dkr.ecr.us-east-1.amazonaws.com/huggingface-pytorch-inference:"
    "2.6.0-transformers4.51.3-cpu-py312-ubuntu22.04"
)


def log_messages(local_aws: LocalAws, endpoint: str) -> list[str]:
    logs = local_aws.client("logs")
    group = f"/aws/sagemaker/Endpoints/{endpoint}"
    return [event["message"] for event in logs.filter_log_events(logGroupName=group)["events"]]


def test_an_image_whose_transformers_major_differs_fails_as_on_sagemaker(
    local_aws: LocalAws, deploy_role: str, t5_archive: Path
) -> None:
    """The tiny model is saved by transformers 5; the 4.51.3 container cannot load it."""
    before = names_in(local_aws)
    with pytest.raises(OperationError) as caught:
        deploy_model(
            local_aws.target,
            t5_archive,
            deploy_request("dep-old-image", deploy_role, image_uri=OLD_IMAGE),
            bucket=BUCKET,
        )
    assert "endpoint dep-old-image failed" in caught.value.message
    assert "did not pass the ping health check" in caught.value.message
    assert any(line.startswith("rolled back: sagemaker-endpoint ") for line in caught.value.details)
    # The container's own last lines are in the error, and the cause is named from them.
    assert any("model_fn failed" in line for line in caught.value.details)
    assert "version mismatch" in str(caught.value.hint)
    assert names_in(local_aws) == before
    reasons = [
        line for line in log_messages(local_aws, "dep-old-image") if "model_fn failed" in line
    ]
    assert (
        reasons
        and "transformers 4.51.3 cannot load a model saved with transformers 5" in (reasons[0])
    )


def test_a_failed_update_leaves_the_previous_deployment_serving(
    local_aws: LocalAws, deploy_role: str, t5_archive: Path
) -> None:
    first = deploy_model(
        local_aws.target, t5_archive, deploy_request("dep-keep", deploy_role), bucket=BUCKET
    )
    with pytest.raises(OperationError, match="rolled back to its previous config"):
        deploy_model(
            local_aws.target,
            t5_archive,
            deploy_request("dep-keep", deploy_role, image_uri=OLD_IMAGE),
            bucket=BUCKET,
        )
    described = local_aws.client("sagemaker").describe_endpoint(EndpointName="dep-keep")
    assert described["EndpointStatus"] == "InService"
    assert described["EndpointConfigName"] == first.plan.config_name
    assert answer(local_aws, "dep-keep") == KNOWN[1]


def test_a_role_that_may_not_serve_the_model_stops_the_deploy_before_anything_is_made(
    local_aws: LocalAws, t5_archive: Path
) -> None:
    iam = local_aws.client("iam")
    trust = trust_policy("sagemaker.amazonaws.com")
    bare = iam.create_role(RoleName="deploy-bare", AssumeRolePolicyDocument=json.dumps(trust))
    before = names_in(local_aws)
    with pytest.raises(AuthError) as caught:
        deploy_model(
            local_aws.target,
            t5_archive,
            deploy_request("dep-denied", bare["Role"]["Arn"]),
            bucket=BUCKET,
        )
    assert "permissions the deploy needs are denied" in caught.value.message
    assert any("s3:GetObject" in line and "deploy-bare" in line for line in caught.value.details)
    assert names_in(local_aws) == before


def test_a_second_deploy_while_one_is_under_way_is_refused(
    local_aws: LocalAws, deploy_role: str, t5_archive: Path
) -> None:
    first = deploy_model(
        local_aws.target,
        t5_archive,
        deploy_request("dep-busy", deploy_role),
        bucket=BUCKET,
        dry_run=True,
    )
    sagemaker = local_aws.client("sagemaker")
    sagemaker.create_model(**first.plan.model_request())
    sagemaker.create_endpoint_config(**first.plan.config_request())
    sagemaker.create_endpoint(**first.plan.endpoint_request(update=False))  # Creating now
    plan = plan_deploy(local_aws.target, first.plan.request)
    with pytest.raises(UsageError, match="endpoint dep-busy is Creating: another deploy"):
        roll_out(local_aws.target, plan, Recorder(local_aws.target, "dep-busy", "test"))


def test_a_dry_run_sends_nothing_and_prints_the_exact_requests(
    local_aws: LocalAws, deploy_role: str, t5_archive: Path
) -> None:
    before = names_in(local_aws)
    outcome = deploy_model(
        local_aws.target,
        t5_archive,
        deploy_request("dep-dry", deploy_role, mode="realtime", autoscale=(1, 3)),
        bucket="deploy-dry-bucket",
        dry_run=True,
    )
    operations = [call["operation"] for call in outcome.requests]
    assert operations == [
        "create_model", "create_endpoint_config", "create_endpoint",
        "register_scalable_target", "put_scaling_policy",
    ]  # fmt: skip
    model = outcome.requests[0]["params"]
    assert model["ExecutionRoleArn"] == deploy_role
    url = f"s3://deploy-dry-bucket/{t5_archive.name}"  # no folder given: the bucket's root
    assert model["PrimaryContainer"]["ModelDataUrl"] == url
    assert model["PrimaryContainer"]["Environment"]["SAGEMAKER_PROGRAM"] == "inference.py"
    assert outcome.requests[3]["params"]["MaxCapacity"] == 3
    assert names_in(local_aws) == before
    buckets = {item["Name"] for item in local_aws.client("s3").list_buckets()["Buckets"]}
    assert "deploy-dry-bucket" not in buckets


def test_teardown_deletes_what_was_created_and_nothing_else(
    local_aws: LocalAws, deploy_role: str, t5_archive: Path
) -> None:
    outcome = deploy_model(
        local_aws.target,
        t5_archive,
        deploy_request(
            "dep-teardown",
            deploy_role,
            mode="realtime",
            instance_type="ml.m5.large",
            autoscale=(1, 2),
        ),
        bucket="deploy-teardown",
    )
    scaling = local_aws.client("application-autoscaling")
    resource = "endpoint/dep-teardown/variant/AllTraffic"
    assert scaling.describe_scalable_targets(ServiceNamespace="sagemaker", ResourceIds=[resource])[
        "ScalableTargets"
    ]
    others = names_in(local_aws) - {
        "dep-teardown",
        outcome.plan.config_name,
        outcome.plan.model_name,
    }
    result = teardown(local_aws.target, "dep-teardown", purge_s3=True)
    kinds = [item["kind"] for item in result.deleted]
    assert kinds == [
        "autoscaling-policy", "autoscaling-target", "sagemaker-endpoint",
        "sagemaker-endpoint-config", "sagemaker-model", "s3-object",
    ]  # fmt: skip
    assert names_in(local_aws) == others  # the other tests' endpoints are untouched
    assert not scaling.describe_scalable_targets(
        ServiceNamespace="sagemaker", ResourceIds=[resource]
    )["ScalableTargets"]
    objects = local_aws.client("s3").list_objects_v2(Bucket="deploy-teardown").get("KeyCount")
    assert objects == 0
    with pytest.raises(UsageError, match="no record"):
        teardown(local_aws.target, "dep-teardown")


def test_the_cli_deploys_reports_and_refuses_bad_input(
    local_aws: LocalAws, deploy_role: str, t5_archive: Path
) -> None:
    env = {"QA_CONSOLE_EXECUTION_ROLE": deploy_role, "QA_CONSOLE_BUCKET": BUCKET}
    dry = run_cli("deploy", str(t5_archive), "--name", "dep-cli", "--dry-run", "--json", env=env)
    assert dry.returncode == 0, dry.stderr
    data = json.loads(dry.stdout)
    assert data["dry_run"] is True and data["plan"]["serverless"]["memory_mb"] == 2048
    assert data["plan"]["cost"]["usd_per_month"] > 0

    for arguments, words in [
        (["--name", "bad_name!"], "is not a valid endpoint name"),
        (["--autoscale", "3"], "is not MIN:MAX"),
        (["--serverless", "--async"], "cannot go with"),
        (["--memory", "1500"], "1 GB steps"),
        (["--instance-type", "ml.m5.large", "--budget", "0.01"], "over the budget"),
    ]:
        run = run_cli("deploy", str(t5_archive), *arguments, "--dry-run", env=env)
        assert run.returncode == 2, run.stderr
        assert words in run.stderr and "Traceback" not in run.stderr
    no_role = run_cli("deploy", str(t5_archive), "--dry-run", env={"QA_CONSOLE_BUCKET": BUCKET})
    assert no_role.returncode == 2 and "execution role" in no_role.stderr

    deployed = run_cli("deploy", str(t5_archive), "--name", "dep-cli", env=env, timeout=300)
    assert deployed.returncode == 0, deployed.stderr
    assert deployed.stdout.strip() == "dep-cli"
    status = run_cli("status", "dep-cli", "--json")
    assert json.loads(status.stdout)["status"] == "InService"
    listing = json.loads(run_cli("status", "--json").stdout)["endpoints"]
    assert {
        key: value
        for key, value in next(e for e in listing if e["name"] == "dep-cli").items()
        if key in ("name", "managed")
    } == {"name": "dep-cli", "managed": True}
    unknown = run_cli("status", "no-such-endpoint")
    assert unknown.returncode == 2 and "does not exist" in unknown.stderr
    refused = run_cli("teardown", "dep-cli")  # no terminal to confirm on
    assert refused.returncode == 2 and "--yes" in refused.stderr
    removed = run_cli("teardown", "dep-cli", "--yes", "--json")
    assert removed.returncode == 0, removed.stderr
    assert "dep-cli" not in names_in(local_aws)
    assert os.environ.get("AWS_PROFILE") is None
