"""Fine-tune a T5-style model on question/answer data with transformers' Seq2SeqTrainer.

`train(TrainConfig(...), progress=...) -> TrainResult` is the whole training step: load and check
the data (ops.data), get the base model (a hub id, a local folder, or "tiny" built offline), train
with checkpoints so an interrupted run resumes, save a folder that `from_pretrained` loads in a
fresh process, score it (ops.evaluate) and write a training record and a loss curve beside it.
The CLI, the TUI and the SageMaker entry point all call this one function.

Why both input forms: the deployed bot is asked bare questions, with no passage to read, so a model
trained only on "question: Q context: C" learns to copy from the context and then has nothing to
copy from. By default a pre-trained base model sees every training row both with its context and
without (`input_format="both"`); the headline score is always the bare-question one. The tiny
model defaults to bare questions only ("question"): starting from random weights it cannot learn
to read a passage in minutes, it can only learn the facts by heart, and the passages make every
step several times longer (see docs/benchmarks.md, "Training"). `input_format` overrides either.

Output folder layout:
    config.json generation_config.json model.safetensors tokenizer.json tokenizer_config.json
    training_record.json   what was trained on what, how, the scores, library versions, wall time
    loss_curve.png         training and validation loss per step
    predictions/           per-example predictions of the final evaluation (JSONL)
    checkpoints/           only while a run is unfinished: what --resume continues from
"""

from __future__ import annotations

import json
import math
import os
import platform
import shutil
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from qa_console.errors import QAConsoleError, UsageError
from qa_console.events import ProgressCallback, ProgressEvent, ignore_progress
from qa_console.ops.model_files import RECORD_FILE, threads_for, torch_threads
from qa_console.ops.training.tiny_model import TINY

DEFAULT_BASE_MODEL = "google/flan-t5-base"
INPUT_FORMATS = ("both", "context", "question")
CHECKPOINT_DIR = "checkpoints"
RUN_FILE = "run.json"
LOSS_CURVE_FILE = "loss_curve.png"
OFFLINE_HINT = "use --base-model tiny (offline, built from the data) or a local model folder"

# Defaults per kind of base model. The tiny T5 starts from random weights and must learn the
# facts by heart, which takes a high learning rate and many passes; a pre-trained Flan-T5 needs
# the usual small rate and a few epochs.
TINY_DEFAULTS: dict[str, Any] = {
    "input_format": "question",
    "learning_rate": 2e-3,
    "batch_size": 32,
    "warmup_ratio": 0.05,
}
# The tiny model's epochs: 11 passes (891 steps of 32 on the biography set's 2,580 training rows;
# measured in docs/benchmarks.md, "Training"), and at least TINY_MIN_STEPS optimizer steps, so a
# small dataset gets more passes: memorising takes updates, not just passes. Fewer steps at a
# higher rate (592 at 3e-3) lost 3 points on test and did not reach 100% on train.
TINY_EPOCHS = 11.0
TINY_MIN_STEPS = 200
PRETRAINED_DEFAULTS: dict[str, Any] = {
    "input_format": "both",
    "learning_rate": 3e-4,
    "batch_size": 8,
    "epochs": 3.0,
    "warmup_ratio": 0.05,
}


@dataclass(frozen=True)
class TrainConfig:
    """Everything a training run depends on. None means "the default for this base model", and,
    with `resume`, "whatever the interrupted run used"."""

    base_model: str | None = None  # "tiny", a hub id (default google/flan-t5-base), or a folder
    data: str | None = None  # file, folder or hub id; None = the shipped biography dataset
    question_column: str | None = None  # default "question"
    answer_column: str | None = None  # default "answer"
    context_column: str | None = None  # default: "context" when the data has it
    output_dir: str | Path = "artifacts/model"
    input_format: str | None = None  # "both" (tiny: "question"), "context" or "question"
    epochs: float | None = None
    max_steps: int | None = None  # overrides epochs when set
    learning_rate: float | None = None
    batch_size: int | None = None
    warmup_ratio: float | None = None
    max_source_length: int | None = None
    max_target_length: int | None = None
    eval_steps: int | None = None  # validation loss and checkpoint every N steps
    logging_steps: int | None = None
    seed: int | None = None
    resume: bool = False
    evaluate_splits: tuple[str, ...] = ("train", "validation", "test", "unknown")
    keep_checkpoints: bool = False
    threads: int | None = None  # torch intra-op threads; None = 1 for small models, else torch's


