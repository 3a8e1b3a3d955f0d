"""InvokeEndpointWithResponseStream: AWS event-stream framing that botocore parses."""

from __future__ import annotations

import json

import pytest
from botocore.exceptions import EventStreamError

from fixtures_runtime import RuntimeStack
from qa_console.localaws.sagemaker import eventstream


def stream(client, endpoint: str, body: object):
    return client.invoke_endpoint_with_response_stream(
        EndpointName=endpoint,
        Body=json.dumps(body),
        ContentType="application/json",
        Accept="application/jsonlines",
    )


def test_streamed_parts_arrive_as_payload_part_events(
    runtime_aws: RuntimeStack, echo_endpoint: str
) -> None:
    client = runtime_aws.client("sagemaker-runtime")
    response = stream(
        client, echo_endpoint, {"action": "stream", "parts": ["Ada", " Love", "lace"]}
    )
    assert response["ContentType"] == "application/jsonlines"
    assert response["InvokedProductionVariant"] == "AllTraffic"
    events = list(response["Body"])
    assert [set(event) for event in events] == [{"PayloadPart"}] * 3  # one event per yield
    tokens = [json.loads(event["PayloadPart"]["Bytes"])["token"] for event in events]
    assert tokens == ["Ada", " Love", "lace"]


def test_a_whole_response_is_one_payload_part(
    runtime_aws: RuntimeStack, echo_endpoint: str
) -> None:
    client = runtime_aws.client("sagemaker-runtime")
    events = list(stream(client, echo_endpoint, {"action": "echo", "inputs": "hi"})["Body"])
    assert len(events) == 1
    assert json.loads(events[0]["PayloadPart"]["Bytes"])["echo"]["inputs"] == "hi"


def test_failure_mid_stream_is_a_model_stream_error_event(
    runtime_aws: RuntimeStack, echo_endpoint: str
) -> None:
    client = runtime_aws.client("sagemaker-runtime")
    body = {"action": "stream", "parts": ["a", "b", "c"], "fail_at": 2}
    response = stream(client, echo_endpoint, body)
    received = []
    with pytest.raises(EventStreamError) as caught:
        for event in response["Body"]:
            received.append(json.loads(event["PayloadPart"]["Bytes"])["token"])
    assert received == ["a", "b"]
    assert caught.value.response["Error"]["Code"] == "ModelStreamError"
    assert "the stream broke at part 2" in caught.value.response["Error"]["Message"]


def test_failure_before_the_first_part_is_a_model_error(
    runtime_aws: RuntimeStack, echo_endpoint: str
) -> None:
    client = runtime_aws.client("sagemaker-runtime")
    with pytest.raises(client.exceptions.ModelError) as caught:
        stream(client, echo_endpoint, {"action": "raise", "message": "nothing to stream"})
    assert "nothing to stream" in caught.value.response["OriginalMessage"]


def test_the_encoder_matches_botocore_framing() -> None:
    from botocore.eventstream import EventStreamBuffer

    buffer = EventStreamBuffer()
    buffer.add_data(eventstream.payload_part(b"x" * 70000) + eventstream.model_stream_error("no"))
    first, second = list(buffer)
    assert first.headers[":event-type"] == "PayloadPart" and first.payload == b"x" * 70000
    assert second.headers[":exception-type"] == "ModelStreamError"
    assert json.loads(second.payload) == {"Message": "no", "ErrorCode": "ModelStreamError"}
