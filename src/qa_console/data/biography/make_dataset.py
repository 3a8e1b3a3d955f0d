"""Build the shipped biography Q&A dataset (train/validation/test JSON Lines) from people.csv.

Every person here is invented for this project: names, towns, universities, works and awards are
made up, so no fact can be wrong about a real person. The table (people.csv, written by hand) holds
eight facts per person; each fact is asked with question templates of three disjoint families:

- train templates (3 per fact): every fact appears in train, asked with 2 of them (seeded choice);
- validation templates (1 per fact): a held-out phrasing, asked for a seeded sample of facts;
- test templates (1 per fact): another held-out paraphrase, asked for a seeded sample of facts.

So validation and test ask about facts the model has seen in training, with wording it has not.
The output is deterministic: same table + same seed -> byte-identical files.

Run from the repo root:  .venv/bin/python data/biography/make_dataset.py
"""

from __future__ import annotations

import csv
import json
import random
from pathlib import Path
from typing import Any, NamedTuple

SEED = 20240611
VALIDATION_FRACTION = 0.25
TEST_FRACTION = 0.40
TRAIN_TEMPLATES_PER_FACT = 2
HERE = Path(__file__).resolve().parent


class Person(NamedTuple):
    name: str
    pronoun: str  # "she" / "he"
    birth_year: int
    birth_town: str
    profession: str
    university: str
    work_kind: str  # how the context introduces the notable work, e.g. "the novel"
    notable_work: str
    spouse: str
    award: str
    award_year: int


