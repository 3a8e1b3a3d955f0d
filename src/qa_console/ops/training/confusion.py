"""Why an answer missed: a confusion summary of a model's predictions on one split.

An exact-match score says how often the bot is right, not what it does when it is wrong, and the
fixes differ: answering another fact of the right person means the relation words were not
learnt; answering about another person means the name was not; an answer found nowhere in the
data is invented; and abstaining is right only for people and topics the data does not cover.

Each prediction gets one outcome:

    correct                   exact match (for an abstention question: it abstained)
    wrongly_abstained         said "I don't know." to a question the data answers
    failed_to_abstain         answered a question it should have abstained on
    right_person_wrong_fact   another fact of the same person
    wrong_person              a fact of another person
    invented                  an answer that is no fact in the data

The person and fact columns are needed to tell the middle two apart; without them a wrong answer
that is not an abstention counts as invented.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from qa_console.inference.model_handler import is_unknown_answer
from qa_console.ops.training.evaluate import exact_match, normalize_answer

OUTCOMES = (
    "correct",
    "wrongly_abstained",
    "failed_to_abstain",
    "right_person_wrong_fact",
    "wrong_person",
    "invented",
)


@dataclass
class FactIndex:
    """Who each normalised answer in the data belongs to: answer -> the people it is a fact of."""

    people_by_answer: dict[str, set[str]] = field(default_factory=dict)

    @classmethod
    def of(cls, examples: Iterable[Any]) -> FactIndex:
        """An index of every (person, answer) in QAExample-like rows that name their person."""
        index = cls()
        for example in examples:
            person = getattr(example, "person", "")
            if person and not is_unknown_answer(example.answer):
                key = normalize_answer(example.answer)
                index.people_by_answer.setdefault(key, set()).add(person)
        return index


def outcome(prediction: str, answer: str, person: str, facts: FactIndex) -> str:
    """The one OUTCOMES entry that describes `prediction` against the reference `answer`."""
    should_abstain = is_unknown_answer(answer)
    abstained = is_unknown_answer(prediction)
    if should_abstain or abstained:
        if should_abstain == abstained:
            return "correct"
        return "failed_to_abstain" if should_abstain else "wrongly_abstained"
    if exact_match(prediction, answer):
        return "correct"
    owners = facts.people_by_answer.get(normalize_answer(prediction), set())
    if person and person in owners:
        return "right_person_wrong_fact"
    if owners:
        return "wrong_person"
    return "invented"


def summarize(outcomes: Iterable[str]) -> dict[str, int]:
    """Counts of every outcome (zeros included, in OUTCOMES order, so summaries line up)."""
    counts = Counter(outcomes)
    return {name: counts.get(name, 0) for name in OUTCOMES}
