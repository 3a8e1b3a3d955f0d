"""Fixtures for the SageMaker-compatible runtime: moto + the runtime on loopback, and handlers.

`runtime_stack` (session) runs a moto server (ThreadedMotoServer) and the runtime app under uvicorn,
each on a free 127.0.0.1 port, in this process. `runtime_aws` (per test) routes every boto3 client
of the test to them through botocore's standard settings (AWS_ENDPOINT_URL,
AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME), with fake credentials and an AWS profile named `runtime-test`
for code that takes a target. Endpoints are created with plain boto3 calls (`deploy`), from small
hand-written code/inference.py files packed into model.tar.gz archives (`handler_archive`).

Whether moto marks endpoints InService at once (stock) or after a Creating phase (the launcher's
patches), `deploy` waits for InService and for the runtime to have loaded the model.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import socket
import tarfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest

REGION = "us-east-1"
BUCKET = "runtime-test-models"
ROLE_ARN = "arn:aws:iam::123456789012:role/runtime-test"
# The inference image `qa-console deploy` would pick for a model saved by the installed
# transformers (an image of another major fails the load, as the container would).
SERVING_IMAGE = (
    "763104351884.dkr.ecr.us-east-1.amazonaws.com/huggingface-pytorch-inference:"
    "2.6.0-transformers5.5.3-cpu-py312-ubuntu22.04"
)
PROFILE = "runtime-test"

# One versatile handler: the request body says what to do, so one model covers most tests.
#   {"action": "echo"}                       echo the request (+ the model's name, pid, overlap)
#   {"action": "sleep", "seconds": s}        sleep (concurrency, timeouts), report overlap
#   {"action": "raise", "message": m}        raise ValueError(m)
#   {"action": "exit", "code": c}            kill the worker process with os._exit(c)
#   {"action": "stream", "parts": [...], "fail_at": i}   yield JSON lines, raising at index i
ECHO_HANDLER = """
import json
import os
import threading
import time

_lock = threading.Lock()
_active = 0
_peak = 0


def model_fn(model_dir):
    with open(os.path.join(model_dir, "config.json")) as handle:
        return json.load(handle)


def input_fn(body, content_type):
    if content_type.startswith("text/"):
        return {"action": "echo", "text": body}
    return json.loads(body)


def _parts(data):
    for index, part in enumerate(data["parts"]):
        if data.get("fail_at") == index:
            raise RuntimeError("the stream broke at part %d" % index)
        yield part


def predict_fn(data, model):
    global _active, _peak
    action = data.get("action", "echo")
    print("handling action", action, flush=True)
    if action == "raise":
        raise ValueError(data.get("message", "boom"))
    if action == "exit":
        os._exit(int(data.get("code", 3)))
    if action == "stream":
        return _parts(data)
    with _lock:
        _active += 1
        _peak = max(_peak, _active)
        overlap = _active
    try:
        if action == "sleep":
            time.sleep(float(data.get("seconds", 0.2)))
        with _lock:
            peak = _peak
        return {"echo": data, "model": model.get("name"), "pid": os.getpid(),
                "overlap": overlap, "peak": peak}
    finally:
        with _lock:
            _active -= 1


def output_fn(prediction, accept):
    if hasattr(prediction, "__next__"):
        return (json.dumps({"token": part}) + "\\n" for part in prediction)
    return json.dumps(prediction)
"""

SLOW_LOAD_HANDLER = """
import time


def model_fn(model_dir):
    time.sleep(SECONDS)
    return "loaded"


def predict_fn(data, model):
    return {"model": model}
"""

# Speaks this project's handler contract ({"inputs", "parameters"} -> [{"generated_text"}]) without
# a model, for the sagemaker backend's tests. The question says what to do:
#   "fail: why"  raise ValueError(why)     "sleep: s"  sleep s seconds first
#   "stream: a b c"  stream {"token": ...} lines, one per word
#   "raw: text"  answer the text as it is (not JSON)
GENERATE_HANDLER = """
import json
import time


def model_fn(model_dir):
    return "parrot"


def predict_fn(data, model):
    question = data["inputs"]
    parameters = data.get("parameters") or {}
    if question.startswith("fail:"):
        raise ValueError(question[5:].strip())
    if question.startswith("sleep:"):
        time.sleep(float(question[6:]))
    if question.startswith("stream:"):
        return ({"token": word + " "} for word in question[7:].split())
    if question.startswith("raw:"):
        return question[4:].strip()
    text = "answer to %s with %s" % (question, json.dumps(parameters, sort_keys=True))
    return [{"generated_text": text}]


def output_fn(prediction, accept):
    if isinstance(prediction, str):
        return prediction
    if isinstance(prediction, list):
        return json.dumps(prediction)
    return (json.dumps(piece) + "\\n" for piece in prediction)
"""

BROKEN_LOAD_HANDLER = """
def model_fn(model_dir):
    raise OSError("weights are missing from " + model_dir)
