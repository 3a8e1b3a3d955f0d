"""The Deploy screen: a form, the plan it makes (size and $/hour, $/month), the deploy's steps
with the endpoint's status, and the endpoint's live log.

The deploy itself is ops.deploy.flow.deploy_model in a thread worker whose progress callback
only posts messages; the endpoint's log is followed by a second worker from the moment the
deploy starts (it waits for the log group the container creates). Once the endpoint is
InService, ctrl+t adds it to the chat as a sagemaker backend and switches there.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, ClassVar, cast

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.widgets import Button, Input, Label, Select, Static
from textual.worker import Worker, get_current_worker

from qa_console.errors import QAConsoleError
from qa_console.events import ProgressEvent
from qa_console.ops.deploy.plan import MODES, DeployRequest, Mode
from qa_console.tui.deploy_form import DeployForm, describe, recommend, to_request, weights_bytes
from qa_console.tui.log_follow import follow_endpoint
from qa_console.tui.notify import describe as describe_error
from qa_console.tui.screens.base import OpsScreen
from qa_console.tui.targets import target_for
from qa_console.tui.widgets.log_pane import LogBatch, LogPane

if TYPE_CHECKING:
    from qa_console.tui.app import QAConsoleApp

DEPLOY_GROUP = "deploy"
LOGS_GROUP = "deploy-logs"
PROGRESS_EVERY_S = 0.1  # at most this often per task: an upload reports every part
LOG_LEAD_MS = 5_000  # read the endpoint's log from a little before the deploy started
SHOWN_STEPS = 8  # what fits under the form at 80x24
# (field id, label, the modes it belongs to, default)
FIELDS: tuple[tuple[str, str, tuple[Mode, ...], str], ...] = (
    ("memory", "memory MB", ("serverless",), ""),
    ("concurrency", "concurrency", ("serverless",), "5"),
    ("instance", "instance", ("realtime", "async"), "auto"),
    ("count", "count", ("realtime", "async"), "1"),
    ("budget", "budget $/h", ("realtime", "async"), ""),
    ("output", "answers s3", ("async",), ""),
)
PLACEHOLDERS = {
    "memory": "from the model",
    "budget": "no limit",
    "output": "s3://bucket/answers/",
}


class Steps:
    """The deploy's steps in the order they started: each task's latest message, done or not."""

    def __init__(self) -> None:
        self.tasks: dict[str, tuple[str, bool]] = {}

    def update(self, event: ProgressEvent) -> None:
        self.tasks[event.task] = (event.message, event.done)

    def render(self, limit: int = SHOWN_STEPS) -> Text:
        text = Text(no_wrap=True, overflow="ellipsis")
        for task, (message, done) in list(self.tasks.items())[-limit:]:
            text.append("✓ " if done else "… ", style="green" if done else "yellow")
            text.append(f"{task:<9}", style="bold")
            text.append(f"{message}\n")
        text.rstrip()
        return text


class DeployScreen(OpsScreen):
    DEFAULT_CSS = """
    #deploy-form { width: 36; padding-right: 1; }
    #deploy-form .field { height: 1; }
    #deploy-form .field Label { width: 12; color: $text-muted; }
    #deploy-form .field Input, #deploy-form .field Select { width: 1fr; }
    #deploy-go { width: 100%; margin-top: 1; }
    #deploy-side { width: 1fr; }
    #deploy-plan { height: auto; max-height: 3; }
    #deploy-status { height: 1; }
    #deploy-steps { height: 1fr; margin-top: 1; text-wrap: nowrap; text-overflow: ellipsis; }
    #deploy-status { text-wrap: nowrap; text-overflow: ellipsis; }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+r", "deploy", "Deploy", id="deploy_run"),
        Binding("ctrl+t", "chat", "Chat with it", id="deploy_chat"),
    ]

    class Progress(Message):
        def __init__(self, event: ProgressEvent) -> None:
            super().__init__()
            self.event = event

    class Deployed(Message):
        def __init__(self, endpoint: str, status: str, seconds: float, updated: bool) -> None:
            super().__init__()
            self.endpoint = endpoint
            self.status = status
            self.seconds = seconds
            self.updated = updated

    class LogWaiting(Message):
        def __init__(self, note: str) -> None:
            super().__init__()
            self.note = note

    def __init__(self) -> None:
        super().__init__()
        self.steps = Steps()
        self.deploying: str | None = None  # the endpoint a deploy of this screen is making
        self.serving: str | None = None  # the endpoint this screen last brought InService
        self.suggested_model: str | None = None  # what the Package screen handed over
        self.logs_of: str | None = None

    def compose_body(self) -> ComposeResult:
        with Horizontal():
            with Vertical(id="deploy-form"):
                yield from self._field("model", "model", Input(id="deploy-model", compact=True))
                yield from self._field("name", "endpoint", Input(id="deploy-name", compact=True))
                modes = Select[str](
                    [(mode, mode) for mode in MODES],
                    value="serverless",
                    allow_blank=False,
                    id="deploy-mode",
                    compact=True,
                )
                yield from self._field("mode", "mode", modes)
                for field_id, label, _modes, default in FIELDS:
                    field = Input(
                        default,
                        placeholder=PLACEHOLDERS.get(field_id, ""),
                        id=f"deploy-{field_id}",
                        compact=True,
                    )
                    yield from self._field(field_id, label, field)
                yield Button("Deploy", id="deploy-go", variant="primary", compact=True)
                yield Static("", id="deploy-steps")
            with Vertical(id="deploy-side"):
                yield Static("", id="deploy-plan")
                yield Static("", id="deploy-status")
                yield LogPane(id="deploy-log")

    @staticmethod
    def _field(field_id: str, label: str, widget: Input | Select[str]) -> ComposeResult:
        with Horizontal(classes="field", id=f"deploy-field-{field_id}"):
            yield Label(label)
            yield widget

    def suggest_model(self, model: str) -> None:
        """Start from this model (the archive the Package screen just checked), unless the
        user has typed one of their own."""
        typed = self.is_mounted and self.query_one("#deploy-model", Input).value.strip()
        if typed and typed != self.suggested_model:
            return
        self.suggested_model = model
        if self.is_mounted:
            self.query_one("#deploy-model", Input).value = model
            self.update_plan()

    def on_mount(self) -> None:
        self.query_one("#deploy-name", Input).value = self.settings.get("endpoint_name") or ""
        self.query_one("#deploy-model", Input).placeholder = "folder, .tar.gz or s3://"
        if self.suggested_model:
            self.query_one("#deploy-model", Input).value = self.suggested_model
        self.query_one("#deploy-model", Input).focus()
        self._show_fields("serverless")
        self.update_plan()
        self.query_one(LogPane).set_note("the endpoint's log shows here once it starts")
        self._set_status(Text("ready: ctrl+r deploys", style="dim"))

    @property
    def settings(self) -> dict[str, Any]:
        return dict(getattr(self.app, "backend_defaults", {}) or {})

    # ------------------------------------------------------------------ the form

    def form(self) -> DeployForm:
        def value(field_id: str) -> str:
            return self.query_one(f"#deploy-{field_id}", Input).value

        mode = self.query_one("#deploy-mode", Select).value
        return DeployForm(
            model=value("model").strip(),
            endpoint=value("name").strip(),
            mode=cast("Mode", mode if mode in MODES else "serverless"),
            memory_mb=value("memory"),
            concurrency=value("concurrency"),
            instance_type=value("instance"),
            instance_count=value("count"),
            budget=value("budget"),
            output=value("output"),
        )

    def _show_fields(self, mode: str) -> None:
        for field_id, _label, modes, _default in FIELDS:
            self.query_one(f"#deploy-field-{field_id}").display = mode in modes

    @on(Select.Changed, "#deploy-mode")
    def _mode_changed(self, event: Select.Changed) -> None:
        self._show_fields(str(event.value))
        self.update_plan()

    @on(Input.Changed)
    def _field_changed(self, event: Input.Changed) -> None:
        if event.input.id and event.input.id.startswith("deploy-"):
            self.update_plan()

    def update_plan(self) -> None:
        """The plan for what the form says now (cheap: file sizes and the instance table)."""
        form = self.form()
        plan_view = self.query_one("#deploy-plan", Static)
        if not form.endpoint:
            plan_view.update(Text("name the endpoint to see its size and cost", style="dim"))
            return
        try:
            plan = recommend(form, self.settings.get("execution_role"), self.aws_region)
        except QAConsoleError as error:
            plan_view.update(Text(describe_error(error), style="yellow"))
            return
        plan_view.update(describe(plan, weights_bytes(form.model) is not None))

    @property
    def aws_region(self) -> str:
        return str(getattr(self.app, "region", None) or "us-east-1")

    # ------------------------------------------------------------------ deploying

    @on(Button.Pressed, "#deploy-go")
    def action_deploy(self) -> None:
        form = self.form()
        if self.deploying is not None:
            self.notify(
                f"a deploy of {self.deploying} is under way: wait for it to finish",
                severity="warning",
            )
            return
        if not form.model:
            self.notify("say which model to deploy (a folder, model.tar.gz or s3:// URL)",
                        severity="warning")  # fmt: skip
            return
        try:
            request = to_request(form, self.settings.get("execution_role"))
        except QAConsoleError as error:
            self.notify(describe_error(error), severity="error", timeout=10)
            return
        self.deploying, self.serving = request.endpoint, None
        self.refresh_bindings()
        self.steps = Steps()
        self.query_one("#deploy-steps", Static).update("")
        self.query_one("#deploy-go", Button).disabled = True
        self._set_status(Text(f"deploying {request.endpoint}...", style="yellow"))
        pane = self.query_one(LogPane)
        if self.logs_of != request.endpoint:
            pane.clear()
        self.logs_of = request.endpoint
        pane.set_note(f"log of {request.endpoint}")
        self.run_deploy(form.model, request)
        self.follow_logs(request.endpoint, int(time.time() * 1000) - LOG_LEAD_MS)

    @work(thread=True, exclusive=True, exit_on_error=False, group=DEPLOY_GROUP)
    def run_deploy(self, model: str, request: DeployRequest) -> None:
        from qa_console.ops.deploy.flow import deploy_model

        last_post: dict[str, float] = {}

        def progress(event: ProgressEvent) -> None:
            now = time.monotonic()
            if not event.done and now - last_post.get(event.task, 0.0) < PROGRESS_EVERY_S:
                return
            last_post[event.task] = now
            self.post_message(self.Progress(event))

        settings = self.settings
        outcome = deploy_model(
            target_for(self.app),
            model,
            request,
            bucket=settings.get("bucket"),
            folder=settings.get("folder"),
            progress=progress,
        )
        rollout = outcome.rollout
        assert rollout is not None  # not a dry run
        self.post_message(
            self.Deployed(rollout.endpoint, rollout.status, rollout.seconds, rollout.updated)
        )

    @work(thread=True, exclusive=True, exit_on_error=False, group=LOGS_GROUP)
    def follow_logs(self, endpoint: str, start_ms: int) -> None:
        worker = get_current_worker()
        follow_endpoint(
            target_for(self.app),
            endpoint,
            start_ms=start_ms,
            on_batch=lambda entries: self.post_message(LogBatch(endpoint, entries)),
            cancelled=lambda: worker.is_cancelled,
            wait_for_group=True,
            on_waiting=lambda note: self.post_message(self.LogWaiting(note)),
        )

    @on(Progress)
    def _progress(self, message: Progress) -> None:
        event = message.event
        self.steps.update(event)
        self.query_one("#deploy-steps", Static).update(self.steps.render())
        if event.task == "endpoint" and ":" in event.message:
            status = event.message.rsplit(":", 1)[1].strip()
            elapsed = event.metrics.get("elapsed_s")
            suffix = f" ({elapsed:.0f} s)" if elapsed is not None else ""
            colour = {"InService": "green", "Failed": "red"}.get(status, "yellow")
            self._set_status(Text(f"endpoint {self.deploying}: {status}{suffix}", style=colour))

    @on(Deployed)
    def _deployed(self, message: Deployed) -> None:
        self.deploying, self.serving = None, message.endpoint
        self.query_one("#deploy-go", Button).disabled = False
        verb = "updated" if message.updated else "created"
        self._set_status(
            Text(
                f"{message.status} in {message.seconds:.0f} s: ctrl+t chats with "
                f"{message.endpoint}",
                style="bold green",
            )
        )
        self.refresh_bindings()
        self.notify(f"endpoint {message.endpoint} {verb}: {message.status}")

    @on(LogBatch)
    def _log_batch(self, message: LogBatch) -> None:
        if message.endpoint == self.logs_of:
            self.query_one(LogPane).add_entries(message.entries)

    @on(LogWaiting)
    def _log_waiting(self, message: LogWaiting) -> None:
        self.query_one(LogPane).add_note(message.note)

    def worker_failed(self, worker: Worker[object]) -> None:
        if worker.group != DEPLOY_GROUP:
            return
        failed = self.deploying
        self.deploying = None
        self.query_one("#deploy-go", Button).disabled = False
        self._set_status(Text(f"the deploy of {failed} failed (see the notification)", "red"))
        error = worker.error
        # The error's details (denied permissions, the container's last lines) do not fit a
        # notification; the log pane has room for them.
        if isinstance(error, QAConsoleError):
            pane = self.query_one(LogPane)
            for line in (describe_error(error), *error.details):
                pane.add_note(line, "red")
        self.refresh_bindings()

    def _set_status(self, text: Text) -> None:
        self.query_one("#deploy-status", Static).update(text)

    # ------------------------------------------------------------------ chatting

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "chat":
            return True if self.serving else None  # shown greyed out until InService
        return True

    def action_chat(self) -> None:
        if self.serving is None:
            return
        app = cast("QAConsoleApp", self.app)
        app.chat_with(
            self.serving,
            "sagemaker",
            {"endpoint": self.serving, "region": self.aws_region},
            "deploy screen",
        )
