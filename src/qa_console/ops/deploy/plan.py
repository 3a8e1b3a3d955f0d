"""A deploy plan: from what the user asked (mode, memory, instance, budget, ...) and the checked
archive, every name, the container image, the instance or serverless size with its cost, and
the exact boto3 requests the deploy will send (what `deploy --dry-run` prints).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from qa_console.errors import UsageError
from qa_console.ops.aws.images import ContainerImage, huggingface_image, transformers_of_image
from qa_console.ops.deploy import pricing

if TYPE_CHECKING:
    from qa_console.ops.aws.target import Target

Mode = Literal["serverless", "realtime", "async"]
MODES: tuple[Mode, ...] = ("serverless", "realtime", "async")
VARIANT = "AllTraffic"
NAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")
ROLE_ARN = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]+$")
STAMP_LENGTH = 16  # "-20250101-120000"
MAX_CONCURRENCY = 200  # serverless limits
MIN_INVOCATIONS_TARGET = 1
# Target tracking: invocations per instance per minute before autoscaling adds one (real-time),
# or queued requests per instance (async, which can scale to zero).
INVOCATIONS_PER_INSTANCE = 70
BACKLOG_PER_INSTANCE = 5
GPU_FAMILIES = ("g", "p")


@dataclass(frozen=True)
class DeployRequest:
    """What the user asked for. Sizes left None are chosen from the model's memory need."""

    endpoint: str
    model_url: str  # s3://bucket/key of the uploaded model.tar.gz
    role_arn: str
    weights_bytes: int
    transformers_version: str | None  # from the archive's manifest
    mode: Mode = "serverless"
    memory_mb: int | None = None
    max_concurrency: int = 5
    provisioned_concurrency: int | None = None
    instance_type: str = "auto"
    instance_count: int = 1
    budget_usd_per_hour: float | None = None
    workers: int = 1
    async_output: str | None = None  # s3:// where async answers go
    sns_topic: str | None = None
    autoscale: tuple[int, int] | None = None  # (min, max) instances
    image_uri: str | None = None  # instead of the Hugging Face image chosen from the manifest
    prices: Path | None = None  # instance table instead of the shipped one
    requests_per_day: float = pricing.DEFAULT_REQUESTS_PER_DAY
    seconds_per_request: float = pricing.DEFAULT_SECONDS_PER_REQUEST


