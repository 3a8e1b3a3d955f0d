"""One question and its answer in the chat log; the answer grows as pieces arrive."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Markdown, Static

from qa_console.tui.transcript import Exchange


class ExchangeView(Vertical):
    """Shows an `Exchange`: the question, the answer as Markdown, and a status line
    (backend and latency, or why it stopped)."""

    DEFAULT_CSS = """
    ExchangeView { height: auto; margin: 0 0 1 0; }
    ExchangeView > .question { color: $accent; text-style: bold; }
    ExchangeView > Markdown { margin: 0; padding: 0 1; }
    ExchangeView > .status { color: $text-muted; }
    ExchangeView.-failed > .status { color: $error; }
    """

    def __init__(self, exchange: Exchange) -> None:
        super().__init__(id=f"exchange-{exchange.id}")
        self.exchange = exchange

    def compose(self) -> ComposeResult:
        yield Static(f"Q: {self.exchange.question}", classes="question", markup=False)
        yield Markdown(self.exchange.answer)
        yield Static(self.exchange.status_line(), classes="status", markup=False)

    async def append(self, piece: str) -> None:
        await self.query_one(Markdown).append(piece)

    def show_status(self) -> None:
        """Redraw the status line from the exchange (after it finished, failed or was cancelled)."""
        self.set_class(self.exchange.error is not None, "-failed")
        self.query_one(".status", Static).update(self.exchange.status_line())
