"""The Train screen driven with Pilot against the real trainer: the tiny T5 on a slice of the
biography data for a few dozen steps (seconds on 2 cores), then a chat with the model it wrote."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from textual.pilot import Pilot
from textual.widgets import Input, ProgressBar, Static

from qa_console.tui.app import QAConsoleApp
from qa_console.tui.screens.chat import ChatScreen
from qa_console.tui.screens.package import PackageScreen
from qa_console.tui.screens.train import TrainScreen
from qa_console.tui.transcript import DONE
from qa_console.tui.widgets.loss_chart import LossChart
from qa_console.tui.widgets.task_progress import TaskProgress
from tui_helpers import SMALL, Notifications, steady_cursors, wait_until

# Screens default to ./artifacts/model: run where there is none, as a fresh checkout would.
pytestmark = pytest.mark.usefixtures("empty_workdir")

STEPS = 40  # enough for several logged losses (one every 2 steps) and a checkpoint


async def open_train(pilot: Pilot[None]) -> TrainScreen:
    await pilot.press("f2")
    await wait_until(pilot, lambda: isinstance(pilot.app.screen, TrainScreen))
    screen = pilot.app.screen
    assert isinstance(screen, TrainScreen)
    await wait_until(pilot, lambda: "rows:" in text_of(screen, "#train-rows"))
    return screen


def text_of(screen: TrainScreen, selector: str) -> str:
    return str(screen.query_one(selector, Static).render())


def fill(screen: TrainScreen, **values: str) -> None:
    for name, value in values.items():
        screen.query_one(f"#{name.replace('_', '-')}", Input).value = value


@pytest.mark.asyncio
async def test_training_shows_progress_the_loss_and_scores_then_c_chats_with_the_model(
    tiny_slice: Path, tmp_path: Path
) -> None:
    app = QAConsoleApp()
    output = tmp_path / "model"
    async with app.run_test(size=SMALL, notifications=True) as pilot:
        screen = await open_train(pilot)
        fill(screen, data=str(tiny_slice), max_steps=str(STEPS), output=str(output))
        await pilot.press("ctrl+t")
        bar = screen.query_one("#train-progress", TaskProgress).query_one(ProgressBar)
        chart = screen.query_one(LossChart)
        await wait_until(pilot, lambda: (bar.progress or 0) >= 4, timeout_s=60)
        # the UI answers while the trainer runs: chat and back, mid-run
        await pilot.press("f1")
        await wait_until(pilot, lambda: isinstance(app.screen, ChatScreen))
        await pilot.press("f2")
        await wait_until(pilot, lambda: app.screen is screen)
        assert screen.running
        await wait_until(pilot, lambda: screen.result is not None, timeout_s=60)
        assert bar.total == STEPS and bar.progress == STEPS
        assert len(chart.points) >= 3  # a loss point per logging step
        assert [step for step, _ in chart.points] == sorted({step for step, _ in chart.points})
        scores = text_of(screen, "#train-scores")
        assert "validation" in scores and "EM" in scores and "F1" in scores
        assert (output / "model.safetensors").is_file()
        package = app.get_screen("package")  # the Package screen starts from the new model
        assert isinstance(package, PackageScreen) and package.model_dir_default == str(output)

        await pilot.press("c")
        await wait_until(pilot, lambda: isinstance(app.screen, ChatScreen))
        assert app.chat.backend == "trained-model"
        await pilot.click("#question")
        await pilot.press(*"Who is Ada?", "enter")
        await wait_until(
            pilot, lambda: bool(app.exchanges) and app.exchanges[0].status == DONE, timeout_s=30
        )
        assert app.exchanges[0].backend == "trained-model"


@pytest.mark.asyncio
async def test_cancel_stops_the_run_between_steps_and_keeps_a_checkpoint(
    tiny_slice: Path, tmp_path: Path
) -> None:
    app = QAConsoleApp()
    notes = Notifications()
    output = tmp_path / "model"
    async with app.run_test(size=SMALL, notifications=True, message_hook=notes.hook) as pilot:
        screen = await open_train(pilot)
        fill(screen, data=str(tiny_slice), max_steps="2000", output=str(output))
        await pilot.click("#start")
        bar = screen.query_one("#train-progress", TaskProgress).query_one(ProgressBar)
        await wait_until(pilot, lambda: (bar.progress or 0) >= 3, timeout_s=60)
        await pilot.click("#cancel")
        await wait_until(pilot, lambda: not screen.running, timeout_s=30)
        assert any("training stopped at step" in note for note in notes)
        assert "stopped at step" in str(screen.query_one("#train-progress .line", Static).render())
        assert screen.result is None
        assert list((output / "checkpoints").glob("checkpoint-*"))
        assert app.is_running


@pytest.mark.asyncio
async def test_a_bad_dataset_path_is_a_one_line_notification(tmp_path: Path) -> None:
    app = QAConsoleApp()
    notes = Notifications()
    async with app.run_test(size=SMALL, notifications=True, message_hook=notes.hook) as pilot:
        screen = await open_train(pilot)
        missing = tmp_path / "nowhere" / "data.jsonl"
        fill(screen, data=str(missing))
        await pilot.click("#data")
        await pilot.press("enter")
        await wait_until(pilot, lambda: any("no such file or folder" in n for n in notes))
        await wait_until(pilot, lambda: "cannot read the data" in text_of(screen, "#train-rows"))
        fill(screen, max_steps="ten")  # not a number: refused before anything starts
        await pilot.press("ctrl+t")
        await wait_until(pilot, lambda: any("max steps must be a whole number" in n for n in notes))
        assert not screen.running and app.is_running


# ---------------------------------------------------------------------------- snapshots (UX spec)


def test_snapshot_train_at_80x24_before_a_run(snap_compare: Callable[..., bool]) -> None:
    async def show_train(pilot: Pilot[None]) -> None:
        await open_train(pilot)
        steady_cursors(pilot)
        await pilot.pause()

    assert snap_compare(QAConsoleApp(), terminal_size=SMALL, run_before=show_train)


def test_snapshot_train_at_80x24_after_a_run(
    tiny_slice: Path, tmp_path: Path, snap_compare: Callable[..., bool]
) -> None:
    async def train_briefly(pilot: Pilot[None]) -> None:
        screen = await open_train(pilot)
        fill(screen, data=str(tiny_slice), max_steps="20", output=str(tmp_path / "model"))
        await pilot.press("ctrl+t")
        await wait_until(pilot, lambda: screen.result is not None, timeout_s=60)
        # what varies between runs: the temporary folders, the seconds, the losses and scores
        fill(screen, data="biography-slice", output="artifacts/model")
        screen.query_one(TaskProgress).say("trained 20 steps in 3 s, final loss 4.2")
        chart = screen.query_one(LossChart)
        chart.reset()
        for step, loss in [(2, 7.0), (6, 6.1), (10, 5.2), (14, 4.6), (18, 4.3), (20, 4.2)]:
            chart.add(step, {"loss": loss})
        screen.query_one("#train-scores", Static).update(
            "validation EM  10.0  F1  20.0\ntrain      EM  30.0  F1  40.0"
        )
        await pilot.pause()

    assert snap_compare(QAConsoleApp(), terminal_size=SMALL, run_before=train_briefly)
