"""The handler (inference/model_handler.py -> code/inference.py) through the container's contract:
model_fn once, then input_fn -> predict_fn -> output_fn, with and without the trailing context;
every refusal says what to change; the smoke test runs it all from the archive."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from fixtures_foundation import run_cli
from fixtures_package import FACTS, read_entries, with_handler, write_archive
from qa_console.errors import OperationError, TimeoutError_
from qa_console.inference import model_handler as handler
from qa_console.inference.handler_contract import Context, HandlerHost, load_handler
from qa_console.ops.packaging.smoke import smoke_test

JSON = "application/json"


@pytest.fixture(scope="module")
def loaded(tiny_model_dir: Path) -> dict[str, Any]:
    return handler.model_fn(str(tiny_model_dir))


def ask(loaded: dict[str, Any], request: Any, *, context: Any = None) -> Any:
    """One request through the per-request functions, as the container calls them."""
    extra = [context] if context is not None else []
    body = json.dumps(request).encode()
    data = handler.input_fn(body, JSON, *extra)
    prediction = handler.predict_fn(data, loaded, *extra)
    return json.loads(handler.output_fn(prediction, JSON, *extra))


def test_the_contract_sequence_answers_what_the_model_learnt(loaded: dict[str, Any]) -> None:
    for question, answer in FACTS.items():
        assert ask(loaded, {"inputs": question}) == [{"generated_text": answer}]


def test_the_same_sequence_with_the_context_argument(tiny_model_dir: Path) -> None:
    context = Context(str(tiny_model_dir))
    model = handler.model_fn(str(tiny_model_dir), context)
    reply = ask(model, {"inputs": "Who was Marie Curie?"}, context=context)
    assert reply == [{"generated_text": "scientist"}]


def test_batched_inputs_keep_their_order(loaded: dict[str, Any]) -> None:
    questions = list(FACTS)
    reply = ask(loaded, {"inputs": questions, "parameters": {"max_new_tokens": 4}})
    assert [item["generated_text"] for item in reply] == list(FACTS.values())


def test_answers_equal_a_direct_generate_call(loaded: dict[str, Any]) -> None:
    import torch

    question = "where was marie curie born?"
    tokenizer, model = loaded["tokenizer"], loaded["model"]
    with torch.inference_mode():
        ids = model.generate(
            **tokenizer([f"question: {question}"], return_tensors="pt"), num_beams=2
        )
    direct = tokenizer.decode(ids[0], skip_special_tokens=True)
    reply = ask(loaded, {"inputs": question, "parameters": {"num_beams": 2}})
    assert reply == [{"generated_text": direct}] == [{"generated_text": "paris"}]


def test_several_sequences_per_input_come_back_grouped(loaded: dict[str, Any]) -> None:
    params = {"num_beams": 3, "num_return_sequences": 2, "max_new_tokens": 3}
    reply = ask(
        loaded, {"inputs": ["who was ada lovelace?", "who was marie curie?"], "parameters": params}
    )
    assert [len(group) for group in reply] == [2, 2]
    assert reply[0][0] == {"generated_text": "poet"}


def test_sampling_with_a_seed_is_repeatable(loaded: dict[str, Any]) -> None:
    params = {"do_sample": True, "temperature": 1.5, "top_k": 20, "seed": 7, "max_new_tokens": 5}
    first = ask(loaded, {"inputs": "who was ada lovelace?", "parameters": params})
    assert first == ask(loaded, {"inputs": "who was ada lovelace?", "parameters": params})


def test_text_plain_bodies_and_prefixed_inputs_are_accepted(loaded: dict[str, Any]) -> None:
    data = handler.input_fn(b"who was ada lovelace?", "text/plain; charset=utf-8")
    assert json.loads(handler.output_fn(handler.predict_fn(data, loaded), "*/*")) == [
        {"generated_text": "poet"}
    ]
    assert handler.format_input("question: already formatted") == "question: already formatted"
    assert handler.format_input("  Who?  ") == "question: Who?"


def asking(**parameters: Any) -> bytes:
    """A JSON body asking "hi" with these generation parameters."""
    return json.dumps({"inputs": "hi", "parameters": parameters}).encode()


REFUSALS: list[tuple[Any, str | None, str]] = [
    # (body, content type, words the message must contain)
    (b'{"inputs": "hi"}', "application/x-www-form-urlencoded", "unsupported content type"),
    (b'{"inputs": "hi"', JSON, "malformed JSON body"),
    (b"\xff\xfe\x00", JSON, "not valid UTF-8"),
    (b'["hi"]', JSON, "must be a JSON object"),
    (b'{"question": "hi"}', JSON, "unknown key 'question'"),
    (b'{"parameters": {}}', JSON, 'missing "inputs"'),
    (b'{"inputs": 42}', JSON, "must be a string or a list of strings"),
    (b'{"inputs": ["ok", 3]}', JSON, '"inputs"[1] must be a string'),
    (b'{"inputs": "   "}', JSON, "is empty"),
    (b'{"inputs": []}', JSON, "empty list"),
    (json.dumps({"inputs": ["q"] * 17}).encode(), JSON, "the limit is 16"),
    (json.dumps({"inputs": "x" * 2001}).encode(), JSON, "the limit is 2000"),
    (b'{"inputs": "hi", "parameters": [1]}', JSON, '"parameters" must be a JSON object'),
    (asking(beams=2), JSON, "unknown parameter 'beams'"),
    (asking(max_new_tokens=0), JSON, "between 1 and 512"),
    (asking(max_new_tokens=100000), JSON, "between 1 and 512"),
    (asking(max_new_tokens=2.5), JSON, "must be an integer"),
    (asking(num_beams=True), JSON, "must be an integer"),
    (asking(do_sample=1), JSON, "must be true or false"),
    (asking(do_sample=True, temperature="hot"), JSON, "must be a number"),
    (asking(do_sample=True, temperature=9), JSON, "between 0.01 and 2"),
    (asking(temperature=0.7), JSON, '"do_sample": true'),
    (asking(num_return_sequences=3), JSON, "cannot exceed num_beams"),
    (asking(min_new_tokens=9, max_new_tokens=4), JSON, "cannot exceed max_new_tokens"),
]


@pytest.mark.parametrize(("body", "content_type", "words"), REFUSALS)
def test_input_fn_refuses_bad_requests_with_a_readable_message(
    body: bytes, content_type: str, words: str
) -> None:
    with pytest.raises(handler.RequestError) as caught:
        handler.input_fn(body, content_type)
    assert words in str(caught.value)
    assert isinstance(caught.value, ValueError)  # the container maps it to a 400


def test_predict_fn_refuses_inputs_over_the_token_limit(loaded: dict[str, Any]) -> None:
    data = handler.input_fn(json.dumps({"inputs": "a " * 600}).encode(), JSON)
    with pytest.raises(handler.RequestError, match="tokens long; the limit is 512"):
        handler.predict_fn(data, loaded)


def test_predict_fn_validates_raw_requests_too(loaded: dict[str, Any]) -> None:
    # The container's default input_fn hands predict_fn the decoded JSON unchecked.
    with pytest.raises(handler.RequestError, match="unknown parameter"):
        handler.predict_fn({"inputs": "hi", "parameters": {"bogus": 1}}, loaded)
    assert handler.predict_fn({"inputs": "who was ada lovelace?"}, loaded) == [
        {"generated_text": "poet"}
    ]


def test_output_fn_refuses_an_accept_type_it_cannot_write() -> None:
    with pytest.raises(handler.RequestError, match="unsupported accept type 'text/csv'"):
        handler.output_fn([{"generated_text": "x"}], "text/csv")


def test_importing_the_handler_loads_neither_torch_nor_qa_console() -> None:
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]); import model_handler; "
        "print(sorted(m for m in ('torch', 'transformers', 'qa_console') if m in sys.modules))"
    )
    completed = subprocess.run(
        [sys.executable, "-I", "-c", code, str(Path(handler.__file__).parent)],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert completed.stdout.strip() == "[]"


# --- the container's call sequence, emulated -------------------------------------------------


def write_handler(folder: Path, source: str, module: str) -> Path:
    code = folder / "code"
    code.mkdir(parents=True)
    (code / f"{module}.py").write_text(textwrap.dedent(source))
    return code


def test_host_passes_context_only_to_functions_that_take_it(tmp_path: Path) -> None:
    code = write_handler(
        tmp_path,
        """
        import json
        SEEN = []
        def model_fn(model_dir, context):
            SEEN.append(("model_fn", context.system_properties["model_dir"]))
            return "model"
        def input_fn(body, content_type):
            SEEN.append(("input_fn", type(body).__name__, content_type))
            return json.loads(body)
        def predict_fn(data, model, context):
            SEEN.append(("predict_fn", model, context is not None))
            return [{"generated_text": data["inputs"].upper()}]
        def output_fn(prediction, accept):
            SEEN.append(("output_fn", accept))
            return json.dumps(prediction)
        """,
        module="inference_context_probe",  # a name of its own: imported into this process
    )
    module = load_handler(code, module_name="inference_context_probe")
    host = HandlerHost(module, str(tmp_path))
    host.load()
    response, timings = host.invoke(b'{"inputs": "hi"}', JSON, "*/*")
    assert json.loads(response) == [{"generated_text": "HI"}]
    assert [
        ("model_fn", str(tmp_path)),
        ("input_fn", "str", JSON),  # JSON bodies arrive decoded, as the container does it
        ("predict_fn", "model", True),
        ("output_fn", JSON),  # */* becomes application/json
    ] == module.SEEN
    assert set(timings) == {"input_ms", "predict_ms", "output_ms"}


def test_smoke_test_answers_from_the_archive_with_timings(tiny_archive: Path) -> None:
    result = smoke_test(tiny_archive, question="When was Ada Lovelace born?")
    assert result.answer == "1815"
    assert result.response == [{"generated_text": "1815"}]
    assert result.load_ms > 0 and result.predict_ms > 0


def test_smoke_cli_prints_the_answer(tiny_archive: Path) -> None:
    completed = run_cli(
        "package", "--smoke", str(tiny_archive), "--question", "Who was Ada Lovelace?"
    )
    assert completed.returncode == 0, completed.stderr
    assert "answer: poet" in completed.stdout
    assert "model_fn" in completed.stdout and "ms" in completed.stdout


def _archive_with_handler(tmp_path: Path, tiny_archive: Path, source: str) -> Path:
    """The tiny archive with another handler (manifest restamped, so only the handler differs)."""
    entries = with_handler(read_entries(tiny_archive), textwrap.dedent(source))
    return write_archive(tmp_path / "model.tar.gz", entries)


def test_smoke_reports_the_stage_where_the_handler_failed(
    tiny_archive: Path, tmp_path: Path
) -> None:
    archive = _archive_with_handler(
        tmp_path,
        tiny_archive,
        """
        def model_fn(model_dir):
            raise FileNotFoundError("weights.bin is missing")
        def predict_fn(data, model):
            return data
        """,
    )
    with pytest.raises(OperationError) as caught:
        smoke_test(archive)
    assert "model_fn" in caught.value.message and "weights.bin is missing" in caught.value.message


def test_smoke_stops_a_handler_that_hangs(tiny_archive: Path, tmp_path: Path) -> None:
    archive = _archive_with_handler(
        tmp_path,
        tiny_archive,
        """
        import time
        def model_fn(model_dir):
            time.sleep(120)
        """,
    )
    with pytest.raises(TimeoutError_):
        smoke_test(archive, timeout_s=3)
