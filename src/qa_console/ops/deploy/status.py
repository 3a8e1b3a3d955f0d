"""`qa-console status [NAME]`: what an endpoint is, serves and costs, or every endpoint in brief.

One endpoint: its status (and why, when Failed), each variant's instance type and count or
serverless memory and concurrency, the image and model URL it serves, when it was created and
last changed, autoscaling, $/hour from the instance table (or the serverless estimate), and
what qa-console's record holds for it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from qa_console.errors import UsageError
from qa_console.ops.aws.errors import aws_errors
from qa_console.ops.deploy import pricing

if TYPE_CHECKING:
    from qa_console.ops.aws.target import Target


def list_endpoints(target: Target) -> list[dict[str, Any]]:
    """Every endpoint of the target's region, newest first, with the ones qa-console made."""
    from qa_console.store import open_store
    from qa_console.store.resources import endpoints

    with open_store() as store:
        ours = set(endpoints(store, target.name, target.region))
    sagemaker = target.client("sagemaker")
    found: list[dict[str, Any]] = []
    with aws_errors("list endpoints", target=target):
        for page in sagemaker.get_paginator("list_endpoints").paginate():
            for item in page.get("Endpoints", []):
                found.append(
                    {
                        "name": item["EndpointName"],
                        "status": item["EndpointStatus"],
                        "created": str(item.get("CreationTime", "")),
                        "managed": item["EndpointName"] in ours,
                    }
                )
    return sorted(found, key=lambda item: item["created"], reverse=True)


def endpoint_status(target: Target, name: str) -> dict[str, Any]:
    """Everything `status NAME` shows, as one dict."""
    from qa_console.ops.deploy.rollout import current_endpoint
    from qa_console.store import open_store
    from qa_console.store.resources import existing

    described = current_endpoint(target, name)
    if described is None:
        raise UsageError(
            f"endpoint {name} does not exist in {target.describe()}",
            hint="`qa-console status` lists the endpoints; `qa-console deploy` creates one",
        )
    sagemaker = target.client("sagemaker")
    config_name = str(described.get("EndpointConfigName", ""))
    with aws_errors(f"read endpoint {name}", target=target, resource=f"endpoint {name}"):
        config = sagemaker.describe_endpoint_config(EndpointConfigName=config_name)
    table = pricing.load_instances()
    variants = []
    hourly = 0.0
    serverless = False
    for variant in config.get("ProductionVariants", []):
        entry = _variant(target, variant, described)
        instance = pricing.find_instance(entry.get("instance_type") or "", table)
        if instance is not None:
            entry["usd_per_hour"] = round(instance.usd_per_hour * entry["instance_count"], 4)
            hourly += entry["usd_per_hour"]
        if "serverless" in entry:
            serverless = True
            entry["cost"] = pricing.serverless_cost(entry["serverless"]["memory_mb"])
        variants.append(entry)
    with open_store() as store:
        recorded = [item.to_dict() for item in existing(store, target.name, target.region, name)]
    status = {
        "name": name,
        "arn": described.get("EndpointArn"),
        "status": described.get("EndpointStatus"),
        "failure_reason": described.get("FailureReason"),
        "created": str(described.get("CreationTime", "")),
        "last_modified": str(described.get("LastModifiedTime", "")),
        "config": config_name,
        "variants": variants,
        "async_output": config.get("AsyncInferenceConfig", {})
        .get("OutputConfig", {})
        .get("S3OutputPath"),
        "usd_per_hour": None if serverless else round(hourly, 4),
        "usd_per_month": None if serverless else round(hourly * pricing.HOURS_PER_MONTH, 2),
        "prices": pricing.PRICES_SOURCE,
        "recorded": recorded,
    }
    status["autoscaling"] = _autoscaling(target, name)
    return status


def _variant(target: Target, variant: dict[str, Any], described: dict[str, Any]) -> dict[str, Any]:
    name = variant["VariantName"]
    live: dict[str, Any] = next(
        (item for item in described.get("ProductionVariants", []) if item["VariantName"] == name),
        {},
    )
    entry: dict[str, Any] = {"name": name, "model": variant.get("ModelName")}
    if "ServerlessConfig" in variant:
        config = variant["ServerlessConfig"]
        entry["serverless"] = {
            "memory_mb": config.get("MemorySizeInMB"),
            "max_concurrency": config.get("MaxConcurrency"),
            "provisioned_concurrency": config.get("ProvisionedConcurrency"),
        }
    else:
        entry["instance_type"] = variant.get("InstanceType")
        entry["instance_count"] = int(
            live.get("CurrentInstanceCount") or variant.get("InitialInstanceCount") or 0
        )
    model_name = variant.get("ModelName")
    if model_name:
        sagemaker = target.client("sagemaker")
        with aws_errors(f"read model {model_name}", target=target, resource=f"model {model_name}"):
            model = sagemaker.describe_model(ModelName=model_name)
        container = model.get("PrimaryContainer", {})
        entry["image"] = container.get("Image")
        entry["model_url"] = container.get("ModelDataUrl")
        entry["role"] = model.get("ExecutionRoleArn")
    return entry


def _autoscaling(target: Target, name: str) -> list[dict[str, Any]]:
    try:
        scaling = target.client("application-autoscaling")
        described = scaling.describe_scalable_targets(
            ServiceNamespace="sagemaker", ResourceIds=[f"endpoint/{name}/variant/AllTraffic"]
        )
    except Exception:  # autoscaling is a detail of the status: its absence is not an error
        return []
    return [
        {"min": item["MinCapacity"], "max": item["MaxCapacity"], "resource": item["ResourceId"]}
        for item in described.get("ScalableTargets", [])
    ]
