"""The one-line header of every screen: the screens by key, then where the app points
(target, region) and which backend the chat asks."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

# (mode, title, key): the app's screens in the order the header shows them.
SCREENS: tuple[tuple[str, str, str], ...] = (
    ("chat", "Chat", "f1"),
    ("train", "Train", "f2"),
    ("package", "Package", "f3"),
    ("iam", "IAM", "f4"),
    ("deploy", "Deploy", "f5"),
    ("logs", "Logs", "f6"),
)


class OpsHeader(Static):
    """Two lines: the screens by key (the current one highlighted), then the target, region and
    the chat's backend. Redraws itself when the app's mode or active backend changes."""

    DEFAULT_CSS = """
    OpsHeader { dock: top; height: 2; background: $panel; color: $text; }
    """

    def on_mount(self) -> None:
        self.watch(self.app, "current_mode", self._redraw, init=False)
        self.watch(self.app, "active_backend", self._redraw, init=False)
        self._redraw()

    def _redraw(self, _value: object = None) -> None:
        app = self.app
        tabs = Text()
        for mode, title, key in SCREENS:
            current = app.current_mode == mode
            tabs.append(f" {key.upper()} ", style="bold" if current else "dim")
            tabs.append(f"{title} ", style="reverse bold" if current else "")
        place = Text(" target ", style="dim")
        place.append(getattr(app, "target", "local"), style="bold")
        place.append("  region ", style="dim")
        place.append(getattr(app, "region", "us-east-1"), style="bold")
        place.append("  backend ", style="dim")
        place.append(getattr(app, "active_backend", None) or "none", style="bold")
        self.update(Text("\n").join([tabs, place]))
