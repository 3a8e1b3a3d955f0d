"""Reading a number from a form field, the one way every screen's form does it."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from qa_console.errors import UsageError

Number = TypeVar("Number", int, float)


def form_number(text: str, label: str, kind: Callable[[str], Number]) -> Number | None:
    """The field's number, None when it is blank (the default applies). A leading "$" is
    allowed (budgets). Raises UsageError naming the field for anything else."""
    text = text.strip().lstrip("$")
    if not text:
        return None
    try:
        return kind(text)
    except ValueError:
        wanted = "a whole number" if kind is int else "a number"
        raise UsageError(f"{label} must be {wanted}, not {text!r}") from None
