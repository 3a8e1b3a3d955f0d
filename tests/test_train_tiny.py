"""The tiny model trains on a slice of the shipped data and then answers its training questions."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

from fixtures_train import SLICE_TRAIN_ROWS
from qa_console.ops.training.train import TrainResult


def test_tiny_model_answers_its_training_questions(trained_tiny_run: TrainResult) -> None:
    result = trained_tiny_run
    assert result.metrics["train"]["exact_match"] > 90.0
    assert result.metrics["train"]["count"] == SLICE_TRAIN_ROWS
    assert result.steps > 0 and result.samples_per_second > 0
    assert 1_000_000 < result.parameters < 2_000_000


def test_output_folder_loads_in_a_fresh_process(
    trained_tiny_model: Path, slice_questions: list[tuple[str, str]]
) -> None:
    """from_pretrained in another interpreter, bare "question: ..." input, greedy answers."""
    script = """
import json, sys
from transformers import AutoModelForSeq2SeqLM, AutoTokenizer
folder, questions = sys.argv[1], json.loads(sys.argv[2])
tokenizer = AutoTokenizer.from_pretrained(folder)
model = AutoModelForSeq2SeqLM.from_pretrained(folder)
answers = []
for question in questions:
    ids = tokenizer("question: " + question, return_tensors="pt")
    out = model.generate(**ids)
    answers.append(tokenizer.decode(out[0], skip_special_tokens=True))
print(json.dumps(answers))
"""
    questions = [question for question, _ in slice_questions]
    completed = subprocess.run(
        [sys.executable, "-c", script, str(trained_tiny_model), json.dumps(questions)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    answers = json.loads(completed.stdout.strip().splitlines()[-1])
    right = sum(a == expected for a, (_, expected) in zip(answers, slice_questions, strict=True))
    assert right >= len(slice_questions) - 1, list(zip(answers, slice_questions, strict=True))


def test_output_folder_layout_and_permissions(trained_tiny_model: Path) -> None:
    names = {path.name for path in trained_tiny_model.iterdir()}
    for required in (
        "config.json",
        "generation_config.json",
        "model.safetensors",
        "tokenizer.json",
        "tokenizer_config.json",
        "training_record.json",
        "loss_curve.png",
        "predictions",
    ):
        assert required in names
    assert "checkpoints" not in names  # a finished run leaves no checkpoints behind
    assert not any(name.endswith(".bin") for name in names)  # safetensors only
    for path in trained_tiny_model.iterdir():
        if path.is_file():
            assert stat.S_IMODE(path.stat().st_mode) == 0o644, path.name
    assert (trained_tiny_model / "loss_curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    generation = json.loads((trained_tiny_model / "generation_config.json").read_text())
    assert generation["max_new_tokens"] > 0 and generation["decoder_start_token_id"] == 0


def test_training_record_says_what_was_trained_on_what(
    trained_tiny_model: Path, tiny_slice: Path
) -> None:
    record = json.loads((trained_tiny_model / "training_record.json").read_text())
    assert record["base_model"] == "tiny"
    assert record["data"]["source"] == str(tiny_slice.resolve())
    assert len(record["data"]["fingerprint"]) == 64
    assert record["data"]["rows"]["train"] == SLICE_TRAIN_ROWS
    hyper = record["hyperparameters"]
    for key in ("learning_rate", "batch_size", "epochs", "seed", "input_format"):
        assert hyper[key] is not None
    assert record["libraries"]["transformers"] and record["libraries"]["torch"]
    assert record["training"]["wall_time_s"] > 0
    assert set(record["metrics"]) >= {"train", "validation", "test"}
    assert any("loss" in row for row in record["log_history"])


def test_predictions_are_saved_per_example(trained_tiny_model: Path) -> None:
    lines = (trained_tiny_model / "predictions" / "train.jsonl").read_text().splitlines()
    rows = [json.loads(line) for line in lines]
    assert len(rows) == SLICE_TRAIN_ROWS
    assert set(rows[0]) >= {"id", "question", "answer", "prediction", "exact_match", "f1"}
    assert rows[0]["context"] == ""  # the headline form: bare questions


def test_tiny_model_is_deterministic(tmp_path: Path) -> None:
    """Same texts and seed -> byte-identical weights and tokenizer."""
    from qa_console.ops.training.tiny_model import save_tiny_model

    texts = [
        "question: When was Rufus Kettleby born?",
        "1935",
        "Orlington",
        "He was a mountaineer.",
    ]
    first = save_tiny_model(tmp_path / "a", texts, seed=3)
    second = save_tiny_model(tmp_path / "b", texts, seed=3)
    for name in ("model.safetensors", "tokenizer.json", "config.json"):
        assert (first / name).read_bytes() == (second / name).read_bytes(), name


def test_tiny_tokenizer_round_trips_and_is_t5_style(tmp_path: Path) -> None:
    from transformers import AutoTokenizer

    from qa_console.ops.training.tiny_model import train_tokenizer

    tokenizer = train_tokenizer(["question: Where was Ysolde Parrinek born?", "Saltmarsh Green"])
    tokenizer.save_pretrained(tmp_path)
    loaded = AutoTokenizer.from_pretrained(tmp_path)
    assert (loaded.pad_token_id, loaded.eos_token_id, loaded.unk_token_id) == (0, 1, 2)
    text = "Where was Ysolde Parrinek born? Zürich"  # ü and Z never appeared in training
    ids = loaded(text).input_ids
    assert ids[-1] == loaded.eos_token_id and loaded.unk_token_id not in ids
    assert loaded.decode(ids, skip_special_tokens=True) == text
    assert "<extra_id_0>" in loaded.get_vocab()
