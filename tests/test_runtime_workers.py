"""Worker processes: parallel requests, a crashed or hung handler, restarts, other endpoints."""

from __future__ import annotations

import json
import os
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from fixtures_runtime import RuntimeStack


def invoke(client, endpoint: str, body: object) -> dict:
    response = client.invoke_endpoint(
        EndpointName=endpoint, Body=json.dumps(body), ContentType="application/json"
    )
    return json.loads(response["Body"].read())


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is dead too: reaped by the runtime's reader thread soon after (maybe just now).
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split()[2] != "Z"
    except OSError:
        return False


def test_32_concurrent_requests_are_served_in_parallel(
    runtime_aws: RuntimeStack, echo_endpoint: str
) -> None:
    client = runtime_aws.client("sagemaker-runtime", max_pool_connections=32)
    with ThreadPoolExecutor(max_workers=32) as pool:
        answers = list(
            pool.map(
                lambda index: invoke(
                    client, echo_endpoint, {"action": "sleep", "seconds": 0.4, "n": index}
                ),
                range(32),
            )
        )
    assert sorted(answer["echo"]["n"] for answer in answers) == list(range(32))
    # The handler counts the requests it is running at once, per worker process. Served one
    # after another, every count would be 1.
    assert max(answer["overlap"] for answer in answers) >= 3
    # The endpoint has two instances, so at least two worker processes, and each took requests.
    pids = _pids(runtime_aws.describe(echo_endpoint))
    assert len(pids) >= 2 and {answer["pid"] for answer in answers} == pids


def test_a_crashed_worker_fails_its_request_and_is_restarted(
    runtime_aws: RuntimeStack, echo_archive: Path, echo_endpoint: str
) -> None:
    runtime_aws.deploy("crashes", echo_archive)
    client = runtime_aws.client("sagemaker-runtime")
    first_pid = invoke(client, "crashes", {"action": "echo"})["pid"]

    with pytest.raises(client.exceptions.ModelError) as caught:
        invoke(client, "crashes", {"action": "exit", "code": 7})
    assert caught.value.response["OriginalStatusCode"] == 500
    assert "exit code 7" in caught.value.response["OriginalMessage"]

    # Other endpoints are not affected while it restarts.
    assert invoke(client, echo_endpoint, {"action": "echo"})["model"] == "echo-v1"

    deadline = time.monotonic() + 30
    while True:
        try:
            answer = invoke(client, "crashes", {"action": "echo"})
            break
        except (client.exceptions.ModelNotReadyException, client.exceptions.ModelError):
            assert time.monotonic() < deadline, runtime_aws.describe("crashes")
            time.sleep(0.2)
    assert answer["pid"] != first_pid
    assert runtime_aws.describe("crashes")[0]["restarts"] == 1


def test_a_hung_handler_times_out_and_its_worker_is_replaced(
    runtime_aws: RuntimeStack, echo_archive: Path
) -> None:
    runtime_aws.deploy("hangs", echo_archive)
    runtime_aws.set_settings(timeout_s=1.0)
    client = runtime_aws.client("sagemaker-runtime")
    hung_pid = invoke(client, "hangs", {"action": "echo"})["pid"]

    started = time.monotonic()
    with pytest.raises(client.exceptions.ModelError) as caught:
        invoke(client, "hangs", {"action": "sleep", "seconds": 30})
    assert time.monotonic() - started < 10  # the runtime answered; it did not wait 30 s
    assert "timed out" in caught.value.response["OriginalMessage"]

    runtime_aws.set_settings(timeout_s=10.0)
    answer = invoke(client, "hangs", {"action": "echo"})  # waits for the replacement to load
    assert answer["pid"] != hung_pid
    deadline = time.monotonic() + 10
    while _alive(hung_pid):
        assert time.monotonic() < deadline, "the hung worker was not killed"
        time.sleep(0.1)


def _pids(pools: list[dict]) -> set[int]:
    return {
        worker["pid"] for pool in pools for worker in pool["workers"] if worker["pid"] is not None
    }


def test_deleting_an_endpoint_stops_its_workers(
    runtime_aws: RuntimeStack, echo_archive: Path
) -> None:
    runtime_aws.deploy("deleted", echo_archive)
    client = runtime_aws.client("sagemaker-runtime")
    pid = invoke(client, "deleted", {"action": "echo"})["pid"]
    runtime_aws.client("sagemaker").delete_endpoint(EndpointName="deleted")
    time.sleep(runtime_aws.settings.cache_s + 0.1)
    with pytest.raises(client.exceptions.ValidationError, match="not found"):
        invoke(client, "deleted", {"action": "echo"})
    deadline = time.monotonic() + 10
    while _alive(pid):
        assert time.monotonic() < deadline, "the deleted endpoint's worker is still running"
        time.sleep(0.1)


def test_shutdown_stops_every_worker_process(
    runtime_aws: RuntimeStack, echo_endpoint: str, tmp_path: Path
) -> None:
    from qa_console.localaws.sagemaker.service import Runtime

    # A second runtime on the same control plane, never started: no poller, only this endpoint.
    runtime = Runtime(runtime_aws.moto_url, runtime_aws.region, tmp_path, runtime_aws.settings)
    assert runtime.wait_ready(echo_endpoint, timeout_s=30)
    pids = _pids(runtime.describe()["endpoints"][echo_endpoint])
    assert len(pids) >= 2 and all(_alive(pid) for pid in pids)
    runtime.shutdown()
    deadline = time.monotonic() + 10
    while any(_alive(pid) for pid in pids):
        assert time.monotonic() < deadline, "worker processes outlived the runtime"
        time.sleep(0.1)


def test_worker_processes_follow_the_instance_count_and_type(
    runtime_aws: RuntimeStack, echo_archive: Path
) -> None:
    from qa_console.localaws.sagemaker.service import instance_vcpus

    sizes = {"ml.m5.large": 2, "ml.c5.xlarge": 4, "ml.g5.12xlarge": 48}
    assert {name: instance_vcpus(name) for name in sizes} == sizes
    runtime_aws.set_settings(max_workers=3)
    runtime_aws.deploy("three-instances", echo_archive, instance_count=3)
    (pool,) = runtime_aws.describe("three-instances")
    # Three instances within a cap of three processes: one worker each, one log stream each.
    assert len(pool["workers"]) == 3
    assert len({worker["instance_id"] for worker in pool["workers"]}) == 3
