"""Choosing the backends that compare mode asks side by side (two or more; fewer turns it off)."""

from __future__ import annotations

from typing import ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Label, SelectionList


class CompareDialog(ModalScreen[list[str] | None]):
    DEFAULT_CSS = """
    CompareDialog { align: center middle; }
    CompareDialog > Vertical {
        width: 60; height: auto; max-height: 80%;
        border: thick $primary; background: $surface; padding: 0 1;
    }
    CompareDialog SelectionList { height: auto; max-height: 14; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "dismiss_none", "Cancel"),
        Binding("enter", "confirm", "Compare", priority=True),
    ]

    def __init__(self, names: list[str], chosen: list[str]) -> None:
        super().__init__()
        self.names = names
        self.chosen = chosen

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label("Compare backends: space ticks one, Enter starts (fewer than 2: off)")
            yield SelectionList[str](
                *[(name, name, name in self.chosen) for name in self.names], id="compare-backends"
            )

    def on_mount(self) -> None:
        self.query_one(SelectionList).focus()

    @on(SelectionList.SelectedChanged)
    def _changed(self) -> None:
        self.chosen = list(self.query_one(SelectionList).selected)

    def action_confirm(self) -> None:
        selected = set(self.query_one(SelectionList).selected)
        self.dismiss([name for name in self.names if name in selected])

    def action_dismiss_none(self) -> None:
        self.dismiss(None)
