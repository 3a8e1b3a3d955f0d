"""The container's log lines land in the local CloudWatch Logs, where SageMaker puts them."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from fixtures_runtime import RuntimeStack


def test_container_logs_go_to_the_endpoint_log_group(
    runtime_aws: RuntimeStack, echo_archive: Path
) -> None:
    runtime_aws.deploy("logged", echo_archive)
    assert runtime_aws.runtime.logs.flush(timeout_s=10)
    puts: list[int] = []  # log events per put_log_events call the runtime makes from now on
    runtime_aws.runtime.logs.client.meta.events.register(
        "provide-client-params.cloudwatch-logs.PutLogEvents",
        lambda params, **_: puts.append(len(params["logEvents"])),
    )
    client = runtime_aws.client("sagemaker-runtime")
    for _ in range(5):
        client.invoke_endpoint(EndpointName="logged", Body=json.dumps({"action": "echo"}))
    with pytest.raises(client.exceptions.ModelError):
        client.invoke_endpoint(
            EndpointName="logged", Body=json.dumps({"action": "raise", "message": "log me"})
        )
    assert runtime_aws.runtime.logs.flush(timeout_s=10)

    logs = runtime_aws.client("logs")
    group = "/aws/sagemaker/Endpoints/logged"
    streams = [
        s["logStreamName"] for s in logs.describe_log_streams(logGroupName=group)["logStreams"]
    ]
    assert len(streams) == 1
    assert re.fullmatch(r"AllTraffic/i-0[0-9a-f]{16}", streams[0])
    lines = [event["message"] for event in logs.filter_log_events(logGroupName=group)["events"]]
    text = "\n".join(lines)
    assert re.search(r"model loaded in \d+ ms", text)
    assert text.count("handling action echo") == 5  # the handler's own print()s
    access = [line for line in lines if line.startswith("ACCESS_LOG")]
    assert len(access) == 6
    assert (
        sum(" 200 " in line for line in access) == 5
        and sum(" 400 " in line for line in access) == 1
    )
    # Latency on each request, and the handler's share of it on each answered one.
    assert all(re.search(r" \d+\.\d ms", line) for line in access)
    assert sum(bool(re.search(r"\(model \d+\.\d ms\)$", line)) for line in access) == 5
    assert "Traceback (most recent call last)" in text and "ValueError: log me" in text
    # Batched: far fewer calls than lines (5 requests wrote well over 12 lines).
    assert sum(puts) >= 12 and len(puts) < sum(puts) / 2
