"""Loading users' own question/answer data: formats, folders, column mapping and the data report."""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

import pytest

from qa_console.errors import OperationError, UsageError
from qa_console.ops.training.data import (
    QAExample,
    dataset_fingerprint,
    format_input,
    load_qa_dataset,
)

ROWS = [
    {
        "question": f"What is item {n}?",
        "answer": f"answer {n}",
        "context": f"Item {n} is answer {n}.",
    }
    for n in range(20)
]


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def write_csv(path: Path, rows: list[dict[str, Any]]) -> Path:
    import pandas as pd

    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def all_questions(data: Any) -> list[str]:
    return [r.question for split in (data.train, data.validation, data.test) for r in split]


def test_format_input() -> None:
    assert format_input("Who?", "Ann is here.") == "question: Who? context: Ann is here."
    assert format_input(" Who? ") == "question: Who?"
    assert format_input("Who?", "  ") == "question: Who?"


def test_single_jsonl_is_split_deterministically(tmp_path: Path) -> None:
    source = write_jsonl(tmp_path / "qa.jsonl", ROWS)
    first = load_qa_dataset(source, seed=7, validation_fraction=0.2, test_fraction=0.1)
    again = load_qa_dataset(source, seed=7, validation_fraction=0.2, test_fraction=0.1)
    other = load_qa_dataset(source, seed=8, validation_fraction=0.2, test_fraction=0.1)

    assert (len(first.train), len(first.validation), len(first.test)) == (14, 4, 2)
    assert sorted(all_questions(first)) == sorted(r["question"] for r in ROWS)
    assert first.validation == again.validation and first.fingerprint == again.fingerprint
    assert first.validation != other.validation and first.fingerprint != other.fingerprint
    assert first.train[0].context.startswith("Item")
    assert first.report.ok and first.report.rows_read == {"all": 20}
    assert "seed 7" in first.report.split_method


def test_csv_keeps_values_as_written(tmp_path: Path) -> None:
    rows = [{"question": "Born when?", "answer": "1931", "context": "Born in 1931."}, *ROWS]
    source = write_csv(tmp_path / "qa.csv", rows)
    data = load_qa_dataset(source, validation_fraction=0, test_fraction=0)
    born = next(r for r in data.train if r.question == "Born when?")
    assert born == QAExample("Born when?", "1931", "Born in 1931.", id="all-1")


def test_parquet_file(tmp_path: Path) -> None:
    import pandas as pd

    source = tmp_path / "qa.parquet"
    pd.DataFrame(ROWS).to_parquet(source)
    data = load_qa_dataset(source, validation_fraction=0, test_fraction=0)
    assert [r.answer for r in data.train] == [r["answer"] for r in ROWS]


def test_folder_split_by_file_name(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "train.jsonl", ROWS[:12])
    write_csv(tmp_path / "dev.csv", ROWS[12:16])
    write_jsonl(tmp_path / "test.jsonl", ROWS[16:])
    data = load_qa_dataset(tmp_path)
    assert [r.question for r in data.validation] == [r["question"] for r in ROWS[12:16]]
    assert [r.question for r in data.test] == [r["question"] for r in ROWS[16:]]
    assert len(data.train) == 12
    assert data.report.split_method == "splits as given by the source"


def test_folder_with_only_train_carves_held_out_splits(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "train-00000-of-00001.jsonl", ROWS)
    data = load_qa_dataset(tmp_path, validation_fraction=0.25, test_fraction=0.25)
    assert (len(data.train), len(data.validation), len(data.test)) == (10, 5, 5)


def test_folder_without_a_train_file_is_a_usage_error(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "a.jsonl", ROWS)
    write_jsonl(tmp_path / "b.jsonl", ROWS)
    with pytest.raises(UsageError, match=r"which file .* training split \(found: a.jsonl, b.jsonl"):
        load_qa_dataset(tmp_path)


def test_column_mapping(tmp_path: Path) -> None:
    rows = [{"prompt": r["question"], "target": r["answer"], "passage": r["context"]} for r in ROWS]
    source = write_jsonl(tmp_path / "qa.jsonl", rows)
    data = load_qa_dataset(
        source,
        question_column="prompt",
        answer_column="target",
        context_column="passage",
        validation_fraction=0,
        test_fraction=0,
    )
    assert data.train[3] == QAExample("What is item 3?", "answer 3", "Item 3 is answer 3.", "all-4")
    assert data.report.columns_found == ["passage", "prompt", "target"]


def test_context_is_optional_unless_named(tmp_path: Path) -> None:
    rows = [{"question": r["question"], "answer": r["answer"]} for r in ROWS]
    source = write_jsonl(tmp_path / "qa.jsonl", rows)
    data = load_qa_dataset(source, validation_fraction=0, test_fraction=0)
    assert all(r.context == "" for r in data.train)
    assert data.train[0].input_text == f"question: {data.train[0].question}"
    assert any("no context column" in w for w in data.report.warnings)
    with pytest.raises(UsageError, match="no context column 'passage'") as caught:
        load_qa_dataset(source, context_column="passage")
    assert "--context-column" in (caught.value.hint or "")


def test_missing_columns_list_the_columns_found(tmp_path: Path) -> None:
    source = write_csv(tmp_path / "qa.csv", [{"prompt": "q", "target": "a", "extra": "x"}])
    with pytest.raises(UsageError) as caught:
        load_qa_dataset(source)
    message = str(caught.value)
    assert "question column 'question'" in message and "answer column 'answer'" in message
    assert "columns found: extra, prompt, target" in message
    assert "--question-column" in (caught.value.hint or "")
    assert caught.value.exit_code == 2


