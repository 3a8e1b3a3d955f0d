"""Start, find, stop and describe the embedded local AWS from any qa-console process.

`ensure_running()` is what the `local` target calls before building a boto3 client: it reuses a
live local AWS recorded in the state dir, or starts one (a detached supervisor process, see
supervisor.py); `local_target()` turns what it finds into a Target whose clients go to it
(botocore's standard endpoint settings, passed per client: this process's environment is left
alone). Starting is serialised by a file lock, so
two commands started at once share one local AWS; a state file whose process is gone, or that
no longer answers, is cleaned up and replaced.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from qa_console.errors import OperationError, TimeoutError_, UsageError
from qa_console.localaws import state as st

if TYPE_CHECKING:
    from qa_console.ops.aws.target import Connection, Target

START_TIMEOUT = 90.0
HEALTH_PATIENCE = 10.0  # how long a live but silent supervisor gets before it is replaced
STOP_GRACE = 20.0
LOG_NAME = "supervisor.log"
LOG_ROTATE_BYTES = 5 * 1024 * 1024
DEFAULT_REGION = "us-east-1"
FAKE_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}

# Supervisors started by this process, reaped when they exit so they never linger as zombies.
_children: list[subprocess.Popen[bytes]] = []
# (state dir, pid) -> when it last proved healthy, so a burst of clients costs one probe.
_recently_healthy: dict[tuple[str, int], float] = {}
HEALTHY_CACHE_SECONDS = 2.0


def ensure_running(region: str | None = None) -> st.LocalAwsState:
    """The live local AWS (started if needed), as its state file records it."""
    directory = st.state_dir()
    _reap()
    current = st.read_state(directory)
    if current is not None and _healthy(directory, current):
        return current
    with st.launch_lock(directory):
        current = st.read_state(directory)
        if current is not None and _healthy(directory, current):
            return current
        if current is not None and _patient_health(directory, current):
            return current
        if current is not None:
            _discard(directory, current)
        return _start(directory, region or default_region())


def local_target(region: str | None = None) -> Target:
    """The embedded local AWS as a Target; it starts (or finds) the local AWS on first use."""
    from qa_console.ops.aws.target import DEFAULT_REGION, LOCAL_HINTS, LOCAL_TARGET, Target

    chosen = region or default_region() or DEFAULT_REGION
    return Target(LOCAL_TARGET, chosen, connect=lambda: connection(chosen), hints=LOCAL_HINTS)


def connection(region: str | None = None) -> Connection:
    """How clients reach the live local AWS (started if needed): every service at moto,
    sagemaker-runtime at the runtime, REST APIs at the gateway, with the credentials of the
    environment when it has some (a test acting as a moto IAM user), else fake ones: the local
    AWS takes any."""
    from qa_console.localaws.apigateway.urls import url_template
    from qa_console.ops.aws.target import Connection

    state = ensure_running(region)
    key, secret = FAKE_CREDENTIALS["AWS_ACCESS_KEY_ID"], FAKE_CREDENTIALS["AWS_SECRET_ACCESS_KEY"]
    if os.environ.get("AWS_ACCESS_KEY_ID") and os.environ.get("AWS_SECRET_ACCESS_KEY"):
        key, secret = os.environ["AWS_ACCESS_KEY_ID"], os.environ["AWS_SECRET_ACCESS_KEY"]
    return Connection(
        endpoint_urls={"*": state.moto_url, "sagemaker-runtime": state.runtime_url},
        api_urls=url_template(state.gateway_url),
        credentials={"aws_access_key_id": key, "aws_secret_access_key": secret},
    )


@dataclass
class UpResult:
    state: st.LocalAwsState
    started: bool  # False when a running local AWS was reused
    seconds: float
    env: dict[str, str]

    def to_dict(self) -> dict[str, Any]:
        return {
            "started": self.started,
            "seconds": round(self.seconds, 3),
            "pid": self.state.pid,
            "region": self.state.region,
            "urls": {name: self.state.url(name) for name in self.state.ports},
            "components": self.state.components,
            "state_dir": self.state.state_dir,
            "env": self.env,
        }


def up(region: str | None = None) -> UpResult:
    """ensure_running(), saying whether it started one and how long that took."""
    started = time.monotonic()
    before = st.read_state(st.state_dir())
    current = ensure_running(region)
    seconds = time.monotonic() - started
    reused = before is not None and before.pid == current.pid
    return UpResult(current, not reused, seconds, shell_env(current, os.environ))


def default_region() -> str:
    return (
        os.environ.get("QA_CONSOLE_REGION")
        or os.environ.get("AWS_REGION")
        or os.environ.get("AWS_DEFAULT_REGION")
        or DEFAULT_REGION
    )


def shell_env(state: st.LocalAwsState, environ: Mapping[str, str]) -> dict[str, str]:
    """The variables that point a shell's AWS CLI and boto3 at the local AWS (`qa-console local
    env`), given that shell's environment: fake credentials and a region only where it has none."""
    exported = {
        "AWS_ENDPOINT_URL": state.moto_url,
        "AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME": state.runtime_url,
        "AWS_DISABLE_HOST_PREFIX_INJECTION": "true",
    }
    if not (environ.get("AWS_ACCESS_KEY_ID") and environ.get("AWS_SECRET_ACCESS_KEY")):
        exported.update(FAKE_CREDENTIALS)
    if not (environ.get("AWS_REGION") or environ.get("AWS_DEFAULT_REGION")):
        exported["AWS_DEFAULT_REGION"] = state.region
    no_proxy = environ.get("NO_PROXY") or environ.get("no_proxy") or ""
    if (environ.get("HTTP_PROXY") or environ.get("http_proxy")) and st.HOST not in no_proxy:
        exported["NO_PROXY"] = exported["no_proxy"] = ",".join(
            part for part in (no_proxy, st.HOST, "localhost") if part
        )
    return exported


def _healthy(directory: Path, state: st.LocalAwsState) -> bool:
    key = (str(directory), state.pid)
    seen = _recently_healthy.get(key)
    if seen is not None and time.monotonic() - seen < HEALTHY_CACHE_SECONDS:
        return st.pid_alive(state.pid)
    if st.is_healthy(state):
        _recently_healthy[key] = time.monotonic()
        return True
    _recently_healthy.pop(key, None)
    return False


def _patient_health(directory: Path, state: st.LocalAwsState) -> bool:
    """A live supervisor that does not answer may just be busy (a loaded machine): give it
    HEALTH_PATIENCE seconds before replacing it."""
    if not (st.pid_alive(state.pid) and st.is_supervisor(state.pid)):
        return False
    deadline = time.monotonic() + HEALTH_PATIENCE
    while time.monotonic() < deadline:
        if _healthy(directory, state):
            return True
        if not st.pid_alive(state.pid):
            return False
        time.sleep(0.5)
    return False


def _discard(directory: Path, state: st.LocalAwsState) -> None:
    """Clear a state file whose supervisor is gone or does not answer (stopping it if alive)."""
    if st.pid_alive(state.pid) and st.is_supervisor(state.pid):
        _terminate(state.pid, grace=5.0)
    st.remove_state(directory, state.pid)


def _start(directory: Path, region: str) -> st.LocalAwsState:
    if importlib.util.find_spec("moto") is None or importlib.util.find_spec("uvicorn") is None:
        raise UsageError(
            "the embedded local AWS needs moto and uvicorn, which are not installed",
            hint="pip install 'qa-console[local]' (or use --target <aws-profile>)",
        )
    log_path = directory / LOG_NAME  # the directory exists: the caller holds its launch lock
    deadline = time.monotonic() + 5.0
    while (holder := st.supervisor_running(directory)) is not None:
        if st.pid_alive(holder):  # started by a client that gave up or died: wait for it
            return _wait_started(directory, holder, None, log_path)
        if time.monotonic() > deadline:
            break
        time.sleep(0.05)  # a killed supervisor whose exit is not complete yet
    _rotate(log_path)
    env = dict(os.environ)
    for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME", "AWS_PROFILE"):
        env.pop(name, None)
    with open(log_path, "ab") as log_file:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                st.SUPERVISOR_MODULE,
                "--state-dir",
                str(directory),
                "--region",
                region,
            ],
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=log_file,
            start_new_session=True,
            close_fds=True,
            env=env,
            cwd=str(directory),
        )
    _children.append(process)
    return _wait_started(directory, process.pid, process, log_path)


def _wait_started(
    directory: Path, pid: int, process: subprocess.Popen[bytes] | None, log_path: Path
) -> st.LocalAwsState:
    """Wait for supervisor `pid` to record itself healthy; its exit or a timeout is an error."""
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        code = process.poll() if process is not None else None
        other = st.supervisor_running(directory) if code == st.ALREADY_SERVED else None
        if other is not None and other != pid:  # lost a race to a supervisor still starting
            return _wait_started(directory, other, None, log_path)
        if code is not None or (process is None and not st.pid_alive(pid)):
            raise OperationError(
                f"the local AWS exited during start-up (code {code}):\n{_tail(log_path)}",
                hint=f"see {log_path}",
            )
        current = st.read_state(directory)
        if current is not None and current.pid == pid and st.is_healthy(current):
            _recently_healthy[(str(directory), current.pid)] = time.monotonic()
            return current
        if time.monotonic() > deadline:
            _terminate(pid, grace=2.0)
            raise TimeoutError_(
                f"the local AWS did not start within {START_TIMEOUT:.0f} s:\n{_tail(log_path)}",
                hint=f"see {log_path}",
            )
        time.sleep(0.05)


@dataclass
class StopResult:
    was_running: bool
    pid: int | None = None
    seconds: float = 0.0
    forced: bool = False  # killed after the grace period instead of stopping by itself
    state_dir: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "was_running": self.was_running,
            "pid": self.pid,
            "seconds": round(self.seconds, 3),
            "forced": self.forced,
            "state_dir": self.state_dir,
        }


def stop(grace: float = STOP_GRACE, directory: Path | None = None) -> StopResult:
    """Stop the local AWS after it persists its state (SIGTERM, then SIGKILL after `grace`)."""
    directory = directory or st.state_dir()
    started = time.monotonic()
    if not directory.is_dir():  # nothing can run there; do not create it just to say so
        return StopResult(False, state_dir=str(directory))
    with st.launch_lock(directory):
        current = st.read_state(directory)
        if current is None:
            return StopResult(False, state_dir=str(directory))
        if not (st.pid_alive(current.pid) and st.is_supervisor(current.pid)):
            st.remove_state(directory, current.pid)
            return StopResult(False, current.pid, state_dir=str(directory))
        forced = _terminate(current.pid, grace)
        st.remove_state(directory, current.pid)
        _recently_healthy.pop((str(directory), current.pid), None)
    return StopResult(True, current.pid, time.monotonic() - started, forced, str(directory))


def _terminate(pid: int, grace: float) -> bool:
    """SIGTERM the supervisor, wait, then SIGKILL its process group. True when it was killed."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        _reap()
        if not st.pid_alive(pid):
            _kill_group(pid)  # workers the runtime may have left behind
            return False
        time.sleep(0.05)
    _kill_group(pid)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    for _ in range(100):
        _reap()
        if not st.pid_alive(pid):
            break
        time.sleep(0.05)
    return True


def _kill_group(pid: int) -> None:
    """The supervisor leads its own session and process group (start_new_session)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


def _reap() -> None:
    for process in list(_children):
        if process.poll() is not None:
            _children.remove(process)


def _rotate(log_path: Path) -> None:
    with contextlib.suppress(OSError):
        if log_path.stat().st_size > LOG_ROTATE_BYTES:
            os.replace(log_path, log_path.with_suffix(".log.1"))


def _tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


@dataclass
class LocalStatus:
    """What `qa-console local status` reports."""

    running: bool
    state_dir: str
    pid: int | None = None
    region: str | None = None
    uptime_seconds: float | None = None
    urls: dict[str, str] = field(default_factory=dict)
    components: dict[str, str] = field(default_factory=dict)
    endpoints: list[dict[str, str]] = field(default_factory=list)
    buckets: list[str] = field(default_factory=list)
    versions: dict[str, str] = field(default_factory=dict)
    snapshot: dict[str, Any] = field(default_factory=dict)
    log_file: str = ""
    stale_state_removed: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "running": self.running,
            "state_dir": self.state_dir,
            "pid": self.pid,
            "region": self.region,
            "uptime_seconds": None
            if self.uptime_seconds is None
            else round(self.uptime_seconds, 1),
            "urls": self.urls,
            "components": self.components,
            "endpoints": self.endpoints,
            "buckets": self.buckets,
            "versions": self.versions,
            "snapshot": self.snapshot,
            "log_file": self.log_file,
            "stale_state_removed": self.stale_state_removed,
        }


def status(inventory: bool = True, directory: Path | None = None) -> LocalStatus:
    """Whether the local AWS runs, where, since when, and (with `inventory`) its SageMaker
    endpoints and S3 buckets. Never starts it."""
    directory = directory or st.state_dir()
    result = LocalStatus(False, str(directory), log_file=str(directory / LOG_NAME))
    result.snapshot = _snapshot_file_info(directory)
    current = st.read_state(directory)
    if current is None:
        return result
    if not (st.pid_alive(current.pid) and st.is_supervisor(current.pid)):
        with contextlib.suppress(OSError):  # a read-only state dir: still report, do not fail
            st.remove_state(directory, current.pid)  # only if it still names that dead pid
            result.stale_state_removed = True
        return result
    answers = st.health(current)
    result.running = answers.get("moto", False)
    result.pid = current.pid
    result.region = current.region
    result.uptime_seconds = time.time() - current.started_at
    result.urls = {name: current.url(name) for name in current.ports}
    result.components = {
        name: (current.components.get(name, "ok") if answers.get(name) else "not answering")
        for name in current.ports
    }
    result.versions = {"qa-console": current.version, "moto": current.moto_version}
    if inventory and result.running:
        result.endpoints, result.buckets = _inventory(current)
    return result


def _snapshot_file_info(directory: Path) -> dict[str, Any]:
    path = directory / "moto" / "snapshot.pickle"
    try:
        info = path.stat()
    except OSError:
        return {}
    return {"path": str(path), "bytes": info.st_size, "written_at": info.st_mtime}


def _inventory(current: st.LocalAwsState) -> tuple[list[dict[str, str]], list[str]]:
    """SageMaker endpoints (name, status) and S3 buckets of the local control plane, from the
    supervisor's inventory route (no boto3 needed)."""
    answer = st.probe(current.ports["moto"], timeout=10.0, path=st.INVENTORY_PATH) or {}
    endpoints = [
        {"name": item["name"], "status": item["status"], "region": item["region"]}
        for item in answer.get("endpoints", [])
    ]
    buckets = sorted({item["name"] for item in answer.get("buckets", [])})
    return endpoints, buckets
