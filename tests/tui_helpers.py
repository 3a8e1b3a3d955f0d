"""What every TUI test needs: waiting for the app to reach a state, and catching notifications.

Workers run over real sockets and threads, so tests wait for a condition (bounded) rather than
for a fixed time. Sizes: SIZE is roomy; SMALL is the 80x24 terminal every screen must fit.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from textual.message import Message
from textual.notifications import Notify
from textual.pilot import Pilot

SIZE = (120, 40)
SMALL = (80, 24)


async def wait_until(
    pilot: Pilot[None], condition: Callable[[], bool], timeout_s: float = 10
) -> None:
    """Let the app run until `condition` holds (the worker answers over a real socket)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not condition():
        if loop.time() > deadline:
            raise AssertionError("the app did not reach the expected state in time")
        await pilot.pause(0.05)


class Notifications(list[str]):
    """Every notification's text, in order, caught through run_test's public message hook (the
    app's own collection drops a notification once its toast times out)."""

    def hook(self, message: Message) -> None:
        if isinstance(message, Notify):
            self.append(message.notification.message)


def steady_cursors(pilot: Pilot[None]) -> None:
    """Stop every text cursor on the screen blinking: a snapshot taken mid-blink differs."""
    from textual.widgets import Input

    for field in pilot.app.screen.query(Input):
        field.cursor_blink = False
