"""InvokeEndpoint through the runtime with the boto3 client, over real sockets."""

from __future__ import annotations

import json

from fixtures_runtime import RuntimeStack


def test_json_invoke_runs_the_handler_sequence(
    runtime_aws: RuntimeStack, echo_endpoint: str
) -> None:
    client = runtime_aws.client("sagemaker-runtime")
    body = {"action": "echo", "inputs": "who wrote it?", "parameters": {"max_new_tokens": 4}}
    response = client.invoke_endpoint(
        EndpointName=echo_endpoint,
        Body=json.dumps(body),
        ContentType="application/json",
        Accept="application/json",
    )
    answer = json.loads(response["Body"].read())
    assert answer["echo"] == body
    assert answer["model"] == "echo-v1"  # model_fn read config.json from the extracted tarball
    assert response["ContentType"] == "application/json"
    assert response["InvokedProductionVariant"] == "AllTraffic"
    assert response["ResponseMetadata"]["RequestId"]
