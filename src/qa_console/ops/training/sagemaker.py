"""`qa-console train --on sagemaker`: the same training, run as a SageMaker training job.

Steps, each reported as progress:
  1. pick the Hugging Face PyTorch training image for the region from sagemaker-core's bundled
     image-URI data (read as a file, offline; sagemaker-core is never imported);
  2. load and check the data locally with the same loader as local training, and upload its
     three splits as the job's train/validation/test channels (JSON Lines);
  3. pack inference/train_entry.py with a copy of the training modules as
     sourcedir.tar.gz (deterministic bytes) and upload it;
  4. CreateTrainingJob with the hyper-parameters JSON-encoded as the SageMaker SDK does (every
     value a string, plus sagemaker_program / sagemaker_submit_directory for the container);
  5. poll DescribeTrainingJob until it ends, reporting its secondary status;
  6. download model.tar.gz from the job's output path and extract it safely into the output folder.

All AWS calls are plain boto3 calls on clients of the Target the caller passes in
(ops/aws/target.py), so the same code runs against AWS and the embedded local AWS; their
failures become typed errors through the one translator (ops/aws/errors.py).
"""

from __future__ import annotations

import dataclasses
import io
import json
import re
import shutil
import tarfile
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from qa_console.errors import OperationError, TimeoutError_, UsageError
from qa_console.events import ProgressCallback, ProgressEvent, ignore_progress
from qa_console.ops.aws.errors import aws_errors, error_code
from qa_console.ops.aws.images import ContainerImage, huggingface_image
from qa_console.ops.training.train import TRAINING_FIELDS, TrainConfig

if TYPE_CHECKING:
    from qa_console.ops.aws.target import Target

DEFAULT_INSTANCE_TYPE = "ml.g5.xlarge"
ENTRY_POINT = "train_entry.py"
# The files of the qa_console package the entry point imports, copied into sourcedir.tar.gz at
# the same paths. Read with importlib.resources: a wheel install has them as a checkout does.
SOURCE_MODULES = (
    "__init__.py",
    "errors.py",
    "events.py",
    "ops/__init__.py",
    "ops/model_files.py",
    "ops/training/__init__.py",
    "ops/training/data.py",
    "ops/training/confusion.py",
    "ops/training/evaluate.py",
    "ops/training/hub.py",
    "ops/training/tiny_model.py",
    "ops/training/train.py",
    "inference/__init__.py",
    "inference/model_handler.py",
)
TERMINAL = {"Completed", "Failed", "Stopped"}
ROLE_ARN = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]+$")
JOB_NAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")
FIXED_MTIME = 1_700_000_000  # sourcedir.tar.gz: same files -> same bytes -> same S3 ETag


@dataclass(frozen=True)
class SageMakerTrainingConfig:
    """A SageMaker training job: the training settings plus where and on what it runs."""

    train: TrainConfig
    role_arn: str
    bucket: str
    prefix: str = "qa-console"
    instance_type: str = DEFAULT_INSTANCE_TYPE
    instance_count: int = 1
    volume_size_gb: int = 30
    max_runtime_s: int = 24 * 3600
    job_name: str | None = None
    image_uri: str | None = None  # overrides the image chosen from sagemaker-core's data
    poll_interval_s: float = 30.0
    timeout_s: float | None = None  # stop waiting (the job keeps running) after this long


@dataclass(frozen=True)
class SageMakerTrainingResult:
    job_name: str
    job_arn: str
    status: str
    image: ContainerImage
    model_artifact: str
    output_dir: Path
    billable_seconds: int | None
    metrics: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["output_dir"] = str(self.output_dir)
        return data


# --- the image ---------------------------------------------------------------------------------


def training_image(
    region: str, transformers_version: str | None = None, data: dict[str, Any] | None = None
) -> ContainerImage:
    """The Hugging Face PyTorch training image for `region` whose transformers version matches
    `transformers_version` (default: the installed one), or else the newest image of the same
    major version at or below it (the closest one that can run this code), with a note saying so.
    The training images are GPU-only."""
    if transformers_version is None:
        from importlib.metadata import version

        transformers_version = version("transformers")
    image = huggingface_image("training", region, transformers_version, processor="gpu", data=data)
    if image.note:
        image = dataclasses.replace(image, note=f"{image.note}, so the job trains with it")
    return image


