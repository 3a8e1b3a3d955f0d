"""`qa-console up --no-tui` end to end on the embedded local AWS: train, package, deploy, expose
and three answers through the new API; a second run skips every unchanged step; a run killed
during training goes on from its checkpoint."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fixtures_foundation import CONSOLE_SCRIPT
from fixtures_localaws import LocalAws
from qa_console.tui.app import QAConsoleApp
from qa_console.tui.transcript import DONE, PENDING
from qa_console.up import sample_questions
from tui_helpers import SIZE, wait_until

STEPS = ["train", "package", "deploy", "expose"]


def up(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(CONSOLE_SCRIPT), "up", "--no-tui", "--json", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=600,
    )


def result(run: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    assert run.returncode == 0, run.stderr
    data: dict[str, Any] = json.loads(run.stdout)
    return data


def kill_up_when(cwd: Path, args: list[str], reached: Callable[[], bool]) -> None:
    """Start `up`, and SIGKILL it (and its children) once `reached()`: an interruption at any
    moment, with nothing cleaned up. Bounded: fails after 300 s."""
    running = subprocess.Popen(
        [str(CONSOLE_SCRIPT), "up", "--no-tui", "--json", *args],
        cwd=cwd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 300
    try:
        while not reached():
            assert running.poll() is None, "up ended before the moment to kill it"
            assert time.monotonic() < deadline, "the moment to kill up did not come in 300 s"
            time.sleep(0.1)
    finally:
        os.killpg(running.pid, signal.SIGKILL)
        running.wait(timeout=30)


async def ask_in_the_tui(app: QAConsoleApp, question: str) -> str:
    """Type the question into the app's chat as a user would; the answer it shows."""
    async with app.run_test(size=SIZE) as pilot:
        await pilot.click("#question")
        await pilot.press(*question, "enter")
        await wait_until(
            pilot, lambda: bool(app.exchanges) and app.exchanges[0].status != PENDING, timeout_s=60
        )
        assert app.exchanges[0].status == DONE, app.exchanges[0].error
        return app.exchanges[0].answer


def test_up_builds_the_api_and_a_second_run_skips_every_step(
    local_aws: LocalAws, tmp_path: Path
) -> None:
    first = result(up(tmp_path, "--name", "up-bot", "--max-steps", "20"))
    assert [(s["step"], s["skipped"]) for s in first["steps"]] == [(s, False) for s in STEPS]
    assert (
        first["backend"] == "up-bot-api"
        and first["url"].endswith("/ask")
        and "/prod/" in first["url"]
    )
    assert len(first["answers"]) == 3
    assert [pair["question"] for pair in first["answers"]] == sample_questions()
    # up ends in the chat: on the API backend it added, or (--no-expose) on the endpoint itself
    question, answer = first["answers"][0]["question"], first["answers"][0]["answer"]
    assert asyncio.run(ask_in_the_tui(QAConsoleApp(backend="up-bot-api"), question)) == answer
    on_endpoint = QAConsoleApp(
        backend="up-bot", session_backends={"up-bot": ("sagemaker", {"endpoint": "up-bot"})}
    )
    assert asyncio.run(ask_in_the_tui(on_endpoint, question)) == answer

    described = local_aws.client("sagemaker").describe_endpoint(EndpointName="up-bot")
    assert described["EndpointStatus"] == "InService"
    assert (tmp_path / "artifacts" / "model.tar.gz").is_file()

    second = result(up(tmp_path, "--name", "up-bot", "--max-steps", "20"))
    assert [(s["step"], s["skipped"]) for s in second["steps"]] == [(s, True) for s in STEPS]
    assert second["answers"] == first["answers"]  # the same model, greedy decoding
    assert second["url"] == first["url"]

    # A lost archive is rebuilt (the same bytes), and nothing after it has to change.
    (tmp_path / "artifacts" / "model.tar.gz").unlink()
    third = result(up(tmp_path, "--name", "up-bot", "--max-steps", "20"))
    skipped = {s["step"]: s["skipped"] for s in third["steps"]}
    assert skipped == {"train": True, "package": False, "deploy": True, "expose": True}


def test_a_run_killed_while_training_resumes_from_its_checkpoint(
    local_aws: LocalAws, tmp_path: Path
) -> None:
    args = ["--name", "up-resume", "--max-steps", "400", "--no-expose"]
    checkpoints = tmp_path / "artifacts" / "model" / "checkpoints"
    kill_up_when(tmp_path, args, lambda: any(checkpoints.glob("checkpoint-*/trainer_state.json")))

    resumed = result(up(tmp_path, *args))
    train = resumed["steps"][0]
    assert (train["step"], train["skipped"]) == ("train", False)
    assert "resumed=True" in train["detail"] and "steps=400" in train["detail"]
    assert [s["step"] for s in resumed["steps"]] == ["train", "package", "deploy"]
    assert resumed["url"] is None and len(resumed["answers"]) == 3


def test_a_run_killed_while_the_endpoint_is_creating_goes_on_from_the_deploy(
    local_aws: LocalAws, tmp_path: Path
) -> None:
    args = ["--name", "up-midway", "--max-steps", "20", "--no-expose"]
    sagemaker = local_aws.client("sagemaker")
    kill_up_when(
        tmp_path,
        args,
        lambda: bool(sagemaker.list_endpoints(NameContains="up-midway")["Endpoints"]),
    )
    assert sagemaker.describe_endpoint(EndpointName="up-midway")["EndpointStatus"] == "Creating"

    resumed = result(up(tmp_path, *args))
    skipped = {s["step"]: s["skipped"] for s in resumed["steps"]}
    assert skipped == {"train": True, "package": True, "deploy": False}
    assert sagemaker.describe_endpoint(EndpointName="up-midway")["EndpointStatus"] == "InService"
    assert len(resumed["answers"]) == 3


def test_sample_questions_are_about_people_the_bot_knows() -> None:
    """The smoke questions come from the table, never from the abstention rows of train."""
    from qa_console.ops.training.data import biography_dataset_path

    train = biography_dataset_path() / "train.jsonl"
    rows = [json.loads(line) for line in train.read_text(encoding="utf-8").splitlines()]
    about = {row["question"]: row["fact"] for row in rows}
    questions = sample_questions()
    assert len(questions) == 3 and all(about[q] != "unknown" for q in questions)
