"""Carrying out a deploy plan: create or update the endpoint, wait for it, warm it up, and undo
this run's work when a step fails.

- A new name: create_model, create_endpoint_config, create_endpoint, then wait through Creating.
- A name that serves already: a blue/green update. A new model and endpoint config, then
  update_endpoint; SageMaker keeps the old fleet serving until the new one is InService, so the
  endpoint answers throughout. Only then are the old model and config deleted (when this tool
  created them). Never a delete first, never a failure on "already exists".
- A deploy of a name that is Creating or Updating: refused (one deploy at a time).
- A failure mid-way: everything this run created is deleted again, newest first (the endpoint only
  if this run created it), and the error says what was rolled back and why the endpoint failed.

Each created resource is recorded in the store the moment AWS confirms it, so a crash still
leaves the record teardown needs.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from qa_console.errors import OperationError, QAConsoleError, TimeoutError_, UsageError
from qa_console.events import ProgressCallback, ProgressEvent, ignore_progress
from qa_console.ops.aws.errors import aws_errors, error_code
from qa_console.ops.deploy.diagnose import likely_cause
from qa_console.ops.logs.lines import endpoint_log_group
from qa_console.ops.logs.read import last_lines

if TYPE_CHECKING:
    from qa_console.ops.aws.target import Target
    from qa_console.ops.deploy.plan import DeployPlan

BUSY = ("Creating", "Updating", "SystemUpdating", "RollingBack", "Deleting")
WAIT_TIMEOUT_S = 30 * 60  # SageMaker gives a container 3 min to pass /ping; big images pull long
FIRST_POLL_S = 0.5
MAX_POLL_S = 15.0
WARMUP_QUESTION = "Who are you?"
LOG_LINES_READ = 20  # the container's last lines, searched for the likely cause
LOG_LINES_SHOWN = 5  # ...and the few of them printed above the error

Sleep = Callable[[float], None]


@dataclass
class Recorder:
    """Writes each created resource into the store's record, tagged with this run."""

    target: Target
    endpoint: str
    run_id: str
    created: list[dict[str, Any]] = field(default_factory=list)

    def add(self, kind: str, name: str, arn: str = "", **details: Any) -> int:
        from qa_console.store import open_store
        from qa_console.store.resources import record

        with open_store() as store:
            resource_id = record(
                store,
                run_id=self.run_id,
                target=self.target.name,
                region=self.target.region,
                endpoint=self.endpoint,
                kind=kind,
                name=name,
                arn=arn,
                details=details,
            )
        self.created.append({"id": resource_id, "kind": kind, "name": name, "arn": arn})
        return resource_id

    def mark_deleted(self, resource_id: int) -> None:
        from qa_console.store import open_store
        from qa_console.store.resources import mark_deleted

        with open_store() as store:
            mark_deleted(store, resource_id)

    def recorded(self) -> list[Any]:
        """This endpoint's resources still in place, from every run (newest first)."""
        from qa_console.store import open_store
        from qa_console.store.resources import existing

        with open_store() as store:
            return existing(store, self.target.name, self.target.region, self.endpoint)


@dataclass(frozen=True)
class RolloutResult:
    endpoint: str
    endpoint_arn: str
    updated: bool
    status: str
    seconds: float
    warmup: dict[str, Any]
    created: list[dict[str, Any]]
    retired: list[dict[str, Any]]  # the previous model and config, deleted after the update

    def to_dict(self) -> dict[str, Any]:
        return {
            "endpoint": self.endpoint,
            "endpoint_arn": self.endpoint_arn,
            "updated": self.updated,
            "status": self.status,
            "seconds": round(self.seconds, 2),
            "warmup": self.warmup,
            "created": self.created,
            "retired": self.retired,
        }


def current_endpoint(target: Target, name: str) -> dict[str, Any] | None:
    """describe_endpoint, or None when there is no endpoint of that name."""
    from botocore.exceptions import ClientError

    with aws_errors(f"look up endpoint {name}", target=target, resource=f"endpoint {name}"):
        try:
            found: dict[str, Any] = target.client("sagemaker").describe_endpoint(EndpointName=name)
        except ClientError as error:
            if error_code(error) in ("ValidationException", "ResourceNotFound"):
                return None
            raise
    return found