def load_people(path: Path = HERE / "people.csv") -> list[Person]:
    """The hand-written table: one invented person per row, eight facts each."""
    with path.open(encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    ints = {"birth_year", "award_year"}
    fields: list[dict[str, Any]] = [
        {k: int(v) if k in ints else v for k, v in row.items()} for row in rows
    ]
    return [Person(**values) for values in fields]


PEOPLE: list[Person] = load_people()

# Each fact: a sentence for the context and question templates by family. {name} is the person.
FACTS = ["birth_year", "birth_town", "profession", "university", "notable_work", "spouse", "award",
         "award_year"]  # fmt: skip

TEMPLATES: dict[str, dict[str, list[str]]] = {
    "birth_year": {
        "train": [
            "When was {name} born?",
            "In what year was {name} born?",
            "What is the birth year of {name}?",
        ],
        "validation": ["{name} was born in which year?"],
        "test": ["In which year did {name} come into the world?"],
    },
    "birth_town": {
        "train": [
            "Where was {name} born?",
            "What is the birthplace of {name}?",
            "In which town was {name} born?",
        ],
        "validation": ["{name} was born in what town?"],
        "test": ["Which town is {name} originally from?"],
    },
    "profession": {
        "train": [
            "What was the profession of {name}?",
            "What did {name} do for a living?",
            "What job did {name} have?",
        ],
        "validation": ["What was {name}'s occupation?"],
        "test": ["How did {name} earn a living?"],
    },
    "university": {
        "train": [
            "Where did {name} study?",
            "Which school did {name} attend?",
            "Where was {name} educated?",
        ],
        "validation": ["At which institution did {name} study?"],
        "test": ["Which institution trained {name}?"],
    },
    "notable_work": {
        "train": [
            "What is {name} best known for?",
            "What is the most famous work of {name}?",
            "Which work made {name} famous?",
        ],
        "validation": ["For what work is {name} best remembered?"],
        "test": ["Name the achievement that {name} is most celebrated for."],
    },
    "spouse": {
        "train": [
            "Who did {name} marry?",
            "Who was the spouse of {name}?",
            "To whom was {name} married?",
        ],
        "validation": ["Who was {name}'s husband or wife?"],
        "test": ["Whom did {name} wed?"],
    },
    "award": {
        "train": [
            "What award did {name} receive?",
            "Which prize did {name} win?",
            "What honour was given to {name}?",
        ],
        "validation": ["Which award was {name} given?"],
        "test": ["What distinction was {name} honoured with?"],
    },
    "award_year": {
        "train": [
            "In what year did {name} receive an award?",
            "When did {name} win a prize?",
            "In which year was {name} honoured with an award?",
        ],
        "validation": ["What year did {name} get an award?"],
        "test": ["When was {name} granted a distinction?"],
    },
}


def article(word: str) -> str:
    return "an" if word[0].lower() in "aeiou" else "a"


def sentences(p: Person) -> dict[str, str]:
    """The person's biography, one sentence per fact group, keyed by the facts each one states."""
    subject = p.pronoun.capitalize()
    possessive = "Her" if p.pronoun == "she" else "His"
    partner = "husband" if p.pronoun == "she" else "wife"
    return {
        "birth": f"{p.name} was born in {p.birth_year} in the town of {p.birth_town}.",
        "career": f"{subject} studied at {p.university} and worked as {article(p.profession)} "
        f"{p.profession}.",
        "work": f"{subject} is best known for {p.work_kind} {p.notable_work}.",
        "family": f"{possessive} {partner} was {p.spouse}.",
        "award": f"In {p.award_year}, {p.pronoun} received the {p.award}.",
    }


SENTENCE_OF = {
    "birth_year": "birth", "birth_town": "birth", "profession": "career", "university": "career",
    "notable_work": "work", "spouse": "family", "award": "award", "award_year": "award",
}  # fmt: skip


def context_for(p: Person, fact: str) -> str:
    """A 3-sentence passage: the sentence stating the fact and its neighbours in the biography.

    Short contexts keep the tiny offline model fast to train; the same fact always gets the same
    passage, so a test question's context is one the model saw in training.
    """
    keys = list(sentences(p))
    i = keys.index(SENTENCE_OF[fact])
    start = min(max(i - 1, 0), len(keys) - 3)
    return " ".join(sentences(p)[k] for k in keys[start : start + 3])


def answer_for(p: Person, fact: str) -> str:
    return str(getattr(p, fact))


def build(seed: int = SEED) -> dict[str, list[dict[str, str]]]:
    rng = random.Random(seed)
    splits: dict[str, list[dict[str, str]]] = {"train": [], "validation": [], "test": []}
    for p in PEOPLE:
        for fact in FACTS:
            base = {
                "person": p.name,
                "fact": fact,
                "answer": answer_for(p, fact),
                "context": context_for(p, fact),
            }
            for template in rng.sample(TEMPLATES[fact]["train"], TRAIN_TEMPLATES_PER_FACT):
                splits["train"].append({"question": template.format(name=p.name), **base})
            # Draw both numbers every time so each split's sample is independent of the other's.
            in_validation = rng.random() < VALIDATION_FRACTION
            in_test = rng.random() < TEST_FRACTION
            if in_validation:
                template = TEMPLATES[fact]["validation"][0]
                splits["validation"].append({"question": template.format(name=p.name), **base})
            if in_test:
                template = TEMPLATES[fact]["test"][0]
                splits["test"].append({"question": template.format(name=p.name), **base})
    for name, rows in splits.items():
        rng.shuffle(rows)
        for n, row in enumerate(rows):
            ordered = {"id": f"bio-{name}-{n:04d}", "person": row["person"], "fact": row["fact"],
                       "question": row["question"], "answer": row["answer"],
                       "context": row["context"]}  # fmt: skip
            rows[n] = ordered
    return splits


def check(splits: dict[str, list[dict[str, str]]]) -> None:
    """Fail loudly if the table breaks a promise the data card makes."""
    names = [p.name for p in PEOPLE]
    assert len(set(names)) == len(names), "two people share a name"
    assert not {p.spouse for p in PEOPLE} & set(names), "a spouse shares a person's name"
    for rows in splits.values():
        for row in rows:
            assert row["answer"] in row["context"], row
    train_questions = {r["question"] for r in splits["train"]}
    for name in ("validation", "test"):
        assert not train_questions & {r["question"] for r in splits[name]}, name


def main() -> None:
    splits = build()
    check(splits)
    for name, rows in splits.items():
        with (HERE / f"{name}.jsonl").open("w", encoding="utf-8", newline="\n") as f:
            for row in rows:
                f.write(json.dumps(row, ensure_ascii=False) + "\n")
        print(f"{name}: {len(rows)} rows")


if __name__ == "__main__":
    main()
