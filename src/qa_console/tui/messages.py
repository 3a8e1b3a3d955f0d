"""Messages between the answer/history workers, the screens and the app.

Workers run in threads and only post these; the app's handlers update the widgets on the event
loop. Answer messages carry the exchange id so pieces of a cancelled answer can be ignored.
"""

from __future__ import annotations

from textual.message import Message

from qa_console.store import HistoryEntry


class QuestionAsked(Message):
    """The user submitted a question for a backend (posted by the chat screen)."""

    def __init__(self, question: str, backend: str | None) -> None:
        super().__init__()
        self.question = question
        self.backend = backend


class AnswerPiece(Message):
    def __init__(self, exchange_id: int, text: str) -> None:
        super().__init__()
        self.exchange_id = exchange_id
        self.text = text


class AnswerDone(Message):
    def __init__(self, exchange_id: int, latency_ms: float, save_error: str | None) -> None:
        super().__init__()
        self.exchange_id = exchange_id
        self.latency_ms = latency_ms
        self.save_error = save_error


class AnswerFailed(Message):
    def __init__(self, exchange_id: int, message: str, hint: str | None) -> None:
        super().__init__()
        self.exchange_id = exchange_id
        self.message = message
        self.hint = hint


class HistoryLoaded(Message):
    def __init__(self, entries: list[HistoryEntry], error: str | None = None) -> None:
        super().__init__()
        self.entries = entries
        self.error = error


class ComparedAnswer(Message):
    """One backend's whole answer (or error) to a question asked in compare mode."""

    def __init__(
        self,
        comparison_id: int,
        backend: str,
        text: str = "",
        latency_ms: float | None = None,
        error: str | None = None,
    ) -> None:
        super().__init__()
        self.comparison_id = comparison_id
        self.backend = backend
        self.text = text
        self.latency_ms = latency_ms
        self.error = error
