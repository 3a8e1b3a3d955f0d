"""Exact match and token F1 of a model's answers, SQuAD-style, with every prediction saved.

The scores are the SQuAD v1.1 ones (lower-case, strip punctuation and English articles, collapse
whitespace; EM = normalised strings equal; F1 = overlap of normalised tokens), in percent, so
numbers compare with what people know. The headline input is the bare question ("question: Q"):
the deployed bot is asked questions without a context passage, so that is what must work.
Predictions go to `<model>/predictions/<split>[-context].jsonl`, one line per example, so a low
score can be read example by example. Each also gets an outcome (ops.confusion: correct, wrong
fact, wrong person, invented, wrongly abstained, failed to abstain) and each split a count of
them, and the share of answers that were "I don't know." (`abstained`).
"""

from __future__ import annotations

import json
import re
import string
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from qa_console.errors import UsageError
from qa_console.events import ProgressCallback, ProgressEvent, ignore_progress

DEFAULT_BATCH_SIZE = 32
_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCTUATION = set(string.punctuation)


def normalize_answer(text: str) -> str:
    """SQuAD normalisation: lower case, no punctuation, no articles, single spaces."""
    text = text.lower()
    text = "".join(char for char in text if char not in _PUNCTUATION)
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def exact_match(prediction: str, reference: str) -> bool:
    return normalize_answer(prediction) == normalize_answer(reference)


def token_f1(prediction: str, reference: str) -> float:
    """Harmonic mean of token precision and recall after normalisation (0..1).

    Two empty answers agree (1.0); one empty answer against a non-empty one scores 0.
    """
    predicted = normalize_answer(prediction).split()
    expected = normalize_answer(reference).split()
    if not predicted or not expected:
        return float(predicted == expected)
    common = Counter(predicted) & Counter(expected)
    overlap = sum(common.values())
    if overlap == 0:
        return 0.0
    precision = overlap / len(predicted)
    recall = overlap / len(expected)
    return 2 * precision * recall / (precision + recall)


def score(predictions: Sequence[str], references: Sequence[str]) -> tuple[float, float]:
    """(exact match %, F1 %) over paired predictions and references."""
    if len(predictions) != len(references):
        raise ValueError(f"{len(predictions)} predictions for {len(references)} references")
    if not references:
        return 0.0, 0.0
    em = sum(exact_match(p, r) for p, r in zip(predictions, references, strict=True))
    f1 = sum(token_f1(p, r) for p, r in zip(predictions, references, strict=True))
    return 100.0 * em / len(references), 100.0 * f1 / len(references)


@dataclass(frozen=True)
class EvalResult:
    """Scores of one split in one input form, and where the predictions were written."""

    split: str
    count: int
    exact_match: float  # percent
    f1: float  # percent
    with_context: bool
    seconds: float
    predictions_path: Path | None = None
    examples: list[dict[str, Any]] = field(default_factory=list, repr=False)
    abstained: float = 0.0  # percent of answers that were the abstention reply
    confusion: dict[str, int] = field(default_factory=dict)  # outcome -> count

    def metrics(self) -> dict[str, float]:
        """The numbers a training record and a scores table show for this split."""
        return {
            "exact_match": self.exact_match,
            "f1": self.f1,
            "count": float(self.count),
            "abstained": self.abstained,
        }

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("examples")
        data["predictions_path"] = str(self.predictions_path) if self.predictions_path else None
        return data


def generate_answers(
    model: Any,
    tokenizer: Any,
    inputs: Sequence[str],
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    max_source_length: int = 512,
    max_new_tokens: int | None = None,
    progress: ProgressCallback = ignore_progress,
    task: str = "evaluate",
) -> list[str]:
    """Greedy answers for `inputs`, in batches, longest first (less padding), in input order."""
    import torch

    model.eval()
    order = sorted(range(len(inputs)), key=lambda i: -len(inputs[i]))
    answers: list[str] = [""] * len(inputs)
    generation: dict[str, Any] = {"num_beams": 1, "do_sample": False}
    if max_new_tokens is not None:
        generation["max_new_tokens"] = max_new_tokens
    done = 0
    with torch.inference_mode():
        for start in range(0, len(order), batch_size):
            batch = order[start : start + batch_size]
            encoded = tokenizer(
                [inputs[i] for i in batch],
                return_tensors="pt",
                padding=True,
                truncation=True,
                max_length=max_source_length,
            ).to(model.device)
            output = model.generate(**encoded, **generation)
            for index, text in zip(
                batch, tokenizer.batch_decode(output, skip_special_tokens=True), strict=True
            ):
                answers[index] = text.strip()
            done += len(batch)
            progress(
                ProgressEvent(
                    task, f"answering {done}/{len(inputs)}", done, len(inputs), "examples"
                )
            )
    return answers


