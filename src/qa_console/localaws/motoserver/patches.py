"""Close the gaps between stock moto (pinned in pyproject) and the SageMaker the project uses.

Applied inside the supervisor process before the moto server takes requests. Each gap has a test
in tests/test_localaws_moto_gaps.py that fails if a moto upgrade changes what is patched here:

- update_endpoint is not implemented: endpoints go Updating, then InService on the new config,
  and describe shows PendingDeploymentSummary meanwhile, as SageMaker does;
- the instance-type whitelist is years old (no ml.g5, g6, m6i, m7i, c6i, c7i, inf2, t3, p4d, p5):
  accept any well-formed ml.<family>.<size>;
- endpoints are InService at once: give them a Creating phase (QA_CONSOLE_LOCAL_CREATING_SECONDS,
  default 2) so waiters and progress bars wait for something real; and, when the local
  SageMaker runtime runs in this process (it reports each deployment's model load here), an
  endpoint passes to InService only once its model loaded, as SageMaker's /ping health check
  decides: a model that fails to load makes a new endpoint Failed, and an update roll back to
  the config that serves, with SageMaker's FailureReason (the container's log says why);
- describe responses carry empty members AWS omits (VpcConfig: {}, DataCaptureConfig: {},
  Containers: []);
- describe_endpoint lacks the AsyncInferenceConfig of async endpoints;
- creating a model, endpoint config or endpoint under an existing name silently replaces it,
  where SageMaker refuses;
- every request resolves its account by looking its access key up in the IAM backends of all
  six partitions, creating each one (with ~1,600 AWS-managed policies, ~0.2 s apiece) on the
  way: the first request after start-up waited over a second, and every snapshot carried six
  copies of the policies. Only partitions that exist can hold access keys, so only those are
  searched; IAM backends are now built when IAM (or a key in it) is used.
- update_usage_plan parses a throttle rateLimit as an int (AWS: a double, "0.5" is valid, and
  "10.0" made moto answer 500) and keeps a quota limit as a string: both are numbers now;
- training jobs are Completed at once, with a ModelArtifacts path nothing was written to, so
  `train --on sagemaker` failed on a missing model.tar.gz "of a completed job": they are Failed
  at once instead, with a FailureReason saying that the local AWS runs no training jobs.

Transitions are lazy: an endpoint's status is settled whenever it is read, from the deadline
stored on the endpoint itself, so no timer thread is needed and persisted endpoints that were
mid-transition at shutdown come back settled.
"""

from __future__ import annotations

import os
import re
import time
from typing import Any

CREATING_SECONDS_ENV = "QA_CONSOLE_LOCAL_CREATING_SECONDS"
DEFAULT_CREATING_SECONDS = 2.0

# Any SageMaker hosting instance type: ml.<family>.<size>, e.g. ml.g6e.12xlarge, ml.inf2.xlarge.
INSTANCE_TYPE = re.compile(r"^ml\.[a-z][a-z0-9-]*\.[a-z0-9]+$")

TRAINING_FAILURE_REASON = (
    "the embedded local AWS keeps training jobs but runs none: train on this machine with "
    "`qa-console train`, or on AWS with --target <profile>"
)

# Private per-endpoint state lives in one attribute; moto derives the response key "Qa" from it.
_PRIVATE = "_qa"
_PRIVATE_RESPONSE_KEY = "Qa"

_applied = False

# The health of each deployment, reported by the runtime: (endpoint ARN, config) -> reason, None
# when the model loaded. Only consulted once a runtime in this process has said it reports
# (expect_health_reports, at its start), so a bare moto server keeps its timed phases.
_health: dict[tuple[str, str], str | None] = {}
_health_gate = False
HEALTH_CHECK_LIMIT_S = 180.0  # SageMaker fails a container that does not pass /ping in 3 min
PING_FAILURE = (
    "The primary container for production variant {variant} did not pass the ping health "
    "check. Please check CloudWatch logs for this endpoint."
)


def applied() -> bool:
    return _applied


def expect_health_reports() -> None:
    """A runtime runs beside this control plane and reports every deployment: from now on an
    endpoint goes InService only on its word. (Switched on at the runtime's start, not at its
    first report: the first deployment after a start, often an update of a restored endpoint,
    would otherwise go InService on the timer while the old model still answers.)"""
    global _health_gate
    _health_gate = True


def report_health(endpoint_arn: str, config_name: str, problem: str | None) -> None:
    """The runtime's word on a deployment: its model loaded (problem None), or why it did not."""
    expect_health_reports()
    _health[(endpoint_arn, config_name)] = problem


def _replace(owner: Any, name: str, value: Any) -> None:
    """Patch one attribute of a moto class (a function, so type checkers accept it)."""
    setattr(owner, name, value)


