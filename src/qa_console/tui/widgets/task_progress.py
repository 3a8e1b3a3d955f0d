"""One progress bar and a line under it, driven by ProgressEvents (train steps, bytes packed or
uploaded). The Train and Package screens share it so progress reads the same everywhere."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.message import Message
from textual.widgets import ProgressBar, Static

from qa_console.events import ProgressEvent


def eta_text(seconds: float) -> str:
    """0:42 or 1:02:03: what is left, to the second."""
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02}:{secs:02}" if hours else f"{minutes}:{secs:02}"


def amount_text(value: float, unit: str) -> str:
    """Bytes as B, kB or MB (one decimal), anything else as a whole number."""
    if unit != "bytes":
        return f"{value:.0f}"
    if value < 1e3:
        return f"{value:.0f} B"
    if value < 1e6:
        return f"{value / 1e3:.1f} kB"
    return f"{value / 1e6:.1f} MB"


def describe(event: ProgressEvent) -> str:
    """The line under the bar: 'train 12/30 steps · ETA 0:05 · loss 2.310'."""
    parts = [event.task]
    if event.completed is not None and event.total:
        done, total = amount_text(event.completed, event.unit), amount_text(event.total, event.unit)
        parts[0] += f" {done}/{total}" + (f" {event.unit}" if event.unit != "bytes" else "")
    eta = event.metrics.get("eta_s")
    if eta is not None and not event.done:
        parts.append(f"ETA {eta_text(eta)}")
    loss = event.metrics.get("loss")
    if loss is not None:
        parts.append(f"loss {loss:.3f}")
    if len(parts) == 1 and event.message:
        parts.append(event.message)
    return " · ".join(parts)


class ProgressReported(Message):
    """A library operation's ProgressEvent, posted from the worker thread to its screen."""

    def __init__(self, event: ProgressEvent) -> None:
        super().__init__()
        self.event = event


class TaskProgress(Vertical):
    DEFAULT_CSS = """
    TaskProgress { height: auto; max-height: 3; }
    TaskProgress ProgressBar { width: 1fr; }
    TaskProgress Bar { width: 1fr; }
    TaskProgress .line { height: auto; max-height: 2; color: $text-muted; }
    """

    def compose(self) -> ComposeResult:
        # Idle is an empty bar, not an indeterminate one: that one animates (and would make
        # every screenshot differ); `reset(busy=True)` shows it while work has no size yet.
        yield ProgressBar(total=1, show_eta=False)
        yield Static("idle", classes="line")

    @property
    def bar(self) -> ProgressBar:
        return self.query_one(ProgressBar)

    def show(self, event: ProgressEvent) -> None:
        """Move the bar when the event says how far along it is; always update the line."""
        if event.total:
            self.bar.update(total=event.total, progress=event.completed or 0)
        self.query_one(".line", Static).update(describe(event))

    def say(self, text: str) -> None:
        self.query_one(".line", Static).update(text)

    def finish(self, total: float, text: str) -> None:
        """A full bar and the outcome in words."""
        self.bar.update(total=total, progress=total)
        self.say(text)

    def reset(self, text: str = "idle", *, busy: bool = False) -> None:
        self.bar.update(total=None if busy else 1, progress=0)
        self.say(text)