# Where the data is and which columns to read: resolved wherever the data is loaded (for a
# SageMaker job that is this machine, which uploads the rows with standard column names).
DATA_FIELDS = ("data", "question_column", "answer_column", "context_column")
# How the model is trained: also the hyper-parameters a SageMaker job passes to its entry point.
TRAINING_FIELDS = (
    "base_model",
    "input_format",
    "epochs",
    "max_steps",
    "learning_rate",
    "batch_size",
    "warmup_ratio",
    "max_source_length",
    "max_target_length",
    "eval_steps",
    "logging_steps",
    "seed",
)
# The fields that define a run: a resumed run must agree with the interrupted one on all of them.
RUN_FIELDS = DATA_FIELDS + TRAINING_FIELDS


class TrainingStopped(QAConsoleError):
    """The caller's `should_stop` asked the run to end early. A checkpoint of the step reached
    is saved first, so `--resume` (same output folder) continues the run from there."""

    exit_code = 130

    def __init__(self, step: int, output_dir: Path) -> None:
        super().__init__(
            f"training stopped at step {step}",
            hint=f"train again with --resume and --output {output_dir} to continue",
        )
        self.step = step
        self.output_dir = output_dir


@dataclass(frozen=True)
class TrainResult:
    """What a finished run produced and how well the model answers."""

    output_dir: Path
    base_model: str
    steps: int
    epochs: float
    train_examples: int
    wall_time_s: float
    train_time_s: float
    samples_per_second: float
    final_loss: float | None
    metrics: dict[str, dict[str, float]]
    record_path: Path
    loss_curve_path: Path | None
    resumed_from_step: int | None
    parameters: int
    hyperparameters: dict[str, Any] = field(default_factory=dict)
    # Per split, how the answers missed (ops.confusion outcomes -> counts).
    confusion: dict[str, dict[str, int]] = field(default_factory=dict)

    @property
    def headline(self) -> dict[str, float]:
        """Exact match and F1 on bare validation questions (what the deployed bot is asked)."""
        return self.metrics.get("validation", {})

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        for key in ("output_dir", "record_path", "loss_curve_path"):
            data[key] = str(data[key]) if data[key] is not None else None
        return data


def train(
    config: TrainConfig,
    progress: ProgressCallback = ignore_progress,
    should_stop: Callable[[], bool] | None = None,
) -> TrainResult:
    """Run (or, with config.resume, continue) a training run. See the module docstring.

    should_stop: asked after every optimizer step (from the training thread; must be cheap);
    when it returns True the run saves a checkpoint and raises TrainingStopped. This is how a UI
    cancels: a thread cannot be interrupted, but the loop can be asked to end between steps."""
    started = time.perf_counter()
    output_dir = Path(config.output_dir).expanduser().resolve()
    checkpoint_dir = output_dir / CHECKPOINT_DIR
    config = replace(config, output_dir=output_dir, data=_absolute_if_local(config.data))
    config, resume_from = _settle_config(config, output_dir, checkpoint_dir)
    if resume_from is None:
        check_output_dir(output_dir)
    _quiet_transformers()

    dataset = load_training_data(config, progress)
    data_source = config.data or str(_shipped_data())
    saved_run = _read_run(checkpoint_dir) if resume_from else None
    if saved_run is not None and saved_run.get("data_fingerprint") != dataset.fingerprint:
        raise UsageError(
            f"the data at {data_source} changed since the interrupted run started",
            hint="train again without --resume to start over on the new data",
        )

    progress(ProgressEvent("model", f"preparing base model {config.base_model}"))
    if resume_from is not None:
        model, tokenizer = _load_pretrained(resume_from, local=True)
    else:
        model, tokenizer = load_base_model(
            str(config.base_model), texts=_texts(dataset), seed=_int(config.seed)
        )
    parameters = sum(p.numel() for p in model.parameters())
    progress(
        ProgressEvent(
            "model", f"{config.base_model}: {parameters / 1e6:.2f} M parameters", done=True
        )
    )
    with torch_threads(config.threads or threads_for(parameters)):
        return _run(
            config,
            model,
            tokenizer,
            dataset,
            data_source,
            resume_from,
            parameters,
            started,
            progress,
            should_stop or _never,
        )


def _never() -> bool:
    return False


