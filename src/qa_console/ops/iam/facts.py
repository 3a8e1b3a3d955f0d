"""What the IAM preflight needs to know about one deployment, and the ARNs that follow from it.

A deploy fills in `DeploymentFacts` from its plan (the names it is about to create, the image it
picked, the model's S3 location); `iam check` builds the same object from the settings with
`deployment_facts`. Everything downstream (requirements, check, fix, create-role) reads only
this object, so the preflight a deploy runs and the one a person runs are the same.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from qa_console.errors import UsageError

if TYPE_CHECKING:
    from qa_console.ops.iam.identity import CallerIdentity

MODEL_FILENAME = "model.tar.gz"
# The Hugging Face inference images' repository, for checks made before an image is chosen.
DEFAULT_IMAGE_REPOSITORY = "huggingface-pytorch-inference"
_ECR_IMAGE = re.compile(
    r"^(?P<account>\d{12})\.dkr\.ecr\.(?P<region>[a-z0-9-]+)\.amazonaws\.com(?:\.cn)?"
    r"/(?P<repository>[a-z0-9][a-z0-9._/-]*?)(?:[:@].*)?$"
)
_ROLE_ARN = re.compile(r"^arn:[\w-]+:iam::\d{12}:role/.+$")
_ROLE_NAME = re.compile(r"^[\w+=,.@-]{1,64}$")


@dataclass(frozen=True)
class ExposeFacts:
    """The public API in front of an endpoint: a Lambda function behind an API Gateway REST API.

    function_role_arn:     the role the function runs as (the caller passes it to Lambda)
    creates_function_role: the expose creates that role itself (the caller needs iam:CreateRole...)
    rest_api_id:           the API being updated; None when the expose creates a new one
    """

    function_name: str
    function_role_arn: str
    creates_function_role: bool = False
    rest_api_id: str | None = None


@dataclass(frozen=True)
class DeploymentFacts:
    """One deployment as the preflight sees it.

    model_name / endpoint_config_name: the exact names this run creates. A name that starts with
    `<endpoint_name>-` is granted as that family (`model/<endpoint>-*`) in fix policies, so the
    policy printed once keeps working for the blue/green deploys that follow.
    image_uri: the container image; None before one is chosen (ECR rows then name the Hugging
    Face inference repository in any account of the region).
    uploads_model / creates_bucket: the run uploads the archive (and creates the bucket) itself.
    async_output_url / sns_topic_arns: an async endpoint's output location and notifications.
    """

    account_id: str
    region: str
    bucket: str
    model_key: str
    execution_role_arn: str
    endpoint_name: str
    model_name: str
    endpoint_config_name: str
    partition: str = "aws"
    image_uri: str | None = None
    uploads_model: bool = True
    creates_bucket: bool = False
    autoscaling: bool = False
    async_output_url: str | None = None
    sns_topic_arns: tuple[str, ...] = ()
    expose: ExposeFacts | None = None

    # --- ARNs ------------------------------------------------------------------------------

    def arn(
        self, service: str, resource: str, *, region: str | None = None, account: str | None = None
    ) -> str:
        """An ARN in this deployment's partition, region and account unless told otherwise
        ('' for services whose ARNs leave them out, '*' for any)."""
        in_region = self.region if region is None else region
        in_account = self.account_id if account is None else account
        return f"arn:{self.partition}:{service}:{in_region}:{in_account}:{resource}"

    @property
    def model_prefix(self) -> str:
        """The model's S3 folder ('qa-console/'), or '' for a key at the bucket's root."""
        folder, _, _ = self.model_key.rpartition("/")
        return f"{folder}/" if folder else ""

    @property
    def bucket_arn(self) -> str:
        return f"arn:{self.partition}:s3:::{self.bucket}"

    def object_arn(self, key: str) -> str:
        return f"{self.bucket_arn}/{key}"

    def sagemaker_arn(self, kind: str, name: str) -> str:
        # SageMaker writes resource names lower-case in its ARNs, and IAM matches those.
        return self.arn("sagemaker", f"{kind}/{name.lower()}")

    @property
    def endpoint_arn(self) -> str:
        return self.sagemaker_arn("endpoint", self.endpoint_name)

    @property
    def model_arn(self) -> str:
        return self.sagemaker_arn("model", self.model_name)

    @property
    def endpoint_config_arn(self) -> str:
        return self.sagemaker_arn("endpoint-config", self.endpoint_config_name)

    def family_arn(self, kind: str, name: str) -> str:
        """What a fix policy grants for a model or endpoint config this deploy creates."""
        stem = f"{self.endpoint_name}-"
        if name.lower().startswith(stem.lower()):
            return self.sagemaker_arn(kind, f"{stem}*")
        return self.sagemaker_arn(kind, name)

    @property
    def log_group(self) -> str:
        return f"/aws/sagemaker/Endpoints/{self.endpoint_name}"

    def log_group_arn(self, group: str | None = None) -> str:
        """`log-group:NAME:*`: the form IAM matches for reads and for the group's streams."""
        return self.arn("logs", f"log-group:{group or self.log_group}:*")

    def log_streams_arn(self, group: str | None = None) -> str:
        return self.arn("logs", f"log-group:{group or self.log_group}:log-stream:*")

    @property
    def async_output_arn(self) -> str | None:
        """Where an async endpoint writes results (its folder, as a pattern), if it is async."""
        if not self.async_output_url:
            return None
        bucket, _, folder = self.async_output_url.removeprefix("s3://").partition("/")
        folder = folder.strip("/")
        return f"arn:{self.partition}:s3:::{bucket}/{folder + '/' if folder else ''}*"

    @property
    def image_repository_arn(self) -> str:
        """The ECR repository the execution role pulls the image from."""
        match = _ECR_IMAGE.match(self.image_uri or "")
        if match is None:
            return self.arn("ecr", f"repository/{DEFAULT_IMAGE_REPOSITORY}", account="*")
        return (
            f"arn:{self.partition}:ecr:{match['region']}:{match['account']}:"
            f"repository/{match['repository']}"
        )

    @property
    def role_name(self) -> str:
        return self.execution_role_arn.rsplit("/", 1)[-1]


