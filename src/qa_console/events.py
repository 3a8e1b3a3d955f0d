"""The one progress event type every long operation reports through.

The CLI renders these with Rich progress bars, the TUI with widgets; ops code knows neither.
A callback must be cheap and must not raise: operations call it from their own thread.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class ProgressEvent:
    """One step forward in a long operation.

    task:      what is running, e.g. "train", "package", "upload" (stable: UIs key on it)
    message:   a short human line, e.g. "epoch 2/5" or "uploading part 3/8"
    completed: how much is done, in `unit`s (None when unknown)
    total:     how much there is in all (None when unknown: an indeterminate bar)
    unit:      "steps", "bytes", "files", "s", ...
    metrics:   numbers worth showing or plotting (loss, learning_rate, eta_s, exact_match, ...)
    done:      True on the last event of the task
    """

    task: str
    message: str = ""
    completed: float | None = None
    total: float | None = None
    unit: str = ""
    metrics: Mapping[str, float] = field(default_factory=dict)
    done: bool = False


ProgressCallback = Callable[[ProgressEvent], None]


def ignore_progress(event: ProgressEvent) -> None:
    """The default callback: report nothing."""
