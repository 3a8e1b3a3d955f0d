"""The Train screen: pick data and hyper-parameters, train, watch the loss, chat with the model.

Layout (fits 80x24): the form, Start/Cancel/Chat, the progress bar and the scores on the left;
a preview of the data's first rows and the live loss chart on the right.

All the work is the library's: `load_training_data` for the preview and `train` for the run,
each in a thread worker that only posts messages. Cancel asks the run to stop between steps
(train's `should_stop`): it saves a checkpoint and ends with TrainingStopped.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.widgets import Button, DataTable, Input, Static
from textual.worker import Worker, get_current_worker

from qa_console.errors import UsageError
from qa_console.events import ProgressEvent
from qa_console.ops.training.train import (
    TrainConfig,
    TrainingStopped,
    TrainResult,
    load_training_data,
)
from qa_console.tui import train_form
from qa_console.tui.notify import notify_error
from qa_console.tui.screens.base import OpsScreen
from qa_console.tui.widgets.form_row import FormRow
from qa_console.tui.widgets.loss_chart import LossChart
from qa_console.tui.widgets.task_progress import ProgressReported, TaskProgress

PREVIEW_ROWS = 20
QUESTION_WIDTH = 24
ANSWER_WIDTH = 12
FORM_FIELDS = ("data", "base-model", "max-steps", "epochs", "learning-rate", "batch-size", "output")


class TrainScreen(OpsScreen):
    DEFAULT_CSS = """
    #train-form { width: 38; padding: 0 1 0 0; }
    #train-buttons { height: 1; margin: 1 0; }
    #train-buttons Button { margin-right: 1; min-width: 8; }
    #train-scores { height: auto; margin-top: 1; }
    #train-rows { height: 1; color: $text-muted; }
    #train-preview { height: 7; }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("c", "chat_with_model", "Chat with model", id="chat_with_model"),
        Binding("ctrl+t", "start", "Start", id="start_training"),
        Binding("escape", "cancel", "Cancel", id="cancel_training"),
    ]

    class Preview(Message):
        def __init__(self, rows: list[tuple[str, str]], summary: str) -> None:
            super().__init__()
            self.rows = rows
            self.summary = summary

    class Finished(Message):
        def __init__(self, result: TrainResult) -> None:
            super().__init__()
            self.result = result

    class Stopped(Message):
        def __init__(self, stopped: TrainingStopped) -> None:
            super().__init__()
            self.stopped = stopped

    def __init__(self) -> None:
        super().__init__()
        self.result: TrainResult | None = None
        self.running = False
        self.previewed: str | None = None  # the data the preview shows (None: shipped)

    def compose_body(self) -> ComposeResult:
        hints = train_form.placeholders(train_form.DEFAULT_BASE_MODEL)
        with Horizontal():
            with Vertical(id="train-form"):
                yield FormRow("data", "data", placeholder=train_form.SHIPPED_DATA)
                yield FormRow("model", "base-model", train_form.DEFAULT_BASE_MODEL)
                yield FormRow("steps", "max-steps", placeholder=hints["max-steps"])
                yield FormRow("epochs", "epochs", placeholder=hints["epochs"])
                yield FormRow("lr", "learning-rate", placeholder=hints["learning-rate"])
                yield FormRow("batch", "batch-size", placeholder=hints["batch-size"])
                yield FormRow("output", "output", train_form.DEFAULT_OUTPUT)
                with Horizontal(id="train-buttons"):
                    yield Button("Start", id="start", variant="primary", compact=True)
                    yield Button("Cancel", id="cancel", disabled=True, compact=True)
                    yield Button("Chat", id="chat", disabled=True, compact=True)
                yield TaskProgress(id="train-progress")
                yield Static("", id="train-scores")
            with Vertical(id="train-right"):
                yield Static("reading the data…", id="train-rows")
                yield DataTable(id="train-preview", cursor_type="row", zebra_stripes=True)
                yield LossChart(id="train-loss")

    def on_mount(self) -> None:
        table = self.query_one("#train-preview", DataTable)
        # Fixed widths: both columns fit the right pane at 80 columns (long text is cut).
        table.add_column("question", width=QUESTION_WIDTH)
        table.add_column("answer", width=ANSWER_WIDTH)
        self.preview(None)

    # ------------------------------------------------------------------ the form

    def form_values(self) -> dict[str, str]:
        return {name: self.query_one(f"#{name}", Input).value for name in FORM_FIELDS}

    @on(Input.Submitted, "#data")
    def _data_chosen(self, event: Input.Submitted) -> None:
        self.preview(event.value.strip() or None)

    @on(Input.Changed, "#base-model")
    def _base_model_changed(self, event: Input.Changed) -> None:
        """The blank fields' placeholders follow the base model (tiny and Flan-T5 differ)."""
        for name, hint in train_form.placeholders(event.value.strip()).items():
            self.query_one(f"#{name}", Input).placeholder = hint

    # ------------------------------------------------------------------ the preview

    def preview(self, data: str | None) -> None:
        self.previewed = data
        self.query_one("#train-rows", Static).update("reading the data…")
        self.load_preview(data)

    @work(thread=True, exclusive=True, exit_on_error=False, group="preview")
    def load_preview(self, data: str | None) -> None:
        """The first training rows of `data` (None: the shipped set), as the run will read them."""
        dataset = load_training_data(TrainConfig(data=data))
        rows = [(row.question, row.answer) for row in dataset.train[:PREVIEW_ROWS]]
        kept = dataset.report.rows_kept
        summary = ", ".join(f"{split} {kept.get(split, 0)}" for split in ("train", "validation"))
        self.post_message(self.Preview(rows, summary))

    @on(Preview)
    def _show_preview(self, message: Preview) -> None:
        table = self.query_one("#train-preview", DataTable)
        table.clear()
        table.add_rows(message.rows)
        self.query_one("#train-rows", Static).update(f"rows: {message.summary}")

    # ------------------------------------------------------------------ training

    def action_start(self) -> None:
        if self.running:
            self.notify("a training run is going on; cancel it first", severity="warning")
            return
        try:
            config = train_form.config_from_form(self.form_values())
        except UsageError as error:  # a field that is not a number: one line, like any error
            notify_error(self, error)
            return
        self.result = None
        self.query_one("#train-scores", Static).update("")
        self.query_one(LossChart).reset()
        self.query_one(TaskProgress).reset("starting…", busy=True)
        if config.data != self.previewed:  # typed but not submitted: show what will be trained on
            self.preview(config.data)
        self._set_running(True)
        self.run_training(config)

    def action_cancel(self) -> None:
        if self.running:
            self.workers.cancel_group(self, "train")
            self.query_one(TaskProgress).say("stopping after this step…")
            self.query_one("#cancel", Button).disabled = True

    @work(thread=True, exclusive=True, exit_on_error=False, group="train")
    def run_training(self, config: TrainConfig) -> None:
        from qa_console.ops.training.train import train

        worker = get_current_worker()
        try:
            result = train(
                config,
                progress=self.report_progress,
                should_stop=lambda: worker.is_cancelled,
            )
        except TrainingStopped as stopped:
            self.post_message(self.Stopped(stopped))
            return
        self.post_message(self.Finished(result))

    def report_progress(self, event: ProgressEvent) -> None:
        """The library's progress callback: called in the worker thread, posts a message."""
        self.post_message(ProgressReported(event))

    @on(ProgressReported)
    def _progress(self, message: ProgressReported) -> None:
        event = message.event
        self.query_one(TaskProgress).show(event)
        if event.task == "train":
            self.query_one(LossChart).add(event.completed, event.metrics)

    @on(Finished)
    def _finished(self, message: Finished) -> None:
        self._set_running(False)
        result = self.result = message.result
        # The last events were the evaluation's (examples answered); the bar ends on the run.
        self.query_one(TaskProgress).finish(
            result.steps,
            f"trained {result.steps} steps in {result.train_time_s:.0f} s, "
            f"final loss {result.final_loss}",
        )
        self.query_one("#train-scores", Static).update(scores_text(result))
        self.query_one("#chat", Button).disabled = False
        self.query_one("#chat", Button).focus()
        self._offer_to_package(result.output_dir)

    @on(Stopped)
    def _stopped(self, message: Stopped) -> None:
        self._set_running(False)
        stopped = message.stopped
        self.query_one(TaskProgress).say(f"stopped at step {stopped.step}")
        self.notify(f"{stopped.message}; a checkpoint is saved (CLI: {stopped.hint})")

    def worker_failed(self, worker: Worker[object]) -> None:
        if worker.group == "preview":
            self.query_one("#train-rows", Static).update("cannot read the data (see the message)")
            self.query_one("#train-preview", DataTable).clear()
        if worker.group == "train":
            self._set_running(False)
            self.query_one(TaskProgress).reset("failed: see the notification")

    def _set_running(self, running: bool) -> None:
        self.running = running
        self.query_one("#start", Button).disabled = running
        self.query_one("#cancel", Button).disabled = not running
        if running:
            self.query_one("#chat", Button).disabled = True

    def _offer_to_package(self, output_dir: Path) -> None:
        """The Package screen starts from the model just trained."""
        from qa_console.tui.screens.package import PackageScreen

        package = self.app.get_screen("package")
        if isinstance(package, PackageScreen):
            package.suggest_model_dir(output_dir)

    # ------------------------------------------------------------------ chatting

    @on(Button.Pressed, "#start")
    def _start_pressed(self) -> None:
        self.action_start()

    @on(Button.Pressed, "#cancel")
    def _cancel_pressed(self) -> None:
        self.action_cancel()

    @on(Button.Pressed, "#chat")
    def _chat_pressed(self) -> None:
        self.action_chat_with_model()

    def action_chat_with_model(self) -> None:
        if self.result is None:
            self.notify("train a model first (Start)", severity="warning")
            return
        folder = self.result.output_dir
        # The app is QAConsoleApp, which imports this module: reach it by name, not by type.
        chat_with = getattr(self.app, "chat_with", None)
        if chat_with is not None:
            chat_with(f"trained-{folder.name}", "local", {"model": str(folder)}, "train screen")


def scores_text(result: TrainResult) -> str:
    """Exact match and F1 (percent) on bare validation questions, the headline, then train."""
    lines = []
    for split in ("validation", "train"):
        scores = result.metrics.get(split)
        if scores:
            lines.append(f"{split:<10} EM {scores['exact_match']:5.1f}  F1 {scores['f1']:5.1f}")
    return "\n".join(lines) or "no scores (no evaluation split)"
