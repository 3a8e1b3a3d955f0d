"""The Train screen: Train a model on a dataset and watch the loss."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.widgets import Static

from qa_console.tui.screens.base import OpsScreen


class TrainScreen(OpsScreen):
    def compose_body(self) -> ComposeResult:
        yield Static("Train a model on a dataset and watch the loss", id="train-placeholder")