def roll_out(
    target: Target,
    plan: DeployPlan,
    recorder: Recorder,
    *,
    progress: ProgressCallback = ignore_progress,
    sleep: Sleep = time.sleep,
    wait_timeout_s: float = WAIT_TIMEOUT_S,
    warm_up: bool = True,
) -> RolloutResult:
    """Create or update the endpoint as the plan says; see the module docstring."""
    started = time.monotonic()
    sagemaker = target.client("sagemaker")
    existing = current_endpoint(target, plan.endpoint)
    if existing is not None and existing["EndpointStatus"] in BUSY:
        raise UsageError(
            f"endpoint {plan.endpoint} is {existing['EndpointStatus']}: another deploy or "
            "change is under way",
            hint="wait for it to finish (`qa-console status " + plan.endpoint + "`), then deploy",
        )
    if existing is not None and existing["EndpointStatus"] == "Failed":
        _replace_failed(target, plan.endpoint, recorder, progress)
        existing = None
    update = existing is not None
    previous_config = existing["EndpointConfigName"] if existing else None

    undo: list[Callable[[], str]] = []  # newest last; each returns what it deleted
    try:
        step(progress, "model", f"creating model {plan.model_name}")
        with aws_errors(f"create model {plan.model_name}", target=target, resource="the model"):
            made = sagemaker.create_model(**plan.model_request())
        model_id = recorder.add("sagemaker-model", plan.model_name, made.get("ModelArn", ""))
        undo.append(_deleter(target, recorder, model_id, "sagemaker-model", plan.model_name))
        step(progress, "model", f"model {plan.model_name}", done=True)

        step(progress, "config", f"creating endpoint config {plan.config_name}")
        with aws_errors(
            f"create endpoint config {plan.config_name}", target=target, resource="the config"
        ):
            made = sagemaker.create_endpoint_config(**plan.config_request())
        config_id = recorder.add(
            "sagemaker-endpoint-config", plan.config_name, made.get("EndpointConfigArn", "")
        )
        undo.append(
            _deleter(target, recorder, config_id, "sagemaker-endpoint-config", plan.config_name)
        )
        step(progress, "config", f"endpoint config {plan.config_name}", done=True)

        verb = "update" if update else "create"
        step(progress, "endpoint", f"{verb[:-1]}ing endpoint {plan.endpoint}")
        with aws_errors(
            f"{verb} endpoint {plan.endpoint}",
            target=target,
            resource=f"endpoint {plan.endpoint}",
        ):
            if update:
                made = sagemaker.update_endpoint(**plan.endpoint_request(update=True))
            else:
                made = sagemaker.create_endpoint(**plan.endpoint_request(update=False))
        endpoint_arn = str(made.get("EndpointArn", ""))
        if not update or not _recorded(recorder, "sagemaker-endpoint", plan.endpoint):
            endpoint_id = recorder.add("sagemaker-endpoint", plan.endpoint, endpoint_arn)
            if not update:
                undo.append(
                    _deleter(target, recorder, endpoint_id, "sagemaker-endpoint", plan.endpoint)
                )
        described = wait_in_service(
            target, plan.endpoint, plan.config_name, progress, sleep, wait_timeout_s
        )

        for operation, params in plan.scaling_requests():
            step(progress, "autoscale", operation.replace("_", " "))
            scaling = target.client("application-autoscaling")
            with aws_errors(f"set up autoscaling of {plan.endpoint}", target=target):
                getattr(scaling, operation)(**params)
            if operation == "register_scalable_target":
                recorder.add(
                    "autoscaling-target", params["ResourceId"],
                    dimension=params["ScalableDimension"],
                )  # fmt: skip
            else:
                recorder.add(
                    "autoscaling-policy", params["PolicyName"], resource_id=params["ResourceId"],
                    dimension=params["ScalableDimension"],
                )  # fmt: skip

        warmup = warm_up_endpoint(target, plan, progress) if warm_up else {}
    except BaseException as failure:
        rolled_back = _undo(undo)
        if isinstance(failure, QAConsoleError):
            raise _with_rollback(failure, rolled_back) from None
        raise

    retired = _retire_previous(target, recorder, previous_config, plan) if update else []
    return RolloutResult(
        endpoint=plan.endpoint,
        endpoint_arn=endpoint_arn or str(described.get("EndpointArn", "")),
        updated=update,
        status=str(described.get("EndpointStatus")),
        seconds=time.monotonic() - started,
        warmup=warmup,
        created=recorder.created,
        retired=retired,
    )