def _run(
    config: TrainConfig,
    model: Any,
    tokenizer: Any,
    dataset: Any,
    data_source: str,
    resume_from: Path | None,
    parameters: int,
    started: float,
    progress: ProgressCallback,
    should_stop: Callable[[], bool],
) -> TrainResult:
    """Encode, train, save, score and record (the part that runs under the thread setting)."""
    output_dir = Path(config.output_dir).expanduser().resolve()
    checkpoint_dir = output_dir / CHECKPOINT_DIR

    train_rows = _training_pairs(dataset.train, str(config.input_format))
    eval_rows = _training_pairs(dataset.validation, "question")
    if config.epochs is None and config.max_steps is None:
        config = replace(config, epochs=tiny_epochs(len(train_rows), _int(config.batch_size)))
    source_len, target_len = _lengths(config, tokenizer, train_rows)
    train_set = _encode(tokenizer, train_rows, source_len, target_len)
    eval_set = _encode(tokenizer, eval_rows, source_len, target_len) if eval_rows else None

    if resume_from is None:
        _prepare_output(output_dir, checkpoint_dir)
        _write_run(checkpoint_dir, config, dataset.fingerprint)

    trainer = _make_trainer(
        config,
        model,
        tokenizer,
        train_set,
        eval_set,
        checkpoint_dir,
        target_len,
        progress,
        should_stop,
    )
    train_started = time.perf_counter()
    output = trainer.train(resume_from_checkpoint=str(resume_from) if resume_from else None)
    train_time = time.perf_counter() - train_started
    state = trainer.state
    if state.global_step < state.max_steps and should_stop():
        raise TrainingStopped(state.global_step, output_dir)
    progress(
        ProgressEvent(
            "train",
            f"trained {state.global_step} steps",
            state.global_step,
            state.max_steps,
            "steps",
            metrics={"loss": float(output.training_loss)},
            done=True,
        )
    )

    _save_model(trainer, tokenizer, output_dir, target_len)
    metrics, confusion = _final_evaluation(
        config, trainer.model, tokenizer, dataset, output_dir, progress
    )
    loss_curve = write_loss_curve(state.log_history, output_dir / LOSS_CURVE_FILE)
    steps_run = state.global_step - (_checkpoint_step(resume_from) if resume_from else 0)
    samples_per_second = steps_run * _int(config.batch_size) / train_time if train_time else 0.0
    result = TrainResult(
        output_dir=output_dir,
        base_model=str(config.base_model),
        steps=state.global_step,
        epochs=round(float(state.epoch or 0.0), 3),
        train_examples=len(train_set),
        wall_time_s=round(time.perf_counter() - started, 2),
        train_time_s=round(train_time, 2),
        samples_per_second=round(samples_per_second, 2),
        final_loss=_last_loss(state.log_history),
        metrics=metrics,
        record_path=output_dir / RECORD_FILE,
        loss_curve_path=loss_curve,
        resumed_from_step=_checkpoint_step(resume_from) if resume_from else None,
        parameters=parameters,
        hyperparameters=_hyperparameters(config, source_len, target_len),
        confusion=confusion,
    )
    _write_record(result, config, dataset, data_source, state.log_history)
    if not config.keep_checkpoints:
        shutil.rmtree(checkpoint_dir, ignore_errors=True)
    _make_readable(output_dir)
    return result


# --- configuration -----------------------------------------------------------------------------


def _settle_config(
    config: TrainConfig, output_dir: Path, checkpoint_dir: Path
) -> tuple[TrainConfig, Path | None]:
    """Fill defaults (or, on resume, the interrupted run's settings) and validate them."""
    resume_from: Path | None = None
    if config.resume:
        resume_from = last_checkpoint(checkpoint_dir)
        if resume_from is None:
            raise UsageError(
                f"there is no interrupted run to resume in {output_dir}",
                hint="train without --resume to start one",
            )
        saved = _read_run(checkpoint_dir) or {}
        changes: dict[str, Any] = {}
        for name in RUN_FIELDS:
            given, before = getattr(config, name), saved.get(name)
            if (
                given is not None
                and before is not None
                and given != before
                and not (name == "data" and _same_path(given, before))
            ):
                raise UsageError(
                    f"--resume continues the interrupted run, which used {name}={before!r}, "
                    f"not {given!r}",
                    hint="drop that option to resume, or train without --resume to start over",
                )
            if given is None:
                changes[name] = before
        config = replace(config, **changes)
    config = _with_defaults(config)
    _validate(config)
    return config, resume_from


