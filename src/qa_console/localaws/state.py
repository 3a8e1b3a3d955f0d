"""Where the embedded local AWS records itself, and how a client tells whether it is alive.

The state dir (QA_CONSOLE_LOCAL_AWS_DIR, else <user state dir>/local-aws) holds:
    state.json       written by the supervisor once every part answers; removed when it stops
    ports.json       the ports of the last run, reused at the next start when free
    supervisor.log   the supervisor's log (moto, runtime, gateway)
    launch.lock      serialises concurrent starts and stops (held by clients, briefly)
    supervisor.lock  held by the running supervisor for its whole life: one per state dir
    moto/            the persisted control plane (see persistence.py)

Only the standard library is imported here: `qa-console local status` and every `local`-target
client check liveness before anything heavy is loaded.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import http.client
import json
import os
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from qa_console.errors import ConfigError, TimeoutError_

DIR_ENV = "QA_CONSOLE_LOCAL_AWS_DIR"
STATE_FORMAT = 1
HOST = "127.0.0.1"
HEALTH_PATH = "/_localaws/health"
INVENTORY_PATH = "/_localaws/inventory"
SUPERVISOR_MODULE = "qa_console.localaws.supervisor"
COMPONENTS = ("moto", "runtime", "gateway")
ALREADY_SERVED = 3  # the supervisor's exit code when another one holds the state dir


def state_dir() -> Path:
    """The directory of the local AWS: QA_CONSOLE_LOCAL_AWS_DIR, else the user's state dir."""
    explicit = os.environ.get(DIR_ENV)
    if explicit:
        return Path(explicit).expanduser()
    from qa_console.paths import state_dir as user_state_dir

    return user_state_dir() / "local-aws"


@dataclass
class LocalAwsState:
    """What state.json says about a running local AWS."""

    pid: int
    ports: dict[str, int]
    started_at: float
    version: str
    moto_version: str
    region: str
    state_dir: str
    components: dict[str, str] = field(default_factory=dict)  # name -> "ok" or why not
    format: int = STATE_FORMAT

    def url(self, component: str) -> str:
        return f"http://{HOST}:{self.ports[component]}"

    @property
    def moto_url(self) -> str:
        return self.url("moto")

    @property
    def runtime_url(self) -> str:
        return self.url("runtime")

    @property
    def gateway_url(self) -> str:
        return self.url("gateway")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LocalAwsState:
        return cls(
            pid=int(data["pid"]),
            ports={name: int(port) for name, port in data["ports"].items()},
            started_at=float(data["started_at"]),
            version=str(data.get("version", "")),
            moto_version=str(data.get("moto_version", "")),
            region=str(data.get("region", "us-east-1")),
            state_dir=str(data.get("state_dir", "")),
            components=dict(data.get("components", {})),
            format=int(data.get("format", STATE_FORMAT)),
        )


def state_file(directory: Path) -> Path:
    return directory / "state.json"


def read_state(directory: Path) -> LocalAwsState | None:
    """The recorded state, or None when there is none or it is unreadable (a stale leftover)."""
    try:
        data = json.loads(state_file(directory).read_text(encoding="utf-8"))
        return LocalAwsState.from_dict(data)
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def write_json_atomic(path: Path, data: Any) -> None:
    """Write JSON so a reader sees the old file or the new one, never half of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    os.replace(temporary, path)


def write_state(directory: Path, state: LocalAwsState) -> None:
    write_json_atomic(state_file(directory), state.to_dict())


def remove_state(directory: Path, pid: int | None = None) -> None:
    """Remove state.json, only if it still belongs to `pid` when one is given."""
    if pid is not None:
        current = read_state(directory)
        if current is not None and current.pid != pid:
            return
    with contextlib.suppress(FileNotFoundError):
        state_file(directory).unlink()


def pid_alive(pid: int) -> bool:
    """True when the process exists and is not a zombie waiting to be reaped."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    # The state letter follows the parenthesised command name, which may itself hold spaces.
    return stat.rpartition(")")[2].split()[:1] != ["Z"]


def is_supervisor(pid: int) -> bool:
    """Guard against pid reuse: the process must be our supervisor (where /proc can say)."""
    if not Path("/proc/self").exists():
        return True  # no /proc here (macOS): the health check's pid is the proof
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return SUPERVISOR_MODULE.encode() in cmdline


def probe(port: int, timeout: float = 2.0, path: str = HEALTH_PATH) -> dict[str, Any] | None:
    """GET the health route (or another JSON route) of one part; its JSON, or None when it does
    not answer."""
    connection = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        body = response.read()
        if response.status != 200:
            return None
        data = json.loads(body)
        return data if isinstance(data, dict) else None
    except (OSError, ValueError, http.client.HTTPException):
        return None
    finally:
        connection.close()


def health(state: LocalAwsState, timeout: float = 2.0) -> dict[str, bool]:
    """Which parts answer their health route, each as the recorded supervisor."""
    result = {}
    for component, port in state.ports.items():
        answer = probe(port, timeout)
        result[component] = answer is not None and answer.get("pid") == state.pid
    return result


def is_healthy(state: LocalAwsState, timeout: float = 2.0) -> bool:
    if not (pid_alive(state.pid) and is_supervisor(state.pid)):
        return False
    for attempt in range(2):
        if all(health(state, timeout).values()):
            return True
        if attempt == 0:
            time.sleep(0.2)
    return False


@contextlib.contextmanager
def launch_lock(directory: Path, timeout: float = 120.0) -> Iterator[None]:
    """An exclusive lock on the state dir, so two clients never start two local AWSes."""
    path = directory / "launch.lock"
    try:
        directory.mkdir(parents=True, exist_ok=True)
        handle = open(path, "a+")  # noqa: SIM115 - closed by the with block below
    except OSError as error:
        not_dir = isinstance(error, (FileExistsError, NotADirectoryError))
        why = "not a directory" if not_dir else error.strerror
        raise ConfigError(
            f"cannot use {directory} as the local AWS state dir: {why or error}",
            hint=f"make it a writable directory, or set {DIR_ENV} to one",
        ) from None
    with handle:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as error:
                if error.errno not in (errno.EAGAIN, errno.EACCES):
                    raise
                if time.monotonic() > deadline:
                    raise TimeoutError_(
                        f"another qa-console is starting or stopping the local AWS in {directory}",
                        hint=f"wait for it, or remove {path} if no qa-console is running",
                    ) from None
                time.sleep(0.05)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


class SupervisorLock:
    """The lock a supervisor holds while it lives, so no second one can serve the same state
    dir (a client that died while starting one would otherwise let the next start another)."""

    def __init__(self, directory: Path) -> None:
        self.path = directory / "supervisor.lock"
        self._handle: Any = None

    def acquire(self) -> bool:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(self.path, "a+")  # noqa: SIM115 - held open for the process's life
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            return False
        handle.truncate(0)
        handle.write(str(os.getpid()))
        handle.flush()
        self._handle = handle
        return True


def supervisor_running(directory: Path) -> int | None:
    """The pid of a supervisor holding the state dir's lock (started or still starting)."""
    path = directory / "supervisor.lock"
    try:
        handle = open(path)  # noqa: SIM115 - closed below
    except OSError:
        return None
    with handle:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError:
            try:
                return int(handle.read().strip() or 0) or None
            except ValueError:
                return None
        fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
    return None
