"""The IAM screen: Check the caller's and the execution role's permissions."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.widgets import Static

from qa_console.tui.screens.base import OpsScreen


class IamScreen(OpsScreen):
    def compose_body(self) -> ComposeResult:
        yield Static(
            "Check the caller's and the execution role's permissions", id="iam-placeholder"
        )
