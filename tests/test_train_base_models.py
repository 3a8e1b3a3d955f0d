"""Base models other than "tiny": a local model folder is fine-tuned with the pre-trained
defaults (both input forms), and folders that are not seq2seq models are refused up front."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fixtures_train import SLICE_TRAIN_ROWS, SLICE_UNKNOWN
from qa_console.errors import UsageError
from qa_console.ops.training.train import TrainConfig, train


def test_fine_tunes_a_local_model_folder_with_both_input_forms(
    trained_tiny_model: Path, tiny_slice: Path, tmp_path: Path
) -> None:
    result = train(
        TrainConfig(
            base_model=str(trained_tiny_model),
            data=str(tiny_slice),
            output_dir=tmp_path / "model",
            max_steps=6,
            evaluate_splits=("validation",),
        )
    )
    record = json.loads(result.record_path.read_text())
    assert record["base_model"] == str(trained_tiny_model)
    hyper = record["hyperparameters"]
    assert hyper["input_format"] == "both" and hyper["learning_rate"] == 3e-4
    # Every row with its context and without; abstention rows have no context: one form each.
    known = SLICE_TRAIN_ROWS - SLICE_UNKNOWN
    assert result.train_examples == 2 * known + SLICE_UNKNOWN
    assert set(result.metrics) == {"validation", "validation_with_context"}
    # The folder it started from is untouched.
    assert (trained_tiny_model / "model.safetensors").is_file()


def test_a_folder_that_is_not_a_seq2seq_model_is_refused(tmp_path: Path, tiny_slice: Path) -> None:
    folder = tmp_path / "bert"
    folder.mkdir()
    (folder / "config.json").write_text(
        json.dumps({"architectures": ["BertForMaskedLM"], "model_type": "bert"})
    )
    with pytest.raises(UsageError, match="not a sequence-to-sequence"):
        train(TrainConfig(base_model=str(folder), data=str(tiny_slice), output_dir=tmp_path / "m"))
    with pytest.raises(UsageError, match="no such model folder"):
        train(
            TrainConfig(
                base_model=str(tmp_path / "nowhere"),
                data=str(tiny_slice),
                output_dir=tmp_path / "m",
            )
        )
