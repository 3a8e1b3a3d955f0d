"""Talking to backends, the same for `qa-console ask`, `backends check` and the TUI.

A ChatSession reads the plugins files once, resolves which backend instance answers (the one
named, else the `backend` setting, else the first declared), builds each instance once (a local
model loads once per session), asks or streams, times the answer and records it in the history
store. The faces only render what it returns.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from qa_console import registry
from qa_console.backends.base import Stopwatch, check_question
from qa_console.inference.model_handler import is_unknown_answer

if TYPE_CHECKING:
    from qa_console.backends.base import Backend


@dataclass(frozen=True)
class Reply:
    """One answered question."""

    question: str
    answer: str
    backend: str
    latency_ms: float
    extra: Mapping[str, Any] = field(default_factory=dict)
    save_error: str | None = None  # why the history row was not written (a warning)

    @property
    def known(self) -> bool:
        """False when the bot said it does not know (the abstention reply it was trained on)."""
        return not is_unknown_answer(self.answer)

    def to_dict(self) -> dict[str, Any]:
        return {
            "answer": self.answer,
            "backend": self.backend,
            "known": self.known,
            "latency_ms": round(self.latency_ms, 3),
            "question": self.question,
        }


@dataclass(frozen=True)
class HealthRow:
    """One instance's health check."""

    name: str
    kind: str
    ok: bool
    detail: str
    latency_ms: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "ok": self.ok,
            "detail": self.detail,
            "latency_ms": round(self.latency_ms, 3),
        }


class ChatSession:
    """The backends of one run: their specs (read once) and the instances built so far.

    settings: the effective settings; `backend` names the default instance, and the rest fill
    the options an instance leaves unset (target, region).
    """

    def __init__(
        self,
        settings: Mapping[str, str | None] | None = None,
        instances: Mapping[str, registry.InstanceSpec] | None = None,
    ) -> None:
        self.settings = dict(settings or {})
        self.instances = dict(registry.read_instances() if instances is None else instances)
        self._built: dict[str, Backend] = {}
        self._lock = threading.Lock()

    @property
    def names(self) -> list[str]:
        return list(self.instances)

    def resolve(self, name: str | None = None) -> str:
        """The instance that answers: `name`, else the `backend` setting, else the first declared.
        Raises ConfigError for an unknown name (naming the known ones) or when none is declared."""
        chosen = name or self.settings.get("backend") or registry.first_instance(self.instances)
        return registry.pick(self.instances, chosen).name

    def add_instance(self, name: str, kind: str, options: Mapping[str, Any], origin: str) -> None:
        """Declare an instance for this session only (the TUI's "chat with the model just
        trained / the endpoint just deployed"); it replaces one of the same name, built anew.
        origin: what declared it, shown where an instance's file would be."""
        from pathlib import Path

        with self._lock:
            self.instances[name] = registry.InstanceSpec(name, kind, dict(options), Path(origin), 0)
            self._built.pop(name, None)

    def backend(self, name: str) -> Backend:
        """The built instance `name`, built once per session."""
        with self._lock:
            if name not in self._built:
                spec = registry.pick(self.instances, name)
                self._built[name] = registry.build(spec, self.settings)
            return self._built[name]

    def ask(
        self,
        question: str,
        backend: str | None = None,
        parameters: Mapping[str, Any] | None = None,
    ) -> Reply:
        """Ask and wait for the whole answer."""
        text = check_question(question)
        name = self.resolve(backend)
        answer = self.backend(name).ask(text, parameters)
        return self._record(text, answer.text, name, answer.latency_ms, parameters, answer.extra)

    def stream(
        self,
        question: str,
        on_piece: Callable[[str], None],
        backend: str | None = None,
        parameters: Mapping[str, Any] | None = None,
        cancelled: Callable[[], bool] = lambda: False,
    ) -> Reply | None:
        """Ask and hand each piece of the answer to `on_piece` as it arrives; None when
        `cancelled()` turned true (nothing is recorded then)."""
        text = check_question(question)
        name = self.resolve(backend)
        instance = self.backend(name)
        watch = Stopwatch()
        pieces: list[str] = []
        for piece in instance.stream(text, parameters):
            if cancelled():
                return None
            pieces.append(piece)
            on_piece(piece)
        if cancelled():
            return None
        return self._record(text, "".join(pieces), name, watch.ms, parameters, {})

    def _record(
        self,
        question: str,
        answer: str,
        backend: str,
        latency_ms: float,
        parameters: Mapping[str, Any] | None,
        extra: Mapping[str, Any],
    ) -> Reply:
        from qa_console.store import save_answer

        save_error = save_answer(question, answer, backend, latency_ms, parameters)
        return Reply(question, answer, backend, latency_ms, dict(extra), save_error)

    def check(self, names: list[str] | None = None) -> list[HealthRow]:
        """Each instance's health check and round-trip time; a broken plugin is one unhealthy
        row, not a crash. Raises ConfigError only for a name that is not declared."""
        specs = [registry.pick(self.instances, name) for name in names or self.names]
        return [self._health(spec) for spec in specs]

    def _health(self, spec: registry.InstanceSpec) -> HealthRow:
        watch = Stopwatch()
        try:
            health = self.backend(spec.name).health()
            ok, detail, latency = health.ok, health.detail, health.latency_ms
        except Exception as error:  # a plugin may fail in any way; report it, keep checking
            detail = getattr(error, "message", None) or f"{type(error).__name__}: {error}"
            ok, latency = False, None
        return HealthRow(
            spec.name, spec.kind, ok, detail, latency if latency is not None else watch.ms
        )
