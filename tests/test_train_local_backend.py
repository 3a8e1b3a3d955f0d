"""The local backend answers from a trained model folder or its model.tar.gz, greedy or sampled,
streams tokens, and says clearly when a folder is not a seq2seq model."""

from __future__ import annotations

import io
import json
import shutil
import tarfile
from pathlib import Path

import pytest

from fixtures_train import flat_model_archive
from qa_console.backends.local import LocalBackend
from qa_console.errors import UsageError


@pytest.fixture(scope="module")
def backend(trained_tiny_model: Path) -> LocalBackend:
    return LocalBackend("bio-local", model=str(trained_tiny_model))


def test_answers_training_questions(
    backend: LocalBackend, slice_questions: list[tuple[str, str]]
) -> None:
    answers = [backend.ask(question) for question, _ in slice_questions]
    right = sum(
        a.text == expected for a, (_, expected) in zip(answers, slice_questions, strict=True)
    )
    assert right >= len(slice_questions) - 1
    assert all(a.backend == "bio-local" and a.latency_ms > 0 for a in answers)


def test_stream_yields_the_same_answer_in_pieces(
    backend: LocalBackend, slice_questions: list[tuple[str, str]]
) -> None:
    question = max(slice_questions, key=lambda pair: len(pair[1]))[0]  # a multi-token answer
    pieces = list(backend.stream(question))
    assert len(pieces) >= 2
    assert "".join(pieces).strip() == backend.ask(question).text


def test_generation_options_and_parameters(
    backend: LocalBackend, slice_questions: list[tuple[str, str]]
) -> None:
    question, expected = slice_questions[0]
    assert backend.ask(question, {"num_beams": 2}).text == expected
    short = backend.ask(question, {"max_new_tokens": 1})
    assert short.extra["tokens"] <= 2  # decoder start + one new token
    sampled = backend.ask(question, {"do_sample": True, "temperature": 0.7, "top_p": 0.9})
    assert isinstance(sampled.text, str)
    with pytest.raises(UsageError, match="no parameter 'beams'"):
        backend.ask(question, {"beams": 2})
    with pytest.raises(UsageError, match="must be a int"):
        backend.ask(question, {"max_new_tokens": "many"})


def test_health_loads_and_reports(backend: LocalBackend) -> None:
    health = backend.health()
    assert health.ok and "T5ForConditionalGeneration" in health.detail


def test_answers_from_a_model_archive_extracted_once(
    trained_tiny_model: Path,
    slice_questions: list[tuple[str, str]],
    tmp_path: Path,
    isolated_user_dirs: Path,
) -> None:
    archive = flat_model_archive(trained_tiny_model, tmp_path / "model.tar.gz")
    question, expected = slice_questions[1]
    assert LocalBackend("a", model=str(archive)).ask(question).text == expected
    cache = isolated_user_dirs / "cache" / "qa-console" / "models"
    assert len(list(cache.iterdir())) == 1
    assert LocalBackend("b", model=str(archive)).ask(question).text == expected
    assert len(list(cache.iterdir())) == 1  # keyed by sha256: the second load reused it


def _archive_with(tmp_path: Path, member: tarfile.TarInfo, data: bytes = b"") -> Path:
    archive = tmp_path / "evil.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        config = json.dumps({"architectures": ["T5ForConditionalGeneration"]}).encode()
        info = tarfile.TarInfo("config.json")
        info.size = len(config)
        tar.addfile(info, io.BytesIO(config))
        member.size = len(data)
        tar.addfile(member, io.BytesIO(data) if data else None)
    return archive


@pytest.mark.parametrize(
    "name, kind, problem",
    [
        ("../escape.txt", tarfile.REGTYPE, "'..'"),
        ("/etc/evil", tarfile.REGTYPE, "absolute"),
        ("link", tarfile.SYMTYPE, "link"),
    ],
)
def test_hostile_archives_are_refused(
    tmp_path: Path, name: str, kind: bytes, problem: str, isolated_user_dirs: Path
) -> None:
    member = tarfile.TarInfo(name)
    member.type = kind
    if kind == tarfile.SYMTYPE:
        member.linkname = "/etc/passwd"
    archive = _archive_with(tmp_path, member, b"x" if kind == tarfile.REGTYPE else b"")
    with pytest.raises(UsageError, match=problem):
        LocalBackend("evil", model=str(archive)).ask("who?")
    assert not (tmp_path.parent / "escape.txt").exists()
    cache = isolated_user_dirs / "cache" / "qa-console" / "models"
    assert not cache.exists() or not any(p for p in cache.iterdir() if not p.name.startswith("."))


def test_an_archive_without_weights_is_named_as_given_not_as_the_cache_folder(
    tmp_path: Path, isolated_user_dirs: Path
) -> None:
    archive = _archive_with(tmp_path, tarfile.TarInfo("tokenizer.json"), b"{}")
    with pytest.raises(UsageError, match="no model weights") as raised:
        LocalBackend("weightless", model=str(archive)).ask("who?")
    assert raised.value.message.startswith(f"{archive} (extracted) has")
    assert "cache" not in raised.value.message


def test_a_damaged_weights_file_is_a_usage_error_not_a_traceback(
    trained_tiny_model: Path, tmp_path: Path
) -> None:
    damaged = tmp_path / "damaged"
    shutil.copytree(trained_tiny_model, damaged)
    (damaged / "model.safetensors").write_bytes(b"")
    with pytest.raises(UsageError, match=r"^backend 'damaged': cannot load the model in .*damaged"):
        LocalBackend("damaged", model=str(damaged)).ask("who?")


def test_not_a_seq2seq_model_is_a_clear_usage_error(tmp_path: Path) -> None:
    gpt = tmp_path / "gpt"
    gpt.mkdir()
    (gpt / "config.json").write_text(
        json.dumps({"architectures": ["GPT2LMHeadModel"], "model_type": "gpt2"})
    )
    (gpt / "model.safetensors").write_bytes(b"")
    with pytest.raises(UsageError, match="GPT2LMHeadModel model, not a sequence-to-sequence"):
        LocalBackend("gpt", model=str(gpt)).ask("who?")

    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(UsageError, match=r"no config\.json"):
        LocalBackend("empty", model=str(empty)).ask("who?")

    health = LocalBackend("missing", model=str(tmp_path / "missing")).health()
    assert not health.ok and "no model at" in health.detail


def test_constructing_the_backend_imports_nothing_heavy() -> None:
    """`backends list` builds instances: that must not import torch or load a model."""
    import subprocess
    import sys

    code = (
        "import sys; from qa_console.backends.local import LocalBackend; "
        "LocalBackend('x', model='nowhere').describe(); "
        "print(sorted(m for m in ('torch', 'transformers') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
