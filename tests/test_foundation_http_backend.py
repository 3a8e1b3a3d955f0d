"""The http backend against a real HTTP server on 127.0.0.1: answers, the API key, every error
class, and retries counted at the server."""

from __future__ import annotations

import socket
import threading
import time

import pytest

from fixtures_foundation import API_KEY, FakeApi, run_cli
from qa_console.backends.http import HttpBackend
from qa_console.errors import AuthError, BackendError, ConfigError, TimeoutError_


def backend(url: str, **options: object) -> HttpBackend:
    return HttpBackend("test-api", url=url, **options)


def test_answers_and_sends_the_question_and_parameters(fake_api: FakeApi) -> None:
    answer = backend(fake_api.url()).ask("Who is Ada?", {"max_new_tokens": 8})

    assert answer.text == "answer to: Who is Ada?"
    assert answer.backend == "test-api"
    assert answer.latency_ms > 0
    assert answer.extra["server_latency_ms"] == 1.25
    sent = fake_api.requests[0]
    assert sent.json() == {"question": "Who is Ada?", "parameters": {"max_new_tokens": 8}}
    assert sent.headers["content-type"] == "application/json"
    assert "x-api-key" not in sent.headers


def test_stream_yields_the_whole_answer(fake_api: FakeApi) -> None:
    assert list(backend(fake_api.url()).stream("Who?")) == ["answer to: Who?"]