def role_arn(role: str, identity: CallerIdentity) -> str:
    """A role ARN from an ARN or a bare role name (in the caller's account)."""
    if _ROLE_ARN.match(role):
        return role
    if _ROLE_NAME.match(role):
        return f"arn:{identity.partition}:iam::{identity.account_id}:role/{role}"
    raise UsageError(
        f"{role!r} is neither a role ARN nor a role name",
        hint="pass arn:aws:iam::ACCOUNT:role/NAME or just NAME",
    )


def deployment_facts(
    identity: CallerIdentity,
    region: str,
    *,
    endpoint_name: str,
    execution_role: str | None,
    bucket: str | None = None,
    folder: str | None = None,
    model_url: str | None = None,
    image_uri: str | None = None,
    model_name: str | None = None,
    endpoint_config_name: str | None = None,
    uploads_model: bool = True,
    autoscaling: bool = False,
    expose: ExposeFacts | None = None,
) -> DeploymentFacts:
    """DeploymentFacts from settings-level inputs, the way `upload` and `deploy` resolve them:
    the model at `model_url`, else `<folder>/model.tar.gz` in `bucket` (default
    qa-console-<account>-<region>); the model and config named `<endpoint>-model` and
    `<endpoint>-config` unless given. Raises UsageError without an execution role."""
    from qa_console.ops.aws import s3

    if not execution_role:
        raise UsageError(
            "no SageMaker execution role to check",
            hint="pass --role ARN, set one (qa-console config set execution_role ARN), or "
            "create one: qa-console iam create-role NAME",
        )
    if model_url:
        bucket, prefix = s3.parse_s3_url(model_url)
        key = s3.object_key(prefix, MODEL_FILENAME)
    else:
        key = s3.object_key((folder or "").strip("/") + "/", MODEL_FILENAME).lstrip("/")
    return DeploymentFacts(
        account_id=identity.account_id,
        region=region,
        partition=identity.partition,
        bucket=bucket or s3.default_bucket_name(identity.account_id, region),
        model_key=key,
        execution_role_arn=role_arn(execution_role, identity),
        endpoint_name=endpoint_name,
        model_name=model_name or f"{endpoint_name}-model",
        endpoint_config_name=endpoint_config_name or f"{endpoint_name}-config",
        image_uri=image_uri,
        uploads_model=uploads_model,
        autoscaling=autoscaling,
        expose=expose,
    )