def step(progress: ProgressCallback, task: str, message: str, *, done: bool = False) -> None:
    progress(ProgressEvent(task, message, done=done))


def wait_in_service(
    target: Target,
    name: str,
    config_name: str,
    progress: ProgressCallback = ignore_progress,
    sleep: Sleep = time.sleep,
    timeout_s: float = WAIT_TIMEOUT_S,
) -> dict[str, Any]:
    """Poll describe_endpoint until it serves `config_name` InService. Raises OperationError
    with SageMaker's reason and the likely cause when it fails (or an update is rolled back),
    TimeoutError_ after `timeout_s` (the endpoint keeps going)."""
    sagemaker = target.client("sagemaker")
    started = time.monotonic()
    interval = FIRST_POLL_S
    seen = None
    while True:
        with aws_errors(f"watch endpoint {name}", target=target, resource=f"endpoint {name}"):
            described: dict[str, Any] = sagemaker.describe_endpoint(EndpointName=name)
        status = str(described.get("EndpointStatus"))
        elapsed = time.monotonic() - started
        if status != seen:
            seen = status
        progress(
            ProgressEvent(
                "endpoint",
                f"{name}: {status}",
                metrics={"elapsed_s": round(elapsed, 1)},
                done=status in ("InService", "Failed"),
            )
        )
        serving = described.get("EndpointConfigName")
        if status == "InService" and serving == config_name:
            return described
        if status == "Failed" or (status == "InService" and serving != config_name):
            reason = str(described.get("FailureReason") or "no reason given")
            what = "failed" if status == "Failed" else "was rolled back to its previous config"
            raise endpoint_failure(target, name, f"endpoint {name} {what}: {reason}", reason)
        if elapsed > timeout_s:
            raise TimeoutError_(
                f"endpoint {name} is still {status} after {timeout_s:.0f} s",
                hint=f"it keeps going: watch it with `qa-console status {name}`",
            )
        sleep(interval)
        interval = min(MAX_POLL_S, interval * 1.5)


def endpoint_failure(target: Target, name: str, message: str, reason: str) -> OperationError:
    """The error for a failed endpoint: SageMaker's reason, the likely cause from the
    container's last log lines, and the last few of those lines (its own words say why)."""
    lines = last_lines(target, endpoint_log_group(name), LOG_LINES_READ)
    shown = lines[-LOG_LINES_SHOWN:]
    details = (f"last lines of the endpoint's log ({endpoint_log_group(name)}):",) if shown else ()
    return OperationError(
        message,
        hint=likely_cause(reason, lines) + f"; the logs: qa-console logs {name}",
        details=(*details, *(f"  {line}" for line in shown)),
    )


def warm_up_endpoint(
    target: Target, plan: DeployPlan, progress: ProgressCallback = ignore_progress
) -> dict[str, Any]:
    """One question through the endpoint, as a client will ask it, timed (the first answer
    pays for loading the model)."""
    step(progress, "warm-up", f"asking {plan.endpoint} one question")
    body = json.dumps({"inputs": WARMUP_QUESTION, "parameters": {"max_new_tokens": 16}})
    watch = time.monotonic()
    runtime = target.client("sagemaker-runtime", read_timeout=70)
    with aws_errors(
        f"warm up endpoint {plan.endpoint}",
        target=target,
        resource=f"endpoint {plan.endpoint}",
        logs=f"qa-console logs {plan.endpoint}",
    ):
        if plan.mode == "async":
            answer = _ask_async(target, plan, body)
        else:
            reply = runtime.invoke_endpoint(
                EndpointName=plan.endpoint,
                Body=body.encode(),
                ContentType="application/json",
                Accept="application/json",
            )
            answer = reply["Body"].read().decode("utf-8", "replace")
    seconds = time.monotonic() - watch
    step(progress, "warm-up", f"answered in {seconds:.1f} s", done=True)
    return {"question": WARMUP_QUESTION, "reply": answer[:500], "seconds": round(seconds, 3)}


