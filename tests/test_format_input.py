"""One model input format: the local backend, training and the deployed handler build the same
input for the same question, so the same model answers it the same way in-process and behind an
endpoint (a question typed with its "question:" prefix included)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fixtures_deploy import KNOWN
from qa_console.backends.local import LocalBackend
from qa_console.inference.handler_contract import HandlerHost, load_handler
from qa_console.inference.model_handler import format_input
from qa_console.ops.packaging.safe_tar import safe_extract
from qa_console.ops.training.data import QAExample


@pytest.mark.parametrize(
    ("question", "context", "expected"),
    [
        ("Who was Ada?", None, "question: Who was Ada?"),
        ("  question: Who was Ada? ", None, "question: Who was Ada?"),
        ("QUESTION: Who was Ada?", None, "question: Who was Ada?"),
        ("Who was Ada?", "Ada was a poet.", "question: Who was Ada? context: Ada was a poet."),
    ],
)
def test_the_one_format(question: str, context: str | None, expected: str) -> None:
    assert format_input(question, context) == expected


def test_training_rows_use_it() -> None:
    assert QAExample("question: Who was Ada?", "poet").input_text == "question: Who was Ada?"
    with_context = QAExample("Who was Ada?", "poet", "Ada was a poet.")
    assert with_context.input_text == format_input("Who was Ada?", "Ada was a poet.")


def test_local_backend_and_handler_answer_a_prefixed_question_alike(
    t5_archive: Path, tmp_path: Path
) -> None:
    question = f"question: {KNOWN[0]}"
    local = LocalBackend("t", model=str(t5_archive))
    model_dir = tmp_path / "model"
    safe_extract(t5_archive, model_dir)
    host = HandlerHost(load_handler(model_dir / "code"), str(model_dir))
    host.load()
    served, _ = host.invoke(json.dumps({"inputs": question}).encode())
    assert local.ask(question).text == json.loads(served)[0]["generated_text"] == KNOWN[1]
    assert local.ask(KNOWN[0]).text == KNOWN[1]