def evaluate_examples(
    model: Any,
    tokenizer: Any,
    examples: Sequence[Any],
    *,
    split: str,
    with_context: bool = False,
    batch_size: int = DEFAULT_BATCH_SIZE,
    predictions_path: Path | None = None,
    progress: ProgressCallback = ignore_progress,
    facts: Any = None,
) -> EvalResult:
    """Score a loaded model on QAExample-like rows (question, answer, context, id).

    `facts` (a confusion.FactIndex of the whole dataset) tells a wrong person from an invented
    answer; by default it is built from `examples` alone."""
    from qa_console.inference.model_handler import is_unknown_answer
    from qa_console.ops.training.confusion import FactIndex, outcome, summarize
    from qa_console.ops.training.data import format_input

    facts = facts if facts is not None else FactIndex.of(examples)

    started = time.perf_counter()
    inputs = [format_input(ex.question, ex.context if with_context else None) for ex in examples]
    task = f"evaluate {split}"
    progress(ProgressEvent(task, f"answering 0/{len(inputs)}", 0, len(inputs), "examples"))
    predicted = generate_answers(
        model, tokenizer, inputs, batch_size=batch_size, progress=progress, task=task
    )
    rows = [
        {
            "id": ex.id,
            "question": ex.question,
            "context": ex.context if with_context else "",
            "answer": ex.answer,
            "prediction": prediction,
            "exact_match": exact_match(prediction, ex.answer),
            "f1": round(token_f1(prediction, ex.answer), 4),
            "outcome": outcome(prediction, ex.answer, getattr(ex, "person", ""), facts),
        }
        for ex, prediction in zip(examples, predicted, strict=True)
    ]
    em, f1 = score(predicted, [ex.answer for ex in examples])
    if predictions_path is not None:
        predictions_path.parent.mkdir(parents=True, exist_ok=True)
        with predictions_path.open("w", encoding="utf-8") as handle:
            for row in rows:
                handle.write(json.dumps(row, ensure_ascii=False) + "\n")
        predictions_path.chmod(0o644)
    result = EvalResult(
        split=split,
        count=len(rows),
        exact_match=round(em, 2),
        f1=round(f1, 2),
        with_context=with_context,
        seconds=round(time.perf_counter() - started, 3),
        predictions_path=predictions_path,
        examples=rows,
        abstained=round(100.0 * sum(map(is_unknown_answer, predicted)) / max(1, len(rows)), 2),
        confusion=summarize(row["outcome"] for row in rows),
    )
    progress(
        ProgressEvent(
            task,
            f"exact match {result.exact_match:.1f}%, F1 {result.f1:.1f}%",
            len(rows),
            len(rows),
            "examples",
            metrics={"exact_match": result.exact_match, "f1": result.f1},
            done=True,
        )
    )
    return result


def predictions_file(
    model_dir: Path, split: str, with_context: bool, folder: Path | None = None
) -> Path:
    """<model>/predictions/<split>[-context].jsonl, or the same name in `folder`."""
    name = f"{split}{'-context' if with_context else ''}.jsonl"
    return predictions_folder(model_dir, folder) / name


def predictions_folder(model_dir: Path, folder: Path | None = None) -> Path:
    """Where a model's predictions go: `folder` when given, else <model>/predictions."""
    return folder if folder is not None else model_dir / "predictions"


def load_model(model_dir: str | Path) -> tuple[Any, Any]:
    """(model, tokenizer) from a checked seq2seq model folder, on CPU, in eval mode.

    check_model_folder looks at file names only; a file that is there but damaged (an empty
    model.safetensors, a tokenizer.json from elsewhere) fails inside transformers with whatever
    error its parser raises, so any failure here is reported as one line naming the folder."""
    from qa_console.ops.model_files import HINT, check_model_folder, quiet_transformers

    folder = check_model_folder(model_dir).path
    quiet_transformers()
    from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(folder)
        model = AutoModelForSeq2SeqLM.from_pretrained(folder)
    except Exception as error:  # tokenizers, safetensors and transformers raise many types
        detail = f"{type(error).__name__}: {error}"
        raise UsageError(f"cannot load the model in {folder}: {detail}", hint=HINT) from None
    model.eval()
    return model, tokenizer


