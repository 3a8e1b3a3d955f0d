"""One question asked of several backends: their answers side by side, each with its latency."""

from __future__ import annotations

from dataclasses import dataclass, field

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Static

from qa_console.tui.transcript import FAILED, Exchange


@dataclass
class Comparison:
    id: int
    question: str
    answers: dict[str, Exchange] = field(default_factory=dict)  # by backend, in column order


class ComparisonView(Vertical):
    DEFAULT_CSS = """
    ComparisonView { height: auto; margin: 0 0 1 0; }
    ComparisonView > .question { color: $accent; text-style: bold; }
    ComparisonView Horizontal { height: auto; }
    ComparisonView .column { width: 1fr; height: auto; border: round $primary; padding: 0 1; }
    ComparisonView .status { color: $text-muted; }
    ComparisonView .-failed .status { color: $error; }
    """

    def __init__(self, comparison: Comparison) -> None:
        super().__init__(id=f"comparison-{comparison.id}")
        self.comparison = comparison

    def compose(self) -> ComposeResult:
        yield Static(f"Q: {self.comparison.question}", classes="question", markup=False)
        with Horizontal():
            for index, answer in enumerate(self.comparison.answers.values()):
                with Vertical(classes="column", id=f"column-{index}") as column:
                    column.border_title = answer.backend
                    yield Static(answer.answer, classes="answer", markup=False)
                    yield Static(answer.status_line(), classes="status", markup=False)

    def refresh_answer(self, backend: str) -> None:
        names = list(self.comparison.answers)
        answer = self.comparison.answers[backend]
        column = self.query_one(f"#column-{names.index(backend)}", Vertical)
        column.set_class(answer.status == FAILED, "-failed")
        column.query_one(".answer", Static).update(answer.answer)
        column.query_one(".status", Static).update(answer.status_line())
