"""`qa-console deploy` as one operation, the same for the CLI, the TUI and `qa-console up`.

    folder  -> package (deterministic model.tar.gz beside it) -> check -> upload
    archive ->                                                   check -> upload
    s3://   -> download -> check
    then: the plan (image, size, cost), the IAM preflight of the caller and the execution role
    for exactly the plan's names, and the rollout (create or blue/green update, wait, warm-up;
    rollback on failure).

`dry_run` stops after the plan and changes nothing: no upload, no AWS write. It returns the
exact requests the deploy would send.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from qa_console.errors import UsageError
from qa_console.events import ProgressCallback, ProgressEvent, ignore_progress
from qa_console.ops.deploy.plan import DeployPlan, DeployRequest, plan_deploy

if TYPE_CHECKING:
    from qa_console.ops.aws.target import Target
    from qa_console.ops.deploy.rollout import RolloutResult
    from qa_console.ops.packaging.check import CheckReport


@dataclass(frozen=True)
class Source:
    """Where the model came from and where SageMaker will read it."""

    given: str
    model_url: str
    check: CheckReport
    archive: Path | None  # the local archive (None for s3:// sources)
    uploaded: bool

    def to_dict(self) -> dict[str, Any]:
        return {
            "given": self.given,
            "model_url": self.model_url,
            "archive": str(self.archive) if self.archive else None,
            "uploaded": self.uploaded,
            "check": self.check.to_dict(),
        }


@dataclass(frozen=True)
class DeployOutcome:
    plan: DeployPlan
    source: Source
    dry_run: bool
    rollout: RolloutResult | None = None
    preflight: dict[str, Any] | None = None
    requests: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "plan": self.plan.summary(),
            "source": self.source.to_dict(),
            "dry_run": self.dry_run,
        }
        if self.requests:
            data["requests"] = self.requests
        if self.rollout is not None:
            data["deploy"] = self.rollout.to_dict()
        if self.preflight is not None:
            data["iam"] = self.preflight
        return data


def deploy_model(
    target: Target,
    model: str | Path,
    request: DeployRequest,
    *,
    bucket: str | None = None,
    folder: str | None = None,
    dry_run: bool = False,
    preflight: bool = True,
    fast_path: str = "auto",
    progress: ProgressCallback = ignore_progress,
) -> DeployOutcome:
    """Deploy `model` (a model folder, a model.tar.gz or an s3:// URL) as `request` says.

    `request.model_url`, `weights_bytes` and `transformers_version` are filled from the model;
    bucket/folder say where a local model is uploaded (the upload command's settings);
    fast_path is the CPU fast path recorded when a model folder is packaged here."""
    from qa_console.ops.deploy.rollout import Recorder, roll_out
    from qa_console.store.resources import new_run_id

    source = prepare_source(target, model, bucket=bucket, folder=folder, upload=not dry_run,
                            fast_path=fast_path, progress=progress)  # fmt: skip
    manifest = source.check.manifest or {}
    request = replace(
        request,
        model_url=source.model_url,
        weights_bytes=source.check.weights_bytes,
        transformers_version=manifest.get("transformers_version"),
    )
    plan = plan_deploy(target, request)
    if dry_run:
        from qa_console.ops.deploy.rollout import current_endpoint

        update = current_endpoint(target, plan.endpoint) is not None
        return DeployOutcome(plan, source, True, requests=plan.calls(update))
    report = run_preflight(target, plan, source.uploaded, progress) if preflight else None
    recorder = Recorder(target, plan.endpoint, new_run_id())
    if source.uploaded:
        recorder.add("s3-object", source.model_url)
    rollout = roll_out(target, plan, recorder, progress=progress)
    return DeployOutcome(plan, source, False, rollout, report)


def run_preflight(
    target: Target, plan: DeployPlan, uploads_model: bool, progress: ProgressCallback
) -> dict[str, Any]:
    """The IAM preflight of the caller and the execution role for exactly this plan's names and
    image. A denied row stops the deploy (AuthError, exit 3) with the policy that would allow it;
    unknown rows (no way to check) are reported and do not stop it."""
    from qa_console.ops.iam.check import check_deployment
    from qa_console.ops.iam.facts import deployment_facts
    from qa_console.ops.iam.identity import caller_identity

    progress(ProgressEvent("iam", "checking the caller's and the role's permissions"))
    identity = caller_identity(target)
    facts = deployment_facts(
        identity,
        target.region,
        endpoint_name=plan.endpoint,
        execution_role=plan.request.role_arn,
        model_url=plan.request.model_url,
        image_uri=plan.image.uri,
        model_name=plan.model_name,
        endpoint_config_name=plan.config_name,
        uploads_model=uploads_model,
        autoscaling=plan.request.autoscale is not None,
    )
    report = check_deployment(target, facts, identity=identity)
    report.raise_if_denied()
    progress(
        ProgressEvent("iam", f"permissions checked ({len(report.unknown)} unknown)", done=True)
    )
    summary: dict[str, Any] = report.to_dict()
    return summary


def prepare_source(
    target: Target,
    model: str | Path,
    *,
    bucket: str | None,
    folder: str | None,
    upload: bool,
    fast_path: str = "auto",
    progress: ProgressCallback = ignore_progress,
) -> Source:
    """The model as SageMaker will read it: packaged, checked and uploaded as needed."""
    from qa_console.ops.packaging.check import check_tarball

    given = str(model)
    if given.startswith("s3://"):
        report = _check_from_s3(target, given, progress)
        return Source(given, given, report, None, False)
    path = Path(model).expanduser()
    if not path.exists():
        raise UsageError(
            f"{path}: no such model folder or archive",
            hint="give the folder `qa-console train` wrote, a model.tar.gz, or an s3:// URL",
        )
    if path.is_dir():
        from qa_console.ops.packaging.build import build

        progress(ProgressEvent("package", f"packaging {path}"))
        path = build(path, fast_path=fast_path, progress=progress).archive
    if not upload:
        from qa_console.ops.aws.s3 import resolve_destination

        report = check_tarball(path, progress=progress)
        report.raise_if_refused()
        dest_bucket, key = resolve_destination(
            None, path.name, bucket=bucket, folder=folder, target=target
        )
        return Source(given, f"s3://{dest_bucket}/{key}", report, path, False)
    from qa_console.ops.upload import upload_model

    outcome = upload_model(target, path, bucket=bucket, folder=folder, progress=progress)
    return Source(given, outcome.upload.url, outcome.check, path, not outcome.upload.skipped)


def _check_from_s3(target: Target, url: str, progress: ProgressCallback) -> CheckReport:
    """Download an s3:// archive to a temporary file and check it (its manifest says which
    transformers saved the model, which picks the container)."""
    from qa_console.ops.aws.errors import aws_errors
    from qa_console.ops.aws.s3 import parse_s3_url
    from qa_console.ops.packaging.check import check_tarball

    bucket, key = parse_s3_url(url)
    if not key or key.endswith("/"):
        raise UsageError(f"{url} names a folder; deploy takes the URL of a model.tar.gz")
    with tempfile.TemporaryDirectory(prefix="qa-console-deploy-") as work:
        archive = Path(work) / Path(key).name
        progress(ProgressEvent("download", url))
        with aws_errors(f"download {url}", target=target, resource=url):
            target.client("s3").download_file(bucket, key, str(archive))
        report = check_tarball(archive, progress=progress)
    report.raise_if_refused()
    return report
