"""Question/answer data for training and evaluation: the shipped biography set and users' own data.

Public API (imported by ops/training/train.py, the eval command and the CLI):

    load_qa_dataset(source, question_column="question", answer_column="answer",
                    context_column=None, seed=42, ...) -> QADataset
        `source` is a local .jsonl/.json/.csv/.parquet file, a folder of them, or a Hugging Face
        dataset id. Returns train/validation/test as lists of QAExample plus a DataReport of what
        was dropped and why. Raises UsageError for a missing file, missing columns (listing the
        columns found) or no usable training rows; OperationError when a hub id is given and the
        hub is unreachable.
    QADataset.train / .validation / .test    lists of QAExample(question, answer, context, id)
    QADataset.unknown                         questions to abstain on (optional unknown.* file)
    QADataset.report                          DataReport (counts, dropped rows with examples)
    QADataset.fingerprint                     sha256 of the normalized rows, for training records
    QADataset.to_hf(split) / .to_hf_dict()    datasets.Dataset / DatasetDict (question, answer,
                                              context, id, input_text) for Seq2SeqTrainer
    format_input(question, context=None) -> "question: ... context: ..." (the model's input)
    biography_dataset_path() -> Path          the shipped data/biography folder
    dataset_fingerprint(splits) -> str

Why one loader for every source: training, evaluation and the SageMaker entry point must see the
same rows in the same splits, so a run's record (source + seed + fingerprint) identifies its data.
Bad rows are reported, not fatal: a user's CSV with a few empty answers should still train, and
the report says which rows were skipped. `datasets` and `pandas` are imported lazily so the CLI
starts fast.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import re
import unicodedata
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from qa_console.errors import OperationError, UsageError

# The model's input format lives with the handler that serves it (it may import nothing of the
# app), and training, evaluation and the local backend use that one function.
from qa_console.inference.model_handler import format_input as format_input

# "unknown" holds questions the model must abstain on (people or topics the data does not
# cover); it is optional and never trained on. The shipped biography set has one.
SPLITS = ("train", "validation", "test", "unknown")
HELD_OUT_SPLITS = ("validation", "test", "unknown")
FILE_SUFFIXES = (".jsonl", ".json", ".csv", ".parquet")
# File-name stems naming a split in a folder: train.jsonl, dev.csv, train-00000-of-00001.parquet.
SPLIT_ALIASES = {
    "train": "train",
    "training": "train",
    "validation": "validation",
    "valid": "validation",
    "val": "validation",
    "dev": "validation",
    "test": "test",
    "testing": "test",
    "unknown": "unknown",
    "abstain": "unknown",
}
DEFAULT_MAX_INPUT_CHARS = 2000  # ~512 T5 tokens of English: longer inputs would be truncated
DEFAULT_MAX_ANSWER_CHARS = 300
EXAMPLES_PER_REASON = 3


@dataclass(frozen=True)
class QAExample:
    """One normalized question/answer pair; `context` is "" when the data has none.

    `person` and `fact` are read when the data has those columns (the biography set does); they
    let evaluation tell a wrong person from a wrong fact, and are "" otherwise."""

    question: str
    answer: str
    context: str = ""
    id: str = ""
    person: str = ""
    fact: str = ""

    @property
    def input_text(self) -> str:
        return format_input(self.question, self.context)


@dataclass(frozen=True)
class DroppedRow:
    """A row left out, where it came from and a short preview, so the user can find and fix it."""

    split: str
    row: int  # 1-based position in its file (or in the hub split)
    reason: str
    preview: str


@dataclass
class DataReport:
    """What loading found: per-split row counts, rows dropped by reason, and warnings.

    Reasons: empty_question, empty_answer, duplicate (same question and context again in a split;
    the first is kept), conflicting_duplicate (same again with another answer), input_too_long,
    answer_too_long.
    """

    source: str
    columns_found: list[str] = field(default_factory=list)
    rows_read: dict[str, int] = field(default_factory=dict)
    rows_kept: dict[str, int] = field(default_factory=dict)
    dropped: dict[str, int] = field(default_factory=dict)
    examples: list[DroppedRow] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    split_method: str = ""

    @property
    def total_dropped(self) -> int:
        return sum(self.dropped.values())

    @property
    def ok(self) -> bool:
        """True when nothing was dropped and nothing needs the user's attention."""
        return not self.dropped and not self.warnings

    def summary_lines(self) -> list[str]:
        """Human lines for the CLI: counts first, then each problem with up to 3 examples."""
        shown = [s for s in SPLITS if s in self.rows_kept or s != "unknown"]
        kept = ", ".join(f"{s} {self.rows_kept.get(s, 0)}" for s in shown)
        lines = [f"{self.source}: {kept} ({self.split_method})"]
        for reason, count in sorted(self.dropped.items()):
            lines.append(f"dropped {count} row(s): {reason.replace('_', ' ')}")
            for ex in self.examples:
                if ex.reason == reason:
                    lines.append(f"  {ex.split} row {ex.row}: {ex.preview}")
        lines.extend(f"warning: {w}" for w in self.warnings)
        return lines

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "columns_found": self.columns_found,
            "rows_read": self.rows_read,
            "rows_kept": self.rows_kept,
            "dropped": self.dropped,
            "examples": [ex.__dict__ for ex in self.examples],
            "warnings": self.warnings,
            "split_method": self.split_method,
        }


