"""Every permission one deployment needs: the caller's, the execution role's, the function role's.

Each `Requirement` is one IAM action on one resource ARN, with the condition keys the request
carries that a policy may test (iam:PassRole's iam:PassedToService). `resource` is what the
check asks about; `grant` is what a fix policy writes (`Resource`), the narrowest pattern that
also covers the next deploy of the same endpoint (`model/<endpoint>-*`, `log-group:NAME:*`, the
model's S3 folder): `grant` always matches `resource`.

The lists follow what the code of each step calls: upload (ops/aws/s3.py), create_model /
create_endpoint_config / create_endpoint / update_endpoint, invocations, logs, autoscaling,
expose (Lambda + API Gateway), and what SageMaker does as the execution role (read the model,
pull the image, write logs and metrics).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from qa_console.ops.iam.facts import DeploymentFacts

SAGEMAKER_SERVICE = "sagemaker.amazonaws.com"
LAMBDA_SERVICE = "lambda.amazonaws.com"
AUTOSCALING_SERVICE = "sagemaker.application-autoscaling.amazonaws.com"
PASSED_TO_SERVICE = "iam:PassedToService"
ASSUME_ROLE = "sts:AssumeRole"


@dataclass(frozen=True)
class Requirement:
    """One action on one resource, and why it is needed.

    conditions: condition keys and values the request carries (the check sends them as context,
                a fix policy requires them with StringEquals)
    grant:      the fix policy's Resource for this row (default: `resource`)
    """

    action: str
    resource: str
    purpose: str
    conditions: tuple[tuple[str, str], ...] = ()
    grant: str | None = None

    @property
    def service(self) -> str:
        return self.action.split(":", 1)[0]

    @property
    def granted(self) -> str:
        return self.grant or self.resource

    @property
    def context(self) -> dict[str, str]:
        return dict(self.conditions)

    def to_dict(self) -> dict[str, object]:
        return {
            "action": self.action,
            "resource": self.resource,
            "purpose": self.purpose,
            "context": self.context,
        }


@dataclass(frozen=True)
class RoleNeeds:
    """A role a service assumes: who must be trusted to assume it, and what it must be allowed."""

    subject: str
    role_arn: str
    trusted_service: str
    requirements: tuple[Requirement, ...]

    @property
    def trust(self) -> Requirement:
        return Requirement(
            ASSUME_ROLE, self.role_arn, f"{self.trusted_service} may assume the role"
        )


def _each(
    actions: Iterable[str],
    resource: str,
    purpose: str,
    *,
    grant: str | None = None,
    conditions: Mapping[str, str] | None = None,
) -> list[Requirement]:
    pairs = tuple((conditions or {}).items())
    return [Requirement(action, resource, purpose, pairs, grant) for action in actions]


def _folder_grant(facts: DeploymentFacts, key: str) -> str:
    """The model's S3 folder as a fix policy grants it (the object itself at the bucket root)."""
    folder, _, _ = key.rpartition("/")
    return facts.object_arn(f"{folder}/*") if folder else facts.object_arn(key)


# --- the caller ------------------------------------------------------------------------------


def caller_requirements(facts: DeploymentFacts) -> list[Requirement]:
    """What the person or pipeline running the deploy needs, in the order the deploy needs it."""
    rows = _upload(facts)
    rows += _each(
        ["iam:PassRole"],
        facts.execution_role_arn,
        "hand the execution role to SageMaker (create_model)",
        conditions={PASSED_TO_SERVICE: SAGEMAKER_SERVICE},
    )
    rows += _sagemaker(facts)
    rows += _each(
        ["logs:FilterLogEvents", "logs:StartLiveTail", "logs:DescribeLogStreams"],
        facts.log_group_arn(),
        "read the endpoint's logs",
    )
    if facts.autoscaling:
        rows += _autoscaling(facts)
    if facts.async_output_arn:
        rows += _each(["s3:GetObject"], facts.async_output_arn, "read async results")
    if facts.expose is not None:
        rows += _expose(facts)
    return rows


