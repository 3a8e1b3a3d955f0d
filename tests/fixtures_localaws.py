"""The embedded local AWS for tests: one real supervisor per test session, started as the `local`
target starts it, with its endpoints exported to every test.

Stable API (other areas' tests rely on it; keep names and fields):

    def test_x(local_aws: LocalAws) -> None:
        s3 = local_aws.client("s3")                        # or localaws_client(local_aws, "s3")
        runtime = local_aws.client("sagemaker-runtime")    # goes to the SageMaker runtime
        local_aws.endpoint_url   # http://127.0.0.1:<moto>     (AWS_ENDPOINT_URL)
        local_aws.runtime_url    # http://127.0.0.1:<runtime>  (AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME)
        local_aws.gateway_url    # http://127.0.0.1:<gateway>
        local_aws.target         # the 'local' Target (ops/aws/target.py) of this local AWS
        local_aws.region, local_aws.state_dir, local_aws.pid, local_aws.log_file
        local_aws.env            # the variables exported to the test process (for subprocesses)

`local_aws` (session scope) starts the supervisor with QA_CONSOLE_LOCAL_AWS_DIR in a temp dir and
QA_CONSOLE_LOCAL_WATCH_PID set to the test process (so it can never outlive the run), and stops
it at the end. Once it has started, every test (function scope, after conftest's isolation) sees
QA_CONSOLE_LOCAL_AWS_DIR, AWS_ENDPOINT_URL, AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME,
AWS_DISABLE_HOST_PREFIX_INJECTION, fake credentials and the region (what `qa-console local env`
prints), so plain boto3 clients, `resolve("local", ...)` and the console script reach this same
local AWS instead of starting another. State is shared by the whole session: use unique names.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from qa_console.localaws import launcher
from qa_console.localaws.state import DIR_ENV, LocalAwsState
from qa_console.localaws.supervisor import WATCH_PID_ENV

if TYPE_CHECKING:
    from qa_console.ops.aws.target import Target


@dataclass(frozen=True)
class LocalAws:
    """A running embedded local AWS (see the module docstring)."""

    endpoint_url: str
    runtime_url: str
    gateway_url: str
    region: str
    state_dir: Path
    pid: int
    env: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_state(
        cls, state: LocalAwsState, directory: Path, env: Mapping[str, str] | None = None
    ) -> LocalAws:
        """The local AWS that `state` (its state.json in `directory`) describes."""
        return cls(
            endpoint_url=state.moto_url,
            runtime_url=state.runtime_url,
            gateway_url=state.gateway_url,
            region=state.region,
            state_dir=directory,
            pid=state.pid,
            env=dict(env or {}),
        )

    @property
    def log_file(self) -> Path:
        return self.state_dir / launcher.LOG_NAME

    def client(self, service: str, **config: Any) -> Any:
        return localaws_client(self, service, **config)

    @property
    def target(self) -> Target:
        from qa_console.ops.aws.target import resolve

        return resolve("local", self.region)


def localaws_client(local_aws: LocalAws, service: str, **config: Any) -> Any:
    """A boto3 client for one service of the local AWS, independent of the environment:
    explicit endpoint (the runtime's for sagemaker-runtime), fake credentials, standard retries.
    `config` goes to botocore's Config (e.g. read_timeout=70)."""
    import boto3
    from botocore.config import Config

    settings: dict[str, Any] = {"retries": {"mode": "standard", "max_attempts": 3}}
    settings.update(config)
    url = local_aws.runtime_url if service == "sagemaker-runtime" else local_aws.endpoint_url
    return boto3.session.Session().client(
        service,
        region_name=local_aws.region,
        endpoint_url=url,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(**settings),
    )


_session: LocalAws | None = None


@pytest.fixture(scope="session")
def local_aws(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalAws]:
    """The session's embedded local AWS (a real supervisor process over loopback)."""
    global _session
    directory = tmp_path_factory.mktemp("local-aws")
    names = (DIR_ENV, WATCH_PID_ENV, "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE")
    saved = {name: os.environ.get(name) for name in names}
    os.environ[DIR_ENV] = str(directory)
    os.environ[WATCH_PID_ENV] = str(os.getpid())
    os.environ.pop("AWS_PROFILE", None)
    os.environ["AWS_ACCESS_KEY_ID"] = os.environ["AWS_SECRET_ACCESS_KEY"] = "testing"
    state = launcher.ensure_running()
    exported = launcher.shell_env(state, os.environ)
    os.environ.update(exported)  # as a user who ran eval "$(qa-console local env)"
    env = {DIR_ENV: str(directory), WATCH_PID_ENV: str(os.getpid()), **exported}
    env.update({name: os.environ[name] for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")})
    _session = LocalAws.from_state(state, directory, env)
    try:
        yield _session
    finally:
        _session = None
        launcher.stop(directory=directory)
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@pytest.fixture(autouse=True)
def _local_aws_environment(isolated_user_dirs: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Re-export the session's local AWS into each test, after conftest clears QA_CONSOLE_*
    (and undo whatever a test changed), so nothing starts a second one by accident."""
    if _session is not None:
        for name, value in _session.env.items():
            monkeypatch.setenv(name, value)


EXPORTED_NAMES = (
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME",
    "AWS_DISABLE_HOST_PREFIX_INJECTION",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_DEFAULT_REGION",
    "AWS_REGION",
    "AWS_PROFILE",
    "AWS_SESSION_TOKEN",
)


@pytest.fixture
def private_local_aws_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A state dir of the test's own, for tests that start, stop or break a local AWS (the
    session's `local_aws` is left alone). QA_CONSOLE_LOCAL_AWS_DIR points at it, the AWS
    variables are restored after the test, and any local AWS left running in it is stopped."""
    directory = tmp_path / "local-aws"
    for name in EXPORTED_NAMES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv(DIR_ENV, str(directory))
    monkeypatch.setenv(WATCH_PID_ENV, str(os.getpid()))
    try:
        yield directory
    finally:
        launcher.stop(directory=directory)


def wait_for_snapshot(moto_url: str, timeout: float = 30.0) -> dict[str, Any]:
    """Wait until the local AWS has saved every change made so far; the snapshot's header
    (format, moto version, the backends it holds as (module, attribute, account, region))."""
    import pickle
    import time

    from qa_console.localaws.state import probe

    port = int(moto_url.rsplit(":", 1)[1])
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        health = probe(port)
        if health is not None and health["changes"] == health["saved_changes"] > 0:
            state_dir = Path(health["state_dir"])
            with open(state_dir / "moto" / "snapshot.pickle", "rb") as handle:
                meta = pickle.load(handle)
            assert isinstance(meta, dict)
            return meta
        time.sleep(0.1)
    raise AssertionError(f"the local AWS at {moto_url} saved no snapshot within {timeout} s")


def state_clients(state: Any, *services: str) -> list[Any]:
    """boto3 clients for a local AWS the test started itself (its LocalAwsState), not the
    session's."""
    import boto3
    from botocore.config import Config as BotoConfig

    session = boto3.session.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name=state.region
    )
    config = BotoConfig(retries={"mode": "standard", "max_attempts": 3})
    return [session.client(name, endpoint_url=state.moto_url, config=config) for name in services]


def create_serverless_endpoint(
    sagemaker: Any, name: str, model_data_url: str, *, concurrency: int = 1
) -> str:
    """Model NAME, serverless config NAME-config and endpoint NAME, with plain boto3; returns
    the config's name (another endpoint may be made from it)."""
    sagemaker.create_model(
        ModelName=name,
        ExecutionRoleArn="arn:aws:iam::123456789012:role/qa-console-sagemaker",
        PrimaryContainer={"Image": "local/hf:1", "ModelDataUrl": model_data_url},
    )
    config = f"{name}-config"
    sagemaker.create_endpoint_config(
        EndpointConfigName=config,
        ProductionVariants=[
            {
                "VariantName": "AllTraffic",
                "ModelName": name,
                "ServerlessConfig": {"MemorySizeInMB": 2048, "MaxConcurrency": concurrency},
            }
        ],
    )
    sagemaker.create_endpoint(EndpointName=name, EndpointConfigName=config)
    return config