def check_instance_type(instance_type: str) -> None:
    """The Hugging Face training images are built for GPUs only (sagemaker-core lists no cpu)."""
    match = re.fullmatch(r"ml\.([a-z]+)(\d+)[a-z]*\.\w+", instance_type)
    if match is None:
        raise UsageError(
            f"{instance_type!r} is not a SageMaker instance type",
            hint=f"e.g. {DEFAULT_INSTANCE_TYPE}",
        )
    if match.group(1) not in ("g", "p"):
        raise UsageError(
            f"{instance_type} has no GPU, and the Hugging Face training images are GPU-only",
            hint=f"pick a GPU instance such as {DEFAULT_INSTANCE_TYPE} (1 x A10G, ~$1.4/h), "
            "or train locally without --on sagemaker",
        )


# --- packing and uploading ---------------------------------------------------------------------


def build_source_dir(destination: Path) -> Path:
    """Write sourcedir.tar.gz: train_entry.py at the root and the training modules under
    qa_console/, with fixed mtimes, owners and order so the bytes depend only on the code."""
    from importlib import resources

    package = resources.files("qa_console")
    files: list[tuple[str, bytes]] = [
        (ENTRY_POINT, package.joinpath("inference", ENTRY_POINT).read_bytes())
    ]
    files += [
        (f"qa_console/{name}", package.joinpath(name).read_bytes()) for name in SOURCE_MODULES
    ]
    destination.parent.mkdir(parents=True, exist_ok=True)
    with destination.open("wb") as raw:
        import gzip

        with (
            gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as zipped,
            tarfile.open(fileobj=zipped, mode="w", format=tarfile.PAX_FORMAT) as tar,
        ):
            for name, content in sorted(files):
                info = tarfile.TarInfo(name)
                info.size = len(content)
                info.mtime = FIXED_MTIME
                info.mode = 0o644
                info.uid = info.gid = 0
                info.uname = info.gname = "root"
                tar.addfile(info, io.BytesIO(content))
    return destination


def _write_channels(dataset: Any, folder: Path) -> dict[str, Path]:
    """The loaded splits as JSON Lines, one file per channel (empty splits are left out)."""
    channels: dict[str, Path] = {}
    for split in ("train", "validation", "test"):
        rows = dataset.split(split)
        if not rows:
            continue
        path = folder / split / f"{split}.jsonl"
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w", encoding="utf-8") as handle:
            for row in rows:
                record = {"id": row.id, "question": row.question, "answer": row.answer}
                if row.context:
                    record["context"] = row.context
                handle.write(json.dumps(record, ensure_ascii=False) + "\n")
        channels[split] = path
    return channels


def hyperparameters(
    config: TrainConfig, job_name: str, source_uri: str, region: str
) -> dict[str, str]:
    """Hyper-parameters as SageMaker expects them: string values, JSON-encoded as the SDK does
    (`"3"`, `"\\"tiny\\""`), plus the keys the Hugging Face container reads to run the entry."""
    values: dict[str, Any] = {
        name: getattr(config, name) for name in TRAINING_FIELDS if getattr(config, name) is not None
    }
    values.update(
        {
            "sagemaker_program": ENTRY_POINT,
            "sagemaker_submit_directory": source_uri,
            "sagemaker_container_log_level": 20,
            "sagemaker_job_name": job_name,
            "sagemaker_region": region,
        }
    )
    return {key: json.dumps(value) for key, value in values.items()}


METRIC_DEFINITIONS = [
    {"Name": "train:loss", "Regex": r"\[train\].* loss=([0-9.e+-]+)"},
    {"Name": "validation:loss", "Regex": r"eval_loss=([0-9.e+-]+)"},
    {"Name": "validation:exact_match", "Regex": r"^validation_exact_match=([0-9.]+)"},
    {"Name": "test:exact_match", "Regex": r"^test_exact_match=([0-9.]+)"},
]


def default_job_name(base_model: str, now: datetime | None = None) -> str:
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%d-%H%M%S")
    stem = re.sub(r"[^a-zA-Z0-9]+", "-", base_model.rsplit("/", 1)[-1]).strip("-")[:30] or "model"
    return f"qa-console-{stem}-{stamp}"


# --- the job -----------------------------------------------------------------------------------


def job_settings(
    target: Target, execution_role: str | None, bucket: str | None, folder: str | None
) -> tuple[str, str, str]:
    """(role ARN, bucket, key prefix) of a training job from the settings: the execution role is
    required, the bucket defaults to qa-console-<account>-<region>, the prefix to qa-console."""
    from qa_console.ops.aws.s3 import default_bucket

    if not execution_role:
        raise UsageError(
            "training on SageMaker needs an execution role",
            hint="qa-console config set execution_role arn:aws:iam::<account>:role/<name>",
        )
    return execution_role, bucket or default_bucket(target), folder or "qa-console"