"""


def handler_archive(
    folder: Path,
    source: str | None,
    *,
    name: str = "echo-v1",
    extra: dict[str, bytes] | None = None,
) -> Path:
    """A model.tar.gz with config.json ({"name": name}) and, unless source is None,
    code/inference.py. Deterministic bytes for the same input."""
    files: dict[str, bytes] = {"config.json": json.dumps({"name": name}).encode()}
    if source is not None:
        files["code/inference.py"] = source.encode()
    files.update(extra or {})
    digest = hashlib.sha256(json.dumps(sorted((k, v.hex()) for k, v in files.items())).encode())
    archive = folder / f"model-{digest.hexdigest()[:12]}.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for member_name, data in sorted(files.items()):
            info = tarfile.TarInfo(member_name)
            info.size = len(data)
            info.mode = 0o644
            info.mtime = 0
            tar.addfile(info, io.BytesIO(data))
    return archive


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class RuntimeStack:
    moto_url: str
    runtime_url: str
    app: Any
    work_dir: Path
    region: str = REGION
    _bucket_ready: bool = field(default=False, repr=False)

    @property
    def runtime(self) -> Any:
        """The Runtime object behind the app (status, settings, flushing logs)."""
        return self.app.state.runtime

    def client(self, service: str, **config: Any) -> Any:
        """A boto3 client routed by the environment `runtime_aws` sets (no endpoint_url here)."""
        import boto3
        from botocore.config import Config

        settings: dict[str, Any] = {"retries": {"mode": "standard", "max_attempts": 1}}
        settings.update(config)
        return boto3.client(service, region_name=self.region, config=Config(**settings))

    def upload(self, archive: Path, key: str) -> str:
        s3 = self.client("s3")
        if not self._bucket_ready:
            s3.create_bucket(Bucket=BUCKET)
            self._bucket_ready = True
        s3.upload_file(str(archive), BUCKET, key)
        return f"s3://{BUCKET}/{key}"

    def deploy(
        self,
        endpoint: str,
        archive: Path,
        *,
        instance_count: int = 1,
        serverless_max_concurrency: int | None = None,
        async_output: str | None = None,
        async_failure: str | None = None,
        wait: bool = True,
        config_suffix: str = "",
    ) -> dict[str, Any]:
        """Upload the archive, create model + endpoint config + endpoint with plain boto3, and
        (wait=True) wait until it is InService and the runtime has loaded it."""
        sagemaker = self.client("sagemaker")
        url = self.upload(archive, f"{endpoint}{config_suffix}/{archive.name}")
        model_name = f"{endpoint}-model{config_suffix}"
        config_name = f"{endpoint}-config{config_suffix}"
        sagemaker.create_model(
            ModelName=model_name,
            ExecutionRoleArn=ROLE_ARN,
            PrimaryContainer={
                "Image": SERVING_IMAGE,
                "ModelDataUrl": url,
                "Environment": {"QA_RUNTIME_TEST": endpoint},
            },
        )
        variant: dict[str, Any] = {"VariantName": "AllTraffic", "ModelName": model_name}
        if serverless_max_concurrency is not None:
            variant["ServerlessConfig"] = {
                "MemorySizeInMB": 2048,
                "MaxConcurrency": serverless_max_concurrency,
            }
        else:
            variant.update(InstanceType="ml.m5.large", InitialInstanceCount=instance_count)
        config: dict[str, Any] = {
            "EndpointConfigName": config_name,
            "ProductionVariants": [variant],
        }
        if async_output:
            output: dict[str, str] = {"S3OutputPath": async_output}
            if async_failure:
                output["S3FailurePath"] = async_failure
            config["AsyncInferenceConfig"] = {"OutputConfig": output}
        sagemaker.create_endpoint_config(**config)
        if config_suffix:
            sagemaker.update_endpoint(EndpointName=endpoint, EndpointConfigName=config_name)
        else:
            sagemaker.create_endpoint(EndpointName=endpoint, EndpointConfigName=config_name)
        if wait:
            self.wait_in_service(endpoint)
            assert self.runtime.wait_ready(endpoint, timeout_s=60), self.runtime.describe()
        return {"model": model_name, "config": config_name, "url": url}

    def wait_in_service(self, endpoint: str, timeout_s: float = 30.0) -> None:
        sagemaker = self.client("sagemaker")
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if sagemaker.describe_endpoint(EndpointName=endpoint)["EndpointStatus"] == "InService":
                return
            time.sleep(0.2)
        raise AssertionError(f"{endpoint} did not become InService in {timeout_s} s")

    def set_endpoint_status(self, endpoint: str, status: str) -> None:
        """Put an endpoint of the in-process moto into a status (e.g. Creating, Failed)."""
        from moto.sagemaker.models import sagemaker_backends

        backend = sagemaker_backends["123456789012"][self.region]
        backend.endpoints[endpoint].endpoint_status = status

    def describe(self, endpoint: str) -> list[dict[str, Any]]:
        """The runtime's view of an endpoint: one entry per pool (variant/deployment)."""
        return list(self.runtime.describe()["endpoints"].get(endpoint, []))

    @property
    def settings(self) -> Any:
        return self.runtime.settings

    def set_settings(self, **changes: Any) -> None:
        """Change runtime knobs (timeouts) for one test; `runtime_aws` restores them after."""
        self.runtime.settings = replace(self.runtime.settings, **changes)


