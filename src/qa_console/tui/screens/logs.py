"""The Logs screen: follow any endpoint's CloudWatch log.

The endpoint is typed (default: the endpoint_name setting) or picked from the endpoints the
target has (listed by a worker when the list is first focused, again on ctrl+r). Following
runs in one exclusive thread worker that posts folded batches; the LogPane does the rest
(pause on scroll up, new-line count, filter, bounded buffer).
"""

from __future__ import annotations

from typing import Any, ClassVar

from textual import events, on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal
from textual.message import Message
from textual.widgets import Button, Input, Select
from textual.worker import Worker, get_current_worker

from qa_console.tui.log_follow import follow_endpoint
from qa_console.tui.screens.base import OpsScreen
from qa_console.tui.targets import target_for
from qa_console.tui.widgets.log_pane import LogBatch, LogPane

HISTORY = "1h"  # how far back a follow starts: the recent past, then what arrives
FOLLOW_GROUP = "logs-follow"


class LogsScreen(OpsScreen):
    DEFAULT_CSS = """
    #logs-bar { height: 1; }
    #logs-endpoint { width: 1fr; }
    #logs-endpoints { width: 1fr; max-width: 36; }
    #logs-follow { width: auto; min-width: 10; }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+r", "list_endpoints", "Endpoints", id="logs_list"),
        Binding("ctrl+f", "focus_filter", "Filter", id="logs_filter"),
        Binding("ctrl+x", "stop", "Stop", id="logs_stop"),
    ]

    class Endpoints(Message):
        def __init__(self, endpoints: list[dict[str, Any]]) -> None:
            super().__init__()
            self.endpoints = endpoints

    def __init__(self) -> None:
        super().__init__()
        self._following: str | None = None
        self._listed = False
        self.endpoint_names: list[str] = []  # what the list shows, once read

    def compose_body(self) -> ComposeResult:
        with Horizontal(id="logs-bar"):
            yield Input(placeholder="endpoint name", id="logs-endpoint", compact=True)
            yield Select[str]([], prompt="existing endpoints", id="logs-endpoints", compact=True)
            yield Button("Follow", id="logs-follow", compact=True, variant="primary")
        yield LogPane(id="logs-pane")

    def on_mount(self) -> None:
        default = self.app_settings.get("endpoint_name")
        endpoint = self.query_one("#logs-endpoint", Input)
        if default:
            endpoint.value = default
        endpoint.focus()
        self.pane.set_note("type an endpoint and press Enter to follow its log")

    def on_descendant_focus(self, event: events.DescendantFocus) -> None:
        # The list is read when first wanted, not when the screen opens: reaching the target
        # can start the embedded local AWS, which merely looking at a screen must not do.
        select = self.query_one("#logs-endpoints")
        if not self._listed and (event.widget is select or event.widget in select.walk_children()):
            self._listed = True
            self.action_list_endpoints()

    @property
    def app_settings(self) -> dict[str, Any]:
        return dict(getattr(self.app, "backend_defaults", {}) or {})

    @property
    def pane(self) -> LogPane:
        return self.query_one("#logs-pane", LogPane)

    @property
    def following(self) -> str | None:
        """The endpoint whose log is followed now, or None."""
        return self._following

    # ------------------------------------------------------------------ choosing

    @on(Input.Submitted, "#logs-endpoint")
    @on(Button.Pressed, "#logs-follow")
    def _follow_typed(self) -> None:
        self.start_following(self.query_one("#logs-endpoint", Input).value.strip())

    @on(Select.Changed, "#logs-endpoints")
    def _picked(self, event: Select.Changed) -> None:
        if isinstance(event.value, str):
            self.query_one("#logs-endpoint", Input).value = event.value
            self.start_following(event.value)

    def start_following(self, endpoint: str) -> None:
        if not endpoint:
            self.notify("type an endpoint name first", severity="warning")
            return
        self._following = endpoint
        self.pane.clear()
        self.pane.set_note(f"following {endpoint} (last {HISTORY}, then live)")
        self.follow_logs(endpoint)

    def action_stop(self) -> None:
        if self._following is None:
            return
        self.workers.cancel_group(self, FOLLOW_GROUP)
        self.pane.set_note(f"stopped following {self._following}")
        self._following = None

    def action_focus_filter(self) -> None:
        self.query_one("#log-filter", Input).focus()

    # ------------------------------------------------------------------ workers

    @work(thread=True, exclusive=True, exit_on_error=False, group=FOLLOW_GROUP)
    def follow_logs(self, endpoint: str) -> None:
        from qa_console.ops.logs.since import start_time_ms

        worker = get_current_worker()
        follow_endpoint(
            target_for(self.app),
            endpoint,
            start_ms=start_time_ms(HISTORY),
            on_batch=lambda entries: self.post_message(LogBatch(endpoint, entries)),
            cancelled=lambda: worker.is_cancelled,
        )

    @work(thread=True, exclusive=True, exit_on_error=False, group="logs-list")
    def action_list_endpoints(self) -> None:
        from qa_console.ops.deploy.status import list_endpoints

        self.post_message(self.Endpoints(list_endpoints(target_for(self.app))))

    @on(LogBatch)
    def _batch(self, message: LogBatch) -> None:
        if message.endpoint == self._following:
            self.pane.add_entries(message.entries)

    @on(Endpoints)
    def _endpoints(self, message: Endpoints) -> None:
        self.endpoint_names = [item["name"] for item in message.endpoints]
        select: Select[str] = self.query_one("#logs-endpoints", Select)
        select.set_options(
            (f"{item['name']} ({item['status']})", item["name"]) for item in message.endpoints
        )

    def worker_failed(self, worker: Worker[object]) -> None:
        if worker.group == FOLLOW_GROUP and self._following is not None:
            self.pane.set_note(f"stopped following {self._following}")
            self._following = None
