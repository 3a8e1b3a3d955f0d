"""Render ProgressEvents with Rich progress bars: one bar per task, on stderr."""

from __future__ import annotations

from types import TracebackType
from typing import Any

from qa_console.events import ProgressEvent


class RichProgress:
    """A ProgressCallback that draws bars. Use as a context manager around the operation.

    `with RichProgress() as progress: ops.package.build(..., progress=progress)`
    With `enabled=False` (for --json or --quiet) it swallows events.
    """

    def __init__(self, enabled: bool = True, transient: bool = False) -> None:
        self.enabled = enabled
        self.transient = transient
        self._progress: Any = None
        self._tasks: dict[str, Any] = {}

    def __enter__(self) -> RichProgress:
        if self.enabled:
            from rich.console import Console
            from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn
            from rich.table import Column

            def fixed() -> Column:
                return Column(no_wrap=True)

            # Few columns on purpose: progress must stay readable in an 80-column terminal
            # and in CI logs. The message comes last and is the first thing cut.
            self._progress = Progress(
                TextColumn("[bold]{task.fields[task_name]}", table_column=fixed()),
                BarColumn(bar_width=16, table_column=fixed()),
                TextColumn("{task.fields[amount]}", table_column=fixed()),
                TimeRemainingColumn(compact=True, elapsed_when_finished=True, table_column=fixed()),
                TextColumn(
                    "{task.description}",
                    markup=False,
                    table_column=Column(no_wrap=True, overflow="ellipsis", max_width=28),
                ),
                console=Console(stderr=True),
                transient=self.transient,
            )
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._progress is not None and self._tasks:  # Rich prints a newline even if unused
            self._progress.stop()

    def __call__(self, event: ProgressEvent) -> None:
        if self._progress is None:
            return
        if not self._tasks:
            # Started on the first event, not on entry: a command that fails before any
            # progress (a bad path, say) prints its error line and nothing else.
            self._progress.start()
        task_id = self._tasks.get(event.task)
        if task_id is None:
            task_id = self._progress.add_task(
                event.message, total=event.total, task_name=event.task, amount=""
            )
            self._tasks[event.task] = task_id
        fields: dict[str, Any] = {"description": event.message, "amount": _amount(event)}
        if event.total is not None:
            fields["total"] = event.total
        if event.completed is not None:
            fields["completed"] = event.completed
        if event.done and event.total is not None:
            fields["completed"] = event.total
        self._progress.update(task_id, **fields)


def _amount(event: ProgressEvent) -> str:
    if event.completed is None:
        return ""
    if event.unit == "bytes":
        from rich.filesize import decimal

        total = f"/{decimal(int(event.total))}" if event.total else ""
        return f"{decimal(int(event.completed))}{total}"
    total = f"/{event.total:g}" if event.total is not None else ""
    return f"{event.completed:g}{total} {event.unit}".rstrip()
