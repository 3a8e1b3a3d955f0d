"""Errors a user can cause, each with the exit code the CLI maps it to and a hint saying what to do.

The CLI prints `error: <message>` plus the hint on one or two lines, never a traceback, for these.
Anything else is a bug and keeps its traceback.

Exit codes (documented in the README):
    0 ok, 1 backend/operation error, 2 usage or configuration, 3 authentication or permission,
    4 timeout, 130 interrupted.
"""

from __future__ import annotations


class QAConsoleError(Exception):
    """Base of every error a user can cause and fix.

    details: more lines worth showing above the error line (every problem of a refused archive,
    say), printed by the CLI as they are.
    """

    exit_code = 1

    def __init__(
        self, message: str, *, hint: str | None = None, details: tuple[str, ...] = ()
    ) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.details = details

    def __str__(self) -> str:
        return self.message


class UsageError(QAConsoleError):
    """Bad input: a wrong path, an empty question, a malformed file, an unknown name."""

    exit_code = 2


class ConfigError(UsageError):
    """A settings or plugins file that cannot be used as it is."""


class BackendError(QAConsoleError):
    """The backend or AWS answered with an error (4xx/5xx, model error, bad reply)."""

    exit_code = 1


class OperationError(QAConsoleError):
    """A pipeline step (train, package, upload, deploy, ...) failed; the message says why."""

    exit_code = 1


class AuthError(QAConsoleError):
    """Missing or wrong credentials, or a permission that is not granted."""

    exit_code = 3


class TimeoutError_(QAConsoleError):  # the builtin name TimeoutError is taken
    """The backend or AWS did not answer in time."""

    exit_code = 4


EXIT_OK = 0
EXIT_INTERRUPTED = 130
