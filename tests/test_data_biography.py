"""The shipped biography dataset keeps the promises its data card makes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from qa_console.ops.training.data import biography_dataset_path

SPLITS = ("train", "validation", "test")


def read_split(name: str) -> list[dict[str, str]]:
    path = biography_dataset_path() / f"{name}.jsonl"
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


@pytest.fixture(scope="module")
def splits() -> dict[str, list[dict[str, str]]]:
    return {name: read_split(name) for name in SPLITS}


def test_size_meets_the_issue(splits: dict[str, list[dict[str, str]]]) -> None:
    people = {row["person"] for rows in splits.values() for row in rows}
    assert len(people) >= 30
    assert sum(len(rows) for rows in splits.values()) >= 400
    assert all(splits[name] for name in SPLITS)


def test_rows_have_the_documented_fields(splits: dict[str, list[dict[str, str]]]) -> None:
    fields = {"id", "person", "fact", "question", "answer", "context"}
    ids = [row["id"] for rows in splits.values() for row in rows]
    assert len(ids) == len(set(ids))
    for rows in splits.values():
        for row in rows:
            assert set(row) == fields
            assert all(isinstance(row[k], str) and row[k].strip() for k in fields)


def test_every_answer_is_in_its_context(splits: dict[str, list[dict[str, str]]]) -> None:
    for rows in splits.values():
        for row in rows:
            assert row["answer"] in row["context"], row["id"]
            sentences = [s for s in row["context"].split(". ") if s]
            assert 2 <= len(sentences) <= 5, row["id"]


def test_held_out_questions_are_never_in_train(splits: dict[str, list[dict[str, str]]]) -> None:
    train_questions = {row["question"] for row in splits["train"]}
    for name in ("validation", "test"):
        assert not train_questions & {row["question"] for row in splits[name]}
    assert not {r["question"] for r in splits["validation"]} & {
        r["question"] for r in splits["test"]
    }


def test_held_out_facts_are_all_in_train(splits: dict[str, list[dict[str, str]]]) -> None:
    """The test asks about known facts in new words, so a model can answer it from training."""
    train_facts = {(r["person"], r["fact"], r["answer"], r["context"]) for r in splits["train"]}
    for name in ("validation", "test"):
        for row in splits[name]:
            assert (row["person"], row["fact"], row["answer"], row["context"]) in train_facts


def test_a_fact_has_one_answer(splits: dict[str, list[dict[str, str]]]) -> None:
    """No two rows about the same person and fact disagree (names are unique, facts unambiguous)."""
    answers: dict[tuple[str, str], set[str]] = {}
    for rows in splits.values():
        for row in rows:
            answers.setdefault((row["person"], row["fact"]), set()).add(row["answer"])
    assert all(len(found) == 1 for found in answers.values())


def test_loads_with_datasets_load_dataset() -> None:
    from datasets import load_dataset

    folder = biography_dataset_path()
    loaded = load_dataset(
        "json", data_files={name: str(folder / f"{name}.jsonl") for name in SPLITS}
    )
    assert set(loaded) == set(SPLITS)
    assert loaded["train"].num_rows == len(read_split("train"))
    assert {"question", "answer", "context"} <= set(loaded["test"].column_names)


def test_generator_reproduces_the_shipped_files(tmp_path: Path) -> None:
    """make_dataset.py is the source of truth: rerunning it must give the committed bytes."""
    folder = biography_dataset_path()
    script = tmp_path / "make_dataset.py"
    script.write_text((folder / "make_dataset.py").read_text(encoding="utf-8"), encoding="utf-8")
    (tmp_path / "people.csv").write_bytes((folder / "people.csv").read_bytes())
    subprocess.run([sys.executable, str(script)], check=True, capture_output=True, timeout=60)
    for name in SPLITS:
        shipped = (folder / f"{name}.jsonl").read_bytes()
        assert (tmp_path / f"{name}.jsonl").read_bytes() == shipped, name
