"""train()'s `should_stop` hook (how the TUI cancels): the loop ends between steps, a checkpoint
of the step reached is saved, and `resume` finishes the run from there."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from qa_console.events import ProgressEvent
from qa_console.ops.training.train import TrainConfig, TrainingStopped, last_checkpoint, train


def test_should_stop_ends_the_run_with_a_checkpoint_that_resumes(
    tiny_slice: Path, tmp_path: Path
) -> None:
    config = TrainConfig(
        base_model="tiny",
        data=str(tiny_slice),
        output_dir=tmp_path / "model",
        max_steps=12,
        eval_steps=100,  # no scheduled checkpoint before the stop: the stop must save one
        evaluate_splits=("train",),
    )
    steps: list[float] = []

    def note(event: ProgressEvent) -> None:
        if event.task == "train" and event.completed is not None:
            steps.append(event.completed)

    with pytest.raises(TrainingStopped) as stopped:
        train(config, progress=note, should_stop=lambda: bool(steps) and steps[-1] >= 5)
    assert stopped.value.step == 5
    assert "--resume" in (stopped.value.hint or "")
    checkpoint = last_checkpoint(tmp_path / "model" / "checkpoints")
    assert checkpoint is not None and checkpoint.name == "checkpoint-5"
    assert not (tmp_path / "model" / "model.safetensors").exists()  # no half-trained model

    result = train(replace(config, resume=True))
    assert result.resumed_from_step == 5 and result.steps == 12
