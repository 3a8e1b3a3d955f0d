"""`qa-console up`: from the dataset to a live API in one resumable run.

    train -> package (with its check) -> deploy (upload, IAM preflight, endpoint) -> expose
    -> three sample questions

Each step keeps a content hash of its inputs in the store (store/steps.py) once it finished. A
second run skips every step whose inputs are unchanged and whose output is still there (the
model folder, the archive with its sha256, the endpoint InService, the API); a run interrupted
at any step starts again at that step (training resumes from its last checkpoint).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from qa_console.errors import OperationError
from qa_console.events import ProgressCallback, ProgressEvent, ignore_progress

if TYPE_CHECKING:
    from qa_console.ops.aws.target import Target
    from qa_console.settings import Settings

SAMPLE_QUESTIONS = 3
HASH_CHUNK = 1 << 20


@dataclass(frozen=True)
class UpRequest:
    endpoint: str
    output_dir: Path
    base_model: str = "tiny"  # offline by default; a hub id (google/flan-t5-base) with network
    data: str | None = None  # None: the shipped biography dataset
    max_steps: int | None = None
    instance_type: str | None = None  # None: serverless
    expose: bool = True
    fast_path: str = "auto"  # the package's CPU fast path (ops/packaging/fast_path.py)


@dataclass(frozen=True)
class StepReport:
    step: str
    skipped: bool
    seconds: float
    detail: str


@dataclass
class UpOutcome:
    endpoint: str
    backend: str  # the backend the sample answers came through
    url: str | None
    steps: list[StepReport] = field(default_factory=list)
    answers: list[dict[str, str]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "endpoint": self.endpoint,
            "backend": self.backend,
            "url": self.url,
            "steps": [asdict(step) for step in self.steps],
            "answers": self.answers,
        }


def run_up(
    target: Target,
    settings: Settings,
    request: UpRequest,
    progress: ProgressCallback = ignore_progress,
) -> UpOutcome:
    """Run the flow (see the module docstring); raises the failing step's error."""
    from qa_console.store import open_store

    flow = f"{target.name}|{target.region}|{request.endpoint}|{request.output_dir.resolve()}"
    reports: list[StepReport] = []

    def step(name: str, inputs: dict[str, Any], still_there: Callable[[dict[str, Any]], bool],
             work: Callable[[], dict[str, Any]]) -> dict[str, Any]:  # fmt: skip
        from qa_console.store.steps import finished, mark_finished

        digest = _digest(inputs)
        started = time.perf_counter()
        with open_store() as store:
            kept = finished(store, flow, name, digest)
        if kept is not None and still_there(kept):
            reports.append(StepReport(name, True, 0.0, "unchanged"))
            progress(ProgressEvent("up", f"{name}: unchanged, skipped"))
            return kept
        progress(ProgressEvent("up", f"{name}..."))
        outputs = work()
        with open_store() as store:
            mark_finished(store, flow, name, digest, outputs)
        reports.append(StepReport(name, False, time.perf_counter() - started, _say(outputs)))
        return outputs

    model_dir = request.output_dir.expanduser().resolve()
    trained = step(
        "train",
        {"base_model": request.base_model, "data": _data_hash(request.data),
         "max_steps": request.max_steps},
        lambda _: (model_dir / "training_record.json").is_file(),
        lambda: _train(request, model_dir, progress),
    )  # fmt: skip
    archive = model_dir.parent / "model.tar.gz"
    packaged = step(
        "package",
        {"model": _files_hash(model_dir), "trained": trained, "fast_path": request.fast_path},
        lambda kept: archive.is_file() and _sha256(archive) == kept.get("sha256"),
        lambda: _package(model_dir, archive, request.fast_path, progress),
    )
    role = _execution_role(target, settings, request.endpoint)
    step(
        "deploy",
        {"archive": packaged["sha256"], "role": role, "instance_type": request.instance_type},
        lambda _: _in_service(target, request.endpoint),
        lambda: _deploy(target, settings, request, archive, role, progress),
    )
    backend, url = f"sagemaker endpoint {request.endpoint}", None
    if request.expose:
        exposed = step(
            "expose",
            {"endpoint": request.endpoint},
            lambda kept: _api_exists(target, str(kept.get("api_id"))),
            lambda: _expose(target, request.endpoint, progress),
        )
        backend, url = str(exposed["backend"]), str(exposed["url"])
    outcome = UpOutcome(request.endpoint, backend, url, reports)
    outcome.answers = _smoke(settings, target, request.endpoint, exposed=request.expose)
    return outcome


