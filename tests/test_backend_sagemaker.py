"""The sagemaker backend against the local runtime over real sockets: answers, streams, errors."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from fixtures_foundation import CONSOLE_SCRIPT, write_plugins
from fixtures_runtime import PROFILE, RuntimeStack, free_port
from qa_console.backends.sagemaker import SageMakerBackend
from qa_console.errors import (
    AuthError,
    BackendError,
    ConfigError,
    QAConsoleError,
    TimeoutError_,
    UsageError,
)


def backend(endpoint: str, **options: object) -> SageMakerBackend:
    return SageMakerBackend("sm", endpoint=endpoint, target=PROFILE, region="us-east-1", **options)


def count_invocations(sm: SageMakerBackend) -> list[str]:
    """Record every HTTP request the backend's runtime client sends (retries included)."""
    sent: list[str] = []
    sm._client("sagemaker-runtime").meta.events.register(
        "before-send.sagemaker-runtime", lambda request, **_: sent.append(request.url)
    )
    return sent


def test_ask_sends_the_handler_contract_and_reads_generated_text(parrot: str) -> None:
    sm = backend(parrot, parameters={"num_beams": 1, "max_new_tokens": 32})
    answer = sm.ask("  Who wrote Frankenstein?  ", {"max_new_tokens": 8})
    assert answer.text == (
        'answer to Who wrote Frankenstein? with {"max_new_tokens": 8, "num_beams": 1}'
    )
    assert answer.backend == "sm"
    assert answer.extra == {"endpoint": "parrot", "variant": "AllTraffic"}
    assert answer.latency_ms > 0


def test_stream_yields_the_pieces_as_they_come(parrot: str) -> None:
    sm = backend(parrot)
    assert list(sm.stream("stream: Mary Shelley wrote it")) == [
        "Mary ",
        "Shelley ",
        "wrote ",
        "it ",
    ]
    # A handler that answers in one piece is yielded once.
    assert list(sm.stream("Who?")) == ["answer to Who? with {}"]


def test_health_checks_service_status_and_a_real_answer(parrot: str) -> None:
    health = backend(parrot).health()
    assert health.ok, health.detail
    assert "InService" in health.detail and "answer to ping" in health.detail

    missing = backend("no-such-endpoint").health()
    assert not missing.ok
    assert "does not exist" in missing.detail


def test_unknown_endpoint_is_a_usage_error_with_a_hint(runtime_aws: RuntimeStack) -> None:
    with pytest.raises(UsageError) as caught:
        backend("nowhere").ask("Who?")
    assert "endpoint nowhere does not exist" in caught.value.message
    assert caught.value.hint


def test_endpoint_not_in_service_says_to_wait(
    runtime_aws: RuntimeStack, generate_archive: Path
) -> None:
    runtime_aws.deploy("parrot-creating", generate_archive)
    runtime_aws.set_endpoint_status("parrot-creating", "Creating")
    time.sleep(runtime_aws.settings.cache_s + 0.1)  # what the runtime saw before is stale now
    with pytest.raises(BackendError) as caught:
        backend("parrot-creating").ask("Who?")
    assert "not InService" in caught.value.message
    assert "wait" in (caught.value.hint or "")


def test_model_error_carries_the_handler_message_and_is_not_retried(parrot: str) -> None:
    sm = backend(parrot)
    sent = count_invocations(sm)
    with pytest.raises(BackendError) as caught:
        sm.ask("fail: nobody by that name")
    assert caught.value.message.endswith("(400): nobody by that name")
    assert "/aws/sagemaker/Endpoints/parrot" in (caught.value.hint or "")
    assert len(sent) == 1
    # The endpoint's log lines of that moment come with the error (its access line at least).
    assert caught.value.details[0].startswith("the endpoint's log around the failure")
    assert any("/invocations" in line for line in caught.value.details[1:])


def test_a_model_failing_mid_stream_is_a_backend_error(parrot: str) -> None:
    with pytest.raises(BackendError, match="nobody"):
        list(backend(parrot).stream("fail: nobody"))


def test_read_timeout_is_a_timeout_error_without_retries(parrot: str) -> None:
    sm = backend(parrot, timeout_s=1.0)
    sent = count_invocations(sm)
    with pytest.raises(TimeoutError_) as caught:
        sm.ask("sleep: 3")
    assert "did not answer within 1 s" in caught.value.message
    assert len(sent) == 1  # botocore's standard mode would have tried three times


def test_throttling_is_a_backend_error_with_a_hint(
    runtime_aws: RuntimeStack, generate_archive: Path
) -> None:
    runtime_aws.deploy("parrot-serverless", generate_archive, serverless_max_concurrency=1)
    sm = backend("parrot-serverless")

    runtime_aws.set_settings(timeout_s=60.0)

    def occupy() -> None:
        # Holds the only slot for 30 s, far longer than all retries take.
        with contextlib.suppress(QAConsoleError):
            backend("parrot-serverless").ask("sleep: 30")

    threading.Thread(target=occupy, daemon=True).start()
    deadline = time.monotonic() + 10
    while not any(
        w["in_flight"] for p in runtime_aws.describe("parrot-serverless") for w in p["workers"]
    ):
        assert time.monotonic() < deadline, "the first request never reached the worker"
        time.sleep(0.02)
    sent = count_invocations(sm)
    with pytest.raises(BackendError) as caught:
        sm.ask("Who?")
    assert "throttling" in caught.value.message
    assert "MaxConcurrency" in (caught.value.hint or "")
    assert len(sent) > 1  # throttling is retried (standard mode), then reported


