"""Build the shipped biography Q&A dataset (train/validation/test/unknown JSON Lines).

Every person here is invented for this project: names, towns, universities, works and awards are
made up, so no fact can be wrong about a real person. The table (people.csv, written by hand) holds
eight facts per person; each fact is asked with question templates of three disjoint families:

- train templates (10-11 per fact): every fact appears in train, asked with TRAIN_TEMPLATES_PER_FACT
  of them (seeded choice), so the model meets each relation in many wordings;
- validation templates (2 per fact): held-out phrasings, for a seeded sample of facts;
- test templates (3 per fact): other held-out paraphrases, for a seeded sample of facts.

So validation and test ask about facts the model has seen in training, with wording it has not.
Train also teaches abstention: questions about invented people who are not in the table, and
general questions, answered UNKNOWN_ANSWER ("I don't know."). The `unknown` split asks the same
of held-out names and questions that training never uses (pools in unknowns.py).
The output is deterministic: same table + same seed -> byte-identical files.

Run from the repo root:  .venv/bin/python src/qa_console/data/biography/make_dataset.py
"""

from __future__ import annotations

import csv
import json
import random
from pathlib import Path
from typing import Any, NamedTuple

from qa_console.data.biography.unknowns import (
    HELD_OUT_FIRST_NAMES,
    HELD_OUT_GENERAL_QUESTIONS,
    HELD_OUT_SURNAMES,
    TRAIN_FIRST_NAMES,
    TRAIN_GENERAL_QUESTIONS,
    TRAIN_SURNAMES,
)
from qa_console.inference.model_handler import UNKNOWN_ANSWER

SEED = 20240611
SPLITS = ("train", "validation", "test", "unknown")
VALIDATION_FRACTION = 0.25
TEST_FRACTION = 0.40
TRAIN_TEMPLATES_PER_FACT = 6
UNKNOWN_FACT = "unknown"  # the `fact` of a row the bot must abstain on
# Abstention in train: many invented names asked a little each teach "a name I do not know"
# better than a few names asked a lot. (people, questions per person)
TRAIN_UNKNOWN_PEOPLE = (300, 2)
HELD_OUT_UNKNOWN_PEOPLE = (40, 3)
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

