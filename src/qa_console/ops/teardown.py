"""`qa-console teardown NAME`: delete what the record says qa-console created for an endpoint, in
dependency order, idempotently.

The record (qa_console/store/resources.py) lists each resource a deploy, an expose or a
create-role made. Teardown deletes them front to back: the public API before the Lambda behind
it, autoscaling before the endpoint, the endpoint before its configs and models, roles last. A
resource already gone counts as deleted, so a teardown interrupted half-way is finished by
running it again. S3 objects stay unless purge_s3 is set. Nothing not recorded is touched.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from qa_console.errors import UsageError
from qa_console.events import ProgressCallback, ProgressEvent, ignore_progress
from qa_console.ops.aws.errors import NOT_FOUND_CODES, aws_errors, error_code

if TYPE_CHECKING:
    from qa_console.ops.aws.target import Target
    from qa_console.store.resources import Resource

# Deletion order, first to last. A kind not listed here is deleted before roles, after the rest.
ORDER = (
    "apigateway-usage-plan-key",
    "apigateway-usage-plan",
    "apigateway-api-key",
    "apigateway-rest-api",
    "lambda-function",
    "autoscaling-policy",
    "autoscaling-target",
    "sagemaker-endpoint",
    "sagemaker-endpoint-config",
    "sagemaker-model",
    "s3-object",
    "iam-role",
)
GONE_CODES = NOT_FOUND_CODES | {"ValidationException", "ObjectNotFoundException"}


@dataclass(frozen=True)
class TeardownResult:
    endpoint: str
    dry_run: bool
    deleted: list[dict[str, Any]] = field(default_factory=list)
    already_gone: list[dict[str, Any]] = field(default_factory=list)
    kept: list[dict[str, Any]] = field(default_factory=list)  # S3 data without purge

    def to_dict(self) -> dict[str, Any]:
        return {
            "endpoint": self.endpoint,
            "dry_run": self.dry_run,
            "deleted": self.deleted,
            "already_gone": self.already_gone,
            "kept": self.kept,
        }


def planned(target: Target, endpoint: str) -> list[Resource]:
    """What teardown of `endpoint` would delete, in the order it would."""
    from qa_console.store import open_store
    from qa_console.store.resources import existing

    with open_store() as store:
        found = existing(store, target.name, target.region, endpoint)
    rank = {kind: number for number, kind in enumerate(ORDER)}
    roles = rank["iam-role"]
    return sorted(found, key=lambda item: (rank.get(item.kind, roles - 0.5), -item.id))


def teardown(
    target: Target,
    endpoint: str,
    *,
    dry_run: bool = False,
    purge_s3: bool = False,
    progress: ProgressCallback = ignore_progress,
) -> TeardownResult:
    """Delete the recorded resources of `endpoint`; see the module docstring. Raises UsageError
    when nothing is recorded for it."""
    from qa_console.store import open_store
    from qa_console.store.resources import mark_deleted

    resources = planned(target, endpoint)
    if not resources:
        raise UsageError(
            f"qa-console has no record of resources for endpoint {endpoint} in {target.describe()}",
            hint="`qa-console status` lists endpoints; teardown deletes only what qa-console "
            "created",
        )
    result = TeardownResult(endpoint, dry_run)
    for number, item in enumerate(resources, 1):
        entry = {"kind": item.kind, "name": item.name}
        if item.kind == "s3-object" and not purge_s3:
            result.kept.append(entry)
            continue
        progress(ProgressEvent("teardown", f"{item.kind} {item.name}", number - 1, len(resources)))
        if dry_run:
            result.deleted.append(entry)
            continue
        gone = delete_resource(target, item.kind, item.name, dict(item.details))
        (result.already_gone if gone else result.deleted).append(entry)
        with open_store() as store:
            mark_deleted(store, item.id)
    if not dry_run and any(item.kind == "apigateway-rest-api" for item in resources):
        result.deleted.extend(_forget_api_client(endpoint))
    progress(ProgressEvent("teardown", "done", len(resources), len(resources), done=True))
    return result


def _forget_api_client(endpoint: str) -> list[dict[str, Any]]:
    """Remove what expose set up on this machine for the deleted API: the http backend
    ENDPOINT-api in the user's plugins.toml and its key file."""
    from qa_console.plugins_file import (
        api_backend_name,
        api_key_file,
        user_plugins_file,
        write_instance,
    )

    name = api_backend_name(endpoint)
    removed = []
    plugins = user_plugins_file()
    if plugins.is_file() and f"[backends.{name}]" in plugins.read_text(encoding="utf-8"):
        write_instance(name, None)
        removed.append({"kind": "http-backend", "name": f"{name} ({plugins})"})
    key_file = api_key_file(name)
    if key_file.exists():
        key_file.unlink()
        removed.append({"kind": "api-key-file", "name": str(key_file)})
    return removed