def test_bad_rows_are_reported_not_fatal(tmp_path: Path) -> None:
    rows: list[dict[str, Any]] = [
        *ROWS[:10],
        {"question": "What is empty?", "answer": "   ", "context": "Nothing."},
        {"question": "What is null?", "answer": None, "context": "Nothing."},
        {"question": "", "answer": "orphan", "context": "x"},
        dict(ROWS[2]),  # exact duplicate
        {**ROWS[3], "answer": "something else"},  # same question and context, other answer
        {"question": "What is long?", "answer": "short", "context": "word " * 600},
        {"question": "What is the long answer?", "answer": "a" * 400, "context": "a" * 400},
    ]
    source = write_jsonl(tmp_path / "qa.jsonl", rows)
    data = load_qa_dataset(source, validation_fraction=0, test_fraction=0)

    report = data.report
    assert len(data.train) == 10
    assert report.dropped == {
        "empty_answer": 2,
        "empty_question": 1,
        "duplicate": 1,
        "conflicting_duplicate": 1,
        "input_too_long": 1,
        "answer_too_long": 1,
    }
    assert report.total_dropped == 7 and not report.ok
    rows_by_reason = {ex.reason: ex.row for ex in report.examples if ex.reason != "empty_answer"}
    assert rows_by_reason == {
        "empty_question": 13,
        "duplicate": 14,
        "conflicting_duplicate": 15,
        "input_too_long": 16,
        "answer_too_long": 17,
    }
    lines = "\n".join(report.summary_lines())
    assert "dropped 2 row(s): empty answer" in lines and "all row 11: What is empty?" in lines
    assert json.loads(json.dumps(report.to_dict()))["dropped"]["duplicate"] == 1


def test_token_limits_use_the_given_counter(tmp_path: Path) -> None:
    source = write_jsonl(tmp_path / "qa.jsonl", ROWS)
    # "question: What is item 1? context: Item 1 is answer 1." is 55 characters; item 10 is 58.
    data = load_qa_dataset(
        source,
        validation_fraction=0,
        test_fraction=0,
        max_input_tokens=55,
        count_tokens=len,  # one "token" per character
    )
    assert [r.answer for r in data.train] == [f"answer {n}" for n in range(10)]
    assert data.report.dropped == {"input_too_long": 10}


def test_too_strict_limits_leave_no_training_rows(tmp_path: Path) -> None:
    source = write_jsonl(tmp_path / "qa.jsonl", ROWS)
    with pytest.raises(UsageError, match="no usable training rows") as caught:
        load_qa_dataset(source, max_input_tokens=3)
    assert "dropped 20 row(s): input too long" in (caught.value.hint or "")


def test_held_out_questions_seen_in_train_are_flagged(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "train.jsonl", ROWS)
    write_jsonl(tmp_path / "test.jsonl", ROWS[:3])
    data = load_qa_dataset(tmp_path)
    assert "3 test question(s) also appear in train" in data.report.warnings


def test_squad_style_answers_use_the_first_text(tmp_path: Path) -> None:
    rows = [
        {"question": "Who?", "answers": {"text": ["Ann", "Ann B."], "answer_start": [0, 0]}},
        {"question": "Where?", "answers": {"text": ["Oslo"], "answer_start": [3]}},
    ]
    source = write_jsonl(tmp_path / "squad.jsonl", rows)
    data = load_qa_dataset(source, answer_column="answers", validation_fraction=0, test_fraction=0)
    assert [r.answer for r in data.train] == ["Ann", "Oslo"]


def test_malformed_jsonl_names_the_line(tmp_path: Path) -> None:
    source = tmp_path / "qa.jsonl"
    source.write_text('{"question": "a", "answer": "b"}\n{"question": oops}\n', encoding="utf-8")
    with pytest.raises(UsageError, match=r"line 2 is not valid JSON"):
        load_qa_dataset(source)


def test_missing_local_path_is_not_mistaken_for_a_hub_id(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="no such file or folder"):
        load_qa_dataset(tmp_path / "nope.jsonl")
    with pytest.raises(UsageError, match="no such file or folder"):
        load_qa_dataset("./data/missing")


def test_hub_id_offline_flag_fails_fast(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(OperationError, match="Hugging Face hub is switched off") as caught:
        load_qa_dataset("someone/biographies")
    assert "local" in (caught.value.hint or "")


def test_hub_id_unreachable_endpoint_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    # A loopback port nobody listens on: the probe is refused at once, like an offline machine.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("HF_DATASETS_OFFLINE", raising=False)
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{port}")
    with pytest.raises(OperationError, match=r"hub .* is unreachable") as caught:
        load_qa_dataset("squad")
    assert caught.value.exit_code == 1
    assert "pass a local" in (caught.value.hint or "")


def test_fingerprint_follows_the_rows() -> None:
    rows = [QAExample("Q1?", "A1", "C1"), QAExample("Q2?", "A2")]
    base = dataset_fingerprint({"train": rows, "test": []})
    assert base == dataset_fingerprint({"test": [], "train": list(rows)})
    assert len(base) == 64
    assert base != dataset_fingerprint({"train": [rows[0], QAExample("Q2?", "A3")], "test": []})
    assert base != dataset_fingerprint({"train": rows[:1], "test": rows[1:]})


def test_to_hf_gives_datasets_with_model_inputs(tmp_path: Path) -> None:
    source = write_jsonl(tmp_path / "qa.jsonl", ROWS)
    data = load_qa_dataset(source)
    splits = data.to_hf_dict()
    assert {name: splits[name].num_rows for name in splits} == {
        "train": 16,
        "validation": 2,
        "test": 2,
    }
    first = splits["train"][0]
    assert first["input_text"] == format_input(first["question"], first["context"])
    assert set(splits["test"].column_names) == {"id", "question", "answer", "context", "input_text"}
