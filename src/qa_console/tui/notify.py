"""Errors as notifications: the one place the TUI turns an exception into a one-line message.

A user-caused error (QAConsoleError) shows its message and its hint; anything else is a bug in
qa-console or a plugin, shown with its type so it can be reported, never as a crash screen.
"""

from __future__ import annotations

from textual.dom import DOMNode

from qa_console.errors import QAConsoleError


def one_line(message: str, hint: str | None) -> str:
    return f"{message} ({hint})" if hint else message


def describe(error: BaseException) -> str:
    if isinstance(error, QAConsoleError):
        return one_line(error.message, error.hint)
    return f"{type(error).__name__}: {error} (this is a bug: please report it)"


def notify_error(node: DOMNode, error: BaseException) -> None:
    node.app.notify(describe(error), severity="error", timeout=10)
