"""A labelled one-line input: the compact form rows the ops screens need to fit 80x24."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import Input, Label


class FormRow(Horizontal):
    """`label  [input]` on one line; the Input gets `input_id` so screens query it by name."""

    DEFAULT_CSS = """
    FormRow { height: 1; margin-bottom: 0; }
    FormRow Label { width: 8; color: $text-muted; }
    FormRow Input { width: 1fr; }
    """

    def __init__(self, label: str, input_id: str, value: str = "", placeholder: str = "") -> None:
        super().__init__()
        self._label = label
        self._input = Input(value, placeholder=placeholder, id=input_id, compact=True)

    def compose(self) -> ComposeResult:
        yield Label(self._label)
        yield self._input