# Hand-written question templates per fact, in three disjoint families. Train has many per
# fact: question forms ("When...?", "In what year...?", "Tell me..."), word orders ("{name} was
# born in what year?") and synonyms of the relation (born / came into the world, married / wed,
# award / prize / honour / distinction), so the model learns the relation rather than one
# sentence. Validation and test recombine those words into sentences training never shows.
TEMPLATES: dict[str, dict[str, list[str]]] = {
    "birth_year": {
        "train": [
            "When was {name} born?",
            "In what year was {name} born?",
            "What is the birth year of {name}?",
            "What year was {name} born in?",
            "In which year was {name} born?",
            "What was {name}'s year of birth?",
            "Tell me the year {name} was born.",
            "{name} was born in what year?",
            "When did {name} come into the world?",
            "What year did {name} come into the world?",
            "Name the year {name} was born.",
        ],
        "validation": ["{name} was born in which year?", "Which year was {name} born in?"],
        "test": [
            "In which year did {name} come into the world?",
            "What is {name}'s year of birth?",
            "Tell me the birth year of {name}.",
        ],
    },
    "birth_town": {
        "train": [
            "Where was {name} born?",
            "What is the birthplace of {name}?",
            "In which town was {name} born?",
            "What town was {name} born in?",
            "Where is {name} originally from?",
            "What is {name}'s home town?",
            "Which town does {name} come from?",
            "Where does {name} come from?",
            "Tell me where {name} was born.",
            "{name} was born in what town?",
            "Name the town where {name} was born.",
        ],
        "validation": ["In what town was {name} born?", "Where did {name} come into the world?"],
        "test": [
            "Which town is {name} originally from?",
            "What is the home town of {name}?",
            "Tell me the birthplace of {name}.",
        ],
    },
    "profession": {
        "train": [
            "What was the profession of {name}?",
            "What did {name} do for a living?",
            "What job did {name} have?",
            "What was {name}'s occupation?",
            "What was {name}'s job?",
            "What did {name} work as?",
            "How did {name} earn a living?",
            "What was the occupation of {name}?",
            "Tell me what {name} did for work.",
            "What kind of work did {name} do?",
            "Name the profession of {name}.",
        ],
        "validation": ["What was {name}'s profession?", "Which job did {name} do?"],
        "test": [
            "What did {name} do to earn a living?",
            "What was the job of {name}?",
            "Tell me the occupation of {name}.",
        ],
    },
    "university": {
        "train": [
            "Where did {name} study?",
            "Which school did {name} attend?",
            "Where was {name} educated?",
            "Which university did {name} go to?",
            "At which institution did {name} study?",
            "What school did {name} go to?",
            "Where did {name} go to university?",
            "Which institution educated {name}?",
            "Where did {name} train?",
            "Tell me where {name} studied.",
            "Name the school {name} attended.",
        ],
        "validation": ["What university did {name} attend?", "Which school educated {name}?"],
        "test": [
            "Which institution trained {name}?",
            "At which school was {name} educated?",
            "What institution did {name} attend?",
        ],
    },
    "notable_work": {
        "train": [
            "What is {name} best known for?",
            "What is the most famous work of {name}?",
            "Which work made {name} famous?",
            "What is {name} famous for?",
            "What is {name}'s best-known work?",
            "For what work is {name} best remembered?",
            "What is {name} most celebrated for?",
            "Which achievement is {name} known for?",
            "What is {name}'s most famous work?",
            "Tell me what {name} is known for.",
        ],
        "validation": ["What work is {name} best known for?", "What is {name} remembered for?"],
        "test": [
            "Name the achievement that {name} is most celebrated for.",
            "Which work is {name} most famous for?",
            "What made {name} famous?",
        ],
    },
    "spouse": {
        "train": [
            "Who did {name} marry?",
            "Who was the spouse of {name}?",
            "To whom was {name} married?",
            "Who was {name}'s husband or wife?",
            "Who was {name} married to?",
            "Whom did {name} wed?",
            "Who was {name}'s spouse?",
            "Who was the partner of {name}?",
            "Who did {name} wed?",
            "Tell me who {name} married.",
            "Name the person {name} married.",
        ],
        "validation": ["Who was {name}'s partner?", "Whom did {name} marry?"],
        "test": [
            "To whom was {name} wed?",
            "Who was the husband or wife of {name}?",
            "Who was {name} wed to?",
        ],
    },
    "award": {
        "train": [
            "What award did {name} receive?",
            "Which prize did {name} win?",
            "What honour was given to {name}?",
            "Which award was {name} given?",
            "What prize did {name} get?",
            "What distinction did {name} receive?",
            "What was {name} honoured with?",
            "Which award did {name} win?",
            "What prize was {name} granted?",
            "Tell me the award {name} received.",
            "Name the award {name} received.",
        ],
        "validation": ["What award was {name} given?", "Which honour did {name} receive?"],
        "test": [
            "What distinction was {name} honoured with?",
            "Which prize was {name} given?",
            "What award did {name} win?",
        ],
    },
    "award_year": {
        "train": [
            "In what year did {name} receive an award?",
            "When did {name} win a prize?",
            "In which year was {name} honoured with an award?",
            "What year did {name} get an award?",
            "When was {name} given an award?",
            "When did {name} receive a distinction?",
            "In what year did {name} win a prize?",
            "What year was {name} honoured?",
            "When was {name} granted an award?",
            "Tell me the year {name} won an award.",
            "Name the year in which {name} won a prize.",
        ],
        "validation": ["In which year did {name} win an award?", "When did {name} get a prize?"],
        "test": [
            "When was {name} granted a distinction?",
            "In what year was {name} given a prize?",
            "What year did {name} receive a distinction?",
        ],
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
    splits: dict[str, list[dict[str, str]]] = {name: [] for name in SPLITS}
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
                template = rng.choice(TEMPLATES[fact]["validation"])
                splits["validation"].append({"question": template.format(name=p.name), **base})
            if in_test:
                template = rng.choice(TEMPLATES[fact]["test"])
                splits["test"].append({"question": template.format(name=p.name), **base})
    splits["train"] += unknown_rows(
        rng, TRAIN_FIRST_NAMES, TRAIN_SURNAMES, TRAIN_UNKNOWN_PEOPLE, TRAIN_GENERAL_QUESTIONS,
        families=("train",),
    )  # fmt: skip
    # Held-out people are asked in any wording: what is new to the model is only the name.
    splits["unknown"] = unknown_rows(
        rng, HELD_OUT_FIRST_NAMES, HELD_OUT_SURNAMES, HELD_OUT_UNKNOWN_PEOPLE,
        HELD_OUT_GENERAL_QUESTIONS, families=("train", "validation", "test"),
    )  # fmt: skip
    for name, rows in splits.items():
        rng.shuffle(rows)
        for n, row in enumerate(rows):
            ordered = {"id": f"bio-{name}-{n:04d}", "person": row["person"], "fact": row["fact"],
                       "question": row["question"], "answer": row["answer"],
                       "context": row["context"]}  # fmt: skip
            rows[n] = ordered
    return splits


def unknown_rows(
    rng: random.Random,
    first_names: list[str],
    surnames: list[str],
    people: tuple[int, int],
    general_questions: list[str],
    families: tuple[str, ...],
) -> list[dict[str, str]]:
    """Questions the bot must answer UNKNOWN_ANSWER to: `people` = (how many, questions each)
    invented names made from the given pools, each asked about random facts, and every general
    question once. There is no passage about them, so the context is empty."""
    count, questions_each = people
    pairs = [(first, last) for first in first_names for last in surnames]
    rows: list[dict[str, str]] = []
    for first, last in rng.sample(pairs, count):
        name = f"{first} {last}"
        for fact in rng.sample(FACTS, questions_each):
            templates = [t for family in families for t in TEMPLATES[fact][family]]
            question = rng.choice(templates).format(name=name)
            rows.append(_unknown(question, person=name))
    rows += [_unknown(question, person="") for question in general_questions]
    return rows


def _unknown(question: str, person: str) -> dict[str, str]:
    return {"person": person, "fact": UNKNOWN_FACT, "question": question,
            "answer": UNKNOWN_ANSWER, "context": ""}  # fmt: skip


def name_parts(names: list[str]) -> set[str]:
    return {part for name in names for part in name.replace("-", " ").split()}


def check(splits: dict[str, list[dict[str, str]]]) -> None:
    """Fail loudly if the table breaks a promise the data card makes."""
    names = [p.name for p in PEOPLE]
    assert len(set(names)) == len(names), "two people share a name"
    assert not {p.spouse for p in PEOPLE} & set(names), "a spouse shares a person's name"
    known_parts = name_parts(names + [p.spouse for p in PEOPLE])
    train_parts = set(TRAIN_FIRST_NAMES + TRAIN_SURNAMES)
    held_out_parts = set(HELD_OUT_FIRST_NAMES + HELD_OUT_SURNAMES)
    assert not known_parts & (train_parts | held_out_parts), "an unknown shares a known name"
    assert not train_parts & held_out_parts, "a held-out unknown name part is used in training"
    for rows in splits.values():
        for row in rows:
            if row["fact"] != UNKNOWN_FACT:
                assert row["answer"] in row["context"], row
    train_questions = {r["question"] for r in splits["train"]}
    for name in ("validation", "test", "unknown"):
        assert not train_questions & {r["question"] for r in splits[name]}, name
    for fact, families in TEMPLATES.items():
        train, validation, test = (set(families[f]) for f in ("train", "validation", "test"))
        assert not (train & validation or train & test or validation & test), fact


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