@dataclass
class QADataset:
    """Three splits of QAExample, the report of how they were made, and their fingerprint."""

    train: list[QAExample]
    validation: list[QAExample]
    test: list[QAExample]
    report: DataReport
    fingerprint: str
    unknown: list[QAExample] = field(default_factory=list)

    def split(self, name: str) -> list[QAExample]:
        if name not in SPLITS:
            raise UsageError(f"unknown split {name!r}", hint=f"use one of: {', '.join(SPLITS)}")
        rows: list[QAExample] = getattr(self, name)
        return rows

    def to_hf(self, name: str) -> Any:
        """One split as a datasets.Dataset: columns id, question, answer, context, input_text."""
        from datasets import Dataset

        rows = self.split(name)
        return Dataset.from_dict(
            {
                "id": [r.id for r in rows],
                "question": [r.question for r in rows],
                "answer": [r.answer for r in rows],
                "context": [r.context for r in rows],
                "input_text": [r.input_text for r in rows],
            }
        )

    def to_hf_dict(self) -> Any:
        """The splits as a datasets.DatasetDict: train/validation/test even when empty, and the
        optional unknown split when the data has one."""
        from datasets import DatasetDict

        names = [name for name in SPLITS if name != "unknown" or self.unknown]
        return DatasetDict({name: self.to_hf(name) for name in names})


def biography_dataset_path() -> Path:
    """The shipped biography dataset folder (train/validation/test.jsonl), package data of
    qa_console (data/biography), so a wheel install has it as well as a checkout."""
    from importlib import resources

    folder = Path(str(resources.files("qa_console").joinpath("data", "biography")))
    if not (folder / "train.jsonl").is_file():
        raise OperationError(
            f"the biography dataset is not at {folder}",
            hint="this qa-console install is incomplete: reinstall it, or pass your own data "
            "with --data",
        )
    return folder


def dataset_fingerprint(splits: Mapping[str, Sequence[QAExample]]) -> str:
    """sha256 of the normalized rows, split by split, in order: same data -> same fingerprint."""
    digest = hashlib.sha256()
    for name in sorted(splits):
        for row in splits[name]:
            record = [name, row.question, row.answer, row.context]
            digest.update(json.dumps(record, ensure_ascii=False).encode("utf-8"))
            digest.update(b"\n")
    return digest.hexdigest()