@pytest.fixture(scope="session")
def runtime_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RuntimeStack]:
    """moto + the runtime on loopback for the whole session."""
    import uvicorn
    from moto.server import ThreadedMotoServer

    from qa_console.localaws.sagemaker import create_runtime_app
    from qa_console.localaws.sagemaker.service import RuntimeSettings

    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=free_port(), verbose=False)
    moto.start()
    host, port = moto.get_host_and_port()
    moto_url = f"http://{host}:{port}"
    work_dir = tmp_path_factory.mktemp("runtime-work")
    settings = RuntimeSettings(
        timeout_s=10.0, load_wait_s=10.0, threads=4, poll_s=0.5, cache_s=0.2, log_flush_s=0.2
    )
    app = create_runtime_app(moto_url, REGION, work_dir, settings=settings)
    runtime_port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=runtime_port, log_level="warning", lifespan="on")
    )
    thread = threading.Thread(target=server.run, name="runtime-uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "the runtime did not start"
        time.sleep(0.05)
    stack = RuntimeStack(moto_url, f"http://127.0.0.1:{runtime_port}", app, work_dir)
    try:
        yield stack
    finally:
        app.state.runtime.shutdown()  # first: requests still waiting on a worker end now
        server.should_exit = True
        thread.join(timeout=20)
        moto.stop()


@pytest.fixture
def runtime_aws(
    runtime_stack: RuntimeStack, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Iterator[RuntimeStack]:
    """Route this test's boto3 clients to moto and the runtime; restore runtime knobs after."""
    import boto3

    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_ENDPOINT_URL", runtime_stack.moto_url)
    monkeypatch.setenv("AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME", runtime_stack.runtime_url)
    config = tmp_path / "aws-config"
    config.write_text(f"[profile {PROFILE}]\nregion = {REGION}\n", encoding="utf-8")
    credentials = tmp_path / "aws-credentials"
    credentials.write_text(
        f"[{PROFILE}]\naws_access_key_id = testing\naws_secret_access_key = testing\n",
        encoding="utf-8",
    )
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(credentials))
    boto3.DEFAULT_SESSION = None
    saved = runtime_stack.runtime.settings
    try:
        yield runtime_stack
    finally:
        runtime_stack.runtime.settings = saved


@pytest.fixture(scope="session")
def t5_archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real model.tar.gz: a tiny random T5 packaged with the project's model handler."""
    from fixtures_package import build_tiny_model
    from qa_console.ops.packaging.build import build

    folder = tmp_path_factory.mktemp("t5")
    model_dir = build_tiny_model(folder / "model")
    return Path(build(model_dir, folder / "model.tar.gz").archive)


@pytest.fixture(scope="session")
def echo_archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return handler_archive(tmp_path_factory.mktemp("echo"), ECHO_HANDLER)


@pytest.fixture(scope="session")
def echo_endpoint(runtime_stack: RuntimeStack, echo_archive: Path) -> str:
    """A real-time endpoint (2 instances) serving the echo handler, shared by read-only tests."""
    import boto3

    name = "echo"
    session = boto3.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name=REGION
    )
    sagemaker = session.client("sagemaker", endpoint_url=runtime_stack.moto_url)
    s3 = session.client("s3", endpoint_url=runtime_stack.moto_url)
    s3.create_bucket(Bucket="runtime-test-shared")
    s3.upload_file(str(echo_archive), "runtime-test-shared", "echo/model.tar.gz")
    sagemaker.create_model(
        ModelName="echo-model",
        ExecutionRoleArn=ROLE_ARN,
        PrimaryContainer={
            "Image": "hf",
            "ModelDataUrl": "s3://runtime-test-shared/echo/model.tar.gz",
        },
    )
    sagemaker.create_endpoint_config(
        EndpointConfigName="echo-config",
        ProductionVariants=[
            {
                "VariantName": "AllTraffic",
                "ModelName": "echo-model",
                "InstanceType": "ml.m5.large",
                "InitialInstanceCount": 2,
            }
        ],
    )
    sagemaker.create_endpoint(EndpointName=name, EndpointConfigName="echo-config")
    deadline = time.monotonic() + 30
    while sagemaker.describe_endpoint(EndpointName=name)["EndpointStatus"] != "InService":
        assert time.monotonic() < deadline
        time.sleep(0.2)
    assert runtime_stack.runtime.wait_ready(name, timeout_s=60), runtime_stack.runtime.describe()
    return name


@pytest.fixture(scope="session")
def generate_archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return handler_archive(tmp_path_factory.mktemp("generate"), GENERATE_HANDLER, name="parrot")


@pytest.fixture
def parrot(runtime_aws: RuntimeStack, generate_archive: Path) -> str:
    """A real-time endpoint speaking the handler contract (deployed once per session)."""
    if not runtime_aws.describe("parrot"):
        runtime_aws.deploy("parrot", generate_archive)
    return "parrot"
