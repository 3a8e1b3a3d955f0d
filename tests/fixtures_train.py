"""Training fixtures shared across test modules (listed in conftest's pytest_plugins).

`trained_tiny_model` trains the offline "tiny" T5 once per test session on a slice of the
shipped biography dataset, with the CLI's defaults, and returns the model folder. Other areas'
tests (packaging, the local runtime, backends) can use it as a real model:

    def test_something(trained_tiny_model: Path) -> None:
        ...  # config.json, model.safetensors, tokenizer.json, generation_config.json inside

`tiny_slice` is that slice as a data folder (train/validation/test.jsonl), and
`slice_questions` a few (question, answer) pairs from its training split.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from qa_console.ops.training.train import TrainResult

SLICE_PEOPLE = 2  # 2 people x 48 training questions = 96 rows
SLICE_UNKNOWN = 32  # and the first 32 abstention rows of train ("I don't know.")
SLICE_TRAIN_ROWS = 96 + SLICE_UNKNOWN  # 200 steps, ~30 s on 2 cores
UNKNOWN_FACT = "unknown"  # the `fact` of an abstention row in the shipped data


@pytest.fixture(scope="session")
def tiny_slice(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The shipped biography data restricted to its first people, as a folder of its splits:
    their facts, some abstention rows in train, and the whole held-out unknown split."""
    from qa_console.ops.training.data import biography_dataset_path

    source = biography_dataset_path()
    rows = {
        split: [
            json.loads(line)
            for line in (source / f"{split}.jsonl").read_text(encoding="utf-8").splitlines()
            if line.strip()
        ]
        for split in ("train", "validation", "test", "unknown")
    }
    people: list[str] = []
    for row in rows["train"]:
        if row["fact"] != UNKNOWN_FACT and row["person"] not in people:
            people.append(row["person"])
    chosen = set(people[:SLICE_PEOPLE])
    abstain = [row for row in rows["train"] if row["fact"] == UNKNOWN_FACT][:SLICE_UNKNOWN]
    folder = tmp_path_factory.mktemp("biography-slice")
    for split, split_rows in rows.items():
        with (folder / f"{split}.jsonl").open("w", encoding="utf-8") as handle:
            for row in split_rows:
                if row["person"] in chosen or split == "unknown" or row in abstain:
                    handle.write(json.dumps(row) + "\n")
    return folder


@pytest.fixture(scope="session")
def trained_tiny_run(tiny_slice: Path, tmp_path_factory: pytest.TempPathFactory) -> TrainResult:
    """The TrainResult of training "tiny" with default hyper-parameters on the slice."""
    from qa_console.ops.training.train import TrainConfig, train

    output = tmp_path_factory.mktemp("trained") / "model"
    return train(TrainConfig(base_model="tiny", data=str(tiny_slice), output_dir=output))


@pytest.fixture(scope="session")
def trained_tiny_model(trained_tiny_run: TrainResult) -> Path:
    """The folder of a tiny model trained on the slice: loadable with from_pretrained."""
    return trained_tiny_run.output_dir


@pytest.fixture(scope="session")
def slice_questions(tiny_slice: Path) -> list[tuple[str, str]]:
    """(question, answer) pairs from the slice's training split, one per fact type."""
    pairs: dict[str, tuple[str, str]] = {}
    for line in (tiny_slice / "train.jsonl").read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        if row["fact"] != UNKNOWN_FACT:
            pairs.setdefault(row["fact"], (row["question"], row["answer"]))
    return list(pairs.values())


def flat_model_archive(model_dir: Path, archive: Path) -> Path:
    """A model.tar.gz of the folder's files at its root (how a SageMaker model ships), built
    with tarfile alone: tests that need an archive without qa-console's packaging."""
    import tarfile

    with tarfile.open(archive, "w:gz") as tar:
        for path in sorted(model_dir.iterdir()):
            if path.is_file():
                tar.add(path, arcname=path.name)
    return archive