def creating_seconds() -> float:
    """How long a new or updated endpoint stays Creating/Updating (0 = InService at once)."""
    raw = os.environ.get(CREATING_SECONDS_ENV, "")
    try:
        return max(0.0, float(raw)) if raw else DEFAULT_CREATING_SECONDS
    except ValueError:
        return DEFAULT_CREATING_SECONDS


def apply() -> None:
    """Patch moto's SageMaker in this process. Idempotent."""
    global _applied
    if _applied:
        return
    os.environ.setdefault("MOTO_IAM_LOAD_MANAGED_POLICIES", "true")
    _patch_instance_types()
    _patch_endpoint_lifecycle()
    _patch_empty_members()
    _patch_duplicate_names()
    _patch_update_endpoint()
    _patch_lazy_iam_partitions()
    _patch_training_jobs()
    _patch_usage_plan_numbers()
    _applied = True


def _patch_instance_types() -> None:
    from moto.sagemaker.exceptions import ValidationError
    from moto.sagemaker.models import FakeEndpointConfig

    def validate_instance_type(self: Any, instance_type: str) -> None:
        if not isinstance(instance_type, str) or not INSTANCE_TYPE.match(instance_type):
            raise ValidationError(
                message=f"Value '{instance_type}' at 'instanceType' failed to satisfy constraint: "
                "Member must be a SageMaker ML instance type such as ml.m5.large"
            )

    _replace(FakeEndpointConfig, "validate_instance_type", validate_instance_type)


def _private(endpoint: Any) -> dict[str, Any]:
    state = endpoint.__dict__.get(_PRIVATE)
    if state is None:
        state = endpoint.__dict__[_PRIVATE] = {}
    return state


def _settle(endpoint: Any) -> None:
    """Finish a Creating/Updating phase whose deadline has passed (and, with the health gate,
    whose model the runtime has reported on)."""
    from moto.core.utils import utcnow

    state = endpoint.__dict__.get(_PRIVATE)
    if not state or state.get("ready_at") is None or time.time() < state["ready_at"]:
        return
    pending = state.get("pending")
    config = pending["EndpointConfigName"] if pending else endpoint.endpoint_config_name
    if _health_gate and _unhealthy(endpoint, state, config):
        return
    pending = state.pop("pending", None)
    state.pop("ready_at", None)
    state.pop("started_at", None)
    if pending is not None:
        endpoint.endpoint_config_name = pending["EndpointConfigName"]
        endpoint.production_variants = endpoint._process_production_variants(
            pending["ProductionVariants"]
        )
        endpoint.data_capture_config = pending.get("DataCaptureConfig") or {}
        state["async_inference_config"] = pending.get("AsyncInferenceConfig") or {}
        endpoint.last_modified_time = utcnow()
    endpoint.__dict__["endpoint_status"] = "InService"


def _unhealthy(endpoint: Any, state: dict[str, Any], config: str) -> bool:
    """Apply the runtime's report on `config`: True while the phase must go on (no word yet);
    a failure ends it (Failed when creating, back to the serving config when updating)."""
    key = (endpoint.arn, config)
    started = float(state.get("started_at") or time.time())
    if key not in _health:
        if time.time() - started < HEALTH_CHECK_LIMIT_S:
            return True
        problem: str | None = "no answer to /ping"
    else:
        problem = _health[key]
    if problem is None:
        return False
    variants = (state.get("pending") or {}).get("ProductionVariants") or [
        {"VariantName": "AllTraffic"}
    ]
    reason = PING_FAILURE.format(variant=variants[0].get("VariantName", "AllTraffic"))
    updating = state.pop("pending", None) is not None
    state.pop("ready_at", None)
    state.pop("started_at", None)
    endpoint.__dict__["failure_reason"] = reason
    endpoint.__dict__["endpoint_status"] = "InService" if updating else "Failed"
    return True


def _start_phase(endpoint: Any, status: str) -> None:
    _private(endpoint)["started_at"] = time.time()
    endpoint.__dict__["failure_reason"] = None
    seconds = creating_seconds()
    if seconds <= 0:
        endpoint.__dict__["endpoint_status"] = status
        _private(endpoint)["ready_at"] = 0.0
        _settle(endpoint)
        return
    endpoint.__dict__["endpoint_status"] = status
    _private(endpoint)["ready_at"] = time.time() + seconds