def test_api_key_from_the_named_environment_variable_is_sent(
    fake_api: FakeApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("QA_TEST_API_KEY", API_KEY)
    answer = backend(fake_api.url("/auth"), api_key_env="QA_TEST_API_KEY").ask("Who?")

    assert answer.text == "answer to: Who?"
    assert fake_api.requests[0].headers["x-api-key"] == API_KEY


def test_api_key_option_is_used_when_the_variable_is_unset_and_never_described(
    fake_api: FakeApi,
) -> None:
    api = backend(fake_api.url("/auth"), api_key_env="QA_TEST_UNSET_VAR", api_key=API_KEY)
    assert api.ask("Who?").text == "answer to: Who?"
    assert fake_api.requests[0].headers["x-api-key"] == API_KEY
    assert API_KEY not in repr(api.describe())
    assert "api_key" not in api.describe()


def test_wrong_key_is_an_auth_error_that_does_not_echo_the_key(fake_api: FakeApi) -> None:
    wrong = "wrong-key-456"
    with pytest.raises(AuthError) as caught:
        backend(fake_api.url("/auth"), api_key=wrong).ask("Who?")
    assert "403" in caught.value.message
    assert wrong not in caught.value.message + str(caught.value.hint)
    assert fake_api.hits["/auth"] == 1


def test_missing_key_hint_names_the_variable(fake_api: FakeApi) -> None:
    with pytest.raises(AuthError) as caught:
        backend(fake_api.url("/status/401"), api_key_env="QA_TEST_UNSET_VAR").ask("Who?")
    assert "401" in caught.value.message
    assert "QA_TEST_UNSET_VAR" in str(caught.value.hint)


@pytest.mark.parametrize(
    ("code", "error_type"),
    [(400, BackendError), (404, BackendError), (422, BackendError), (500, BackendError)],
)
def test_error_statuses_carry_the_server_message_and_are_not_retried(
    fake_api: FakeApi, code: int, error_type: type[Exception]
) -> None:
    with pytest.raises(error_type) as caught:
        backend(fake_api.url(f"/status/{code}"), retries=3).ask("Who?")
    assert str(code) in str(caught.value)
    assert f"server says {code}" in str(caught.value)
    assert fake_api.hits[f"/status/{code}"] == 1


@pytest.mark.parametrize("code", [429, 502, 503])
def test_throttling_and_unavailable_are_retried_then_answered(fake_api: FakeApi, code: int) -> None:
    answer = backend(fake_api.url(f"/flaky/{code}/2"), retries=2).ask("Who?")
    assert answer.text == "answer to: Who?"
    assert fake_api.hits[f"/flaky/{code}/2"] == 3


def test_retries_are_bounded(fake_api: FakeApi) -> None:
    with pytest.raises(BackendError) as caught:
        backend(fake_api.url("/flaky/503/99"), retries=2).ask("Who?")
    assert "503" in str(caught.value)
    assert fake_api.hits["/flaky/503/99"] == 3


def test_gateway_timeout_is_a_timeout_and_not_retried(fake_api: FakeApi) -> None:
    with pytest.raises(TimeoutError_):
        backend(fake_api.url("/status/504"), retries=3).ask("Who?")
    assert fake_api.hits["/status/504"] == 1


def test_read_timeout_after_sending_is_not_retried(fake_api: FakeApi) -> None:
    with pytest.raises(TimeoutError_) as caught:
        backend(fake_api.url("/slow/2"), timeout_s=0.3, retries=3).ask("Who?")
    assert "0.3 s" in caught.value.message
    assert "timeout_s" in str(caught.value.hint)
    assert fake_api.hits["/slow/2"] == 1


def test_connection_dropped_without_reply_is_an_error_and_not_retried(fake_api: FakeApi) -> None:
    with pytest.raises(BackendError):
        backend(fake_api.url("/drop"), retries=3).ask("Who?")
    assert fake_api.hits["/drop"] == 1


def test_non_json_and_missing_answer_are_backend_errors(fake_api: FakeApi) -> None:
    with pytest.raises(BackendError) as caught:
        backend(fake_api.url("/text")).ask("Who?")
    assert "non-JSON" in caught.value.message and "text/html" in caught.value.message
    with pytest.raises(BackendError) as caught:
        backend(fake_api.url("/noanswer")).ask("Who?")
    assert '"answer"' in caught.value.message


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_connection_refused_without_retries_is_a_backend_error() -> None:
    with pytest.raises(BackendError) as caught:
        backend(f"http://127.0.0.1:{_free_port()}/ask", retries=0).ask("Who?")
    assert "cannot connect" in caught.value.message


def test_connection_refused_is_retried_until_the_server_listens() -> None:
    """The port is bound but not listening (connects are refused) when the question is sent;
    the server starts listening a moment later, and a retry gets the answer."""
    api = FakeApi(listen=False)
    result: dict[str, object] = {}

    def ask() -> None:
        try:
            result["answer"] = backend(api.url(), retries=4).ask("Who?")
        except Exception as error:  # reported by the assertion below
            result["error"] = error

    asker = threading.Thread(target=ask)
    try:
        asker.start()
        time.sleep(0.2)  # the first attempt is refused meanwhile
        api.listen()
        asker.join(20)
    finally:
        api.stop()
    assert "error" not in result, result.get("error")
    assert result["answer"].text == "answer to: Who?"  # type: ignore[attr-defined]
    assert api.hits["/ask"] == 1


def test_health_asks_a_real_question_and_reports_latency(fake_api: FakeApi) -> None:
    health = backend(fake_api.url()).health()
    assert health.ok
    assert health.latency_ms is not None and health.latency_ms > 0
    assert fake_api.hits["/ask"] == 1


def test_health_of_a_failing_api_is_unhealthy_without_retries(fake_api: FakeApi) -> None:
    health = backend(fake_api.url("/flaky/503/9"), retries=3).health()
    assert not health.ok
    assert "503" in health.detail
    assert fake_api.hits["/flaky/503/9"] == 1


def test_bad_options_are_config_errors() -> None:
    with pytest.raises(ConfigError):
        HttpBackend("x", url="ftp://example.com")
    with pytest.raises(ConfigError):
        HttpBackend("x")
    with pytest.raises(ConfigError):
        HttpBackend("x", url="http://127.0.0.1/ask", timeout_s="soon")
    with pytest.raises(ConfigError):
        HttpBackend("x", url="http://127.0.0.1/ask", colour="blue")


def test_the_key_is_never_printed_by_the_cli(
    fake_api: FakeApi, api_plugins: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ask (ok and refused), backends list and check: the key is sent, and appears in no output."""
    monkeypatch.setenv("QA_TEST_API_KEY", API_KEY)
    runs = [
        run_cli("ask", "--backend", "keyed", "--json", "Who?"),
        run_cli("backends", "list", "--json"),
        run_cli("backends", "list"),
        run_cli("backends", "check", "keyed"),
        run_cli("history", "--json"),
    ]
    monkeypatch.setenv("QA_TEST_API_KEY", API_KEY[::-1])
    refused = run_cli("ask", "--backend", "keyed", "Who?")
    assert refused.returncode == 3
    runs.append(refused)
    assert [run.returncode for run in runs[:5]] == [0, 0, 0, 0, 0]
    assert fake_api.requests[0].headers["x-api-key"] == API_KEY
    for run in runs:
        assert API_KEY not in run.stdout + run.stderr
        assert API_KEY[::-1] not in run.stdout + run.stderr
