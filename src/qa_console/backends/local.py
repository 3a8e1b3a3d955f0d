"""The local backend: answer in-process with transformers from a model folder or a model.tar.gz.

The model is what `qa-console train` writes (or any T5-style seq2seq folder) and is asked exactly
as the deployed handler asks it: "question: <question>", no context. torch and transformers are
imported on first use, not at import, so `backends list` and the CLI stay fast; the model is loaded
once per backend instance and reused. A model.tar.gz is extracted once into the user's cache,
keyed by its sha256, with the same safety checks as the packaging step expects. Small models
(the tiny T5) generate with one torch thread: on two busy cores a second thread makes each answer
several times slower, not faster (17 ms vs 110 ms per answer, measured).

Options (plugins.toml): model (required), max_new_tokens, num_beams, do_sample, temperature, top_p.
Each can be overridden per question through `parameters`.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, ClassVar

from qa_console.backends.base import (
    Answer,
    Backend,
    BackendOption,
    Health,
    Stopwatch,
    check_question,
)
from qa_console.errors import BackendError, QAConsoleError, UsageError

GENERATION_OPTIONS: dict[str, type] = {
    "max_new_tokens": int,
    "num_beams": int,
    "do_sample": bool,
    "temperature": float,
    "top_p": float,
}
STREAM_TIMEOUT_S = 120.0  # longest wait for the next piece of a streamed answer


class LocalBackend(Backend):
    kind: ClassVar[str] = "local"
    description: ClassVar[str] = "a model folder or model.tar.gz answered in-process (transformers)"
    supports_streaming: ClassVar[bool] = True
    options: ClassVar[tuple[BackendOption, ...]] = (
        BackendOption("model", "model folder or model.tar.gz", required=True),
        BackendOption("max_new_tokens", "longest answer, in tokens", default=64, type=int),
        BackendOption("num_beams", "beam search width (1 = greedy)", default=1, type=int),
        BackendOption(
            "do_sample", "sample instead of picking the likeliest token", default=False, type=bool
        ),
        BackendOption(
            "temperature", "sampling temperature (with do_sample)", default=1.0, type=float
        ),
        BackendOption("top_p", "nucleus sampling mass (with do_sample)", default=1.0, type=float),
    )

    def __init__(self, name: str, **options: Any) -> None:
        super().__init__(name, **options)
        self._lock = threading.Lock()
        self._model: Any = None
        self._tokenizer: Any = None
        self._folder: Path | None = None
        self._threads: int | None = None

    # --- loading ---------------------------------------------------------------------------

    def model_folder(self) -> Path:
        """The folder the model loads from (a model.tar.gz is extracted to the cache first)."""
        from qa_console.ops.model_files import check_model_folder
        from qa_console.ops.packaging.extract import extract_model_archive, model_cache_dir

        if self._folder is not None:
            return self._folder
        path = Path(str(self.settings["model"])).expanduser()
        if not path.exists():
            raise UsageError(
                f"backend {self.name!r}: no model at {path}",
                hint="train one with `qa-console train --base-model tiny`, or point the "
                "backend's `model` option at a model folder or model.tar.gz",
            )
        if path.is_file():
            path = extract_model_archive(path, model_cache_dir())
        self._folder = check_model_folder(path).path
        return self._folder

    def _load(self) -> tuple[Any, Any]:
        with self._lock:
            if self._model is None:
                folder = self.model_folder()
                from qa_console.ops.training.evaluate import load_model

                try:
                    model, tokenizer = load_model(folder)
                except UsageError as error:
                    raise UsageError(
                        f"backend {self.name!r}: {error.message}", hint=error.hint
                    ) from None
                from qa_console.ops.model_files import threads_for

                self._threads = threads_for(sum(p.numel() for p in model.parameters()))
                self._model, self._tokenizer = model, tokenizer
            return self._model, self._tokenizer

    # --- answering -------------------------------------------------------------------------

    def generation_options(self, parameters: Mapping[str, Any] | None) -> dict[str, Any]:
        """The backend's generation options, overridden by per-question `parameters`."""
        values = {name: self.settings[name] for name in GENERATION_OPTIONS}
        for key, value in (parameters or {}).items():
            wanted = GENERATION_OPTIONS.get(key)
            if wanted is None:
                raise UsageError(
                    f"the local backend has no parameter {key!r}",
                    hint=f"known parameters: {', '.join(GENERATION_OPTIONS)}",
                )
            if wanted is float and isinstance(value, int) and not isinstance(value, bool):
                value = float(value)
            if not isinstance(value, wanted) or (wanted is int and isinstance(value, bool)):
                raise UsageError(f"parameter {key!r} must be a {wanted.__name__}, not {value!r}")
            values[key] = value
        if values["max_new_tokens"] < 1 or values["num_beams"] < 1:
            raise UsageError("max_new_tokens and num_beams must be at least 1")
        if not values["do_sample"]:
            # Greedy or beam search ignores these; passing them makes transformers warn.
            values.pop("temperature")
            values.pop("top_p")
        elif values["temperature"] <= 0 or not 0 < values["top_p"] <= 1:
            raise UsageError("sampling needs temperature > 0 and 0 < top_p <= 1")
        return values

    def _inputs(self, question: str) -> Any:
        from qa_console.ops.training.data import format_input

        _, tokenizer = self._load()
        return tokenizer(
            format_input(check_question(question)),
            return_tensors="pt",
            truncation=True,
            max_length=512,
        )

    def ask(self, question: str, parameters: Mapping[str, Any] | None = None) -> Answer:
        """Answer one question. latency_ms is the answer's own time; loading the model on the
        first question is reported apart, as extra["load_ms"]."""
        generation = self.generation_options(parameters)
        loading = Stopwatch()
        first = self._model is None
        model, tokenizer = self._load()
        load_ms = loading.ms if first else None
        clock = Stopwatch()
        encoded = self._inputs(question)
        import torch

        from qa_console.ops.model_files import torch_threads

        try:
            with torch_threads(self._threads), torch.inference_mode():
                output = model.generate(**encoded, **generation)
        except (RuntimeError, ValueError) as error:
            raise BackendError(f"backend {self.name!r}: generation failed: {error}") from None
        text = tokenizer.decode(output[0], skip_special_tokens=True).strip()
        extra: dict[str, Any] = {"model": str(self._folder), "tokens": int(output.shape[-1])}
        if load_ms is not None:
            extra["load_ms"] = round(load_ms, 1)
        return Answer(text=text, backend=self.name, latency_ms=clock.ms, extra=extra)

    def stream(self, question: str, parameters: Mapping[str, Any] | None = None) -> Iterator[str]:
        """Yield the answer's text piece by piece as generate() produces tokens."""
        generation = self.generation_options(parameters)
        model, tokenizer = self._load()
        encoded = self._inputs(question)
        import torch
        from transformers import TextIteratorStreamer

        streamer = TextIteratorStreamer(
            tokenizer, skip_prompt=True, skip_special_tokens=True, timeout=STREAM_TIMEOUT_S
        )
        failure: list[BaseException] = []

        from qa_console.ops.model_files import torch_threads

        def run() -> None:
            try:
                with torch_threads(self._threads), torch.inference_mode():
                    model.generate(**encoded, **generation, streamer=streamer)
            except BaseException as error:  # reported to the caller below
                failure.append(error)
                streamer.end()

        worker = threading.Thread(target=run, name=f"generate-{self.name}", daemon=True)
        worker.start()
        first = True
        try:
            for piece in streamer:
                if first:
                    piece = piece.lstrip()
                    first = not piece
                if piece:
                    yield piece
        finally:
            worker.join(STREAM_TIMEOUT_S)
        if failure:
            raise BackendError(f"backend {self.name!r}: generation failed: {failure[0]}")

    def health(self) -> Health:
        clock = Stopwatch()
        try:
            model, _ = self._load()
        except QAConsoleError as error:
            return Health(ok=False, detail=error.message, latency_ms=clock.ms)
        parameters = sum(p.numel() for p in model.parameters())
        architecture = type(model).__name__
        return Health(
            ok=True,
            detail=f"{architecture}, {parameters / 1e6:.1f} M parameters, from {self._folder}",
            latency_ms=clock.ms,
        )