@dataclass(frozen=True)
class DeployPlan:
    request: DeployRequest
    region: str
    image: ContainerImage
    model_name: str
    config_name: str
    choice: pricing.InstanceChoice | None = None  # real-time and async
    serverless_memory_mb: int | None = None
    cost: dict[str, Any] = field(default_factory=dict)

    @property
    def endpoint(self) -> str:
        return self.request.endpoint

    @property
    def mode(self) -> Mode:
        return self.request.mode

    def model_request(self) -> dict[str, Any]:
        request = self.request
        environment = {
            # The Hugging Face toolkit runs code/inference.py from the unpacked archive.
            "SAGEMAKER_PROGRAM": "inference.py",
            "SAGEMAKER_SUBMIT_DIRECTORY": "/opt/ml/model/code",
            "SAGEMAKER_CONTAINER_LOG_LEVEL": "20",
            "SAGEMAKER_REGION": self.region,
            "SAGEMAKER_MODEL_SERVER_WORKERS": str(request.workers),
        }
        return {
            "ModelName": self.model_name,
            "ExecutionRoleArn": request.role_arn,
            "PrimaryContainer": {
                "Image": self.image.uri,
                "ModelDataUrl": request.model_url,
                "Environment": environment,
            },
            "Tags": _tags(self.endpoint),
        }

    def variant(self) -> dict[str, Any]:
        request = self.request
        variant: dict[str, Any] = {"VariantName": VARIANT, "ModelName": self.model_name}
        if self.mode == "serverless":
            serverless: dict[str, Any] = {
                "MemorySizeInMB": self.serverless_memory_mb,
                "MaxConcurrency": request.max_concurrency,
            }
            if request.provisioned_concurrency:
                serverless["ProvisionedConcurrency"] = request.provisioned_concurrency
            variant["ServerlessConfig"] = serverless
        else:
            assert self.choice is not None
            variant.update(
                InstanceType=self.choice.instance.name,
                InitialInstanceCount=self.choice.count,
                InitialVariantWeight=1.0,
            )
        return variant

    def config_request(self) -> dict[str, Any]:
        config: dict[str, Any] = {
            "EndpointConfigName": self.config_name,
            "ProductionVariants": [self.variant()],
            "Tags": _tags(self.endpoint),
        }
        if self.mode == "async":
            output: dict[str, Any] = {"S3OutputPath": self.request.async_output}
            if self.request.sns_topic:
                output["NotificationConfig"] = {
                    "SuccessTopic": self.request.sns_topic,
                    "ErrorTopic": self.request.sns_topic,
                }
            config["AsyncInferenceConfig"] = {
                "OutputConfig": output,
                "ClientConfig": {"MaxConcurrentInvocationsPerInstance": self.request.workers},
            }
        return config

    def endpoint_request(self, update: bool) -> dict[str, Any]:
        if update:
            return {"EndpointName": self.endpoint, "EndpointConfigName": self.config_name}
        return {
            "EndpointName": self.endpoint,
            "EndpointConfigName": self.config_name,
            "Tags": _tags(self.endpoint),
        }

    def scaling_requests(self) -> list[tuple[str, dict[str, Any]]]:
        if self.request.autoscale is None:
            return []
        low, high = self.request.autoscale
        resource = f"endpoint/{self.endpoint}/variant/{VARIANT}"
        dimension = "sagemaker:variant:DesiredInstanceCount"
        if self.mode == "async":
            metric: dict[str, Any] = {
                "CustomizedMetricSpecification": {
                    "MetricName": "ApproximateBacklogSizePerInstance",
                    "Namespace": "AWS/SageMaker",
                    "Dimensions": [{"Name": "EndpointName", "Value": self.endpoint}],
                    "Statistic": "Average",
                },
                "TargetValue": float(BACKLOG_PER_INSTANCE),
            }
        else:
            metric = {
                "PredefinedMetricSpecification": {
                    "PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"
                },
                "TargetValue": float(INVOCATIONS_PER_INSTANCE),
            }
        metric.update(ScaleInCooldown=300, ScaleOutCooldown=60)
        return [
            (
                "register_scalable_target",
                {
                    "ServiceNamespace": "sagemaker",
                    "ResourceId": resource,
                    "ScalableDimension": dimension,
                    "MinCapacity": low,
                    "MaxCapacity": high,
                },
            ),
            (
                "put_scaling_policy",
                {
                    "PolicyName": f"{self.endpoint}-target-tracking",
                    "ServiceNamespace": "sagemaker",
                    "ResourceId": resource,
                    "ScalableDimension": dimension,
                    "PolicyType": "TargetTrackingScaling",
                    "TargetTrackingScalingPolicyConfiguration": metric,
                },
            ),
        ]

    def calls(self, update: bool) -> list[dict[str, Any]]:
        """The boto3 calls in order, as (service, operation, parameters) records."""
        endpoint_call = "update_endpoint" if update else "create_endpoint"
        sequence: list[dict[str, Any]] = [
            {"service": "sagemaker", "operation": "create_model", "params": self.model_request()},
            {
                "service": "sagemaker",
                "operation": "create_endpoint_config",
                "params": self.config_request(),
            },
            {
                "service": "sagemaker",
                "operation": endpoint_call,
                "params": self.endpoint_request(update),
            },
        ]
        sequence += [
            {"service": "application-autoscaling", "operation": operation, "params": params}
            for operation, params in self.scaling_requests()
        ]
        return sequence

    def summary(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "endpoint": self.endpoint,
            "mode": self.mode,
            "region": self.region,
            "image": self.image.uri,
            "image_note": self.image.note,
            "model_name": self.model_name,
            "config_name": self.config_name,
            "cost": self.cost,
        }
        if self.choice is not None:
            data["instance"] = self.choice.to_dict()
        if self.serverless_memory_mb is not None:
            data["serverless"] = {
                "memory_mb": self.serverless_memory_mb,
                "max_concurrency": self.request.max_concurrency,
                "provisioned_concurrency": self.request.provisioned_concurrency,
            }
        return data


def _tags(endpoint: str) -> list[dict[str, str]]:
    return [
        {"Key": "qa-console", "Value": "deploy"},
        {"Key": "qa-console:endpoint", "Value": endpoint},
    ]


def run_names(endpoint: str, now: datetime | None = None) -> tuple[str, str]:
    """(model name, endpoint-config name) of one deploy run: the endpoint's name and a UTC stamp,
    new every run, so a re-deploy never collides with what is serving."""
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%d-%H%M%S")
    stem = endpoint[: 63 - STAMP_LENGTH - 2].rstrip("-")
    return f"{stem}-m-{stamp}", f"{stem}-c-{stamp}"


def check_request(request: DeployRequest) -> None:
    """Refuse what SageMaker would refuse, before any call. Raises UsageError."""
    if not NAME.match(request.endpoint):
        raise UsageError(
            f"{request.endpoint!r} is not a valid endpoint name",
            hint="letters, digits and '-', at most 63 characters, starting with a letter or digit",
        )
    if not ROLE_ARN.match(request.role_arn or ""):
        raise UsageError(
            f"the execution role {request.role_arn!r} is not an IAM role ARN",
            hint="qa-console config set execution_role arn:aws:iam::<account>:role/<name>, "
            "or create one: qa-console iam create-role NAME",
        )
    if request.mode not in MODES:
        raise UsageError(f"unknown deploy mode {request.mode!r}", hint=f"one of {MODES}")
    if request.mode == "serverless":
        if request.memory_mb is not None and (
            request.memory_mb % 1024 or not 1024 <= request.memory_mb <= pricing.SERVERLESS_MAX_MB
        ):
            raise UsageError(
                f"--memory {request.memory_mb} MB: serverless memory is 1024 to 6144 MB in 1 GB "
                "steps",
                hint="e.g. --memory 2048",
            )
        if not 1 <= request.max_concurrency <= MAX_CONCURRENCY:
            raise UsageError(f"--concurrency must be 1 to {MAX_CONCURRENCY}")
        if request.provisioned_concurrency is not None and not (
            1 <= request.provisioned_concurrency <= request.max_concurrency
        ):
            raise UsageError("--provisioned must be between 1 and --concurrency")
        if request.autoscale is not None:
            raise UsageError("--autoscale is for instances; serverless scales by itself")
    else:
        if request.instance_count < 1:
            raise UsageError("--instance-count must be at least 1")
        if request.instance_type != "auto" and not request.instance_type.startswith("ml."):
            raise UsageError(
                f"{request.instance_type!r} is not a SageMaker instance type",
                hint="e.g. ml.m5.large, or auto",
            )
    if request.mode == "async" and not (request.async_output or "").startswith("s3://"):
        raise UsageError("--async needs --output s3://bucket/prefix/ for the answers")
    if request.autoscale is not None:
        low, high = request.autoscale
        floor = 0 if request.mode == "async" else 1
        if not floor <= low <= high:
            raise UsageError(
                f"--autoscale {low}:{high}: need {floor} <= MIN <= MAX",
                hint="async endpoints can scale to 0; real-time ones keep at least 1",
            )