def test_missing_credentials_and_unknown_profile(
    runtime_aws: RuntimeStack, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    config = tmp_path / "config"
    config.write_text("[profile empty]\nregion = us-east-1\n", encoding="utf-8")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    with pytest.raises(AuthError) as caught:
        SageMakerBackend("sm", endpoint="parrot", target="empty").ask("Who?")
    assert "no AWS credentials" in caught.value.message
    assert "aws configure --profile empty" in (caught.value.hint or "")

    with pytest.raises(ConfigError, match="profile 'nope' does not exist"):
        SageMakerBackend("sm", endpoint="parrot", target="nope").ask("Who?")


def test_a_reply_that_is_not_json_is_a_backend_error(parrot: str) -> None:
    with pytest.raises(BackendError) as caught:
        backend(parrot).ask("raw: <html>Bad Gateway</html>")
    assert caught.value.message == "endpoint parrot replied with non-JSON: <html>Bad Gateway</html>"
    assert "generated_text" in (caught.value.hint or "")


def test_an_unreachable_runtime_is_a_backend_error_naming_where(
    runtime_aws: RuntimeStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME", f"http://127.0.0.1:{free_port()}")
    with pytest.raises(BackendError) as caught:
        backend("parrot").ask("Who?")
    assert caught.value.message.startswith("cannot ask sm: cannot reach http://127.0.0.1:")
    assert caught.value.message.endswith(f" in profile {PROFILE} (us-east-1)")
    assert caught.value.hint == "check the network and the region"


RUN_AND_DUMP_MODULES = """
import atexit, json, os, runpy, sys

def dump():
    with open(os.environ["QA_TEST_MODULES_OUT"], "w") as out:
        json.dump(sorted(sys.modules), out)

atexit.register(dump)
script = sys.argv[1]
sys.argv = sys.argv[1:]
runpy.run_path(script, run_name="__main__")
"""


def test_qa_console_ask_answers_from_the_endpoint_without_heavy_imports(
    parrot: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    plugins = write_plugins(
        tmp_path / "plugins.toml",
        {"sm": {"kind": "sagemaker", "endpoint": parrot, "target": PROFILE}},
    )
    monkeypatch.setenv("QA_CONSOLE_PLUGINS", str(plugins))
    modules_file = tmp_path / "modules.json"
    run = subprocess.run(
        [
            sys.executable,
            "-c",
            RUN_AND_DUMP_MODULES,
            str(CONSOLE_SCRIPT),
            "ask",
            "--backend",
            "sm",
            "Who wrote it?",
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "QA_TEST_MODULES_OUT": str(modules_file)},
        timeout=60,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout == "answer to Who wrote it? with {}\n"
    modules = set(json.loads(modules_file.read_text()))
    assert "qa_console.backends.sagemaker" in modules
    heavy = ("torch", "transformers", "textual", "moto", "starlette", "uvicorn")
    assert sorted(m for m in modules if m.split(".")[0] in heavy) == []


@pytest.mark.parametrize(
    ("question", "unreachable", "code", "error"),
    [
        ("Who?", False, 2, "error: cannot ask sm: endpoint nowhere does not exist in"),
        ("raw: <html>", False, 1, "error: endpoint parrot replied with non-JSON: <html>"),
        ("Who?", True, 1, "error: cannot ask sm: cannot reach http://127.0.0.1:"),
    ],
    ids=["unknown-endpoint", "non-json-reply", "runtime-down"],
)
def test_qa_console_ask_failures_are_one_line_errors(
    parrot: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    question: str,
    unreachable: bool,
    code: int,
    error: str,
) -> None:
    endpoint = "nowhere" if "endpoint nowhere" in error else parrot
    plugins = write_plugins(
        tmp_path / "plugins.toml",
        {"sm": {"kind": "sagemaker", "endpoint": endpoint, "target": PROFILE}},
    )
    monkeypatch.setenv("QA_CONSOLE_PLUGINS", str(plugins))
    if unreachable:
        monkeypatch.setenv("AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME", f"http://127.0.0.1:{free_port()}")
    run = subprocess.run(
        [str(CONSOLE_SCRIPT), "ask", "--backend", "sm", question],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert run.returncode == code, run.stderr
    assert run.stdout == ""
    assert run.stderr.startswith(error), run.stderr
    assert "Traceback" not in run.stderr
    assert [line for line in run.stderr.splitlines() if not line.startswith("  hint: ")] == [
        run.stderr.splitlines()[0]
    ]
