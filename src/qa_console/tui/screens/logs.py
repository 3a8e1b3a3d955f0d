"""The Logs screen: Follow any endpoint's CloudWatch logs."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.widgets import Static

from qa_console.tui.screens.base import OpsScreen


class LogsScreen(OpsScreen):
    def compose_body(self) -> ComposeResult:
        yield Static("Follow any endpoint's CloudWatch logs", id="logs-placeholder")
