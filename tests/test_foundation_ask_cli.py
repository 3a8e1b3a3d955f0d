"""`qa-console ask` end to end: the installed console script, a real API on loopback, exit codes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path

from fixtures_foundation import API_KEY, CONSOLE_SCRIPT, FakeApi, run_cli, write_plugins
from qa_console.backends.base import MAX_QUESTION_CHARS


def test_answer_alone_on_stdout(fake_api: FakeApi, api_plugins: Path) -> None:
    run = run_cli("ask", "--backend", "t", "Who is Ada Lovelace?")
    assert run.returncode == 0, run.stderr
    assert run.stdout == "answer to: Who is Ada Lovelace?\n"
    assert run.stderr == ""


def test_json_is_one_object(fake_api: FakeApi, api_plugins: Path) -> None:
    run = run_cli("ask", "--backend", "t", "--json", "Who?")
    assert run.returncode == 0, run.stderr
    data = json.loads(run.stdout)
    assert set(data) == {"answer", "backend", "known", "latency_ms", "question"}
    assert data["known"] is True
    assert data["answer"] == "answer to: Who?"
    assert data["backend"] == "t"
    assert data["question"] == "Who?"
    assert data["latency_ms"] > 0


def test_question_from_stdin(fake_api: FakeApi, api_plugins: Path) -> None:
    run = run_cli("ask", "--backend", "t", "-", input="  Where was she born?\n")
    assert run.returncode == 0, run.stderr
    assert run.stdout == "answer to: Where was she born?\n"


def test_stream_prints_the_answer(fake_api: FakeApi, api_plugins: Path) -> None:
    run = run_cli("ask", "--backend", "t", "--stream", "Who?")
    assert run.returncode == 0, run.stderr
    assert run.stdout == "answer to: Who?\n"


def test_params_are_sent_typed(fake_api: FakeApi, api_plugins: Path) -> None:
    run = run_cli(
        "ask", "-b", "t", "--param", "max_new_tokens=5", "-p", "do_sample=false", "-p", "x=a b", "Q"
    )
    assert run.returncode == 0, run.stderr
    assert fake_api.requests[0].json()["parameters"] == {
        "max_new_tokens": 5,
        "do_sample": False,
        "x": "a b",
    }
    bad = run_cli("ask", "-b", "t", "--param", "novalue", "Q")
    assert bad.returncode == 2
    assert "key=value" in bad.stderr


def test_backend_from_settings(fake_api: FakeApi, api_plugins: Path) -> None:
    run = run_cli("ask", "Who?", env={"QA_CONSOLE_BACKEND": "t"})
    assert run.returncode == 0, run.stderr
    assert run.stdout == "answer to: Who?\n"


def test_empty_and_over_long_questions_are_refused_with_exit_2(
    fake_api: FakeApi, api_plugins: Path
) -> None:
    for question in ("", "   ", "x" * (MAX_QUESTION_CHARS + 1)):
        run = run_cli("ask", "--backend", "t", question)
        assert run.returncode == 2, (question[:10], run.stderr)
        assert run.stderr.startswith("error: the question")
        assert "Traceback" not in run.stderr
    empty_stdin = run_cli("ask", "--backend", "t", "-", input="")
    assert empty_stdin.returncode == 2
    assert fake_api.hits["/ask"] == 0


def test_usage_and_configuration_errors_exit_2(
    fake_api: FakeApi, api_plugins: Path, tmp_path: Path
) -> None:
    unknown = run_cli("ask", "--backend", "nope", "Who?")
    assert unknown.returncode == 2
    assert "no backend instance named 'nope'" in unknown.stderr
    assert run_cli("ask", "--no-such-flag", "Who?").returncode == 2

    broken = tmp_path / "broken.toml"
    broken.write_text('[backends.t]\nkind = "http"\nurl = \n')
    run = run_cli("ask", "--backend", "t", "Who?", env={"QA_CONSOLE_PLUGINS": str(broken)})
    assert run.returncode == 2
    assert f"{broken}:3" in run.stderr


def test_backend_errors_exit_1(fake_api: FakeApi, api_plugins: Path) -> None:
    for name, expected in (("e500", "server says 500"), ("text", "non-JSON")):
        run = run_cli("ask", "--backend", name, "Who?")
        assert run.returncode == 1, run.stderr
        assert expected in run.stderr
        assert run.stdout == ""
        assert "Traceback" not in run.stderr


def test_auth_error_exits_3(fake_api: FakeApi, api_plugins: Path) -> None:
    assert run_cli("ask", "--backend", "e403", "Who?").returncode == 3
    no_key = run_cli("ask", "--backend", "keyed", "Who?")
    assert no_key.returncode == 3
    assert "QA_TEST_API_KEY" in no_key.stderr  # the hint says which variable to set
    with_key = run_cli("ask", "--backend", "keyed", "Who?", env={"QA_TEST_API_KEY": API_KEY})
    assert with_key.returncode == 0, with_key.stderr


def test_timeout_exits_4(fake_api: FakeApi, api_plugins: Path) -> None:
    run = run_cli("ask", "--backend", "slow", "Who?")
    assert run.returncode == 4, run.stderr
    assert "did not answer within 0.5 s" in run.stderr


def test_sigint_during_a_hanging_request_exits_130(fake_api: FakeApi, api_plugins: Path) -> None:
    process = subprocess.Popen(
        [str(CONSOLE_SCRIPT), "ask", "--backend", "hang", "Who?"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=dict(os.environ),
    )
    try:
        fake_api.wait_for_hit("/hang")
        process.send_signal(signal.SIGINT)
        stdout, stderr = process.communicate(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 130, stderr
    assert stdout == ""
    assert "interrupted" in stderr
    assert "Traceback" not in stderr


def test_answered_questions_are_recorded_and_failures_are_not(
    fake_api: FakeApi, api_plugins: Path
) -> None:
    assert run_cli("ask", "-b", "t", "-p", "max_new_tokens=3", "First?").returncode == 0
    assert run_cli("ask", "-b", "t", "--json", "Second?").returncode == 0
    assert run_cli("ask", "-b", "e500", "Failed?").returncode == 1
    run = run_cli("history", "--json")
    assert run.returncode == 0, run.stderr
    entries = json.loads(run.stdout)["entries"]
    assert [entry["question"] for entry in entries] == ["Second?", "First?"]
    assert entries[1]["answer"] == "answer to: First?"
    assert entries[1]["backend"] == "t"
    assert entries[1]["parameters"] == {"max_new_tokens": 3}
    assert entries[1]["latency_ms"] > 0
    assert entries[1]["created_at"].endswith("+00:00")


def test_default_backend_is_the_first_declared_instance(fake_api: FakeApi, tmp_path: Path) -> None:
    """No --backend and no setting: the first instance declared across the plugins files (the
    repo's file is read first, so in this checkout its first instance is the default)."""
    plugins = write_plugins(
        tmp_path / "p.toml",
        {
            "only": {"kind": "http", "url": fake_api.url()},
            "chosen": {"kind": "http", "url": fake_api.url()},
        },
    )
    from qa_console import registry
    from qa_console.chat import ChatSession

    alone = registry.read_instances([plugins])
    assert ChatSession(instances=alone).resolve() == "only"
    assert ChatSession({"backend": "chosen"}, instances=alone).resolve() == "chosen"
    assert ChatSession({"backend": "chosen"}, instances=alone).resolve("only") == "only"
    listed = run_cli("backends", "list", "--json", env={"QA_CONSOLE_PLUGINS": str(plugins)})
    names = [instance["name"] for instance in json.loads(listed.stdout)["instances"]]
    assert names[-2:] == ["only", "chosen"]
    assert ChatSession().resolve() == names[0]


def test_a_history_that_cannot_be_written_is_a_warning_and_the_answer_still_printed(
    fake_api: FakeApi, api_plugins: Path
) -> None:
    from qa_console.store import default_path

    default_path().mkdir(parents=True)  # a folder where the database file should be
    run = run_cli("ask", "-b", "t", "Who?")
    assert run.returncode == 0, run.stderr
    assert run.stdout == "answer to: Who?\n"
    assert "warning: the answer was not saved to history" in run.stderr
    assert "Traceback" not in run.stderr
