"""`qa-console local up|status|down`, the on-demand start of the `local` target, and start-up
when the state dir holds leftovers (a stale state file) or two clients start it at once."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from fixtures_foundation import run_cli
from qa_console.localaws import components, launcher
from qa_console.localaws.motoserver.app import Activity
from qa_console.localaws.state import (
    ALREADY_SERVED,
    SUPERVISOR_MODULE,
    LocalAwsState,
    pid_alive,
    probe,
    read_state,
    write_state,
)
from qa_console.localaws.supervisor import AsgiServers, _listen


def run_json(*args: str) -> dict[str, Any]:
    result = run_cli(*args, "--json", timeout=120)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert isinstance(data, dict)
    return data


def s3_at(url: str) -> Any:
    return boto3.session.Session().client(
        "s3",
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def test_up_status_down_through_the_console_script(private_local_aws_dir: Path) -> None:
    assert run_json("local", "status")["running"] is False

    up = run_json("local", "up")
    assert up["started"] is True
    assert set(up["urls"]) == {"moto", "runtime", "gateway"}
    assert up["env"]["AWS_ENDPOINT_URL"] == up["urls"]["moto"]
    assert up["env"]["AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME"] == up["urls"]["runtime"]
    assert up["env"]["AWS_DISABLE_HOST_PREFIX_INJECTION"] == "true"
    assert pid_alive(up["pid"])
    s3_at(up["urls"]["moto"]).create_bucket(Bucket="status-bucket")

    again = run_json("local", "up")
    assert again["started"] is False
    assert again["pid"] == up["pid"]

    status = run_json("local", "status")
    assert status["running"] is True
    assert status["pid"] == up["pid"]
    assert status["urls"] == up["urls"]
    assert status["components"]["moto"] == "ok"
    assert status["uptime_seconds"] >= 0
    assert status["buckets"] == ["status-bucket"]
    assert status["endpoints"] == []

    human = run_cli("local", "status")
    assert human.returncode == 0
    assert up["urls"]["moto"] in human.stdout
    assert "status-bucket" in human.stdout

    down = run_json("local", "down")
    assert down["was_running"] is True
    assert down["pid"] == up["pid"]
    assert not pid_alive(up["pid"])
    assert read_state(private_local_aws_dir) is None
    assert run_json("local", "status")["running"] is False
    assert run_json("local", "down")["was_running"] is False


def dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def stale_state(directory: Path, pid: int) -> LocalAwsState:
    state = LocalAwsState(
        pid=pid,
        ports={"moto": 9, "runtime": 9, "gateway": 9},
        started_at=0.0,
        version="0.0.0",
        moto_version="0",
        region="us-east-1",
        state_dir=str(directory),
    )
    write_state(directory, state)
    return state


def test_a_stale_state_file_is_reported_and_replaced(private_local_aws_dir: Path) -> None:
    stale_state(private_local_aws_dir, dead_pid())
    status = run_json("local", "status")
    assert status["running"] is False
    assert status["stale_state_removed"] is True
    assert read_state(private_local_aws_dir) is None

    # A live pid that is not a local AWS (this test process) is stale too, and is left alone.
    stale_state(private_local_aws_dir, os.getpid())
    started = launcher.ensure_running()
    assert started.pid != os.getpid()
    assert pid_alive(started.pid)
    assert read_state(private_local_aws_dir) == started
    s3_at(started.moto_url).list_buckets()


def test_bad_state_dirs_give_one_line_errors(private_local_aws_dir: Path) -> None:
    # A corrupt state.json is a leftover, not a running local AWS.
    private_local_aws_dir.mkdir(parents=True)
    (private_local_aws_dir / "state.json").write_text("{not json", encoding="utf-8")
    for command in ("status", "down"):
        result = run_cli("local", command)
        assert result.returncode == 0, result.stderr
        assert "not running" in result.stdout
        assert "Traceback" not in result.stderr

    # A state dir that cannot be created (its path is a file, or lies under one): nothing runs
    # there, and starting says why in one line with exit code 2 instead of a traceback.
    blocker = private_local_aws_dir / "a-file"
    blocker.write_text("", encoding="utf-8")
    for directory in (blocker, blocker / "sub"):
        env = {"QA_CONSOLE_LOCAL_AWS_DIR": str(directory)}
        for command in ("status", "down"):
            result = run_cli("local", command, env=env)
            assert result.returncode == 0, result.stderr
            assert "not running" in result.stdout
        for command in ("up", "env"):
            result = run_cli("local", command, env=env)
            assert result.returncode == 2, result.stderr
            assert "Traceback" not in result.stderr
            errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
            assert errors == [
                f"error: cannot use {directory} as the local AWS state dir: not a directory"
            ]
    assert blocker.is_file()


def test_two_concurrent_starts_share_one_local_aws(private_local_aws_dir: Path) -> None:
    script = "from qa_console.localaws.launcher import ensure_running; print(ensure_running().pid)"
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", script],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outputs = [process.communicate(timeout=120) for process in processes]
    assert all(process.returncode == 0 for process in processes), outputs
    pids = {int(stdout.strip()) for stdout, _ in outputs}
    assert len(pids) == 1
    recorded = read_state(private_local_aws_dir)
    assert recorded is not None and recorded.pid in pids
    log = (private_local_aws_dir / launcher.LOG_NAME).read_text()
    assert log.count("local AWS ready") == 1


def test_the_local_target_starts_it_on_demand(private_local_aws_dir: Path) -> None:
    script = textwrap.dedent(
        """
        import json, os
        from qa_console.ops.aws.target import resolve
        target = resolve("local", "us-east-1")
        s3 = target.client("s3")
        s3.create_bucket(Bucket="on-demand")
        print(json.dumps({
            "buckets": [b["Name"] for b in s3.list_buckets()["Buckets"]],
            "endpoint": s3.meta.endpoint_url,
            "runtime": target.client("sagemaker-runtime").meta.endpoint_url,
            "prefix": s3.meta.config.inject_host_prefix,
            "key": target.session().get_credentials().access_key,
            "env": sorted(name for name in os.environ if name.startswith("AWS_ENDPOINT")),
        }))
        """
    )
    assert read_state(private_local_aws_dir) is None
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout)
    state = read_state(private_local_aws_dir)
    assert state is not None and pid_alive(state.pid)
    assert seen["buckets"] == ["on-demand"]
    assert seen["endpoint"] == state.moto_url
    assert seen["runtime"] == state.runtime_url
    assert seen["prefix"] is False
    assert seen["key"] == "testing"
    assert seen["env"] == []  # nothing exported to the process
    # The local AWS outlives the command that started it, for the next one.
    assert [b["Name"] for b in s3_at(state.moto_url).list_buckets()["Buckets"]] == ["on-demand"]


def test_a_part_that_cannot_load_is_served_as_a_clear_503(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(
        components.FACTORIES, "runtime", ("qa_console.localaws.no_such_part", "create")
    )
    part = components.load("runtime", "http://127.0.0.1:9", "us-east-1", tmp_path)
    assert part.status.startswith("unavailable: not installed")
    sock = _listen(0)
    port = sock.getsockname()[1]
    servers = AsgiServers([(components.with_health(part, Activity()), sock)])
    servers.start()
    try:
        for _ in range(200):
            health = probe(port)
            if health is not None:
                break
            time.sleep(0.05)
        assert health is not None and health["pid"] == os.getpid()
        assert health["status"].startswith("unavailable")
        runtime = boto3.session.Session().client(
            "sagemaker-runtime",
            endpoint_url=f"http://127.0.0.1:{port}",
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            config=Config(retries={"mode": "standard", "max_attempts": 1}),
        )
        with pytest.raises(ClientError) as caught:
            runtime.invoke_endpoint(EndpointName="any", Body=b"{}")
        assert caught.value.response["Error"]["Code"] == "ServiceUnavailable"
        assert "no_such_part" in caught.value.response["Error"]["Message"]
    finally:
        servers.stop(timeout=10)


def test_a_second_supervisor_refuses_a_state_dir_already_served(
    private_local_aws_dir: Path,
) -> None:
    running = launcher.ensure_running()
    second = subprocess.run(
        [sys.executable, "-m", SUPERVISOR_MODULE, "--state-dir", str(private_local_aws_dir)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert second.returncode == ALREADY_SERVED
    assert "already serves" in second.stderr
    assert read_state(private_local_aws_dir) == running
    assert launcher.status(directory=private_local_aws_dir).running