def _patch_endpoint_lifecycle() -> None:
    from moto.sagemaker.models import FakeEndpoint, SageMakerModelBackend

    def get_status(self: Any) -> str:
        _settle(self)
        return str(self.__dict__.get("endpoint_status", "InService"))

    def set_status(self: Any, value: str) -> None:
        self.__dict__["endpoint_status"] = value

    # A data descriptor wins over the instance dict for attribute access, while moto's
    # gen_response_object (which walks __dict__) still finds the stored value.
    _replace(FakeEndpoint, "endpoint_status", property(get_status, set_status))

    original_create = SageMakerModelBackend.create_endpoint

    def create_endpoint(self: Any, endpoint_name: str, endpoint_config_name: str, tags: Any) -> Any:
        endpoint = original_create(self, endpoint_name, endpoint_config_name, tags)
        config = self.endpoint_configs[endpoint_config_name]
        _private(endpoint)["async_inference_config"] = config.async_inference_config or {}
        _start_phase(endpoint, "Creating")
        return endpoint

    _replace(SageMakerModelBackend, "create_endpoint", create_endpoint)


def _without_empty(response: dict[str, Any], *keys: str) -> dict[str, Any]:
    for key in keys:
        if key in response and response[key] in ({}, [], None):
            del response[key]
    return response


def _patch_empty_members() -> None:
    """Drop empty members from what describe_* send back (not from moto's internal dicts,
    which moto itself indexes, e.g. create_endpoint reads DataCaptureConfig)."""
    from moto.core.responses import ActionResult
    from moto.sagemaker.models import FakeEndpoint
    from moto.sagemaker.responses import SageMakerResponse

    endpoint_response: Any = vars(FakeEndpoint)["response_object"]

    def endpoint_object(self: Any) -> dict[str, Any]:
        _settle(self)
        response = endpoint_response.fget(self)
        state = response.pop(_PRIVATE_RESPONSE_KEY, None) or {}
        if state.get("async_inference_config"):
            response["AsyncInferenceConfig"] = state["async_inference_config"]
        pending = state.get("pending")
        if pending is not None:
            response["PendingDeploymentSummary"] = {
                "EndpointConfigName": pending["EndpointConfigName"],
                "ProductionVariants": [
                    _pending_variant(variant) for variant in pending["ProductionVariants"]
                ],
                "StartTime": pending["StartTime"],
            }
        return response

    _replace(FakeEndpoint, "response_object", property(endpoint_object))

    def trimmed(action: str, *keys: str) -> None:
        original = getattr(SageMakerResponse, action)

        def handler(self: Any) -> Any:
            result = original(self)
            if isinstance(result, ActionResult) and isinstance(result.result, dict):
                return ActionResult(_without_empty(dict(result.result), *keys))
            return result

        _replace(SageMakerResponse, action, handler)

    trimmed("describe_model", "VpcConfig", "Containers")
    trimmed("describe_endpoint_config", "DataCaptureConfig", "AsyncInferenceConfig", "KmsKeyId")
    trimmed("describe_endpoint", "DataCaptureConfig")


def _pending_variant(variant: dict[str, Any]) -> dict[str, Any]:
    summary: dict[str, Any] = {"VariantName": variant["VariantName"]}
    if "InitialInstanceCount" in variant:
        summary["DesiredInstanceCount"] = variant["InitialInstanceCount"]
    if "InstanceType" in variant:
        summary["InstanceType"] = variant["InstanceType"]
    if "InitialVariantWeight" in variant:
        summary["DesiredWeight"] = variant["InitialVariantWeight"]
    if "ServerlessConfig" in variant:
        summary["DesiredServerlessConfig"] = variant["ServerlessConfig"]
    return summary


def _patch_duplicate_names() -> None:
    from moto.sagemaker.exceptions import ValidationError
    from moto.sagemaker.models import SageMakerModelBackend
    from moto.sagemaker.utils import arn_formatter

    create_model = SageMakerModelBackend.create_model
    create_config = SageMakerModelBackend.create_endpoint_config
    create_endpoint = SageMakerModelBackend.create_endpoint

    def refuse(self: Any, kind: str, arn_kind: str, name: str) -> None:
        arn = arn_formatter(arn_kind, name, self.account_id, self.region_name)
        raise ValidationError(message=f'Cannot create already existing {kind} "{arn}".')

    def model(self: Any, model_name: str, *args: Any, **kwargs: Any) -> Any:
        if model_name in self._models:
            refuse(self, "model", "model", model_name)
        return create_model(self, model_name, *args, **kwargs)

    def config(self: Any, endpoint_config_name: str, *args: Any, **kwargs: Any) -> Any:
        if endpoint_config_name in self.endpoint_configs:
            refuse(self, "endpoint configuration", "endpoint-config", endpoint_config_name)
        return create_config(self, endpoint_config_name, *args, **kwargs)

    def endpoint(self: Any, endpoint_name: str, *args: Any, **kwargs: Any) -> Any:
        if endpoint_name in self.endpoints:
            refuse(self, "endpoint", "endpoint", endpoint_name)
        return create_endpoint(self, endpoint_name, *args, **kwargs)

    _replace(SageMakerModelBackend, "create_model", model)
    _replace(SageMakerModelBackend, "create_endpoint_config", config)
    _replace(SageMakerModelBackend, "create_endpoint", endpoint)


