"""The contract every chat backend fulfils: ask, stream, health, describe.

A backend kind is a class; a backend *instance* is that class built with the options of one
`[backends.NAME]` table in plugins.toml. Options are declared once as `BackendOption`s so the
registry can validate them, the CLI can list them, and the TUI can build a form from them.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from qa_console.errors import ConfigError

MAX_QUESTION_CHARS = 2000


@dataclass(frozen=True)
class BackendOption:
    """One option a backend kind accepts in its plugins.toml table."""

    name: str
    help: str
    required: bool = False
    default: Any = None
    type: type = str
    secret: bool = False  # never printed (e.g. an API key's value)


@dataclass(frozen=True)
class Answer:
    text: str
    backend: str
    latency_ms: float
    extra: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Health:
    ok: bool
    detail: str
    latency_ms: float | None = None


class Backend(ABC):
    """Base class of every backend kind.

    Subclasses set `kind`, `description` and `options`, and implement `ask` and `health`.
    `stream` defaults to yielding the whole answer at once; backends that can stream override it.
    Constructors must be cheap and do no I/O: `backends list` may build them to describe them.
    """

    kind: ClassVar[str]
    description: ClassVar[str] = ""
    options: ClassVar[tuple[BackendOption, ...]] = ()
    supports_streaming: ClassVar[bool] = False

    def __init__(self, name: str, **options: Any) -> None:
        self.name = name
        self.settings = self.validate_options(options)

    @classmethod
    def validate_options(cls, options: Mapping[str, Any]) -> dict[str, Any]:
        """Check options against the declared ones; fill defaults. Raises ConfigError."""
        known = {option.name: option for option in cls.options}
        unknown = sorted(set(options) - set(known))
        if unknown:
            raise ConfigError(
                f"backend kind {cls.kind!r} has no option {unknown[0]!r}",
                hint=f"known options: {', '.join(sorted(known)) or 'none'}",
            )
        values: dict[str, Any] = {}
        for option in cls.options:
            if option.name in options:
                value = options[option.name]
                if option.type is float and isinstance(value, int):
                    value = float(value)
                if not isinstance(value, option.type):
                    raise ConfigError(
                        f"option {option.name!r} of kind {cls.kind!r} must be a "
                        f"{option.type.__name__}, not {type(value).__name__}"
                    )
                values[option.name] = value
            elif option.required:
                raise ConfigError(f"backend kind {cls.kind!r} needs option {option.name!r}")
            else:
                values[option.name] = option.default
        return values

    @abstractmethod
    def ask(self, question: str, parameters: Mapping[str, Any] | None = None) -> Answer:
        """Answer one question. Raises BackendError, AuthError or TimeoutError_."""

    def stream(self, question: str, parameters: Mapping[str, Any] | None = None) -> Iterator[str]:
        """Yield the answer in pieces as they are produced."""
        yield self.ask(question, parameters).text

    @abstractmethod
    def health(self) -> Health:
        """Check that the backend can answer, cheaply, without raising."""

    def describe(self) -> dict[str, Any]:
        """What this instance is, for listings: kind and options, secrets left out."""
        shown = {
            option.name: self.settings.get(option.name)
            for option in self.options
            if not option.secret
        }
        return {"name": self.name, "kind": self.kind, **shown}


def check_question(question: str) -> str:
    """Refuse questions no backend should be sent: empty or over-long. Returns it stripped."""
    from qa_console.errors import UsageError

    stripped = question.strip()
    if not stripped:
        raise UsageError(
            "the question is empty", hint='ask something, e.g. qa-console ask "Who is ...?"'
        )
    if len(stripped) > MAX_QUESTION_CHARS:
        raise UsageError(
            f"the question is {len(stripped)} characters long; the limit is {MAX_QUESTION_CHARS}",
            hint="shorten it",
        )
    return stripped


class Stopwatch:
    """Milliseconds since creation, for latency figures."""

    def __init__(self) -> None:
        self._start = time.perf_counter()

    @property
    def ms(self) -> float:
        return (time.perf_counter() - self._start) * 1000.0