def evaluate(
    model_dir: str | Path,
    split: str = "validation",
    *,
    data: str | None = None,
    dataset: Any = None,
    with_context: bool = False,
    batch_size: int = DEFAULT_BATCH_SIZE,
    save_predictions: bool = True,
    predictions_dir: Path | None = None,
    progress: ProgressCallback = ignore_progress,
) -> EvalResult:
    """Score the model in `model_dir` on one split.

    The data is, first found: `dataset` (a loaded QADataset), `data` (a file, folder or hub id),
    the data the model was trained on (from its training_record.json), the shipped biography set.
    Predictions go to `predictions_dir` if given, else to <model_dir>/predictions/.
    """
    results = evaluate_splits(
        model_dir,
        (split,),
        data=data,
        dataset=dataset,
        with_context=with_context,
        batch_size=batch_size,
        save_predictions=save_predictions,
        predictions_dir=predictions_dir,
        progress=progress,
    )
    return results[split]


def evaluate_splits(
    model_dir: str | Path,
    splits: tuple[str, ...] | None = None,
    *,
    data: str | None = None,
    dataset: Any = None,
    with_context: bool = False,
    batch_size: int = DEFAULT_BATCH_SIZE,
    save_predictions: bool = True,
    predictions_dir: Path | None = None,
    progress: ProgressCallback = ignore_progress,
) -> dict[str, EvalResult]:
    """Score the model on each named split (None: every split the data has), loading it once.

    Same data and prediction rules as `evaluate`. A split named explicitly must not be empty."""
    from qa_console.ops.training.confusion import FactIndex
    from qa_console.ops.training.data import SPLITS

    for split in splits or ():
        if split not in SPLITS:
            raise UsageError(f"unknown split {split!r}", hint=f"use one of: {', '.join(SPLITS)}")
    if batch_size < 1:
        raise UsageError(f"--batch-size must be at least 1, not {batch_size}")
    folder = Path(model_dir).expanduser()
    model, tokenizer = load_model(folder)
    if dataset is None:
        dataset = load_eval_dataset(folder, data)
    chosen = splits or tuple(name for name in SPLITS if dataset.split(name))
    for split in chosen:
        if not dataset.split(split):
            raise UsageError(
                f"the {split} split of {dataset.report.source} is empty",
                hint="pick another split with --split, or pass data that has one with --data",
            )
    facts = FactIndex.of(row for name in SPLITS for row in dataset.split(name))
    from qa_console.ops.model_files import threads_for, torch_threads

    results: dict[str, EvalResult] = {}
    with torch_threads(threads_for(sum(p.numel() for p in model.parameters()))):
        for split in chosen:
            path = predictions_file(folder, split, with_context, predictions_dir)
            results[split] = evaluate_examples(
                model,
                tokenizer,
                dataset.split(split),
                split=split,
                with_context=with_context,
                batch_size=batch_size,
                predictions_path=path if save_predictions else None,
                progress=progress,
                facts=facts,
            )
    if save_predictions:
        write_summary(results, predictions_folder(folder, predictions_dir))
    return results


SUMMARY_FILE = "summary.json"


def write_summary(results: dict[str, EvalResult], folder: Path) -> Path:
    """<predictions>/summary.json: per split, the scores and the confusion counts of the misses,
    so a run's evaluation can be compared or read later without rerunning it."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / SUMMARY_FILE
    summary = {
        split: {**result.metrics(), "confusion": result.confusion}
        for split, result in results.items()
    }
    path.write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    path.chmod(0o644)
    return path


def load_eval_dataset(model_dir: Path, data: str | None) -> Any:
    """The data to score a model on: `data` if given, else what its training record names."""
    from qa_console.ops.training.data import biography_dataset_path, load_qa_dataset

    options: dict[str, Any] = {}
    record_file = model_dir / "training_record.json"
    record: dict[str, Any] = {}
    if record_file.is_file():
        try:
            record = json.loads(record_file.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            record = {}
    recorded = record.get("data") or {}
    if data is None and recorded.get("source") and not recorded.get("shipped"):
        data = str(recorded["source"])
    if data is None:
        return load_qa_dataset(biography_dataset_path())
    if recorded.get("source") == data:
        for key in ("question_column", "answer_column", "context_column", "seed"):
            if recorded.get(key) is not None:
                options[key] = recorded[key]
    return load_qa_dataset(data, **options)
