"""What a deployment needs from IAM, and the minimal policies that grant it (pure: no AWS).

The strongest check here is the round trip: the printed minimal policy, evaluated by the same
engine IAM's simulator answers with locally, allows every requirement, with its context, and
nothing next to it (another endpoint, PassRole to another service).
"""

from __future__ import annotations

import json

import pytest

from qa_console.errors import UsageError
from qa_console.ops.iam.evaluate import (
    ALLOWED,
    IMPLICIT_DENY,
    RequestContext,
    evaluate,
    parse_policy,
)
from qa_console.ops.iam.facts import DeploymentFacts, ExposeFacts, deployment_facts
from qa_console.ops.iam.fix import minimal_policies, policy_document
from qa_console.ops.iam.identity import parse_identity
from qa_console.ops.iam.requirements import (
    SAGEMAKER_SERVICE,
    Requirement,
    caller_requirements,
    execution_role_needs,
    function_role_needs,
    role_needs,
)

ACCOUNT = "111122223333"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/bio-exec"
IMAGE = (
    "763104351884.dkr.ecr.us-east-1.amazonaws.com/"
    "huggingface-pytorch-inference:2.6.0-transformers4.51.3-cpu-py312-ubuntu22.04"
)


def facts(**changes: object) -> DeploymentFacts:
    base = DeploymentFacts(
        account_id=ACCOUNT,
        region="eu-west-1",
        bucket="bio-artifacts",
        model_key="qa-console/model.tar.gz",
        execution_role_arn=ROLE,
        endpoint_name="Bio-Bot",
        model_name="Bio-Bot-model-1",
        endpoint_config_name="Bio-Bot-config-1",
        image_uri=IMAGE,
    )
    return DeploymentFacts(**{**base.__dict__, **changes})  # type: ignore[arg-type]


EVERYTHING = facts(
    autoscaling=True,
    creates_bucket=True,
    async_output_url="s3://bio-async/results/",
    sns_topic_arns=(f"arn:aws:sns:eu-west-1:{ACCOUNT}:bio-done",),
    expose=ExposeFacts("bio-api", f"arn:aws:iam::{ACCOUNT}:role/bio-api-fn"),
)


def allows(document: dict[str, object], requirement: Requirement, resource: str = "") -> str:
    parsed = parse_policy(json.dumps(document), "minimal")
    context = RequestContext(requirement.context)
    return evaluate(
        requirement.action, resource or requirement.resource, [parsed], context=context
    ).decision


def every_requirement(deployment: DeploymentFacts) -> list[tuple[str, list[Requirement]]]:
    return [
        ("caller", caller_requirements(deployment)),
        *[(needs.subject, list(needs.requirements)) for needs in role_needs(deployment)],
    ]


@pytest.mark.parametrize("deployment", [facts(), EVERYTHING], ids=["basic", "everything"])
def test_the_minimal_policy_allows_every_requirement(deployment: DeploymentFacts) -> None:
    for subject, requirements in every_requirement(deployment):
        document = policy_document(requirements)
        refused = [r for r in requirements if allows(document, r) != ALLOWED]
        assert refused == [], subject


def test_the_minimal_policy_allows_nothing_next_to_it() -> None:
    requirements = caller_requirements(facts())
    document = policy_document(requirements)
    (pass_role,) = [r for r in requirements if r.action == "iam:PassRole"]
    to_ec2 = Requirement("iam:PassRole", ROLE, "", (("iam:PassedToService", "ec2.amazonaws.com"),))
    assert allows(document, to_ec2) == IMPLICIT_DENY
    other_role = pass_role.resource.replace("bio-exec", "admin")
    assert allows(document, pass_role, other_role) == IMPLICIT_DENY
    (invoke,) = [r for r in requirements if r.action == "sagemaker:InvokeEndpoint"]
    other_endpoint = invoke.resource.replace("bio-bot", "payroll")
    assert allows(document, invoke, other_endpoint) == IMPLICIT_DENY
    (put,) = [r for r in requirements if r.action == "s3:PutObject"]
    assert allows(document, put, "arn:aws:s3:::bio-artifacts/elsewhere/model.tar.gz") == (
        IMPLICIT_DENY
    )


def test_the_policy_survives_the_next_blue_green_deploy() -> None:
    """Grants for models and configs cover `<endpoint>-*`: the names of the next deploy."""
    document = policy_document(caller_requirements(facts()))
    upcoming = caller_requirements(
        facts(model_name="Bio-Bot-model-2", endpoint_config_name="Bio-Bot-config-2")
    )
    assert [r for r in upcoming if allows(document, r) != ALLOWED] == []
    assert all(":model/bio-bot-model-1" not in json.dumps(s) for s in document["Statement"])


def test_pass_role_is_checked_and_granted_for_sagemaker_only() -> None:
    (pass_role,) = [r for r in caller_requirements(facts()) if r.action == "iam:PassRole"]
    assert pass_role.resource == ROLE
    assert pass_role.context == {"iam:PassedToService": SAGEMAKER_SERVICE}
    (statement,) = policy_document([pass_role])["Statement"]
    assert statement == {
        "Sid": "IamRole",
        "Effect": "Allow",
        "Action": "iam:PassRole",
        "Resource": ROLE,
        "Condition": {"StringEquals": {"iam:PassedToService": SAGEMAKER_SERVICE}},
    }