def launch_training_job(
    config: SageMakerTrainingConfig,
    target: Target,
    progress: ProgressCallback = ignore_progress,
    sleep: Callable[[float], None] = time.sleep,
) -> SageMakerTrainingResult:
    """Run the training as a SageMaker training job and bring the model into config.train's
    output folder. Raises UsageError for bad settings, OperationError when the job fails."""
    from qa_console.ops.training.train import check_output_dir, load_training_data, resolve_config

    if config.train.resume:
        raise UsageError(
            "--resume is for local runs; a SageMaker job starts from the base model",
            hint="drop --resume",
        )
    if not ROLE_ARN.match(config.role_arn or ""):
        raise UsageError(
            f"the SageMaker execution role {config.role_arn!r} is not an IAM role ARN",
            hint="set it: qa-console config set execution_role arn:aws:iam::<account>:role/<name>",
        )
    if config.instance_count < 1:
        raise UsageError("--instance-count must be at least 1")
    check_instance_type(config.instance_type)
    train_config = resolve_config(config.train)
    output_dir = Path(train_config.output_dir).expanduser().resolve()
    check_output_dir(output_dir)
    image = (
        ContainerImage(config.image_uri, "custom", "", "", "gpu", "image given with --image-uri")
        if config.image_uri
        else training_image(target.region)
    )
    if image.note:
        progress(ProgressEvent("image", image.note))
    job_name = config.job_name or default_job_name(str(train_config.base_model))
    if not JOB_NAME.match(job_name):
        raise UsageError(
            f"{job_name!r} is not a valid training job name (letters, digits, '-', <= 63)"
        )

    dataset = load_training_data(train_config, progress)
    prefix = f"{config.prefix.strip('/')}/training/{job_name}".lstrip("/")
    from qa_console.ops.aws.s3 import ensure_bucket

    ensure_bucket(target, config.bucket)
    with tempfile.TemporaryDirectory(prefix="qa-console-sm-") as work:
        workdir = Path(work)
        channels = _write_channels(dataset, workdir / "data")
        source = build_source_dir(workdir / "sourcedir.tar.gz")
        uploads = [(path, f"{prefix}/data/{split}/{path.name}") for split, path in channels.items()]
        uploads.append((source, f"{prefix}/source/sourcedir.tar.gz"))
        for number, (path, key) in enumerate(uploads, 1):
            progress(
                ProgressEvent(
                    "upload", f"s3://{config.bucket}/{key}", number - 1, len(uploads), "files"
                )
            )
            with aws_errors(
                f"upload s3://{config.bucket}/{key}", target=target, resource=config.bucket
            ):
                target.client("s3").upload_file(str(path), config.bucket, key)
        progress(
            ProgressEvent(
                "upload", "data and code uploaded", len(uploads), len(uploads), "files", done=True
            )
        )

    source_uri = f"s3://{config.bucket}/{prefix}/source/sourcedir.tar.gz"
    output_path = f"s3://{config.bucket}/{prefix}/output"
    request = {
        "TrainingJobName": job_name,
        "AlgorithmSpecification": {
            "TrainingImage": image.uri,
            "TrainingInputMode": "File",
            "MetricDefinitions": METRIC_DEFINITIONS,
            "EnableSageMakerMetricsTimeSeries": True,
        },
        "RoleArn": config.role_arn,
        "InputDataConfig": [
            {
                "ChannelName": split,
                "DataSource": {
                    "S3DataSource": {
                        "S3DataType": "S3Prefix",
                        "S3Uri": f"s3://{config.bucket}/{prefix}/data/{split}/",
                        "S3DataDistributionType": "FullyReplicated",
                    }
                },
                "ContentType": "application/jsonlines",
                "CompressionType": "None",
            }
            for split in channels
        ],
        "OutputDataConfig": {"S3OutputPath": output_path},
        "ResourceConfig": {
            "InstanceType": config.instance_type,
            "InstanceCount": config.instance_count,
            "VolumeSizeInGB": config.volume_size_gb,
        },
        "StoppingCondition": {"MaxRuntimeInSeconds": config.max_runtime_s},
        "HyperParameters": hyperparameters(train_config, job_name, source_uri, target.region),
        "Tags": [{"Key": "qa-console", "Value": "training"}],
    }
    progress(ProgressEvent("job", f"creating training job {job_name}"))
    with aws_errors(f"create training job {job_name}", target=target):
        created = target.client("sagemaker").create_training_job(**request)
    description = wait_for_training_job(
        target, job_name, progress, config.poll_interval_s, config.timeout_s, sleep
    )
    artifact = str(description.get("ModelArtifacts", {}).get("S3ModelArtifacts", ""))
    download_model(target, artifact, output_dir, progress)
    record: dict[str, Any] = {}
    record_file = output_dir / "training_record.json"
    if record_file.is_file():
        record = json.loads(record_file.read_text(encoding="utf-8"))
    return SageMakerTrainingResult(
        job_name=job_name,
        job_arn=str(created.get("TrainingJobArn", description.get("TrainingJobArn", ""))),
        status=str(description.get("TrainingJobStatus")),
        image=image,
        model_artifact=artifact,
        output_dir=output_dir,
        billable_seconds=description.get("BillableTimeInSeconds"),
        metrics=dict(record.get("metrics", {})),
    )