def load_qa_dataset(
    source: str | os.PathLike[str],
    *,
    question_column: str = "question",
    answer_column: str = "answer",
    context_column: str | None = None,
    seed: int = 42,
    validation_fraction: float = 0.1,
    test_fraction: float = 0.1,
    max_input_chars: int | None = DEFAULT_MAX_INPUT_CHARS,
    max_answer_chars: int | None = DEFAULT_MAX_ANSWER_CHARS,
    max_input_tokens: int | None = None,
    max_answer_tokens: int | None = None,
    count_tokens: Callable[[str], int] | None = None,
    hub_config: str | None = None,
) -> QADataset:
    """Load, normalize, check and split question/answer data from a file, folder or hub id.

    context_column: None uses a "context" column when there is one (no context otherwise); a name
    makes that column required. Splits come from file names in a folder (train/validation/test,
    also val/dev) or the hub's splits; a single file, or a folder/hub dataset with only a train
    split, is split with `seed` into the given fractions. Token limits count with `count_tokens`
    (pass the tokenizer's, e.g. `lambda s: len(tok(s).input_ids)`; default: whitespace words).
    """
    text = os.fspath(source)
    path = Path(text).expanduser()
    if path.exists():
        raw, columns = _read_local(path)
        label = str(path)
    elif _looks_like_path(text):
        raise UsageError(
            f"no such file or folder: {text}",
            hint="pass a .jsonl/.csv/.parquet file, a folder of them, or a Hugging Face dataset id",
        )
    else:
        raw, columns = _read_hub(text, hub_config)
        label = f"hub:{text}"

    report = DataReport(source=label, columns_found=sorted(columns))
    _check_columns(columns, question_column, answer_column, context_column, label)
    if context_column is None and "context" in columns:
        context_column = "context"
    if context_column is None:
        report.warnings.append("no context column: the model will see questions only")

    limits = _Limits(
        max_input_chars, max_answer_chars, max_input_tokens, max_answer_tokens, count_tokens
    )
    cleaned: dict[str, list[QAExample]] = {}
    for name, rows in raw.items():
        report.rows_read[name] = len(rows)
        cleaned[name] = _clean(
            name, rows, question_column, answer_column, context_column, limits, report
        )

    splits = _assign_splits(cleaned, seed, validation_fraction, test_fraction, report)
    for name in SPLITS:
        if splits[name] or name != "unknown":  # most data has no abstention split: no noise
            report.rows_kept[name] = len(splits[name])
    _warn_on_leaks(splits, report)
    if not splits["train"]:
        raise UsageError(
            f"no usable training rows in {label}",
            hint="; ".join(report.summary_lines()),
        )
    return QADataset(
        train=splits["train"],
        validation=splits["validation"],
        test=splits["test"],
        unknown=splits["unknown"],
        report=report,
        fingerprint=dataset_fingerprint(splits),
    )


# --- reading -----------------------------------------------------------------------------------

Rows = list[dict[str, Any]]


def _read_local(path: Path) -> tuple[dict[str, Rows], set[str]]:
    """Rows per split name ("all" for a single unsplit file) and the union of columns seen."""
    if path.is_file():
        rows = _read_file(path)
        return {"all": rows}, _columns(rows)
    files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in FILE_SUFFIXES)
    if not files:
        raise UsageError(
            f"no .jsonl, .json, .csv or .parquet files in {path}",
            hint="put train/validation/test files in the folder, or pass one file",
        )
    by_split: dict[str, Rows] = {}
    for file in files:
        split = _split_of(file)
        if split is not None:
            by_split.setdefault(split, []).extend(_read_file(file))
    if "train" not in by_split:
        if len(files) == 1:
            rows = _read_file(files[0])
            return {"all": rows}, _columns(rows)
        names = ", ".join(str(f.relative_to(path)) for f in files[:10])
        raise UsageError(
            f"cannot tell which file in {path} is the training split (found: {names})",
            hint="name the files train.*, validation.* and test.*, or pass a single file",
        )
    return by_split, set().union(*(_columns(rows) for rows in by_split.values()))


def _split_of(file: Path) -> str | None:
    stem = file.name.split(".")[0].lower()
    head = re.split(r"[-_]", stem)[0]
    return SPLIT_ALIASES.get(stem) or SPLIT_ALIASES.get(head)


def _read_file(path: Path) -> Rows:
    suffix = path.suffix.lower()
    try:
        if suffix == ".csv":
            import pandas as pd

            # dtype=str keeps "1931" as typed and empty cells as "" rather than NaN.
            frame = pd.read_csv(path, dtype=str, keep_default_na=False)
            return list(frame.to_dict(orient="records"))
        if suffix == ".parquet":
            import pandas as pd

            return list(pd.read_parquet(path).to_dict(orient="records"))
        return _read_json(path)
    except UsageError:
        raise
    except (OSError, ValueError, ImportError) as exc:
        raise UsageError(
            f"cannot read {path}: {exc}", hint="check that the file is valid for its extension"
        ) from exc


