"""How an answer missed: every outcome of ops.confusion, and the abstention reply's one source."""

from __future__ import annotations

import pytest

from qa_console.inference.model_handler import UNKNOWN_ANSWER, is_unknown_answer
from qa_console.ops.training.confusion import OUTCOMES, FactIndex, outcome, summarize
from qa_console.ops.training.data import QAExample

ROWS = [
    QAExample("Where was Ada born?", "Harrowmere", person="Ada Vane", fact="birth_town"),
    QAExample("When was Ada born?", "1931", person="Ada Vane", fact="birth_year"),
    QAExample("Where was Bo born?", "Lindenfall", person="Bo Quorrow", fact="birth_town"),
    QAExample("Where was Cy Nobody born?", UNKNOWN_ANSWER, fact="unknown"),
]
FACTS = FactIndex.of(ROWS)


@pytest.mark.parametrize(
    ("prediction", "answer", "person", "expected"),
    [
        ("Harrowmere", "Harrowmere", "Ada Vane", "correct"),
        ("1931", "Harrowmere", "Ada Vane", "right_person_wrong_fact"),
        ("Lindenfall", "Harrowmere", "Ada Vane", "wrong_person"),
        ("Paris", "Harrowmere", "Ada Vane", "invented"),
        (UNKNOWN_ANSWER, "Harrowmere", "Ada Vane", "wrongly_abstained"),
        ("i don't know", UNKNOWN_ANSWER, "", "correct"),
        ("Harrowmere", UNKNOWN_ANSWER, "Cy Nobody", "failed_to_abstain"),
        ("Lindenfall", "Harrowmere", "", "wrong_person"),  # data without a person column
    ],
)
def test_each_outcome(prediction: str, answer: str, person: str, expected: str) -> None:
    assert outcome(prediction, answer, person, FACTS) == expected


def test_the_abstention_reply_is_never_indexed_as_a_fact() -> None:
    assert UNKNOWN_ANSWER not in str(FACTS.people_by_answer)


def test_summary_counts_every_outcome_in_order() -> None:
    summary = summarize(["correct", "invented", "correct"])
    assert list(summary) == list(OUTCOMES)
    assert summary["correct"] == 2 and summary["invented"] == 1 and summary["wrong_person"] == 0


@pytest.mark.parametrize("text", ["I don't know.", "i don't know", "  I don't   know. "])
def test_abstention_is_recognised_loosely(text: str) -> None:
    assert is_unknown_answer(text)


def test_an_answer_mentioning_not_knowing_is_still_an_answer() -> None:
    assert not is_unknown_answer("I don't know the way to Harrowmere")