def _patch_update_endpoint() -> None:
    from moto.core.responses import ActionResult
    from moto.core.utils import utcnow
    from moto.sagemaker.exceptions import ValidationError
    from moto.sagemaker.models import FakeEndpoint, FakeEndpointConfig, SageMakerModelBackend
    from moto.sagemaker.responses import SageMakerResponse

    def update_endpoint(self: Any, endpoint_name: str, endpoint_config_name: str) -> Any:
        endpoint = self.endpoints.get(endpoint_name)
        if endpoint is None:
            arn = FakeEndpoint.arn_formatter(endpoint_name, self.account_id, self.region_name)
            raise ValidationError(message=f"Could not find endpoint '{arn}'.")
        config = self.endpoint_configs.get(endpoint_config_name)
        if config is None:
            arn = FakeEndpointConfig.arn_formatter(
                endpoint_config_name, self.account_id, self.region_name
            )
            raise ValidationError(message=f"Could not find endpoint configuration '{arn}'.")
        if endpoint.endpoint_status not in ("InService", "Failed"):
            raise ValidationError(message=f'Cannot update in-progress endpoint "{endpoint.arn}".')
        _private(endpoint)["pending"] = {
            "EndpointConfigName": endpoint_config_name,
            "ProductionVariants": [dict(variant) for variant in config.production_variants],
            "DataCaptureConfig": config.data_capture_config,
            "AsyncInferenceConfig": config.async_inference_config,
            "StartTime": utcnow(),
        }
        endpoint.last_modified_time = utcnow()
        _start_phase(endpoint, "Updating")
        return endpoint

    def update_endpoint_response(self: Any) -> Any:
        endpoint = self.sagemaker_backend.update_endpoint(
            endpoint_name=self._get_param("EndpointName"),
            endpoint_config_name=self._get_param("EndpointConfigName"),
        )
        return ActionResult({"EndpointArn": endpoint.arn})

    _replace(SageMakerModelBackend, "update_endpoint", update_endpoint)
    _replace(SageMakerResponse, "update_endpoint", update_endpoint_response)


def _patch_lazy_iam_partitions() -> None:
    import moto.iam.models as iam_models
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.utilities.utils import get_partition

    def existing(account: Any) -> list[tuple[str, Any]]:
        # dict's own view: AccountSpecificBackend.__getitem__ would create the backend.
        return list(dict.items(account))

    def get_account_id_from(access_key: str) -> str:
        for account_id, account in list(iam_models.iam_backends.items()):
            for _, backend in existing(account):
                if access_key in backend.access_keys:
                    return str(account_id)
        return str(DEFAULT_ACCOUNT_ID)

    original_mark = iam_models.mark_account_as_visited

    def mark_account_as_visited(
        account_id: str, access_key: str, service: str, region: str
    ) -> None:
        partition = get_partition(region)
        if account_id not in iam_models.iam_backends:
            return
        backends = dict(existing(iam_models.iam_backends[account_id]))
        if partition in backends and access_key in backends[partition].access_keys:
            original_mark(account_id, access_key, service, region)

    _replace(iam_models, "get_account_id_from", get_account_id_from)
    _replace(iam_models, "mark_account_as_visited", mark_account_as_visited)


def _patch_training_jobs() -> None:
    from moto.sagemaker.models import SageMakerModelBackend

    original_create = SageMakerModelBackend.create_training_job

    def create_training_job(self: Any, *args: Any, **kwargs: Any) -> Any:
        job: Any = original_create(self, *args, **kwargs)
        # Unset members (None) are left out of describe responses, as AWS leaves them out.
        job.training_job_status = job.secondary_status = "Failed"
        job.failure_reason = TRAINING_FAILURE_REASON
        job.model_artifacts = None
        job.final_metric_data_list = None
        job.secondary_status_transitions.append(
            {
                "Status": "Failed",
                "StartTime": job.creation_time,
                "EndTime": job.creation_time,
                "StatusMessage": TRAINING_FAILURE_REASON,
            }
        )
        return job

    _replace(SageMakerModelBackend, "create_training_job", create_training_job)


def _patch_usage_plan_numbers() -> None:
    from moto.apigateway.models import UsagePlan

    original = UsagePlan.apply_patch_operations
    numeric = {"/throttle/rateLimit": float, "/quota/limit": int}

    def apply_patch_operations(self: Any, patch_operations: list[dict[str, Any]]) -> None:
        rest = []
        for op in patch_operations:
            convert = numeric.get(op.get("path", ""))
            if convert is not None and op.get("op") in ("add", "replace"):
                section, _, field = op["path"].strip("/").partition("/")
                getattr(self, section)[field] = convert(float(op["value"]))
            else:
                rest.append(op)
        original(self, rest)

    _replace(UsagePlan, "apply_patch_operations", apply_patch_operations)
