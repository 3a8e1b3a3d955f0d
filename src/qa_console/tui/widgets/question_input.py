"""The chat's question box, with shell-like history: up recalls older questions, down newer.

Questions asked in this session come first; the history store's recent questions (any process's,
as the history panel shows them) fill in behind them, so a question asked with `qa-console ask`
is one key away too. What was being typed is kept and comes back after the newest entry.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import ClassVar

from textual.binding import Binding, BindingType
from textual.widgets import Input

MAX_REMEMBERED = 200


class QuestionInput(Input):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("up", "older", "Older question", show=False),
        Binding("down", "newer", "Newer question", show=False),
    ]

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self._questions: list[str] = []  # oldest first
        self._position: int | None = None  # index into _questions while browsing
        self._draft = ""

    def remember(self, question: str) -> None:
        """Add a question just asked (the newest); a repeat moves to the end."""
        if question in self._questions:
            self._questions.remove(question)
        self._questions.append(question)
        del self._questions[:-MAX_REMEMBERED]
        self._position = None

    def remember_older(self, questions: Iterable[str]) -> None:
        """Put questions from the store (newest first) behind the ones already remembered."""
        known = set(self._questions)
        older = [q for q in questions if q not in known]
        self._questions = list(dict.fromkeys(reversed(older))) + self._questions
        del self._questions[:-MAX_REMEMBERED]

    def action_older(self) -> None:
        if not self._questions:
            return
        if self._position is None:
            self._draft = self.value
            self._position = len(self._questions)
        self._position = max(0, self._position - 1)
        self._show(self._questions[self._position])

    def action_newer(self) -> None:
        if self._position is None:
            return
        self._position += 1
        if self._position >= len(self._questions):
            self._position = None
            self._show(self._draft)
        else:
            self._show(self._questions[self._position])

    def _show(self, text: str) -> None:
        self.value = text
        self.cursor_position = len(text)