def resolve_config(config: TrainConfig) -> TrainConfig:
    """The config with every default filled in for its base model, validated (no resume)."""
    resolved = _with_defaults(config)
    _validate(resolved)
    return resolved


def _with_defaults(config: TrainConfig) -> TrainConfig:
    base = config.base_model or DEFAULT_BASE_MODEL
    defaults = TINY_DEFAULTS if base == TINY else PRETRAINED_DEFAULTS
    values: dict[str, Any] = {"base_model": base}
    for name, value in defaults.items():
        if getattr(config, name) is None:
            values[name] = value
    if config.seed is None:
        values["seed"] = 42
    if config.question_column is None:
        values["question_column"] = "question"
    if config.answer_column is None:
        values["answer_column"] = "answer"
    if config.max_target_length is None:
        values["max_target_length"] = 64
    return replace(config, **values)


def tiny_epochs(examples: int, batch_size: int) -> float:
    """TINY_EPOCHS, or more when that would be fewer than TINY_MIN_STEPS steps."""
    steps_per_epoch = max(1, math.ceil(examples / batch_size))
    return max(TINY_EPOCHS, float(math.ceil(TINY_MIN_STEPS / steps_per_epoch)))


def _validate(config: TrainConfig) -> None:
    if config.input_format not in INPUT_FORMATS:
        raise UsageError(
            f"unknown input format {config.input_format!r}",
            hint=f"use one of: {', '.join(INPUT_FORMATS)}",
        )
    checks: list[tuple[str, Any, Callable[[Any], bool], str]] = [
        ("epochs", config.epochs, lambda v: v > 0, "a positive number"),
        ("max_steps", config.max_steps, lambda v: v > 0, "a positive whole number"),
        ("learning_rate", config.learning_rate, lambda v: 0 < v < 1, "between 0 and 1"),
        ("batch_size", config.batch_size, lambda v: v > 0, "a positive whole number"),
        ("warmup_ratio", config.warmup_ratio, lambda v: 0 <= v < 1, "in [0, 1)"),
        ("eval_steps", config.eval_steps, lambda v: v > 0, "a positive whole number"),
        ("max_source_length", config.max_source_length, lambda v: v >= 8, "at least 8"),
        ("max_target_length", config.max_target_length, lambda v: v >= 2, "at least 2"),
    ]
    for name, value, ok, wanted in checks:
        if value is not None and not ok(value):
            flag = "--" + name.replace("_", "-")
            raise UsageError(f"{flag} must be {wanted}, not {value}")


def _same_path(a: str, b: str) -> bool:
    try:
        return Path(a).expanduser().resolve() == Path(b).expanduser().resolve()
    except OSError:
        return False


def _int(value: Any) -> int:
    return int(value)


# --- data --------------------------------------------------------------------------------------


def _absolute_if_local(data: str | None) -> str | None:
    """A local data path made absolute, so a record or a resume means the same from anywhere."""
    if data is None:
        return None
    path = Path(data).expanduser()
    return str(path.resolve()) if path.exists() else data


def _shipped_data() -> Path:
    from qa_console.ops.training.data import biography_dataset_path

    return biography_dataset_path()


def load_training_data(config: TrainConfig, progress: ProgressCallback = ignore_progress) -> Any:
    """The QADataset a run trains on (config.data, else the shipped biography set)."""
    from qa_console.ops.training.data import load_qa_dataset

    source = config.data or str(_shipped_data())
    progress(ProgressEvent("data", f"loading {source}"))
    dataset = load_qa_dataset(
        source,
        question_column=config.question_column or "question",
        answer_column=config.answer_column or "answer",
        context_column=config.context_column,
        seed=_int(config.seed if config.seed is not None else 42),
    )
    report = dataset.report
    kept = report.rows_kept
    progress(
        ProgressEvent(
            "data",
            f"train {kept.get('train', 0)}, validation {kept.get('validation', 0)}, "
            f"test {kept.get('test', 0)}"
            + (f", unknown {kept['unknown']}" if "unknown" in kept else "")
            + " rows"
            + (f"; dropped {report.total_dropped}" if report.total_dropped else ""),
            done=True,
        )
    )
    return dataset