def delete_resource(
    target: Target, kind: str, name: str, details: dict[str, Any] | None = None
) -> bool:
    """Delete one resource; True when it was already gone. Raises typed errors otherwise."""
    from botocore.exceptions import ClientError

    deleter = DELETERS.get(kind)
    if deleter is None:
        raise UsageError(f"qa-console does not know how to delete a {kind!r}")
    with aws_errors(f"delete {kind} {name}", target=target, resource=f"{kind} {name}"):
        try:
            deleter(target, name, details or {})
        except ClientError as error:
            if error_code(error) in GONE_CODES and _looks_gone(error):
                return True
            raise
    return False


def _looks_gone(error: Any) -> bool:
    """ValidationException also means "bad request"; only treat it as gone when it says so."""
    if error_code(error) != "ValidationException":
        return True
    message = str(error.response.get("Error", {}).get("Message", "")).lower()
    return any(word in message for word in ("not found", "could not find", "does not exist"))


# --- one deleter per kind ------------------------------------------------------------------

Deleter = Callable[["Target", str, dict[str, Any]], None]


def _endpoint(target: Target, name: str, details: dict[str, Any]) -> None:
    sagemaker = target.client("sagemaker")
    sagemaker.delete_endpoint(EndpointName=name)
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:  # its configs and models go next: wait until it is gone
        try:
            status = sagemaker.describe_endpoint(EndpointName=name)["EndpointStatus"]
        except Exception:
            return
        if status != "Deleting":
            return
        time.sleep(1.0)


def _endpoint_config(target: Target, name: str, details: dict[str, Any]) -> None:
    target.client("sagemaker").delete_endpoint_config(EndpointConfigName=name)


def _model(target: Target, name: str, details: dict[str, Any]) -> None:
    target.client("sagemaker").delete_model(ModelName=name)


def _scaling_policy(target: Target, name: str, details: dict[str, Any]) -> None:
    target.client("application-autoscaling").delete_scaling_policy(
        PolicyName=name,
        ServiceNamespace="sagemaker",
        ResourceId=details["resource_id"],
        ScalableDimension=details["dimension"],
    )


def _scaling_target(target: Target, name: str, details: dict[str, Any]) -> None:
    target.client("application-autoscaling").deregister_scalable_target(
        ServiceNamespace="sagemaker", ResourceId=name, ScalableDimension=details["dimension"]
    )


def _role(target: Target, name: str, details: dict[str, Any]) -> None:
    from qa_console.ops.iam.role import delete_role

    delete_role(target, name, tuple(details.get("policy_names", ())))


def _s3_object(target: Target, name: str, details: dict[str, Any]) -> None:
    from qa_console.ops.aws.s3 import parse_s3_url

    bucket, key = parse_s3_url(name)
    target.client("s3").delete_object(Bucket=bucket, Key=key)


def _usage_plan_key(target: Target, name: str, details: dict[str, Any]) -> None:
    target.client("apigateway").delete_usage_plan_key(
        usagePlanId=details["usage_plan_id"], keyId=name
    )


def _usage_plan(target: Target, name: str, details: dict[str, Any]) -> None:
    """A plan still tied to a stage cannot go: untie it first."""
    apigw = target.client("apigateway")
    plan = apigw.get_usage_plan(usagePlanId=name)
    operations = [
        {"op": "remove", "path": "/apiStages", "value": f"{stage['apiId']}:{stage['stage']}"}
        for stage in plan.get("apiStages", [])
    ]
    if operations:
        apigw.update_usage_plan(usagePlanId=name, patchOperations=operations)
    apigw.delete_usage_plan(usagePlanId=name)


def _api_key(target: Target, name: str, details: dict[str, Any]) -> None:
    target.client("apigateway").delete_api_key(apiKey=name)


def _rest_api(target: Target, name: str, details: dict[str, Any]) -> None:
    target.client("apigateway").delete_rest_api(restApiId=name)


def _function(target: Target, name: str, details: dict[str, Any]) -> None:
    target.client("lambda").delete_function(FunctionName=name)


DELETERS: dict[str, Deleter] = {
    "apigateway-usage-plan-key": _usage_plan_key,
    "apigateway-usage-plan": _usage_plan,
    "apigateway-api-key": _api_key,
    "apigateway-rest-api": _rest_api,
    "lambda-function": _function,
    "sagemaker-endpoint": _endpoint,
    "sagemaker-endpoint-config": _endpoint_config,
    "sagemaker-model": _model,
    "autoscaling-policy": _scaling_policy,
    "autoscaling-target": _scaling_target,
    "iam-role": _role,
    "s3-object": _s3_object,
}
