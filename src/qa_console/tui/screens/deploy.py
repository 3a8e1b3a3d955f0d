"""The Deploy screen: Deploy a model to an endpoint and watch it come up."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.widgets import Static

from qa_console.tui.screens.base import OpsScreen


class DeployScreen(OpsScreen):
    def compose_body(self) -> ComposeResult:
        yield Static("Deploy a model to an endpoint and watch it come up", id="deploy-placeholder")