def _upload(facts: DeploymentFacts) -> list[Requirement]:
    model = facts.object_arn(facts.model_key)
    grant = _folder_grant(facts, facts.model_key)
    rows = _each(["s3:ListBucket"], facts.bucket_arn, "find the bucket (head_bucket)")
    if facts.creates_bucket:
        rows += _each(["s3:CreateBucket"], facts.bucket_arn, "create the bucket")
    if facts.uploads_model:
        rows += _each(
            ["s3:ListBucketMultipartUploads"], facts.bucket_arn, "resume an interrupted upload"
        )
        rows += _each(
            [
                "s3:PutObject",
                "s3:ListMultipartUploadParts",
                "s3:AbortMultipartUpload",
                "s3:DeleteObject",
            ],
            model,
            "upload the model (multipart, resumable)",
            grant=grant,
        )
    rows += _each(["s3:GetObject"], model, "verify the uploaded model", grant=grant)
    return rows


def _sagemaker(facts: DeploymentFacts) -> list[Requirement]:
    model = facts.model_arn
    config = facts.endpoint_config_arn
    endpoint = facts.endpoint_arn
    model_grant = facts.family_arn("model", facts.model_name)
    config_grant = facts.family_arn("endpoint-config", facts.endpoint_config_name)
    rows = _each(
        ["sagemaker:CreateModel", "sagemaker:DescribeModel", "sagemaker:DeleteModel"],
        model,
        "create the model (and remove it on rollback or teardown)",
        grant=model_grant,
    )
    rows += _each(
        [
            "sagemaker:CreateEndpointConfig",
            "sagemaker:DescribeEndpointConfig",
            "sagemaker:DeleteEndpointConfig",
        ],
        config,
        "create the endpoint config",
        grant=config_grant,
    )
    rows += _each(
        ["sagemaker:CreateEndpoint"],
        config,
        "create the endpoint from its config",
        grant=config_grant,
    )
    rows += _each(
        [
            "sagemaker:CreateEndpoint",
            "sagemaker:UpdateEndpoint",
            "sagemaker:UpdateEndpointWeightsAndCapacities",
            "sagemaker:DescribeEndpoint",
            "sagemaker:DeleteEndpoint",
            "sagemaker:InvokeEndpoint",
            "sagemaker:InvokeEndpointWithResponseStream",
        ],
        endpoint,
        "create, update (blue/green), watch, call and delete the endpoint",
    )
    if facts.async_output_arn:
        rows += _each(["sagemaker:InvokeEndpointAsync"], endpoint, "call the async endpoint")
    for arn, grant in ((model, model_grant), (config, config_grant), (endpoint, None)):
        rows += _each(["sagemaker:AddTags"], arn, "tag what the deploy creates", grant=grant)
    return rows


def _autoscaling(facts: DeploymentFacts) -> list[Requirement]:
    service_linked_role = facts.arn(
        "iam",
        f"role/aws-service-role/{AUTOSCALING_SERVICE}/"
        "AWSServiceRoleForApplicationAutoScaling_SageMakerEndpoint",
        region="",
    )
    rows = _each(
        [
            "application-autoscaling:RegisterScalableTarget",
            "application-autoscaling:DescribeScalableTargets",
            "application-autoscaling:DeregisterScalableTarget",
            "application-autoscaling:PutScalingPolicy",
            "application-autoscaling:DescribeScalingPolicies",
            "application-autoscaling:DeleteScalingPolicy",
        ],
        "*",
        "scale the endpoint's instances",
    )
    rows += _each(
        ["cloudwatch:PutMetricAlarm", "cloudwatch:DescribeAlarms", "cloudwatch:DeleteAlarms"],
        facts.arn("cloudwatch", "alarm:*"),
        "the target-tracking alarms of the scaling policy",
    )
    rows += _each(
        ["iam:CreateServiceLinkedRole"],
        service_linked_role,
        "let Application Auto Scaling create its role (first use in the account)",
        conditions={"iam:AWSServiceName": AUTOSCALING_SERVICE},
    )
    return rows