def _ask_async(target: Target, plan: DeployPlan, body: str) -> str:
    """invoke_endpoint_async with the question in S3, then wait for the answer object."""
    from qa_console.ops.aws.s3 import parse_s3_url

    assert plan.request.async_output is not None
    bucket, prefix = parse_s3_url(plan.request.async_output)
    key = f"{prefix.rstrip('/')}/warm-up/{plan.config_name}.json".lstrip("/")
    s3 = target.client("s3")
    s3.put_object(Bucket=bucket, Key=key, Body=body.encode(), ContentType="application/json")
    reply = target.client("sagemaker-runtime").invoke_endpoint_async(
        EndpointName=plan.endpoint,
        InputLocation=f"s3://{bucket}/{key}",
        ContentType="application/json",
    )
    out_bucket, out_key = parse_s3_url(str(reply["OutputLocation"]))
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        with contextlib.suppress(Exception):
            return str(s3.get_object(Bucket=out_bucket, Key=out_key)["Body"].read().decode())
        time.sleep(0.5)
    raise TimeoutError_(
        f"endpoint {plan.endpoint} accepted the warm-up question but wrote no answer to "
        f"{reply['OutputLocation']} within 120 s",
        hint=f"read its logs: qa-console logs {plan.endpoint}",
    )


# --- undoing and retiring ------------------------------------------------------------------


def _deleter(
    target: Target, recorder: Recorder, resource_id: int, kind: str, name: str
) -> Callable[[], str]:
    def delete() -> str:
        from qa_console.ops.teardown import delete_resource

        delete_resource(target, kind, name)
        recorder.mark_deleted(resource_id)
        return f"{kind} {name}"

    return delete


def _undo(undo: list[Callable[[], str]]) -> list[str]:
    """Run the deleters newest first; a deleter that fails is reported, the others still run."""
    done = []
    for delete in reversed(undo):
        try:
            done.append(delete())
        except Exception as error:  # rolling back must not hide the failure that caused it
            done.append(f"NOT deleted ({getattr(error, 'message', error)})")
    return done


def _with_rollback(failure: QAConsoleError, rolled_back: list[str]) -> QAConsoleError:
    if not rolled_back:
        return failure
    lines = tuple(f"rolled back: {item}" for item in rolled_back)
    failure.details = (*failure.details, *lines)
    return failure


def _recorded(recorder: Recorder, kind: str, name: str) -> bool:
    return any(item.kind == kind and item.name == name for item in recorder.recorded())


def _replace_failed(
    target: Target, name: str, recorder: Recorder, progress: ProgressCallback
) -> None:
    """A Failed endpoint cannot be updated; one this tool created is deleted to start again."""
    from qa_console.ops.teardown import delete_resource

    ours = [
        item
        for item in recorder.recorded()
        if item.kind == "sagemaker-endpoint" and item.name == name
    ]
    if not ours:
        raise UsageError(
            f"endpoint {name} exists in state Failed and was not created by qa-console",
            hint=f"delete it (aws sagemaker delete-endpoint --endpoint-name {name}) or deploy "
            "under another --name",
        )
    step(progress, "endpoint", f"deleting the failed endpoint {name} to deploy it again")
    delete_resource(target, "sagemaker-endpoint", name)
    for item in ours:
        recorder.mark_deleted(item.id)


def _retire_previous(
    target: Target, recorder: Recorder, previous_config: str | None, plan: DeployPlan
) -> list[dict[str, Any]]:
    """After a successful update: delete the endpoint config it replaced and that config's
    models, when this tool created them (they no longer serve)."""
    from qa_console.ops.teardown import delete_resource

    if previous_config is None or previous_config == plan.config_name:
        return []
    mine = {(item.kind, item.name): item for item in recorder.recorded()}
    retired: list[dict[str, Any]] = []
    config_record = mine.get(("sagemaker-endpoint-config", previous_config))
    if config_record is None:
        return retired
    models = _models_of(target, previous_config)
    with contextlib.suppress(QAConsoleError):
        delete_resource(target, "sagemaker-endpoint-config", previous_config)
        recorder.mark_deleted(config_record.id)
        retired.append({"kind": "sagemaker-endpoint-config", "name": previous_config})
    for model in models:
        model_record = mine.get(("sagemaker-model", model))
        if model_record is None or model == plan.model_name:
            continue
        with contextlib.suppress(QAConsoleError):
            delete_resource(target, "sagemaker-model", model)
            recorder.mark_deleted(model_record.id)
            retired.append({"kind": "sagemaker-model", "name": model})
    return retired


def _models_of(target: Target, config_name: str) -> list[str]:
    with contextlib.suppress(Exception):
        described = target.client("sagemaker").describe_endpoint_config(
            EndpointConfigName=config_name
        )
        return [variant["ModelName"] for variant in described.get("ProductionVariants", [])]
    return []
