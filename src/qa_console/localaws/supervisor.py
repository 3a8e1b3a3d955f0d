"""The local AWS process: moto (patched, persisted), the SageMaker runtime and the API gateway.

Started detached by launcher.py as `python -m qa_console.localaws.supervisor --state-dir DIR`,
in its own session, logging to DIR/supervisor.log. It binds three loopback ports (those of the
last run when they are free, so an ~/.aws/config profile keeps working), restores the persisted
control plane, serves moto from a werkzeug thread and the two ASGI parts from one uvicorn event
loop, writes DIR/state.json once all three answer, and on SIGTERM/SIGINT stops serving, takes a
final snapshot and removes state.json.

It also stops by itself when the process named by QA_CONSOLE_LOCAL_WATCH_PID exits (tests set it
so nothing outlives the test run), or after QA_CONSOLE_LOCAL_IDLE_SECONDS without requests.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import signal
import socket
import sys
import threading
import time
from pathlib import Path
from typing import Any

from qa_console.localaws import state as st

log = logging.getLogger("qa_console.localaws.supervisor")

WATCH_PID_ENV = "QA_CONSOLE_LOCAL_WATCH_PID"
IDLE_ENV = "QA_CONSOLE_LOCAL_IDLE_SECONDS"
START_TIMEOUT = 60.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="qa-console-local-aws")
    parser.add_argument("--state-dir", required=True, type=Path)
    parser.add_argument("--region", default="us-east-1")
    args = parser.parse_args(argv)
    logging.basicConfig(
        stream=sys.stderr,
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, lambda *_: stop.set())
    lock = st.SupervisorLock(args.state_dir.resolve())
    if not lock.acquire():
        log.error("another local AWS already serves %s: not starting a second one", args.state_dir)
        return st.ALREADY_SERVED
    supervisor = Supervisor(args.state_dir.resolve(), args.region, stop)
    try:
        supervisor.start()
    except Exception:
        log.exception("the local AWS failed to start")
        supervisor.shutdown()
        return 1
    supervisor.wait()
    supervisor.shutdown()
    return 0


def run(argv: list[str] | None = None) -> None:
    """main(), then leave at once: the parts were stopped in order, so nothing is left for
    interpreter teardown to wait for (a worker pool's atexit join once cost a second)."""
    code = main(argv)
    stop_children()
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def stop_children(grace: float = 3.0) -> None:
    """Stop processes this one started that are still alive (runtime or gateway workers)."""
    children = _children()
    for pid in children:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while children and time.monotonic() < deadline:
        for pid in list(children):
            with contextlib.suppress(ChildProcessError):
                if os.waitpid(pid, os.WNOHANG)[0] == pid:
                    children.remove(pid)
            if not st.pid_alive(pid) and pid in children:
                children.remove(pid)
        time.sleep(0.05)
    for pid in children:
        log.warning("worker %d did not stop: killing it", pid)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def _children() -> list[int]:
    me = os.getpid()
    found = []
    for entry in Path("/proc").glob("[0-9]*/stat") if Path("/proc").is_dir() else []:
        with contextlib.suppress(OSError, ValueError, IndexError):
            fields = entry.read_text().rpartition(")")[2].split()
            if int(fields[1]) == me and fields[0] != "Z":
                found.append(int(entry.parent.name))
    return found


class Supervisor:
    def __init__(self, directory: Path, region: str, stop: threading.Event) -> None:
        self.directory = directory
        self.region = region
        self.stop = stop
        self.started = time.time()
        self._moto_server: Any = None
        self._moto_thread: threading.Thread | None = None
        self._asgi: AsgiServers | None = None
        self._snapshotter: Any = None
        self._state: st.LocalAwsState | None = None
        self._activity: Any = None

    # -- start -------------------------------------------------------------------------------

    def start(self) -> None:
        t0 = time.monotonic()
        self.directory.mkdir(parents=True, exist_ok=True)
        sockets = bind_sockets(self.directory)
        ports = {name: sock.getsockname()[1] for name, sock in sockets.items()}
        st.write_json_atomic(self.directory / "ports.json", ports)
        urls = {name: f"http://{st.HOST}:{port}" for name, port in ports.items()}
        configure_environment(self.region, urls)

        from qa_console.localaws.motoserver import patches as moto_patches
        from qa_console.localaws.motoserver import persistence
        from qa_console.localaws.motoserver.app import Activity, MotoApp

        moto_patches.apply()
        install_iam_simulation()
        persistence.install()
        self._snapshotter = persistence.Snapshotter(self.directory / "moto")
        self._snapshotter.restore()
        self._activity = Activity()
        self._serve_moto(MotoApp(self._snapshotter, self._activity), sockets.pop("moto"))
        log.info("moto serving on %s (%.2f s)", urls["moto"], time.monotonic() - t0)

        from qa_console.localaws import components

        parts = {
            name: components.load(name, urls["moto"], self.region, self.directory / name)
            for name in ("runtime", "gateway")
        }
        self._asgi = AsgiServers(
            [
                (components.with_health(part, self._activity), sockets[name])
                for name, part in parts.items()
            ]
        )
        self._asgi.start()
        self._wait_healthy(ports)
        import moto

        from qa_console import __version__

        self._state = st.LocalAwsState(
            pid=os.getpid(),
            ports=ports,
            started_at=self.started,
            version=__version__,
            moto_version=moto.__version__,
            region=self.region,
            state_dir=str(self.directory),
            components={"moto": "ok", **{name: part.status for name, part in parts.items()}},
        )
        st.write_state(self.directory, self._state)
        self._snapshotter.start()
        log.info(
            "local AWS ready in %.2f s: %s",
            time.monotonic() - t0,
            json.dumps(
                {name: f"{url} ({self._state.components[name]})" for name, url in urls.items()}
            ),
        )

    def _serve_moto(self, app: Any, sock: socket.socket) -> None:
        from moto.moto_server.werkzeug_app import MotoRequestHandler
        from werkzeug.serving import make_server

        self._moto_server = make_server(
            st.HOST,
            sock.getsockname()[1],
            app,
            threaded=True,
            request_handler=MotoRequestHandler,
            fd=sock.fileno(),
        )
        sock.close()  # werkzeug serves a duplicate of the descriptor
        self._moto_thread = threading.Thread(
            target=self._moto_server.serve_forever,
            kwargs={"poll_interval": 0.1},  # how long shutdown() may wait
            name="moto",
            daemon=True,
        )
        self._moto_thread.start()

    def _wait_healthy(self, ports: dict[str, int]) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        pending = dict(ports)
        while pending:
            for name, port in list(pending.items()):
                answer = st.probe(port, timeout=1.0)
                if answer is not None and answer.get("pid") == os.getpid():
                    del pending[name]
            if not pending:
                return
            if self.stop.is_set():
                raise RuntimeError("stopped while starting")
            if time.monotonic() > deadline:
                raise RuntimeError(f"parts did not answer within {START_TIMEOUT:.0f} s: {pending}")
            time.sleep(0.02)

    # -- run ---------------------------------------------------------------------------------

    def wait(self) -> None:
        watch_pid = _int_env(WATCH_PID_ENV)
        idle_seconds = _int_env(IDLE_ENV)
        while not self.stop.wait(1.0):
            if watch_pid and not st.pid_alive(watch_pid):
                log.info("process %d is gone: stopping", watch_pid)
                return
            if idle_seconds and time.monotonic() - self._activity.last > idle_seconds:
                log.info("idle for %d s: stopping", idle_seconds)
                return
            if self._moto_thread is not None and not self._moto_thread.is_alive():
                log.error("the moto server thread died: stopping")
                return
        log.info("stop requested")

    # -- stop --------------------------------------------------------------------------------

    def shutdown(self) -> None:
        started = time.monotonic()
        if self._asgi is not None:
            self._asgi.stop(timeout=10.0)
        if self._moto_server is not None:
            self._moto_server.shutdown()
            self._moto_server.server_close()
        if self._snapshotter is not None:
            self._snapshotter.stop()
            try:
                self._snapshotter.snapshot(lock_timeout=5.0)
            except Exception:
                log.exception("final snapshot failed; the state of the previous one is kept")
        st.remove_state(self.directory, os.getpid())
        log.info("stopped in %.2f s", time.monotonic() - started)


class AsgiServers:
    """Several uvicorn servers on pre-bound sockets, in one event loop on one thread."""

    def __init__(self, apps: list[tuple[Any, socket.socket]]) -> None:
        import uvicorn

        self._servers = [
            (
                uvicorn.Server(
                    uvicorn.Config(
                        app,
                        log_config=None,
                        log_level="warning",
                        access_log=False,
                        lifespan="auto",
                        timeout_graceful_shutdown=5,
                    )
                ),
                sock,
            )
            for app, sock in apps
        ]
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="asgi", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        async def serve_all() -> None:
            await asyncio.gather(*(server.serve(sockets=[sock]) for server, sock in self._servers))

        asyncio.run(serve_all())

    def stop(self, timeout: float) -> None:
        for server, _ in self._servers:
            server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                log.warning("runtime/gateway did not stop within %.0f s", timeout)


def bind_sockets(directory: Path) -> dict[str, socket.socket]:
    """Listening loopback sockets for the three parts: last run's ports when free, else any."""
    previous: dict[str, int] = {}
    with contextlib.suppress(OSError, ValueError):
        previous = {
            k: int(v) for k, v in json.loads((directory / "ports.json").read_text()).items()
        }
    sockets = {}
    for name in st.COMPONENTS:
        sockets[name] = _listen(previous.get(name, 0))
    return sockets


def _listen(port: int) -> socket.socket:
    for candidate in (port, 0) if port else (0,):
        # IPPROTO_TCP spelled out: asyncio sets TCP_NODELAY on accepted connections only when
        # the listening socket says it is TCP; without it every reply waits ~40 ms for a
        # delayed ACK (benchmarks/runtime.py --stack launcher saw 44 ms round trips without it).
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((st.HOST, candidate))
        except OSError:
            sock.close()
            continue
        sock.listen(128)
        sock.set_inheritable(False)
        return sock
    raise OSError("no free loopback port")


def configure_environment(region: str, urls: dict[str, str]) -> None:
    """What moto and the parts' own boto3 clients need, in this process only."""
    os.environ["MOTO_IAM_LOAD_MANAGED_POLICIES"] = "true"
    os.environ["MOTO_PORT"] = urls["moto"].rsplit(":", 1)[1]
    os.environ["AWS_ENDPOINT_URL"] = urls["moto"]
    os.environ["AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME"] = urls["runtime"]
    os.environ["AWS_DISABLE_HOST_PREFIX_INJECTION"] = "true"
    # Fake credentials always: real ones have no business here (the parts' clients and the
    # Lambda handlers the gateway runs inherit this environment). Unknown keys map to moto's
    # default account, so clients using any key see the same account.
    os.environ["AWS_ACCESS_KEY_ID"] = "testing"
    os.environ["AWS_SECRET_ACCESS_KEY"] = "testing"
    for name in ("AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_SECURITY_TOKEN"):
        os.environ.pop(name, None)
    os.environ.setdefault("AWS_DEFAULT_REGION", region)
    no_proxy = os.environ.get("NO_PROXY") or os.environ.get("no_proxy") or ""
    if st.HOST not in no_proxy:
        os.environ["NO_PROXY"] = os.environ["no_proxy"] = ",".join(
            part for part in (no_proxy, st.HOST, "localhost") if part
        )


def install_iam_simulation() -> None:
    """The IAM policy simulator (iam_simulator.py); moto's stock IAM if it fails to install."""
    from qa_console.localaws.iam.simulator import install_iam_simulation as install

    try:
        install()
    except Exception:
        log.exception("IAM policy simulation failed to install; moto's stock IAM is served")


def _int_env(name: str) -> int:
    try:
        return int(os.environ.get(name, "0") or 0)
    except ValueError:
        return 0


if __name__ == "__main__":
    run()
