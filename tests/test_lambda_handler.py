"""The Lambda function behind `qa-console expose`, called in this process the way the Lambda
runtime calls it, against a real endpoint of the local SageMaker runtime: what the model's
failures and timeouts become (502 / 504 / 503), each with a message and the CORS headers."""

from __future__ import annotations

import json
from typing import Any

import pytest

from fixtures_runtime import RuntimeStack
from qa_console.inference import lambda_handler


@pytest.fixture
def function(runtime_aws: RuntimeStack, parrot: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The handler, configured for the `parrot` endpoint, with a fresh sandbox's client."""
    monkeypatch.setenv("ENDPOINT_NAME", parrot)
    monkeypatch.setenv("CORS_ORIGIN", "https://demo.example")
    monkeypatch.setattr(lambda_handler, "_runtime", None)

    def call(question: str) -> tuple[int, dict[str, Any], dict[str, str]]:
        event = {"httpMethod": "POST", "body": json.dumps({"question": question})}
        reply = lambda_handler.handler(event)
        return reply["statusCode"], json.loads(reply["body"]), reply["headers"]

    return call


def test_an_answer_is_200_with_its_latency(function: Any) -> None:
    status, body, headers = function("who?")
    assert status == 200
    assert body["answer"].startswith("answer to who?")
    assert body["latency_ms"] > 0
    assert headers["Access-Control-Allow-Origin"] == "https://demo.example"


def test_a_model_error_is_502_with_the_models_message(function: Any) -> None:
    status, body, headers = function("fail: weights are corrupt")
    assert status == 502
    assert "weights are corrupt" in body["message"]
    assert headers["Access-Control-Allow-Origin"] == "https://demo.example"


def test_a_reply_without_an_answer_is_502(function: Any) -> None:
    status, body, _ = function("raw: not json at all")
    assert (status, body["message"]) == (502, "the model's reply had no answer in it")


def test_a_model_that_runs_out_of_time_is_504(function: Any, runtime_aws: RuntimeStack) -> None:
    runtime_aws.set_settings(timeout_s=1.0)  # the container's model-server timeout
    status, body, _ = function("sleep: 5")
    assert (status, body["message"]) == (504, "the model did not answer in time")


def test_the_functions_own_read_timeout_is_504(
    function: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MODEL_TIMEOUT_S", "1")
    status, body, _ = function("sleep: 4")
    assert (status, body["message"]) == (504, "the model did not answer in time")


def test_a_missing_endpoint_is_503(function: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENDPOINT_NAME", "no-such-endpoint")
    status, body, _ = function("who?")
    assert status == 503 and "not available" in body["message"]
