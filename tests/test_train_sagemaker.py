"""`train --on sagemaker` against a moto server on 127.0.0.1: the CreateTrainingJob request is
checked field by field, the entry point is run the way the Hugging Face container runs it, and
the waiter and the download step are exercised with what moto gives."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import qa_console.inference
from fixtures_train import SLICE_TRAIN_ROWS
from qa_console.errors import OperationError, UsageError
from qa_console.events import ProgressEvent
from qa_console.ops.aws.target import Target
from qa_console.ops.training.sagemaker import (
    SageMakerTrainingConfig,
    check_instance_type,
    download_model,
    launch_training_job,
    training_image,
    wait_for_training_job,
)
from qa_console.ops.training.train import TRAINING_FIELDS, TrainConfig

REGION = "us-east-1"
PROFILE = "moto-train"
ROLE = "arn:aws:iam::123456789012:role/qa-console-sagemaker"
BUCKET = "qa-train-test"
IMAGE = re.compile(
    r"^763104351884\.dkr\.ecr\.us-east-1\.amazonaws\.com/huggingface-pytorch-training:"
    r"(?P<pt>\d+\.\d+\.\d+)-transformers(?P<tf>\d+\.\d+\.\d+)-gpu-py3\d+-cu\d+-ubuntu\d+\.\d+$"
)


@pytest.fixture(scope="module")
def moto_endpoint() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.fixture
def moto_profile(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> str:
    """An AWS profile whose every call goes to the moto server, with fake credentials."""
    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    config = tmp_path / "aws-config"
    config.write_text(f"[profile {PROFILE}]\nregion = {REGION}\n")
    credentials = tmp_path / "aws-credentials"
    credentials.write_text(
        f"[{PROFILE}]\naws_access_key_id = testing\naws_secret_access_key = testing\n"
    )
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(credentials))
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_endpoint)
    return PROFILE


def _target(profile: str) -> tuple[Target, list[dict[str, Any]]]:
    """The profile as a Target, and the CreateTrainingJob requests its clients send."""
    target = Target.profile(profile, REGION)
    sent: list[dict[str, Any]] = []
    target.session().events.register(
        "provide-client-params.sagemaker.CreateTrainingJob",
        lambda params, **_: sent.append(json.loads(json.dumps(params))),
    )
    return target, sent


def _object_exists(s3: Any, uri: str) -> list[str]:
    bucket, _, prefix = uri.removeprefix("s3://").partition("/")
    listed = s3.list_objects_v2(Bucket=bucket, Prefix=prefix)
    return [item["Key"] for item in listed.get("Contents", [])]


def test_image_uri_comes_from_sagemaker_cores_bundled_data() -> None:
    image = training_image(REGION)
    match = IMAGE.match(image.uri)
    assert match, image.uri
    from importlib.metadata import version

    installed = version("transformers")
    if image.transformers_version != installed:
        assert installed in image.note and image.transformers_version in image.note
    # The SageMaker SDK, given the same choice, builds the same URI.
    from sagemaker.core import image_uris

    expected = image_uris.retrieve(
        framework="huggingface",
        region=REGION,
        version=image.transformers_version,
        base_framework_version=f"pytorch{image.pytorch_version}",
        py_version=image.py_version,
        image_scope="training",
        instance_type="ml.g5.xlarge",
    )
    assert image.uri == expected


def test_image_version_choice() -> None:
    exact = training_image("eu-west-1", "4.56.2")
    assert "transformers4.56.2" in exact.uri and not exact.note
    closest = training_image("eu-west-1", "4.57.1")
    assert closest.transformers_version == "4.56.2" and "4.57.1" in closest.note
    assert ".amazonaws.com.cn/" in training_image("cn-north-1", "4.56.2").uri
    with pytest.raises(UsageError, match="no Hugging Face training image has transformers 3"):
        training_image(REGION, "3.5.0")


def test_cpu_instances_are_refused_for_gpu_only_images() -> None:
    check_instance_type("ml.g5.xlarge")
    check_instance_type("ml.p4d.24xlarge")
    with pytest.raises(UsageError, match="GPU-only"):
        check_instance_type("ml.m5.xlarge")
    with pytest.raises(UsageError, match="not a SageMaker instance type"):
        check_instance_type("g5.xlarge")


def test_entry_point_takes_every_training_field_sent_as_a_hyper_parameter() -> None:
    """The container runs train_entry.py with the hyper-parameters as arguments and ignores
    unknown ones, so a TrainConfig field it does not declare would silently fall back to the
    default inside the job."""
    sys.path.insert(0, str(Path(qa_console.inference.__file__).parent))
    try:
        import train_entry
    finally:
        sys.path.pop(0)
    assert set(train_entry.OPTIONS) == set(TRAINING_FIELDS)
    values = {"base_model": "tiny", "epochs": "2.5", "logging_steps": "3", "seed": "7"}
    args = train_entry.parse_args([part for k, v in values.items() for part in (f"--{k}", v)])
    assert (args.base_model, args.epochs, args.logging_steps, args.seed) == ("tiny", 2.5, 3, 7)


def test_training_job_request_field_by_field(
    moto_profile: str, tiny_slice: Path, tmp_path: Path
) -> None:
    target, sent = _target(moto_profile)
    sagemaker, s3 = target.client("sagemaker"), target.client("s3")
    job = "qa-test-request"
    config = SageMakerTrainingConfig(
        train=TrainConfig(base_model="tiny", data=str(tiny_slice), output_dir=tmp_path / "model"),
        role_arn=ROLE,
        bucket=BUCKET,
        instance_type="ml.g5.2xlarge",
        instance_count=2,
        job_name=job,
        poll_interval_s=0.01,
    )
    events: list[ProgressEvent] = []
    # moto records the job as Completed at once but never runs it: no model.tar.gz appears.
    with pytest.raises(OperationError, match="completed but its model is not at s3://"):
        launch_training_job(config, target, progress=events.append)
    assert len(sent) == 1
    request = sent[0]

    assert request["TrainingJobName"] == job
    algorithm = request["AlgorithmSpecification"]
    assert IMAGE.match(algorithm["TrainingImage"]) and algorithm["TrainingInputMode"] == "File"
    assert algorithm["TrainingImage"] == training_image(REGION).uri
    assert request["RoleArn"] == ROLE

    prefix = f"s3://{BUCKET}/qa-console/training/{job}"
    channels = {c["ChannelName"]: c for c in request["InputDataConfig"]}
    assert set(channels) == {"train", "validation", "test"}
    for name, channel in channels.items():
        source = channel["DataSource"]["S3DataSource"]
        assert source["S3DataType"] == "S3Prefix"
        assert source["S3Uri"] == f"{prefix}/data/{name}/"
        assert source["S3DataDistributionType"] == "FullyReplicated"
        keys = _object_exists(s3, source["S3Uri"])
        assert keys == [f"qa-console/training/{job}/data/{name}/{name}.jsonl"]
    train_rows = s3.get_object(
        Bucket=BUCKET, Key=f"qa-console/training/{job}/data/train/train.jsonl"
    )
    rows = [json.loads(line) for line in train_rows["Body"].read().decode().splitlines()]
    assert len(rows) == SLICE_TRAIN_ROWS and all({"question", "answer"} <= set(r) for r in rows)
    assert any("context" in row for row in rows)  # abstention rows have none: no empty column

    hyper = request["HyperParameters"]
    assert all(isinstance(value, str) for value in hyper.values())
    decoded = {key: json.loads(value) for key, value in hyper.items()}  # JSON-encoded, as the SDK
    assert decoded["base_model"] == "tiny" and decoded["sagemaker_program"] == "train_entry.py"
    assert isinstance(decoded["learning_rate"], float) and isinstance(decoded["batch_size"], int)
    assert decoded["sagemaker_region"] == REGION and decoded["sagemaker_job_name"] == job
    source_uri = decoded["sagemaker_submit_directory"]
    assert source_uri == f"{prefix}/source/sourcedir.tar.gz" and _object_exists(s3, source_uri)

    assert request["OutputDataConfig"] == {"S3OutputPath": f"{prefix}/output"}
    assert request["ResourceConfig"] == {
        "InstanceType": "ml.g5.2xlarge",
        "InstanceCount": 2,
        "VolumeSizeInGB": 30,
    }
    assert request["StoppingCondition"] == {"MaxRuntimeInSeconds": 24 * 3600}

    # The control plane accepted and recorded it.
    described = sagemaker.describe_training_job(TrainingJobName=job)
    assert described["RoleArn"] == ROLE and described["TrainingJobStatus"] == "Completed"
    assert any(e.task == "job" and "Completed" in e.message for e in events)
    assert any(e.task == "upload" and e.done for e in events)


def test_entry_point_trains_in_the_container_layout_and_the_model_comes_back(
    moto_profile: str, tiny_slice: Path, tmp_path: Path, slice_questions: list[tuple[str, str]]
) -> None:
    """Launch, run sourcedir.tar.gz's entry point as the Hugging Face container would (channels
    under input/data, JSON-decoded hyper-parameters as --name value), put its model.tar.gz where
    SageMaker would, then wait and download as `train --on sagemaker` does."""
    target, sent = _target(moto_profile)
    s3 = target.client("s3")
    job = "qa-test-roundtrip"
    output = tmp_path / "model"
    config = SageMakerTrainingConfig(
        train=TrainConfig(base_model="tiny", data=str(tiny_slice), output_dir=output, max_steps=40),
        role_arn=ROLE,
        bucket=BUCKET,
        job_name=job,
        poll_interval_s=0.01,
    )
    with pytest.raises(OperationError):
        launch_training_job(config, target)
    request = sent[0]

    # The container: code in /opt/ml/code, channels in /opt/ml/input/data/<name>/.
    opt = tmp_path / "opt-ml"
    code = opt / "code"
    code.mkdir(parents=True)
    hyper = {key: json.loads(value) for key, value in request["HyperParameters"].items()}
    bucket, _, key = hyper["sagemaker_submit_directory"].removeprefix("s3://").partition("/")
    s3.download_file(bucket, key, str(opt / "sourcedir.tar.gz"))
    with tarfile.open(opt / "sourcedir.tar.gz") as tar:
        names = tar.getnames()
        assert "train_entry.py" in names and "qa_console/ops/training/train.py" in names
        tar.extractall(code, filter="data")
    env = {**os.environ, "SM_MODEL_DIR": str(opt / "model"), "HF_HUB_OFFLINE": "1"}
    for channel in request["InputDataConfig"]:
        name = channel["ChannelName"]
        folder = opt / "input" / "data" / name
        folder.mkdir(parents=True)
        uri = channel["DataSource"]["S3DataSource"]["S3Uri"]
        for object_key in _object_exists(s3, uri):
            s3.download_file(BUCKET, object_key, str(folder / Path(object_key).name))
        env[f"SM_CHANNEL_{name.upper()}"] = str(folder)
    argv = [
        part
        for name, value in hyper.items()
        if not name.startswith("sagemaker_")
        for part in (f"--{name}", str(value))
    ]
    where = subprocess.run(
        [sys.executable, "-c", "import qa_console.ops.training.train as t; print(t.__file__)"],
        cwd=code,
        capture_output=True,
        text=True,
        check=True,
        env={**env, "PYTHONPATH": str(code)},
    )
    assert where.stdout.strip().startswith(str(code))  # the packed copy, not the installed one
    run = subprocess.run(
        [sys.executable, "train_entry.py", *argv],
        cwd=code,
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    assert "train_exact_match=" in run.stdout
    model_dir = opt / "model"
    assert (model_dir / "model.safetensors").is_file() and (
        model_dir / "training_record.json"
    ).is_file()

    # SageMaker tars /opt/ml/model to <S3OutputPath>/<job>/output/model.tar.gz.
    archive = tmp_path / "model.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for path in sorted(model_dir.rglob("*")):
            tar.add(path, arcname=str(path.relative_to(model_dir)), recursive=False)
    artifact_key = f"qa-console/training/{job}/output/{job}/output/model.tar.gz"
    target.client("s3").upload_file(str(archive), BUCKET, artifact_key)

    events: list[ProgressEvent] = []
    described = wait_for_training_job(target, job, events.append, poll_interval_s=0.01)
    assert described["ModelArtifacts"]["S3ModelArtifacts"] == f"s3://{BUCKET}/{artifact_key}"
    download_model(target, described["ModelArtifacts"]["S3ModelArtifacts"], output, events.append)
    assert any(e.task == "download" and e.done for e in events)
    record = json.loads((output / "training_record.json").read_text())
    assert record["base_model"] == "tiny" and record["training"]["steps"] == 40

    from qa_console.backends.local import LocalBackend

    answer = LocalBackend("from-sagemaker", model=str(output)).ask(slice_questions[0][0])
    assert isinstance(answer.text, str)


def test_waiter_reports_progress_and_a_failed_job(moto_profile: str) -> None:
    """The waiter polls until the job ends and turns Failed into an OperationError with the
    job's own reason. moto completes jobs at once, so the test drives the job's status in moto's
    backend (the server runs in this process) between polls."""
    from moto.sagemaker.models import sagemaker_backends

    target, _ = _target(moto_profile)
    sagemaker = target.client("sagemaker")
    job = "qa-test-failing"
    sagemaker.create_training_job(
        TrainingJobName=job,
        AlgorithmSpecification={
            "TrainingImage": training_image(REGION).uri,
            "TrainingInputMode": "File",
        },
        RoleArn=ROLE,
        OutputDataConfig={"S3OutputPath": f"s3://{BUCKET}/out"},
        ResourceConfig={"InstanceType": "ml.g5.xlarge", "InstanceCount": 1, "VolumeSizeInGB": 30},
        StoppingCondition={"MaxRuntimeInSeconds": 3600},
    )
    fake = sagemaker_backends["123456789012"][REGION].training_jobs[job]
    fake.training_job_status, fake.secondary_status = "InProgress", "Training"
    polls: list[float] = []

    def sleep(seconds: float) -> None:
        polls.append(seconds)
        if len(polls) == 2:
            fake.training_job_status, fake.secondary_status = "Failed", "Failed"
            fake.failure_reason = "AlgorithmError: CUDA out of memory"

    events: list[ProgressEvent] = []
    with pytest.raises(OperationError, match="CUDA out of memory"):
        wait_for_training_job(target, job, events.append, poll_interval_s=5, sleep=sleep)
    assert polls == [5, 5]
    messages = [e.message for e in events]
    assert any("InProgress / Training" in m for m in messages)
    assert "Failed" in messages[-1] and events[-1].done


def test_cli_train_on_sagemaker_reaches_the_control_plane(
    moto_profile: str, tiny_slice: Path, tmp_path: Path
) -> None:
    """`qa-console --target <profile> train --on sagemaker`: settings give role, bucket and
    region; the job is created in moto; moto never runs it, so the download step reports the
    missing artifact as a one-line error (exit 1) instead of a traceback."""
    command = [
        sys.executable, "-m", "qa_console", "--target", moto_profile, "train", "--on", "sagemaker",
        "--base-model", "tiny", "--data", str(tiny_slice), "--output", str(tmp_path / "model"),
        "--job-name", "qa-test-cli", "--instance-type", "ml.g5.xlarge",
    ]  # fmt: skip
    env = {**os.environ, "QA_CONSOLE_BUCKET": BUCKET, "QA_CONSOLE_REGION": REGION}
    missing_role = subprocess.run(command, capture_output=True, text=True, env=env, timeout=120)
    assert missing_role.returncode == 2 and "execution role" in missing_role.stderr
    assert "config set execution_role" in missing_role.stderr

    env["QA_CONSOLE_EXECUTION_ROLE"] = ROLE
    out = subprocess.run(command, capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 1, out.stderr
    assert "error: the training job completed but its model is not at s3://" in out.stderr
    assert "Traceback" not in out.stderr
    sagemaker = Target.profile(moto_profile, REGION).client("sagemaker")
    described = sagemaker.describe_training_job(TrainingJobName="qa-test-cli")
    assert described["ResourceConfig"]["InstanceType"] == "ml.g5.xlarge"
    assert described["RoleArn"] == ROLE

    cpu = subprocess.run(
        [*command[:-2], "--instance-type", "ml.m5.xlarge", "--job-name", "qa-test-cpu"],
        capture_output=True, text=True, env=env, timeout=120,
    )  # fmt: skip
    assert cpu.returncode == 2 and "GPU-only" in cpu.stderr


def test_cli_train_on_sagemaker_against_the_embedded_local_aws(
    local_aws: Any, tiny_slice: Path, tmp_path: Path
) -> None:
    """The same command with the default `local` target: the patched control plane of the
    embedded local AWS accepts the job as SageMaker would (GPU instance type, role, channels in
    its S3), and since the local AWS runs no training containers, the job fails at once and
    the CLI says so in one line, not a traceback."""
    iam = local_aws.client("iam")
    role_arn = iam.create_role(
        RoleName="qa-train-local",
        AssumeRolePolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"Service": "sagemaker.amazonaws.com"},
                        "Action": "sts:AssumeRole",
                    }
                ],
            }
        ),
    )["Role"]["Arn"]
    command = [
        sys.executable, "-m", "qa_console", "train", "--on", "sagemaker",
        "--base-model", "tiny", "--data", str(tiny_slice), "--output", str(tmp_path / "model"),
        "--job-name", "qa-test-local", "--instance-type", "ml.g6.xlarge",
    ]  # fmt: skip
    env = {
        **os.environ,
        "QA_CONSOLE_BUCKET": "qa-train-local",
        "QA_CONSOLE_EXECUTION_ROLE": role_arn,
    }
    out = subprocess.run(command, capture_output=True, text=True, env=env, timeout=180)
    assert out.returncode == 1, out.stderr
    # The local AWS fails the job at once with a reason that says where training does run.
    error = " ".join(out.stderr.split())
    assert "keeps training jobs but runs none" in error and "qa-console train" in error
    assert "Traceback" not in out.stderr

    described = local_aws.client("sagemaker").describe_training_job(TrainingJobName="qa-test-local")
    assert described["ResourceConfig"]["InstanceType"] == "ml.g6.xlarge"
    assert described["RoleArn"] == role_arn
    s3 = local_aws.client("s3")
    for channel in described["InputDataConfig"]:
        uri = channel["DataSource"]["S3DataSource"]["S3Uri"]
        bucket, _, prefix = uri.removeprefix("s3://").partition("/")
        assert s3.list_objects_v2(Bucket=bucket, Prefix=prefix)["KeyCount"] > 0, uri