def _train(request: UpRequest, model_dir: Path, progress: ProgressCallback) -> dict[str, Any]:
    from qa_console.ops.training.train import CHECKPOINT_DIR, TrainConfig, last_checkpoint, train

    resume = last_checkpoint(model_dir / CHECKPOINT_DIR) is not None
    config = TrainConfig(
        base_model=request.base_model,
        data=request.data,
        output_dir=model_dir,
        max_steps=request.max_steps,
        resume=resume,
    )
    result = train(config, progress=progress)
    test = result.metrics.get("test", {})
    return {"model_dir": str(model_dir), "steps": result.steps, "test": test, "resumed": resume}


def _package(
    model_dir: Path, archive: Path, fast_path: str, progress: ProgressCallback
) -> dict[str, Any]:
    from qa_console.ops.packaging.build import build
    from qa_console.ops.packaging.check import check_tarball

    result = build(model_dir, archive, fast_path=fast_path, progress=progress)
    report = check_tarball(result.archive, progress=progress)
    if not report.ok:
        first = report.errors[0]
        raise OperationError(
            f"the package check failed: {first.message}",
            hint=f"see every finding: qa-console package --check {result.archive}",
        )
    return {"archive": str(result.archive), "sha256": result.sha256}


def _execution_role(target: Target, settings: Settings, endpoint: str) -> str:
    """The configured execution role, else one made for this endpoint (kept if it exists)."""
    if settings.execution_role:
        return str(settings.execution_role)
    from qa_console.ops.iam.facts import deployment_facts
    from qa_console.ops.iam.identity import caller_identity
    from qa_console.ops.iam.role import create_execution_role, default_role_name

    facts = deployment_facts(
        caller_identity(target),
        target.region,
        endpoint_name=endpoint,
        execution_role=default_role_name(endpoint),
        bucket=settings.bucket,
        folder=settings.folder,
    )
    return create_execution_role(target, facts).role_arn


def _deploy(
    target: Target,
    settings: Settings,
    request: UpRequest,
    archive: Path,
    role: str,
    progress: ProgressCallback,
) -> dict[str, Any]:
    from qa_console.ops.deploy.flow import deploy_model
    from qa_console.ops.deploy.plan import DeployRequest

    _settle_interrupted_deploy(target, request.endpoint, progress)
    deploy_request = DeployRequest(
        endpoint=request.endpoint,
        model_url="",
        role_arn=role,
        weights_bytes=0,
        transformers_version=None,
        mode="realtime" if request.instance_type else "serverless",
        instance_type=request.instance_type or "auto",
    )
    outcome = deploy_model(
        target,
        archive,
        deploy_request,
        bucket=settings.bucket,
        folder=settings.folder,
        progress=progress,
    )
    assert outcome.rollout is not None  # not a dry run
    return {"endpoint": outcome.rollout.endpoint, "model_url": outcome.source.model_url}


def _settle_interrupted_deploy(target: Target, endpoint: str, progress: ProgressCallback) -> None:
    """A run killed mid-deploy leaves the endpoint Creating or Updating, and SageMaker refuses
    to change an endpoint in progress: wait for it to settle (either way) before deploying."""
    from qa_console.ops.deploy.rollout import current_endpoint, wait_in_service

    described = current_endpoint(target, endpoint)
    if described is None or described.get("EndpointStatus") not in ("Creating", "Updating"):
        return
    pending = described.get("PendingDeploymentSummary") or {}
    config = str(pending.get("EndpointConfigName") or described["EndpointConfigName"])
    progress(ProgressEvent("up", f"deploy: waiting for the interrupted {endpoint} to settle"))
    with contextlib.suppress(OperationError):  # failed or rolled back: the deploy goes on
        wait_in_service(target, endpoint, config, progress)


