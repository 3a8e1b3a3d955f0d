"""An interrupted training run resumes from its last checkpoint, not from step 0."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from qa_console.errors import UsageError
from qa_console.events import ProgressEvent
from qa_console.ops.training.train import TrainConfig, last_checkpoint, train


def _interrupt_after(step: int):  # type: ignore[no-untyped-def]
    """A progress callback that presses Ctrl-C once training passes `step`."""

    def callback(event: ProgressEvent) -> None:
        if event.task == "train" and not event.done and (event.completed or 0) > step:
            raise KeyboardInterrupt

    return callback


def _step_losses(record_file: Path) -> dict[int, float]:
    history = json.loads(record_file.read_text())["log_history"]
    return {row["step"]: row["loss"] for row in history if "loss" in row}


def test_interrupted_run_resumes_from_its_checkpoint(tiny_slice: Path, tmp_path: Path) -> None:
    config = TrainConfig(
        base_model="tiny",
        data=str(tiny_slice),
        output_dir=tmp_path / "model",
        max_steps=24,
        eval_steps=8,  # a checkpoint every 8 steps
        logging_steps=4,
        evaluate_splits=("train",),
    )
    with pytest.raises(KeyboardInterrupt):
        train(config, progress=_interrupt_after(12))
    checkpoint = last_checkpoint(tmp_path / "model" / "checkpoints")
    assert checkpoint is not None and checkpoint.name == "checkpoint-8"
    assert not (tmp_path / "model" / "model.safetensors").exists()  # the run never finished

    # Resuming with a different setting would mix two runs: refused before any work.
    with pytest.raises(UsageError, match="learning_rate"):
        train(replace(config, resume=True, learning_rate=1e-4))

    events: list[ProgressEvent] = []
    result = train(replace(config, resume=True), progress=events.append)
    steps = [e for e in events if e.task == "train" and not e.done]
    assert steps[0].completed == 8 and "resumed at step 8" in steps[0].message
    assert min(e.completed or 0 for e in steps[1:]) == 9  # continues, does not restart at 1
    assert result.resumed_from_step == 8 and result.steps == 24
    record = json.loads(result.record_path.read_text())
    assert record["training"]["resumed_from_step"] == 8
    assert not (tmp_path / "model" / "checkpoints").exists()

    # The resumed run ends where an uninterrupted one does: same data order, optimizer state
    # and schedule were restored from the checkpoint.
    straight = train(replace(config, output_dir=tmp_path / "straight"))
    resumed_losses = _step_losses(result.record_path)
    straight_losses = _step_losses(straight.record_path)
    assert resumed_losses[24] == pytest.approx(straight_losses[24], rel=1e-3)


def test_resume_without_an_interrupted_run_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="no interrupted run"):
        train(TrainConfig(base_model="tiny", output_dir=tmp_path / "model", resume=True))
