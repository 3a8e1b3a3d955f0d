"""The CPU fast path: chosen when packaging, recorded in manifest.json, applied by the handler's
model_fn (dynamic int8 Linear layers), and answering like the fp32 model."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from qa_console.errors import UsageError
from qa_console.inference import model_handler as handler
from qa_console.inference.handler_contract import HandlerHost, load_handler
from qa_console.ops.packaging import fast_path
from qa_console.ops.packaging.build import build
from qa_console.ops.packaging.safe_tar import safe_extract

JSON = "application/json"


def unpacked(archive: Path, folder: Path) -> Path:
    safe_extract(archive, folder)
    return folder


def quantized_linears(model: Any) -> int:
    from torch.ao.nn.quantized.dynamic import Linear as DynamicQuantizedLinear

    return sum(isinstance(module, DynamicQuantizedLinear) for module in model.modules())


@pytest.fixture(scope="module")
def int8_dir(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("int8")
    archive = build(tiny_model_dir, folder / "model.tar.gz", fast_path="int8").archive
    return unpacked(archive, folder / "model")


def test_the_manifest_records_the_chosen_fast_path(tiny_model_dir: Path, tmp_path: Path) -> None:
    asked = build(tiny_model_dir, tmp_path / "int8.tar.gz", fast_path="int8")
    assert asked.manifest["fast_path"] == "int8"
    manifest = json.loads((unpacked(asked.archive, tmp_path / "x") / "manifest.json").read_text())
    assert manifest["fast_path"] == "int8"
    # auto: the tiny model is below the size where int8 pays, so it ships as saved
    auto = build(tiny_model_dir, tmp_path / "auto.tar.gz")
    assert auto.manifest["fast_path"] == "none"
    assert "M parameters <" in auto.fast_path_reason


def test_auto_picks_int8_from_the_parameter_threshold(
    tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    parameters = fast_path.parameter_count(tiny_model_dir)
    assert parameters is not None and 10_000 < parameters < 10_000_000  # a tiny T5
    monkeypatch.setattr(fast_path, "INT8_MIN_PARAMETERS", parameters)
    assert fast_path.choose_fast_path("auto", tiny_model_dir).fast_path == "int8"
    monkeypatch.setattr(fast_path, "INT8_MIN_PARAMETERS", parameters + 1)
    assert fast_path.choose_fast_path("auto", tiny_model_dir).fast_path == "none"
    assert fast_path.choose_fast_path("NONE", tiny_model_dir).fast_path == "none"
    with pytest.raises(UsageError, match="unknown fast path 'fp16'"):
        fast_path.choose_fast_path("fp16", tiny_model_dir)


def test_the_handler_loads_an_int8_package_and_answers(int8_dir: Path) -> None:
    host = HandlerHost(load_handler(int8_dir / "code"), str(int8_dir))
    host.load()
    assert host.model["fast_path"] == "int8"
    assert quantized_linears(host.model["model"]) > 0
    body = json.dumps({"inputs": "When was Ada Lovelace born?"}).encode()
    response, _ = host.invoke(body, JSON, JSON)
    answers = json.loads(str(response))
    assert len(answers) == 1 and isinstance(answers[0]["generated_text"], str)


def test_the_container_environment_can_turn_the_fast_path_off(
    int8_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("QA_CONSOLE_FAST_PATH", "none")
    loaded = handler.model_fn(str(int8_dir))
    assert loaded["fast_path"] == "none" and quantized_linears(loaded["model"]) == 0


@pytest.mark.slow
def test_int8_exact_match_is_within_one_point_of_fp32(
    trained_tiny_model: Path, tiny_slice: Path, tmp_path: Path
) -> None:
    """The fixture model (trained on a 6-person slice of the biography data), packaged both ways
    and loaded through the handler, scored on the slice's questions.

    The slice's test split has only 18 questions, so there one question is 5.6 points and
    "within 1 point" would forbid a single changed answer: on it the bound is one question
    (measured: int8 33.3 vs fp32 27.8, int8 one better). The 1-point bound is checked over all
    the slice's questions (train + validation + test, ~130: one question is < 1 point).
    docs/benchmarks.md "Fast path" has the same comparison on the full 121-question test split.
    """
    from qa_console.ops.training.data import load_qa_dataset
    from qa_console.ops.training.evaluate import evaluate_examples

    dataset = load_qa_dataset(str(tiny_slice))
    every = [*dataset.train, *dataset.validation, *dataset.test]
    scores: dict[str, dict[str, float]] = {}
    for choice in ("none", "int8"):
        archive = build(trained_tiny_model, tmp_path / f"{choice}.tar.gz", fast_path=choice)
        loaded = handler.model_fn(str(unpacked(archive.archive, tmp_path / choice)))
        assert loaded["fast_path"] == choice
        scores[choice] = {
            split: evaluate_examples(
                loaded["model"], loaded["tokenizer"], examples, split=split
            ).exact_match
            for split, examples in (("test", dataset.test), ("all", every))
        }
    assert scores["none"]["all"] > 60, scores  # the model learned something to compare
    assert abs(scores["int8"]["all"] - scores["none"]["all"]) <= 1.0, scores
    one_question = 100.0 / len(dataset.test)
    assert abs(scores["int8"]["test"] - scores["none"]["test"]) <= one_question + 0.01, scores


def test_package_cli_takes_the_fast_path(tiny_model_dir: Path, tmp_path: Path) -> None:
    from fixtures_foundation import run_cli

    target = tmp_path / "model.tar.gz"
    completed = run_cli("package", str(tiny_model_dir), "-o", str(target), "--fast-path", "int8",
                        "--json", timeout=120)  # fmt: skip
    assert completed.returncode == 0, completed.stderr
    assert json.loads(completed.stdout)["package"]["manifest"]["fast_path"] == "int8"
    refused = run_cli("package", str(tiny_model_dir), "-o", str(target), "--fast-path", "fp16")
    assert refused.returncode == 2 and "unknown fast path 'fp16'" in refused.stderr


def test_the_runtime_serves_an_int8_package_as_the_handler_does(
    runtime_aws: Any, tiny_model_dir: Path, int8_dir: Path, tmp_path: Path
) -> None:
    """The worker process loads the package through the same model_fn: same answers as the
    int8 model in this process."""
    archive = build(tiny_model_dir, tmp_path / "model.tar.gz", fast_path="int8").archive
    runtime_aws.deploy("int8-tiny", archive)
    client = runtime_aws.client("sagemaker-runtime")
    host = HandlerHost(load_handler(int8_dir / "code"), str(int8_dir))
    host.load()
    for question in ("When was Ada Lovelace born?", "Where is the tower?"):
        body = json.dumps({"inputs": question, "parameters": {"max_new_tokens": 8}}).encode()
        response = client.invoke_endpoint(EndpointName="int8-tiny", Body=body, ContentType=JSON)
        expected, _ = host.invoke(body, JSON, JSON)
        assert json.loads(response["Body"].read()) == json.loads(str(expected))