def _texts(dataset: Any) -> list[str]:
    """What the tiny model's tokenizer learns its pieces from: every input and answer in train,
    except the questions it must abstain on. Left out, an invented name in training is cut into
    the same unfamiliar fragments as one the model first meets at answer time, so abstaining is
    learnt from how a name looks, not from one whole piece per made-up name."""
    from qa_console.inference.model_handler import UNKNOWN_ANSWER, is_unknown_answer
    from qa_console.ops.training.data import format_input

    texts: list[str] = [UNKNOWN_ANSWER]
    for row in dataset.train:
        if not is_unknown_answer(row.answer):
            texts.extend((format_input(row.question, row.context), row.answer))
    return texts


def _training_pairs(rows: Iterable[Any], input_format: str) -> list[tuple[str, str]]:
    """(input text, answer) pairs: each row with its context, without, or both."""
    from qa_console.ops.training.data import format_input

    pairs: list[tuple[str, str]] = []
    for row in rows:
        if input_format in ("both", "context") and row.context:
            pairs.append((format_input(row.question, row.context), row.answer))
        if input_format in ("both", "question") or not row.context:
            pairs.append((format_input(row.question), row.answer))
    return pairs


def _lengths(config: TrainConfig, tokenizer: Any, pairs: list[tuple[str, str]]) -> tuple[int, int]:
    """Token limits: as given, else the longest input (at most 512) and the target default."""
    if config.max_source_length is not None:
        return config.max_source_length, _int(config.max_target_length)
    longest = max((len(tokenizer(text).input_ids) for text, _ in pairs), default=8)
    return min(512, max(8, longest)), _int(config.max_target_length)


def _encode(tokenizer: Any, pairs: list[tuple[str, str]], source_len: int, target_len: int) -> Any:
    from datasets import Dataset

    inputs = [text for text, _ in pairs]
    answers = [answer for _, answer in pairs]
    encoded = tokenizer(inputs, max_length=source_len, truncation=True)
    labels = tokenizer(text_target=answers, max_length=target_len, truncation=True)
    return Dataset.from_dict(
        {
            "input_ids": encoded["input_ids"],
            "attention_mask": encoded["attention_mask"],
            "labels": labels["input_ids"],
        }
    )


# --- the base model ----------------------------------------------------------------------------


def load_base_model(base_model: str, texts: Iterable[str] = (), seed: int = 42) -> tuple[Any, Any]:
    """(model, tokenizer) for "tiny", a local folder, or a hub id (from cache, else downloaded).

    Never hangs offline: with HF_HUB_OFFLINE set, or when the hub does not answer a TCP connect
    within a few seconds, a hub id that is not in the local cache is a UsageError at once.
    """
    if base_model == TINY:
        from qa_console.ops.training.tiny_model import build_tiny_model

        return build_tiny_model(texts, seed=seed)
    path = Path(base_model).expanduser()
    if path.exists() or base_model.startswith((".", "/", "~")):
        from qa_console.ops.model_files import check_model_folder

        return _load_pretrained(check_model_folder(path).path, local=True)
    return _load_from_hub(base_model)