def _read_json(path: Path) -> Rows:
    """JSON Lines, or a .json file holding one array of objects."""
    text = path.read_text(encoding="utf-8")
    if path.suffix.lower() == ".json" and text.lstrip().startswith("["):
        data = json.loads(text)
        rows = data
        where = "the array"
    else:
        rows = []
        for number, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise UsageError(
                    f"{path} line {number} is not valid JSON: {exc.msg}",
                    hint="each line of a .jsonl file must be one JSON object",
                ) from exc
        where = "each line"
    if not all(isinstance(row, dict) for row in rows):
        raise UsageError(
            f"{path}: {where} must hold JSON objects", hint='e.g. {"question": ..., "answer": ...}'
        )
    return list(rows)


def _columns(rows: Iterable[Mapping[str, Any]]) -> set[str]:
    found: set[str] = set()
    for row in rows:
        found.update(row)
    return found


def _looks_like_path(text: str) -> bool:
    """A missing local path, as opposed to a hub id like "squad" or "user/name"."""
    return (
        text.lower().endswith(FILE_SUFFIXES)
        or text.startswith((".", "/", "~"))
        or text.count("/") > 1
        or "\\" in text
        or not re.fullmatch(r"[\w.-]+(/[\w.-]+)?", text)
    )


def _read_hub(dataset_id: str, config: str | None) -> tuple[dict[str, Rows], set[str]]:
    _require_hub(dataset_id)
    from datasets import load_dataset

    try:
        loaded = load_dataset(dataset_id, config)
    except Exception as exc:  # the hub library raises many types; all mean "cannot use this id"
        raise UsageError(
            f"cannot load Hugging Face dataset {dataset_id!r}: {exc}",
            hint="check the id (and config name), or pass a local file",
        ) from exc
    raw: dict[str, Rows] = {}
    for name, split in loaded.items():
        canonical = SPLIT_ALIASES.get(name.lower())
        if canonical:
            raw.setdefault(canonical, []).extend(split.to_list())
    if "train" not in raw:
        raise UsageError(
            f"Hugging Face dataset {dataset_id!r} has no train split (has: {', '.join(loaded)})",
            hint="download it and pass a local file",
        )
    return raw, _columns(raw["train"][:1000])


def _require_hub(dataset_id: str) -> None:
    """Fail fast and clearly offline, instead of letting the hub client retry for minutes."""
    hint = "pass a local .jsonl/.csv/.parquet file or folder instead"
    from qa_console.ops.training import hub

    variable = hub.switched_off("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE")
    if variable:
        raise OperationError(
            f"cannot load {dataset_id!r}: the Hugging Face hub is switched off ({variable})",
            hint=hint,
        )
    if not hub.reachable(hub.endpoint()):
        raise OperationError(
            f"cannot load {dataset_id!r}: the Hugging Face hub ({hub.endpoint()}) is unreachable",
            hint=hint,
        )


def _check_columns(
    columns: set[str], question: str, answer: str, context: str | None, label: str
) -> None:
    wanted = {"question": question, "answer": answer}
    if context is not None:
        wanted["context"] = context
    missing = {role: name for role, name in wanted.items() if name not in columns}
    if missing:
        found = ", ".join(sorted(columns)) or "none"
        what = ", ".join(f"{role} column {name!r}" for role, name in missing.items())
        flags = " ".join(f"--{role}-column NAME" for role in missing)
        raise UsageError(
            f"{label} has no {what}; columns found: {found}",
            hint=f"name the right columns with {flags}",
        )


# --- cleaning and splitting --------------------------------------------------------------------


@dataclass(frozen=True)
class _Limits:
    max_input_chars: int | None
    max_answer_chars: int | None
    max_input_tokens: int | None
    max_answer_tokens: int | None
    count_tokens: Callable[[str], int] | None

    def problem(self, example: QAExample) -> str | None:
        count = self.count_tokens or (lambda s: len(s.split()))
        text = example.input_text
        if self.max_input_chars is not None and len(text) > self.max_input_chars:
            return "input_too_long"
        if self.max_answer_chars is not None and len(example.answer) > self.max_answer_chars:
            return "answer_too_long"
        if self.max_input_tokens is not None and count(text) > self.max_input_tokens:
            return "input_too_long"
        if self.max_answer_tokens is not None and count(example.answer) > self.max_answer_tokens:
            return "answer_too_long"
        return None