def wait_for_training_job(
    target: Target,
    job_name: str,
    progress: ProgressCallback = ignore_progress,
    poll_interval_s: float = 30.0,
    timeout_s: float | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, Any]:
    """Poll DescribeTrainingJob until the job ends; report each new secondary status.

    Returns the final description when it Completed; raises OperationError when it Failed or
    was Stopped, TimeoutError_ when `timeout_s` passes first (the job keeps running).
    """
    sagemaker = target.client("sagemaker")
    started = time.monotonic()
    seen: str | None = None
    while True:
        with aws_errors(f"read training job {job_name}", target=target):
            description: dict[str, Any] = sagemaker.describe_training_job(TrainingJobName=job_name)
        status = str(description.get("TrainingJobStatus", ""))
        secondary = str(description.get("SecondaryStatus", ""))
        transitions = description.get("SecondaryStatusTransitions") or []
        detail = transitions[-1].get("StatusMessage", "") if transitions else ""
        line = f"{status} / {secondary}" + (f": {detail}" if detail else "")
        if line != seen:
            seen = line
            progress(
                ProgressEvent(
                    "job",
                    f"{job_name}: {line}",
                    metrics={"elapsed_s": round(time.monotonic() - started, 1)},
                    done=status in TERMINAL,
                )
            )
        if status == "Completed":
            return description
        if status in ("Failed", "Stopped"):
            reason = description.get("FailureReason") or "no reason given"
            raise OperationError(
                f"training job {job_name} {status.lower()}: {reason}",
                hint="read its logs: CloudWatch group /aws/sagemaker/TrainingJobs, "
                f"streams {job_name}/...",
            )
        if timeout_s is not None and time.monotonic() - started > timeout_s:
            raise TimeoutError_(
                f"training job {job_name} is still {status} after {timeout_s:.0f} s",
                hint="it keeps running; check it with `aws sagemaker describe-training-job "
                f"--training-job-name {job_name}` or stop it with stop-training-job",
            )
        sleep(poll_interval_s)


def download_model(
    target: Target, artifact_uri: str, output_dir: Path, progress: ProgressCallback
) -> Path:
    """Download the job's model.tar.gz and extract it (safely) as `output_dir`, replacing it."""
    from botocore.exceptions import ClientError

    from qa_console.ops.model_files import check_model_folder
    from qa_console.ops.packaging.extract import extract_atomically

    match = re.fullmatch(r"s3://([^/]+)/(.+)", artifact_uri)
    if match is None:
        raise OperationError(f"the training job reported no model artifact ({artifact_uri!r})")
    bucket, key = match.groups()
    with tempfile.TemporaryDirectory(
        prefix="qa-console-model-", dir=_scratch_dir(output_dir)
    ) as work:
        archive = Path(work) / "model.tar.gz"
        s3 = target.client("s3")
        with aws_errors(f"download {artifact_uri}", target=target, resource=artifact_uri):
            try:
                size = int(s3.head_object(Bucket=bucket, Key=key)["ContentLength"])
            except ClientError as error:
                if error_code(error) not in ("404", "NoSuchKey", "NotFound"):
                    raise
                raise OperationError(
                    f"the training job completed but its model is not at {artifact_uri}",
                    hint="read the job's logs: CloudWatch group /aws/sagemaker/TrainingJobs",
                ) from None
        done = 0

        def counted(amount: int) -> None:
            nonlocal done
            done += amount
            progress(ProgressEvent("download", "model.tar.gz", done, size, "bytes"))

        with aws_errors(f"download {artifact_uri}", target=target, resource=artifact_uri):
            s3.download_file(bucket, key, str(archive), Callback=counted)
        progress(ProgressEvent("download", "model.tar.gz", size, size, "bytes", done=True))
        extracted = extract_atomically(archive, Path(work) / "model")
        check_model_folder(extracted, label=f"{artifact_uri} (extracted)")
        if output_dir.exists():
            shutil.rmtree(output_dir)
        shutil.move(str(extracted), str(output_dir))
    return output_dir


def _scratch_dir(output_dir: Path) -> Path:
    """A temp folder beside the output, so the final move is a rename on the same disk."""
    from qa_console.ops.training.train import make_output_dir

    make_output_dir(output_dir.parent)
    return output_dir.parent
