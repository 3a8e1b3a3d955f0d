"""The chat as data: the exchanges of this session, and their Markdown export.

Kept free of textual so the export is plain, testable text; the widgets only mirror it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

PENDING, DONE, FAILED, CANCELLED = "answering", "done", "failed", "cancelled"


@dataclass
class Exchange:
    """One question, the answer as received so far, and how it ended."""

    id: int
    backend: str
    question: str
    answer: str = ""
    latency_ms: float | None = None
    status: str = PENDING
    error: str | None = None

    def status_line(self) -> str:
        """The one line under an answer: which backend, and how long it took or why it stopped."""
        if self.status == DONE and self.latency_ms is not None:
            return f"{self.backend} · {self.latency_ms:.0f} ms"
        if self.status == FAILED:
            return f"{self.backend} · error: {self.error}"
        return f"{self.backend} · {self.status}"


def to_markdown(exchanges: list[Exchange], when: datetime) -> str:
    """The chat as a Markdown document: a heading per question, the answer under it."""
    lines = [f"# qa-console chat, {when:%Y-%m-%d %H:%M}", ""]
    for exchange in exchanges:
        lines += [f"## Q: {exchange.question}", "", f"*{exchange.status_line()}*", ""]
        if exchange.answer:
            lines += [exchange.answer, ""]
    return "\n".join(lines)


def export(exchanges: list[Exchange], folder: Path, when: datetime | None = None) -> Path:
    """Write the chat to a new `qa-console-chat-<time>.md` in `folder`; never overwrites a file."""
    moment = when or datetime.now()
    stem = f"qa-console-chat-{moment:%Y%m%d-%H%M%S}"
    text = to_markdown(exchanges, moment)
    for attempt in range(1, 1000):
        path = folder / (stem + (f"-{attempt}" if attempt > 1 else "") + ".md")
        try:
            with path.open("x", encoding="utf-8") as out:
                out.write(text)
        except FileExistsError:
            continue
        return path
    raise FileExistsError(f"{folder / stem}.md and 998 numbered variants exist")