def _load_from_hub(model_id: str) -> tuple[Any, Any]:
    try:
        return _load_pretrained(model_id, local=True)
    except OSError:
        pass  # not in the local cache
    from qa_console.ops.training import hub

    variable = hub.switched_off("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
    if variable:
        raise UsageError(
            f"{model_id} is not in the local Hugging Face cache and the hub is switched off "
            f"({variable})",
            hint=OFFLINE_HINT,
        )
    if not hub.reachable(hub.endpoint()):
        raise UsageError(
            f"cannot download {model_id}: the Hugging Face hub ({hub.endpoint()}) is unreachable",
            hint=OFFLINE_HINT,
        )
    try:
        return _load_pretrained(model_id, local=False)
    except OSError as error:
        raise UsageError(
            f"cannot load base model {model_id!r}: {error}", hint=OFFLINE_HINT
        ) from None


def _load_pretrained(source: str | Path, local: bool) -> tuple[Any, Any]:
    from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(source, local_files_only=local)
    model = AutoModelForSeq2SeqLM.from_pretrained(source, local_files_only=local)
    return model, tokenizer


# --- the trainer -------------------------------------------------------------------------------


def _make_trainer(
    config: TrainConfig,
    model: Any,
    tokenizer: Any,
    train_set: Any,
    eval_set: Any,
    checkpoint_dir: Path,
    target_len: int,
    progress: ProgressCallback,
    should_stop: Callable[[], bool],
) -> Any:
    import torch
    from transformers import (
        DataCollatorForSeq2Seq,
        PrinterCallback,
        Seq2SeqTrainer,
        Seq2SeqTrainingArguments,
    )

    batch_size = _int(config.batch_size)
    steps_per_epoch = max(1, math.ceil(len(train_set) / batch_size))
    total_steps = config.max_steps or math.ceil(steps_per_epoch * float(config.epochs or 1))
    eval_steps = config.eval_steps or max(10, total_steps // 5)
    logging_steps = config.logging_steps or max(1, min(10, total_steps // 20))
    args = Seq2SeqTrainingArguments(
        output_dir=str(checkpoint_dir),
        per_device_train_batch_size=batch_size,
        per_device_eval_batch_size=batch_size,
        learning_rate=float(config.learning_rate or 0.0),
        num_train_epochs=float(config.epochs or 1.0),
        max_steps=config.max_steps or -1,
        lr_scheduler_type="linear",
        warmup_steps=float(config.warmup_ratio or 0.0),
        weight_decay=0.0,
        logging_strategy="steps",
        logging_steps=logging_steps,
        eval_strategy="steps" if eval_set is not None else "no",
        eval_steps=eval_steps,
        save_strategy="steps",
        save_steps=eval_steps,
        save_total_limit=2,
        seed=_int(config.seed),
        data_seed=_int(config.seed),
        use_cpu=not torch.cuda.is_available(),
        report_to="none",
        disable_tqdm=True,
        dataloader_num_workers=0,
        predict_with_generate=False,
        generation_max_length=target_len,
    )
    trainer = Seq2SeqTrainer(
        model=model,
        args=args,
        train_dataset=train_set,
        eval_dataset=eval_set,
        processing_class=tokenizer,
        data_collator=DataCollatorForSeq2Seq(tokenizer, model=model, padding=True),
        callbacks=[_progress_callback(progress, batch_size, should_stop)],
    )
    # With tqdm off, transformers prints every log dict to stdout; our callback reports instead.
    trainer.remove_callback(PrinterCallback)
    return trainer


def _progress_callback(
    progress: ProgressCallback, batch_size: int, should_stop: Callable[[], bool]
) -> Any:
    """A TrainerCallback that turns the training loop into ProgressEvents: step, loss, learning
    rate, validation loss, ETA and samples/s; and ends the loop (saving a checkpoint) once
    `should_stop` says so. Built here because transformers is imported lazily."""
    from transformers import TrainerCallback

    class ProgressReporter(TrainerCallback):
        def __init__(self) -> None:
            self.loss: float | None = None
            self.learning_rate: float | None = None
            self.eval: dict[str, float] = {}
            self.start_step = 0
            self.started = time.perf_counter()

        def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            self.start_step = state.global_step
            self.started = time.perf_counter()
            resumed = f" (resumed at step {state.global_step})" if state.global_step else ""
            progress(
                ProgressEvent(
                    "train", f"training{resumed}", state.global_step, state.max_steps, "steps"
                )
            )

        def on_log(
            self, args: Any, state: Any, control: Any, logs: Any = None, **kwargs: Any
        ) -> None:
            logs = logs or {}
            if "loss" in logs:
                self.loss = float(logs["loss"])
            if "learning_rate" in logs:
                self.learning_rate = float(logs["learning_rate"])
            if "eval_loss" in logs:
                self.eval = {"eval_loss": float(logs["eval_loss"])}
                self.report(state, f"validation loss {logs['eval_loss']:.3f}")

        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            parts = [f"epoch {state.epoch or 0:.1f}"]
            if self.loss is not None:
                parts.append(f"loss {self.loss:.3f}")
            if "eval_loss" in self.eval:
                parts.append(f"val loss {self.eval['eval_loss']:.3f}")
            self.report(state, ", ".join(parts))
            if should_stop():
                control.should_training_stop = True
                control.should_save = True  # what --resume continues from

        def report(self, state: Any, message: str) -> None:
            done = state.global_step - self.start_step
            elapsed = time.perf_counter() - self.started
            metrics: dict[str, float] = {"epoch": float(state.epoch or 0.0)}
            if self.loss is not None:
                metrics["loss"] = self.loss
            if self.learning_rate is not None:
                metrics["learning_rate"] = self.learning_rate
            metrics.update(self.eval)
            if done > 0 and elapsed > 0:
                metrics["eta_s"] = elapsed / done * max(0, state.max_steps - state.global_step)
                metrics["samples_per_second"] = done * batch_size / elapsed
            progress(
                ProgressEvent(
                    "train", message, state.global_step, state.max_steps, "steps", metrics
                )
            )

    return ProgressReporter()


# --- checkpoints and resume --------------------------------------------------------------------


def last_checkpoint(checkpoint_dir: Path) -> Path | None:
    """The newest complete `checkpoint-N` folder, or None."""
    if not checkpoint_dir.is_dir():
        return None
    found = [
        path
        for path in checkpoint_dir.glob("checkpoint-*")
        if path.is_dir()
        and path.name.split("-")[-1].isdigit()
        and (path / "trainer_state.json").is_file()
    ]
    return max(found, key=_checkpoint_step, default=None)


def _checkpoint_step(path: Path) -> int:
    return int(path.name.split("-")[-1])


def _read_run(checkpoint_dir: Path) -> dict[str, Any] | None:
    try:
        data = json.loads((checkpoint_dir / RUN_FILE).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None
    return data if isinstance(data, dict) else None


def _write_run(checkpoint_dir: Path, config: TrainConfig, fingerprint: str) -> None:
    checkpoint_dir.mkdir(parents=True, exist_ok=True)
    run = {name: getattr(config, name) for name in RUN_FIELDS}
    run["data_fingerprint"] = fingerprint
    (checkpoint_dir / RUN_FILE).write_text(json.dumps(run, indent=2) + "\n", encoding="utf-8")


def check_output_dir(output_dir: Path) -> None:
    """Refuse an output that is a file, or a non-empty folder holding no qa-console model: a
    training run replaces the folder's model files and must not clobber someone's other files."""
    if output_dir.exists() and not output_dir.is_dir():
        raise UsageError(f"{output_dir} exists and is not a folder", hint="pick another --output")
    if output_dir.is_dir() and any(output_dir.iterdir()):
        ours = any(
            (output_dir / name).exists() for name in (RECORD_FILE, CHECKPOINT_DIR, "config.json")
        )
        if not ours:
            raise UsageError(
                f"{output_dir} is not empty and holds no qa-console model",
                hint="pick an empty or new folder with --output",
            )


def _prepare_output(output_dir: Path, checkpoint_dir: Path) -> None:
    """Make `output_dir` ready for a fresh run (old checkpoints go)."""
    check_output_dir(output_dir)
    shutil.rmtree(checkpoint_dir, ignore_errors=True)
    make_output_dir(output_dir)


def make_output_dir(output_dir: Path) -> None:
    """Create the output folder, or say in one line why it cannot be (read-only, under a file)."""
    try:
        output_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise UsageError(
            f"cannot create {output_dir}: {error.strerror or error}", hint="pick another --output"
        ) from None


# --- saving ------------------------------------------------------------------------------------


def _save_model(trainer: Any, tokenizer: Any, output_dir: Path, target_len: int) -> None:
    """Replace the model files at the top of `output_dir` with the trained model."""
    from qa_console.ops.model_files import MODEL_FILES

    for name in (*MODEL_FILES, RECORD_FILE, LOSS_CURVE_FILE):
        (output_dir / name).unlink(missing_ok=True)
    shutil.rmtree(output_dir / "predictions", ignore_errors=True)
    for stale in output_dir.glob("model-*.safetensors"):
        stale.unlink()
    model = trainer.model
    generation = model.generation_config
    generation.max_new_tokens = target_len
    generation.max_length = None
    model.save_pretrained(output_dir)
    tokenizer.save_pretrained(output_dir)


def _make_readable(output_dir: Path) -> None:
    """transformers writes weights 0600; a model is meant to be shared and packaged (0644)."""
    for path in output_dir.rglob("*"):
        if CHECKPOINT_DIR in path.relative_to(output_dir).parts:
            continue
        path.chmod(0o755 if path.is_dir() else 0o644)


def _final_evaluation(
    config: TrainConfig,
    model: Any,
    tokenizer: Any,
    dataset: Any,
    output_dir: Path,
    progress: ProgressCallback,
) -> tuple[dict[str, dict[str, float]], dict[str, dict[str, int]]]:
    """(metrics, confusion) on bare questions for each split in config.evaluate_splits, plus the
    validation split with its context when the model was trained with contexts."""
    from qa_console.ops.training.confusion import FactIndex
    from qa_console.ops.training.data import SPLITS
    from qa_console.ops.training.evaluate import evaluate_examples, predictions_file

    runs = [(split, False) for split in config.evaluate_splits]
    if config.input_format != "question" and "validation" in config.evaluate_splits:
        runs.append(("validation", True))
    facts = FactIndex.of(row for name in SPLITS for row in dataset.split(name))
    metrics: dict[str, dict[str, float]] = {}
    confusion: dict[str, dict[str, int]] = {}
    for split, with_context in runs:
        examples = dataset.split(split)
        if not examples:
            continue
        result = evaluate_examples(
            model,
            tokenizer,
            examples,
            split=split,
            with_context=with_context,
            predictions_path=predictions_file(output_dir, split, with_context),
            progress=progress,
            facts=facts,
        )
        key = f"{split}_with_context" if with_context else split
        metrics[key] = result.metrics()
        confusion[key] = result.confusion
    return metrics, confusion


def write_loss_curve(log_history: list[dict[str, Any]], path: Path) -> Path | None:
    """Training (and validation) loss per step as a PNG; None when nothing was logged."""
    train = [(row["step"], row["loss"]) for row in log_history if "loss" in row and "step" in row]
    evals = [(row["step"], row["eval_loss"]) for row in log_history if "eval_loss" in row]
    if not train and not evals:
        return None
    try:
        import matplotlib
    except ImportError:  # e.g. inside a SageMaker training image: the curve is a nicety
        return None

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    figure, axes = plt.subplots(figsize=(7, 4), dpi=100)
    if train:
        axes.plot(*zip(*train, strict=True), label="training loss")
    if evals:
        axes.plot(*zip(*evals, strict=True), marker="o", label="validation loss (bare questions)")
    axes.set_xlabel("step")
    axes.set_ylabel("loss")
    axes.set_yscale("log")
    axes.grid(True, alpha=0.3)
    axes.legend()
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)
    return path


def _last_loss(log_history: list[dict[str, Any]]) -> float | None:
    losses = [float(row["loss"]) for row in log_history if "loss" in row]
    return round(losses[-1], 4) if losses else None


def _hyperparameters(config: TrainConfig, source_len: int, target_len: int) -> dict[str, Any]:
    values = {name: getattr(config, name) for name in RUN_FIELDS if name not in ("data",)}
    values["max_source_length"] = source_len
    values["max_target_length"] = target_len
    return values


def library_versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    versions = {"python": platform.python_version()}
    for name in (
        "qa-console",
        "transformers",
        "torch",
        "tokenizers",
        "datasets",
        "accelerate",
        "safetensors",
    ):
        try:
            versions[name] = version(name)
        except PackageNotFoundError:
            continue
    return versions


def _write_record(
    result: TrainResult,
    config: TrainConfig,
    dataset: Any,
    data_source: str,
    log_history: list[dict[str, Any]],
) -> None:
    shipped = config.data is None
    record = {
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "base_model": result.base_model,
        "parameters": result.parameters,
        "data": {
            "source": data_source,
            "shipped": shipped,
            "fingerprint": dataset.fingerprint,
            "question_column": config.question_column,
            "answer_column": config.answer_column,
            "context_column": config.context_column,
            "seed": config.seed,
            "rows": dict(dataset.report.rows_kept),
            "dropped": dict(dataset.report.dropped),
            "warnings": list(dataset.report.warnings),
        },
        "hyperparameters": result.hyperparameters,
        "training": {
            "steps": result.steps,
            "epochs": result.epochs,
            "train_examples": result.train_examples,
            "final_loss": result.final_loss,
            "samples_per_second": result.samples_per_second,
            "train_time_s": result.train_time_s,
            "wall_time_s": result.wall_time_s,
            "resumed_from_step": result.resumed_from_step,
        },
        "metrics": result.metrics,
        "confusion": result.confusion,
        "headline": "exact match / F1 on bare validation questions (no context), in percent",
        "libraries": library_versions(),
        "host": {"platform": platform.platform(), "cpus": os.cpu_count()},
        "log_history": log_history,
    }
    result.record_path.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")


def _quiet_transformers() -> None:
    from qa_console.ops.model_files import quiet_transformers

    quiet_transformers()


__all__ = [
    "DEFAULT_BASE_MODEL",
    "TrainConfig",
    "TrainResult",
    "TrainingStopped",
    "check_output_dir",
    "last_checkpoint",
    "load_base_model",
    "load_training_data",
    "make_output_dir",
    "resolve_config",
    "train",
    "write_loss_curve",
]
