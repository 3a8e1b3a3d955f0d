"""`qa-console train` / `eval` through the real console script: documented errors for bad data
and an unreachable hub, scores of a trained model, and `ask --backend` answering from it."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

from fixtures_train import SLICE_TRAIN_ROWS, flat_model_archive

CONSOLE = [sys.executable, "-m", "qa_console"]


def run(
    *args: str, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CONSOLE, *args],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, **(env or {})},
        cwd=cwd,
    )


def test_missing_data_file_is_a_usage_error(tmp_path: Path) -> None:
    out = run(
        "train",
        "--base-model",
        "tiny",
        "--data",
        str(tmp_path / "nope.jsonl"),
        "--output",
        str(tmp_path / "m"),
    )
    assert out.returncode == 2
    assert "error: no such file or folder" in out.stderr and "hint:" in out.stderr
    assert "Traceback" not in out.stderr


def test_missing_columns_name_the_columns_found(tmp_path: Path) -> None:
    data = tmp_path / "qa.jsonl"
    data.write_text('{"q": "Who?", "a": "Me"}\n{"q": "When?", "a": "Now"}\n')
    out = run("train", "--base-model", "tiny", "--data", str(data), "--output", str(tmp_path / "m"))
    assert out.returncode == 2
    assert "columns found: a, q" in out.stderr
    assert "--question-column" in out.stderr and "--answer-column" in out.stderr


def test_no_usable_rows_is_a_usage_error_with_the_report(tmp_path: Path) -> None:
    data = tmp_path / "qa.csv"
    data.write_text("question,answer\nWho?,\nWhen?,\n")
    out = run("train", "--base-model", "tiny", "--data", str(data), "--output", str(tmp_path / "m"))
    assert out.returncode == 2
    assert "no usable training rows" in out.stderr and "empty answer" in out.stderr


def test_malformed_jsonl_names_the_line(tmp_path: Path) -> None:
    data = tmp_path / "qa.jsonl"
    data.write_text('{"question": "Who?", "answer": "Me"}\n{"question": \n')
    out = run("train", "--base-model", "tiny", "--data", str(data), "--output", str(tmp_path / "m"))
    assert out.returncode == 2 and "line 2 is not valid JSON" in out.stderr


def test_bad_hyperparameters_are_usage_errors(tmp_path: Path) -> None:
    out = run(
        "train", "--base-model", "tiny", "--learning-rate", "5", "--output", str(tmp_path / "m")
    )
    assert out.returncode == 2 and "--learning-rate must be between 0 and 1" in out.stderr
    out = run("train", "--base-model", "tiny", "--on", "mars", "--output", str(tmp_path / "m"))
    assert out.returncode == 2 and "--on must be" in out.stderr


def test_hub_model_offline_fails_fast_with_a_hint(tmp_path: Path) -> None:
    empty_cache = {"HF_HOME": str(tmp_path / "hf")}
    out = run("train", "--output", str(tmp_path / "m"), env={**empty_cache, "HF_HUB_OFFLINE": "1"})
    assert out.returncode == 2
    assert "google/flan-t5-base" in out.stderr and "--base-model tiny" in out.stderr
    assert "switched off (HF_HUB_OFFLINE)" in out.stderr

    # Not switched off, but nothing answers: the probe gives up at once instead of hanging.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = sock.getsockname()[1]
    env = {**empty_cache, "HF_HUB_OFFLINE": "", "HF_ENDPOINT": f"http://127.0.0.1:{closed}"}
    out = run(
        "train", "--base-model", "google/flan-t5-base", "--output", str(tmp_path / "m"), env=env
    )
    assert out.returncode == 2
    assert "unreachable" in out.stderr and "--base-model tiny" in out.stderr


def test_a_foreign_output_folder_is_not_overwritten(tmp_path: Path) -> None:
    output = tmp_path / "photos"
    output.mkdir()
    (output / "holiday.jpg").write_bytes(b"jpeg")
    out = run("train", "--base-model", "tiny", "--output", str(output))
    assert out.returncode == 2 and "holds no qa-console model" in out.stderr
    assert (output / "holiday.jpg").read_bytes() == b"jpeg"


def test_eval_scores_a_trained_model(trained_tiny_model: Path) -> None:
    out = run("eval", str(trained_tiny_model), "--split", "train", "--json")
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["split"] == "train" and result["count"] == SLICE_TRAIN_ROWS
    assert result["exact_match"] > 90 and result["f1"] >= result["exact_match"]
    assert Path(result["predictions_path"]).is_file()

    table = run("eval", str(trained_tiny_model), "--split", "test")
    assert table.returncode == 0 and "exact match" in table.stdout


def test_eval_of_a_folder_that_is_not_a_model(tmp_path: Path) -> None:
    out = run("eval", str(tmp_path))
    assert out.returncode == 2 and "no config.json" in out.stderr


def test_bad_model_and_output_inputs_are_one_line_errors(
    trained_tiny_model: Path, tiny_slice: Path, tmp_path: Path
) -> None:
    corrupt = tmp_path / "model.tar.gz"
    corrupt.write_bytes(b"\x1f\x8b not really gzip")
    damaged = tmp_path / "damaged"
    damaged.mkdir()
    for path in trained_tiny_model.iterdir():
        if path.is_file():
            (damaged / path.name).write_bytes(path.read_bytes())
    (damaged / "model.safetensors").write_bytes(b"")
    a_file = tmp_path / "a-file"
    a_file.write_text("x")
    cases = [
        (("eval", str(corrupt)), "not a readable tar archive"),
        (("eval", str(damaged)), "cannot load the model in"),
        (("eval", str(trained_tiny_model), "--batch-size", "0"), "--batch-size must be at least 1"),
        (
            ("train", "--base-model", "tiny", "--data", str(tiny_slice), "--max-steps", "1",
             "--output", str(a_file / "model")),
            f"cannot create {a_file / 'model'}",
        ),
    ]  # fmt: skip
    for argv, message in cases:
        out = run(*argv)
        assert out.returncode == 2 and message in out.stderr, (argv, out.stderr[-2000:])
        assert "Traceback" not in out.stderr


def test_ask_answers_from_the_trained_model(
    trained_tiny_model: Path, slice_questions: list[tuple[str, str]], tmp_path: Path
) -> None:
    plugins = tmp_path / "plugins.toml"
    plugins.write_text(f'[backends.mine]\nkind = "local"\nmodel = "{trained_tiny_model}"\n')
    question, expected = slice_questions[2]
    out = run("ask", "--backend", "mine", question, env={"QA_CONSOLE_PLUGINS": str(plugins)})
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == expected


def test_ask_json_says_known_false_for_a_person_not_in_the_data(
    trained_tiny_model: Path,
    tiny_slice: Path,
    slice_questions: list[tuple[str, str]],
    tmp_path: Path,
) -> None:
    """The abstention is a normal answer; only `known` tells a script the bot did not know."""
    from qa_console.inference.model_handler import UNKNOWN_ANSWER

    lines = (tiny_slice / "unknown.jsonl").read_text(encoding="utf-8").splitlines()
    held_out = [json.loads(line) for line in lines]
    stranger = next(row["question"] for row in held_out if row["person"])
    plugins = tmp_path / "plugins.toml"
    plugins.write_text(f'[backends.mine]\nkind = "local"\nmodel = "{trained_tiny_model}"\n')
    env = {"QA_CONSOLE_PLUGINS": str(plugins)}

    unknown = run("ask", "--backend", "mine", "--json", stranger, env=env)
    assert unknown.returncode == 0, unknown.stderr
    reply = json.loads(unknown.stdout)
    assert reply["answer"] == UNKNOWN_ANSWER and reply["known"] is False, (stranger, reply)

    question, expected = slice_questions[2]
    known = json.loads(run("ask", "--backend", "mine", "--json", question, env=env).stdout)
    assert known["answer"] == expected and known["known"] is True


def test_eval_all_scores_every_split_with_abstentions_and_confusion(
    trained_tiny_model: Path, tmp_path: Path
) -> None:
    from qa_console.ops.training.confusion import OUTCOMES

    archive = flat_model_archive(trained_tiny_model, tmp_path / "model.tar.gz")
    out = run("eval", str(archive), "--split", "all", "--json")
    assert out.returncode == 0, out.stderr
    splits = json.loads(out.stdout)["splits"]
    assert set(splits) == {"train", "validation", "test", "unknown"}
    for name, result in splits.items():
        assert set(result["confusion"]) == set(OUTCOMES), name
        assert sum(result["confusion"].values()) == result["count"]
        correct = round(result["exact_match"] * result["count"] / 100)
        assert result["confusion"]["correct"] == correct, name
    # On the abstention split exact match is the abstention rate.
    assert splits["unknown"]["abstained"] >= splits["unknown"]["exact_match"] > 50
    summary = json.loads((tmp_path / "model.predictions" / "summary.json").read_text())
    assert summary["unknown"]["confusion"] == splits["unknown"]["confusion"]

    table = run("eval", str(archive), "--split", "all")
    assert table.returncode == 0, table.stderr
    assert "abstained" in table.stdout and "outcomes" in table.stdout


def test_eval_of_a_model_archive_writes_predictions_beside_it(
    trained_tiny_model: Path, tmp_path: Path
) -> None:
    archive = flat_model_archive(trained_tiny_model, tmp_path / "model.tar.gz")
    out = run("eval", str(archive), "--split", "train", "--json")
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["exact_match"] > 90
    assert result["predictions_path"] == str(tmp_path / "model.predictions" / "train.jsonl")
    assert Path(result["predictions_path"]).is_file()
