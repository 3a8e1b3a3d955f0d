"""The Package screen: Package a model folder into model.tar.gz and upload it."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.widgets import Static

from qa_console.tui.screens.base import OpsScreen


class PackageScreen(OpsScreen):
    def compose_body(self) -> ComposeResult:
        yield Static(
            "Package a model folder into model.tar.gz and upload it", id="package-placeholder"
        )
