"""The shipped biography dataset keeps the promises its data card makes."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from qa_console.ops.training.data import biography_dataset_path

SPLITS = ("train", "validation", "test", "unknown")
UNKNOWN_FACT = "unknown"


def known(rows: list[dict[str, str]]) -> list[dict[str, str]]:
    """The rows about people in the table (not the ones the bot must abstain on)."""
    return [row for row in rows if row["fact"] != UNKNOWN_FACT]


def read_split(name: str) -> list[dict[str, str]]:
    path = biography_dataset_path() / f"{name}.jsonl"
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


@pytest.fixture(scope="module")
def splits() -> dict[str, list[dict[str, str]]]:
    return {name: read_split(name) for name in SPLITS}


def test_size_meets_the_issue(splits: dict[str, list[dict[str, str]]]) -> None:
    people = {row["person"] for rows in splits.values() for row in known(rows)}
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
            assert all(isinstance(row[k], str) for k in fields)
            # An abstention row has no passage, and a general question no person.
            required = fields - {"context", "person"} if row["fact"] == UNKNOWN_FACT else fields
            assert all(row[k].strip() for k in required), row["id"]


def test_every_answer_is_in_its_context(splits: dict[str, list[dict[str, str]]]) -> None:
    for rows in splits.values():
        for row in known(rows):
            assert row["answer"] in row["context"], row["id"]
            sentences = [s for s in row["context"].split(". ") if s]
            assert 2 <= len(sentences) <= 5, row["id"]


def test_held_out_questions_are_never_in_train(splits: dict[str, list[dict[str, str]]]) -> None:
    train_questions = {row["question"] for row in splits["train"]}
    for name in ("validation", "test", "unknown"):
        assert not train_questions & {row["question"] for row in splits[name]}
    assert not {r["question"] for r in splits["validation"]} & {
        r["question"] for r in splits["test"]
    }


def test_held_out_facts_are_all_in_train(splits: dict[str, list[dict[str, str]]]) -> None:
    """The test asks about known facts in new words, so a model can answer it from training."""
    train_facts = {(r["person"], r["fact"], r["answer"], r["context"]) for r in splits["train"]}
    assert not known(splits["unknown"])
    for name in ("validation", "test"):
        for row in splits[name]:
            assert (row["person"], row["fact"], row["answer"], row["context"]) in train_facts


def test_a_fact_has_one_answer(splits: dict[str, list[dict[str, str]]]) -> None:
    """No two rows about the same person and fact disagree (names are unique, facts unambiguous)."""
    answers: dict[tuple[str, str], set[str]] = {}
    for rows in splits.values():
        for row in known(rows):
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


def _templates() -> dict[str, dict[str, list[str]]]:
    """make_dataset.TEMPLATES, loaded from the shipped script (it is not an importable module)."""
    import runpy

    script = biography_dataset_path() / "make_dataset.py"
    namespace = runpy.run_path(str(script), run_name="make_dataset")
    templates: dict[str, dict[str, list[str]]] = namespace["TEMPLATES"]
    return templates


def test_held_out_templates_never_phrase_a_train_question(
    splits: dict[str, list[dict[str, str]]],
) -> None:
    """Not just the questions: no validation or test phrasing is used in train, for any name."""
    templates = _templates()
    train_phrasings = {
        row["question"].replace(row["person"], "{name}") for row in known(splits["train"])
    }
    for fact, families in templates.items():
        held_out = set(families["validation"]) | set(families["test"])
        assert not held_out & set(families["train"]), fact
        assert not held_out & train_phrasings, fact
        assert len(families["train"]) >= 8, f"{fact}: few training phrasings"
    for name in ("validation", "test"):
        for row in splits[name]:
            phrasing = row["question"].replace(row["person"], "{name}")
            assert phrasing in templates[row["fact"]][name], row["id"]


def test_train_asks_each_fact_in_several_phrasings(
    splits: dict[str, list[dict[str, str]]],
) -> None:
    asked: dict[tuple[str, str], int] = {}
    for row in known(splits["train"]):
        key = (row["person"], row["fact"])
        asked[key] = asked.get(key, 0) + 1
    assert min(asked.values()) >= 5


def test_abstention_rows_answer_the_one_unknown_reply(
    splits: dict[str, list[dict[str, str]]],
) -> None:
    from qa_console.inference.model_handler import UNKNOWN_ANSWER

    for name in ("train", "unknown"):
        abstain = [row for row in splits[name] if row["fact"] == UNKNOWN_FACT]
        assert abstain, name
        assert {row["answer"] for row in abstain} == {UNKNOWN_ANSWER}
        assert any(not row["person"] for row in abstain), f"{name}: no general questions"
    assert all(row["fact"] == UNKNOWN_FACT for row in splits["unknown"])
    assert all(row["answer"] != UNKNOWN_ANSWER for rows in splits.values() for row in known(rows))


def test_held_out_unknown_names_are_never_used_in_training(
    splits: dict[str, list[dict[str, str]]],
) -> None:
    """Not the full names and not a first name or surname: the unknown split's people are
    strangers to a model trained on train, and none of them shares a part with a real entry."""

    def parts(names: set[str]) -> set[str]:
        return {part for name in names for part in name.replace("-", " ").split()}

    known_people = {row["person"] for rows in splits.values() for row in known(rows)}
    train_strangers = {r["person"] for r in splits["train"] if r["fact"] == UNKNOWN_FACT} - {""}
    held_out = {row["person"] for row in splits["unknown"]} - {""}
    assert len(held_out) >= 20 and len(train_strangers) >= 50
    train_words = {word for r in splits["train"] for word in re.findall(r"\w+", r["question"])}
    assert not parts(held_out) & train_words
    assert not parts(held_out) & parts(known_people | train_strangers)
    assert not parts(train_strangers) & parts(known_people)
    general = {r["question"] for r in splits["unknown"] if not r["person"]}
    assert general and not general & {r["question"] for r in splits["train"]}