def _expose(facts: DeploymentFacts) -> list[Requirement]:
    expose = facts.expose
    assert expose is not None
    function = facts.arn("lambda", f"function:{expose.function_name}")
    rows = _each(
        [
            "lambda:CreateFunction",
            "lambda:GetFunction",
            "lambda:UpdateFunctionCode",
            "lambda:UpdateFunctionConfiguration",
            "lambda:AddPermission",
            "lambda:RemovePermission",
            "lambda:DeleteFunction",
        ],
        function,
        "the Lambda function behind the API",
    )
    rows += _each(
        ["iam:PassRole"],
        expose.function_role_arn,
        "hand the function's role to Lambda",
        conditions={PASSED_TO_SERVICE: LAMBDA_SERVICE},
    )
    if expose.creates_function_role:
        rows += _each(
            [
                "iam:CreateRole",
                "iam:GetRole",
                "iam:PutRolePolicy",
                "iam:DeleteRolePolicy",
                "iam:DeleteRole",
            ],
            expose.function_role_arn,
            "create (and remove) the function's role",
        )
    apis = facts.arn("apigateway", "/restapis", account="")
    api = f"{apis}/{expose.rest_api_id}" if expose.rest_api_id else f"{apis}/*"
    keys = facts.arn("apigateway", "/apikeys", account="")
    plans = facts.arn("apigateway", "/usageplans", account="")
    everything = ["GET", "POST", "PUT", "PATCH", "DELETE"]
    if not expose.rest_api_id:
        rows += _each(["apigateway:POST"], apis, "create the REST API")
    for resource, methods, purpose in (
        (api, everything, "build, deploy and delete the REST API"),
        (f"{api}/*", everything, "the API's resources, methods, stages and deployments"),
        (keys, ["POST"], "create the API key"),
        (f"{keys}/*", ["GET", "DELETE"], "read and delete the API key"),
        (plans, ["POST"], "create the usage plan"),
        (f"{plans}/*", ["GET", "POST", "PATCH", "DELETE"], "throttle the key's usage plan"),
    ):
        rows += _each([f"apigateway:{method}" for method in methods], resource, purpose)
    return rows


# --- the roles services assume ---------------------------------------------------------------


def execution_role_needs(facts: DeploymentFacts) -> RoleNeeds:
    """What SageMaker does as the execution role: read the model, pull the image, log, report."""
    repository = facts.image_repository_arn
    rows = _each(["s3:GetObject"], facts.object_arn(facts.model_key), "download the model") + _each(
        ["s3:ListBucket"], facts.bucket_arn, "find the model in its bucket"
    )
    rows += _each(["ecr:GetAuthorizationToken"], "*", "log in to the image registry")
    rows += _each(
        ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:BatchCheckLayerAvailability"],
        repository,
        "pull the inference image",
    )
    rows += _each(["logs:CreateLogGroup"], facts.log_group_arn(), "create the endpoint's log group")
    rows += _each(
        ["logs:CreateLogStream", "logs:PutLogEvents"],
        facts.log_streams_arn(),
        "write the container's logs",
        grant=facts.log_group_arn(),
    )
    rows += _each(["cloudwatch:PutMetricData"], "*", "publish the endpoint's metrics")
    if facts.async_output_arn:
        rows += _each(["s3:PutObject"], facts.async_output_arn, "write async results")
        for topic in facts.sns_topic_arns:
            rows += _each(["sns:Publish"], topic, "notify of async results")
    return RoleNeeds("execution role", facts.execution_role_arn, SAGEMAKER_SERVICE, tuple(rows))


def function_role_needs(facts: DeploymentFacts) -> RoleNeeds | None:
    """The expose's Lambda role, when the expose uses an existing one (a created one is made with
    exactly these permissions by the expose itself)."""
    expose = facts.expose
    if expose is None or expose.creates_function_role:
        return None
    group = f"/aws/lambda/{expose.function_name}"
    rows = _each(["sagemaker:InvokeEndpoint"], facts.endpoint_arn, "call the endpoint for the API")
    rows += _each(["logs:CreateLogGroup"], facts.log_group_arn(group), "create its log group")
    rows += _each(
        ["logs:CreateLogStream", "logs:PutLogEvents"],
        facts.log_streams_arn(group),
        "write its logs",
        grant=facts.log_group_arn(group),
    )
    return RoleNeeds("function role", expose.function_role_arn, LAMBDA_SERVICE, tuple(rows))


def role_needs(facts: DeploymentFacts) -> list[RoleNeeds]:
    """Every role of the deployment a service assumes: the execution role, then the function's."""
    function = function_role_needs(facts)
    return [execution_role_needs(facts), *([function] if function else [])]