def plan_deploy(target: Target, request: DeployRequest) -> DeployPlan:
    """Resolve names, image and size for `request` on `target`. No AWS call is made."""
    check_request(request)
    model_name, config_name = run_names(request.endpoint)
    need = pricing.memory_need(request.weights_bytes, request.workers)
    choice: pricing.InstanceChoice | None = None
    memory: int | None = None
    if request.mode == "serverless":
        memory = request.memory_mb or pricing.serverless_memory_mb(need)
        if memory < need.total_mb:
            raise UsageError(
                f"--memory {memory} MB is less than the model needs (about {need.total_mb} MB)",
                hint=f"use --memory {pricing.serverless_memory_mb(need)}",
            )
        cost = pricing.serverless_cost(
            memory, request.requests_per_day, request.seconds_per_request
        )
        processor = "cpu"
    else:
        table = pricing.load_instances(request.prices)
        if request.instance_type == "auto":
            choice = pricing.choose_instance(
                need,
                table,
                budget_usd_per_hour=request.budget_usd_per_hour,
                count=request.instance_count,
            )
        else:
            choice = _named_instance(request, need, table)
        cost = {
            "usd_per_hour": round(choice.usd_per_hour, 4),
            "usd_per_month": round(choice.usd_per_hour * pricing.HOURS_PER_MONTH, 2),
            "prices": pricing.PRICES_SOURCE,
        }
        processor = "gpu" if _family(choice.instance.name).startswith(GPU_FAMILIES) else "cpu"
    image = _image(target.region, request, processor)
    return DeployPlan(request, target.region, image, model_name, config_name, choice, memory, cost)


def _named_instance(
    request: DeployRequest, need: pricing.MemoryNeed, table: list[pricing.InstanceType]
) -> pricing.InstanceChoice:
    instance = pricing.find_instance(request.instance_type, table)
    if instance is None:
        raise UsageError(
            f"{request.instance_type} is not in the instance table",
            hint="pick one of: " + ", ".join(item.name for item in table[:8]) + ", ... "
            "(or --prices FILE with your own table)",
        )
    if instance.memory_mb < need.total_mb:
        raise UsageError(
            f"{instance.name} has {instance.memory_mb} MB; the model needs about "
            f"{need.total_mb} MB with {need.workers} worker(s)",
            hint="pick a larger instance, or --instance-type auto",
        )
    cost = instance.usd_per_hour * request.instance_count
    if request.budget_usd_per_hour is not None and cost > request.budget_usd_per_hour:
        raise UsageError(
            f"{request.instance_count} x {instance.name} costs ${cost:.3f}/hour, over the "
            f"budget of ${request.budget_usd_per_hour:g}/hour",
            hint="raise --budget or use --instance-type auto",
        )
    return pricing.InstanceChoice(
        instance, request.instance_count, need, "chosen with --instance-type"
    )


def _family(instance_type: str) -> str:
    return instance_type.removeprefix("ml.").split(".")[0]


def _image(region: str, request: DeployRequest, processor: str) -> ContainerImage:
    if request.image_uri:
        given = transformers_of_image(request.image_uri) or "unknown"
        return ContainerImage(
            request.image_uri, given, "", "", processor, "image given with --image-uri"
        )
    if not request.transformers_version:
        raise UsageError(
            "the archive's manifest does not say which transformers saved the model",
            hint="package it again with `qa-console package MODEL_DIR`, or pass --image-uri",
        )
    if _family_inf(request):
        raise UsageError(
            f"{request.instance_type} is an Inferentia instance; the Hugging Face PyTorch "
            "inference images run on CPU and GPU instances",
            hint="use a CPU (ml.m5, ml.c5) or GPU (ml.g5, ml.g4dn) instance",
        )
    return huggingface_image("inference", region, request.transformers_version, processor=processor)


def _family_inf(request: DeployRequest) -> bool:
    return request.mode != "serverless" and _family(request.instance_type).startswith("inf")