def _expose(target: Target, endpoint: str, progress: ProgressCallback) -> dict[str, Any]:
    from qa_console.ops.expose.api import ExposeRequest
    from qa_console.ops.expose.flow import expose_endpoint

    outcome = expose_endpoint(target, ExposeRequest(endpoint), progress=progress)
    return {"api_id": outcome.result.api_id, "url": outcome.result.url, "backend": outcome.backend}


def _in_service(target: Target, endpoint: str) -> bool:
    from qa_console.ops.deploy.rollout import current_endpoint

    described = current_endpoint(target, endpoint)
    return described is not None and described.get("EndpointStatus") == "InService"


def _api_exists(target: Target, api_id: str) -> bool:
    from botocore.exceptions import ClientError

    try:
        target.client("apigateway").get_rest_api(restApiId=api_id)
    except ClientError:
        return False
    return True


def _smoke(
    settings: Settings, target: Target, endpoint: str, *, exposed: bool
) -> list[dict[str, str]]:
    """Three questions about different people of the training data, through the new API (its
    http backend, as `ask --backend NAME-api` would) or else the endpoint itself."""
    from qa_console.backends.sagemaker import SageMakerBackend
    from qa_console.chat import ChatSession
    from qa_console.plugins_file import api_backend_name

    if exposed:
        session = ChatSession(settings.values())
        name = api_backend_name(endpoint)

        def ask(question: str) -> str:
            return session.ask(question, name).answer

    else:
        direct = SageMakerBackend(endpoint, endpoint=endpoint, target=target.name,
                                  region=target.region)  # fmt: skip

        def ask(question: str) -> str:
            return direct.ask(question).text

    return [{"question": question, "answer": ask(question)} for question in sample_questions()]


def sample_questions(count: int = SAMPLE_QUESTIONS) -> list[str]:
    """The first question about each of the first `count` people in the shipped train split
    (people the bot knows: questions it was taught to answer "I don't know." are skipped)."""
    from importlib import resources

    from qa_console.inference.model_handler import is_unknown_answer

    lines = resources.files("qa_console").joinpath("data", "biography", "train.jsonl")
    picked: dict[str, str] = {}
    for line in lines.read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        if is_unknown_answer(str(row["answer"])):
            continue
        person = str(row.get("person") or row["question"])
        picked.setdefault(person, str(row["question"]))
        if len(picked) == count:
            break
    return list(picked.values())


def _data_hash(data: str | None) -> str:
    if data is None:
        from importlib import resources

        shipped = Path(str(resources.files("qa_console").joinpath("data", "biography")))
        return _files_hash(shipped, recursive=True)
    path = Path(data).expanduser()
    return _files_hash(path, recursive=True) if path.exists() else data  # a hub id: its name


def _files_hash(path: Path, *, recursive: bool = False) -> str:
    """sha256 over the relative names and bytes of a file, or of a folder's files: top-level
    only for a model folder (its sub-folders are checkpoints and predictions, not the model),
    every file for a data folder."""
    if path.is_file():
        files = [path]
        root = path.parent
    else:
        found = path.rglob("*") if recursive else path.iterdir()
        # Bytecode caches come and go without the data changing.
        files = sorted(i for i in found if i.is_file() and "__pycache__" not in i.parts)
        root = path
    digest = hashlib.sha256()
    for file in files:
        digest.update(str(file.relative_to(root)).encode() + b"\0" + _sha256(file).encode())
    return digest.hexdigest()


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _digest(inputs: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(inputs, sort_keys=True, default=str).encode()).hexdigest()


def _say(outputs: dict[str, Any]) -> str:
    return ", ".join(f"{key}={value}" for key, value in outputs.items() if key != "test")