def test_statements_are_one_per_service_and_resource_set() -> None:
    document = policy_document(caller_requirements(facts()))
    sids = [statement["Sid"] for statement in document["Statement"]]
    assert sids == [
        "S3Bucket",
        "S3Objects",
        "IamRole",
        "SagemakerModel",
        "SagemakerEndpointConfig",
        "SagemakerEndpointConfigEndpoint",
        "SagemakerEndpoint",
        "SagemakerEndpointConfigEndpointModel",
        "LogsLogGroup",
    ]
    (models,) = [s for s in document["Statement"] if s["Sid"] == "SagemakerModel"]
    assert models["Resource"] == f"arn:aws:sagemaker:eu-west-1:{ACCOUNT}:model/bio-bot-*"
    assert models["Action"] == [
        "sagemaker:CreateModel",
        "sagemaker:DescribeModel",
        "sagemaker:DeleteModel",
    ]


def test_the_execution_role_reads_its_model_pulls_its_image_and_logs() -> None:
    needs = execution_role_needs(facts())
    rows = {(r.action, r.resource) for r in needs.requirements}
    repository = "arn:aws:ecr:us-east-1:763104351884:repository/huggingface-pytorch-inference"
    log_group = f"arn:aws:logs:eu-west-1:{ACCOUNT}:log-group:/aws/sagemaker/Endpoints/Bio-Bot"
    assert {
        ("s3:GetObject", "arn:aws:s3:::bio-artifacts/qa-console/model.tar.gz"),
        ("s3:ListBucket", "arn:aws:s3:::bio-artifacts"),
        ("ecr:GetAuthorizationToken", "*"),
        ("ecr:BatchGetImage", repository),
        ("ecr:GetDownloadUrlForLayer", repository),
        ("ecr:BatchCheckLayerAvailability", repository),
        ("logs:CreateLogGroup", f"{log_group}:*"),
        ("logs:PutLogEvents", f"{log_group}:log-stream:*"),
        ("cloudwatch:PutMetricData", "*"),
    } <= rows
    assert needs.trust.action == "sts:AssumeRole" and needs.trusted_service == SAGEMAKER_SERVICE
    assert minimal_policies(facts())["trust"][1]["Statement"] == [
        {"Effect": "Allow", "Principal": {"Service": SAGEMAKER_SERVICE}, "Action": "sts:AssumeRole"}
    ]


def test_optional_parts_add_their_rows() -> None:
    caller = {r.action for r in caller_requirements(EVERYTHING)}
    assert {
        "s3:CreateBucket",
        "application-autoscaling:RegisterScalableTarget",
        "iam:CreateServiceLinkedRole",
        "sagemaker:InvokeEndpointAsync",
        "lambda:CreateFunction",
        "apigateway:POST",
    } <= caller
    assert not {"iam:CreateRole", "application-autoscaling:PutScalingPolicy"} & {
        r.action for r in caller_requirements(facts())
    }
    execution = {(r.action, r.resource) for r in execution_role_needs(EVERYTHING).requirements}
    assert ("s3:PutObject", "arn:aws:s3:::bio-async/results/*") in execution
    assert ("sns:Publish", f"arn:aws:sns:eu-west-1:{ACCOUNT}:bio-done") in execution
    function = function_role_needs(EVERYTHING)
    assert function is not None and function.trusted_service == "lambda.amazonaws.com"
    created = facts(expose=ExposeFacts("bio-api", "arn:aws:iam::1:role/x", True))
    assert function_role_needs(created) is None
    assert "iam:CreateRole" in {r.action for r in caller_requirements(created)}


@pytest.mark.parametrize(
    ("arn", "principal", "kind"),
    [
        (
            f"arn:aws:sts::{ACCOUNT}:assumed-role/Deployer/ci-42",
            f"arn:aws:iam::{ACCOUNT}:role/Deployer",
            "role",
        ),
        (
            f"arn:aws:iam::{ACCOUNT}:user/ops/alice",
            f"arn:aws:iam::{ACCOUNT}:user/ops/alice",
            "user",
        ),
        (f"arn:aws:iam::{ACCOUNT}:root", None, "root"),
        (f"arn:aws:sts::{ACCOUNT}:federated-user/bob", None, "federated-user"),
        (
            "arn:aws-cn:sts::111122223333:assumed-role/R/s",
            "arn:aws-cn:iam::111122223333:role/R",
            "role",
        ),
    ],
)
def test_caller_arns_map_to_what_the_simulator_accepts(
    arn: str, principal: str | None, kind: str
) -> None:
    identity = parse_identity(arn, ACCOUNT)
    assert (identity.principal_arn, identity.kind) == (principal, kind)


def test_facts_from_settings() -> None:
    identity = parse_identity(f"arn:aws:iam::{ACCOUNT}:user/alice", ACCOUNT)
    made = deployment_facts(
        identity, "eu-west-1", endpoint_name="bot", execution_role="exec", folder="qa-console"
    )
    assert made.bucket == f"qa-console-{ACCOUNT}-eu-west-1"
    assert made.model_key == "qa-console/model.tar.gz"
    assert made.execution_role_arn == f"arn:aws:iam::{ACCOUNT}:role/exec"
    assert (made.model_name, made.endpoint_config_name) == ("bot-model", "bot-config")
    given = deployment_facts(
        identity,
        "eu-west-1",
        endpoint_name="bot",
        execution_role=f"arn:aws:iam::{ACCOUNT}:role/service-role/exec",
        model_url="s3://b/models/v2/",
    )
    assert (given.bucket, given.model_key) == ("b", "models/v2/model.tar.gz")
    assert given.execution_role_arn.endswith(":role/service-role/exec")
    with pytest.raises(UsageError, match="no SageMaker execution role"):
        deployment_facts(identity, "eu-west-1", endpoint_name="bot", execution_role=None)
    with pytest.raises(UsageError, match="neither a role ARN nor a role name"):
        deployment_facts(identity, "eu-west-1", endpoint_name="bot", execution_role="a role?")
