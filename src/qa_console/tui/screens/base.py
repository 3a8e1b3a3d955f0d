"""What every screen of the app shares: the header, the footer, and how its workers fail.

A screen composes its body in `compose_body`. Its long work runs in thread workers started with
`exit_on_error=False`: a worker that raises ends as a notification (the one-line message and
hint), never a crash screen, and `worker_failed` lets the screen reset its buttons.
"""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.screen import Screen
from textual.widgets import Footer
from textual.worker import Worker, WorkerState

from qa_console.tui.notify import notify_error
from qa_console.tui.widgets.ops_header import OpsHeader


class OpsScreen(Screen[None]):
    def compose(self) -> ComposeResult:
        yield OpsHeader()
        yield from self.compose_body()
        yield Footer()

    def compose_body(self) -> ComposeResult:
        yield from ()

    @on(Worker.StateChanged)
    def _worker_changed(self, event: Worker.StateChanged) -> None:
        if event.state == WorkerState.ERROR and event.worker.error is not None:
            notify_error(self, event.worker.error)
            self.worker_failed(event.worker)

    def worker_failed(self, worker: Worker[object]) -> None:
        """Called after a worker of this screen raised (already notified)."""