def _text(value: Any) -> str:
    """A cell as normalized text: NFC, whitespace runs collapsed; None/NaN -> "".

    SQuAD-style answers ({"text": [...], ...}) and lists of answers use their first answer.
    """
    if isinstance(value, Mapping) and "text" in value:
        value = value["text"]
    if isinstance(value, list | tuple) or type(value).__name__ == "ndarray":
        value = next(iter(value), "")
    if value is None or (isinstance(value, float) and value != value):
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return " ".join(unicodedata.normalize("NFC", str(value)).split())


def _clean(
    split: str,
    rows: Rows,
    question_column: str,
    answer_column: str,
    context_column: str | None,
    limits: _Limits,
    report: DataReport,
) -> list[QAExample]:
    kept: list[QAExample] = []
    seen: dict[tuple[str, str], str] = {}
    for number, row in enumerate(rows, 1):
        example = QAExample(
            question=_text(row.get(question_column)),
            answer=_text(row.get(answer_column)),
            context=_text(row.get(context_column)) if context_column else "",
            id=_text(row.get("id")) or f"{split}-{number}",
            person=_text(row.get("person")),
            fact=_text(row.get("fact")),
        )
        key = (example.question.casefold(), example.context.casefold())
        reason: str | None
        if not example.question:
            reason = "empty_question"
        elif not example.answer:
            reason = "empty_answer"
        elif key in seen:
            same = seen[key].casefold() == example.answer.casefold()
            reason = "duplicate" if same else "conflicting_duplicate"
        else:
            reason = limits.problem(example)
        if reason is None:
            seen[key] = example.answer
            kept.append(example)
            continue
        report.dropped[reason] = report.dropped.get(reason, 0) + 1
        if sum(ex.reason == reason for ex in report.examples) < EXAMPLES_PER_REASON:
            preview = example.question[:80] or f"(answer: {example.answer[:60]})"
            report.examples.append(DroppedRow(split, number, reason, preview))
    return kept


def _assign_splits(
    cleaned: dict[str, list[QAExample]],
    seed: int,
    validation_fraction: float,
    test_fraction: float,
    report: DataReport,
) -> dict[str, list[QAExample]]:
    """Keep named splits; carve missing validation/test out of the rest with a seeded shuffle."""
    if not 0 <= validation_fraction < 1 or not 0 <= test_fraction < 1:
        raise UsageError("split fractions must be between 0 and 1")
    if validation_fraction + test_fraction >= 1:
        raise UsageError("validation and test fractions leave no training rows")
    pool = cleaned.get("all", cleaned.get("train", []))
    splits = {name: list(cleaned.get(name, [])) for name in HELD_OUT_SPLITS}
    carve = [name for name in ("validation", "test") if name not in cleaned]
    if not carve:
        report.split_method = "splits as given by the source"
        return {"train": list(pool), **splits}
    order = list(range(len(pool)))
    random.Random(seed).shuffle(order)
    fractions = {"validation": validation_fraction, "test": test_fraction}
    start = 0
    for name in carve:
        size = round(len(pool) * fractions[name])
        splits[name] = [pool[i] for i in sorted(order[start : start + size])]
        start += size
    taken = set(order[:start])
    train = [row for i, row in enumerate(pool) if i not in taken]
    report.split_method = f"{' and '.join(carve)} split off with seed {seed}"
    return {"train": train, **splits}


def _warn_on_leaks(splits: Mapping[str, list[QAExample]], report: DataReport) -> None:
    """Held-out questions that also appear in train inflate scores: say so, keep them."""
    train = {(r.question.casefold(), r.context.casefold()) for r in splits["train"]}
    for name in HELD_OUT_SPLITS:
        leaked = sum((r.question.casefold(), r.context.casefold()) in train for r in splits[name])
        if leaked:
            report.warnings.append(f"{leaked} {name} question(s) also appear in train")
