"""A real model end to end: a tiny T5 packaged with inference/model_handler.py, served locally."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fixtures_runtime import PROFILE, RuntimeStack
from qa_console.backends.sagemaker import SageMakerBackend
from qa_console.inference.handler_contract import HandlerHost, load_handler
from qa_console.ops.packaging.safe_tar import safe_extract


def test_tiny_t5_answers_like_the_handler_called_in_process(
    runtime_aws: RuntimeStack, t5_archive: Path, tmp_path: Path
) -> None:
    runtime_aws.deploy("tiny-t5", t5_archive)
    request = {"inputs": "who wrote paris", "parameters": {"max_new_tokens": 6}}
    client = runtime_aws.client("sagemaker-runtime")
    response = client.invoke_endpoint(
        EndpointName="tiny-t5", Body=json.dumps(request), ContentType="application/json"
    )
    served = json.loads(response["Body"].read())
    assert isinstance(served, list) and isinstance(served[0]["generated_text"], str)

    # The same tarball and handler, called in this process the way the container calls it.
    model_dir = tmp_path / "model"
    safe_extract(t5_archive, model_dir)
    host = HandlerHost(load_handler(model_dir / "code"), str(model_dir))
    host.load()
    expected, _ = host.invoke(json.dumps(request).encode(), "application/json", "application/json")
    assert served == json.loads(expected)

    answer = SageMakerBackend("t5", endpoint="tiny-t5", target=PROFILE).ask(
        "who wrote paris", {"max_new_tokens": 6}
    )
    assert answer.text == served[0]["generated_text"]

    # The real handler's own validation errors come back as ModelError with its message.
    with pytest.raises(client.exceptions.ModelError) as caught:
        client.invoke_endpoint(EndpointName="tiny-t5", Body=b'{"question": "x"}')
    assert "unknown key 'question'" in caught.value.response["OriginalMessage"]
