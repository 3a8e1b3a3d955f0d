"""The model handler that ships as `code/inference.py` in model.tar.gz.

It follows the Hugging Face inference toolkit contract, which the SageMaker Hugging Face container
calls in this order: `model_fn(model_dir)` once, then `input_fn -> predict_fn -> output_fn` per
request. Every function also accepts the toolkit's trailing `context` argument (the toolkit decides
whether to pass it by counting parameters, so each has exactly one optional extra).

Why a custom handler at all: transformers 5 removed the text2text-generation pipeline the
container's default handler would build for a T5 model, so we load the model ourselves and call
`generate` directly.

This file runs inside AWS: it imports nothing from qa_console, and torch/transformers only inside
`model_fn`/`predict_fn` so that validators can import it in a second.

Request:  {"inputs": "question" | ["q1", "q2"], "parameters": {"max_new_tokens": 32, ...}}
          (or a text/plain body holding one question)
Response: [{"generated_text": "..."}], one entry per input; with num_return_sequences > 1,
          one list of entries per input.
Batch:    a JSON list of requests, [{"inputs": ..., "parameters": ...}, ...] (what the toolkit
          hands a handler when the model server batches). The answer is a list holding, in
          order, what each request alone would get; requests with the same parameters share
          one padded generate call. ACCEPTS_BATCHES tells the local runtime it may send these.
Errors:   RequestError (a ValueError) whose message says what to change; the container turns it
          into a 400 with that message.
"""

from __future__ import annotations

import json
from typing import Any

JSON_TYPE = "application/json"
TEXT_TYPE = "text/plain"

# The model was trained on inputs of this form (see the training data), so a bare question is
# wrapped; an input already carrying the prefix passes unchanged.
QUESTION_PREFIX = "question:"

# The bot's reply when it does not know: the biography training data teaches this exact string
# (for people not in the data and questions about the world), and `ask --json` reads it to say
# "known": false. One place, so the data and the app cannot drift apart.
UNKNOWN_ANSWER = "I don't know."


def is_unknown_answer(answer: str) -> bool:
    """True for the abstention reply, forgiving case, spacing and a missing full stop."""
    return " ".join(answer.split()).rstrip(".").casefold() == UNKNOWN_ANSWER.rstrip(".").casefold()


MAX_BATCH = 16  # inputs per request, and requests per batch
# predict_fn takes a list of validated requests and returns one prediction per request, so a
# model server may gather concurrent requests into one call (qa-console's local runtime reads it).
ACCEPTS_BATCHES = True
MAX_INPUT_CHARS = 2_000  # per input, checked before tokenizing
MAX_INPUT_TOKENS = 512  # per input, checked after tokenizing (T5's trained length)

# name -> (type, lowest, highest). Bounds keep one request from holding a worker for minutes.
PARAMETER_BOUNDS: dict[str, tuple[type, float, float]] = {
    "max_new_tokens": (int, 1, 512),
    "min_new_tokens": (int, 0, 512),
    "num_beams": (int, 1, 8),
    "num_return_sequences": (int, 1, 8),
    "do_sample": (bool, 0, 1),
    "temperature": (float, 0.01, 2.0),
    "top_p": (float, 0.01, 1.0),
    "top_k": (int, 1, 1_000),
    "repetition_penalty": (float, 0.5, 3.0),
    "length_penalty": (float, -2.0, 2.0),
    "no_repeat_ngram_size": (int, 0, 10),
    "early_stopping": (bool, 0, 1),
    "seed": (int, 0, 2**32 - 1),
}
DEFAULT_PARAMETERS: dict[str, Any] = {"max_new_tokens": 64, "num_beams": 1, "do_sample": False}
SAMPLING_ONLY = ("temperature", "top_p", "top_k")


class RequestError(ValueError):
    """A request this handler refuses; the message tells the caller what to change."""


def format_input(question: str, context: str | None = None) -> str:
    """The model's input text, the one format training, evaluation, the local backend and this
    handler share: "question: Q context: C", or "question: Q" without context. A question that
    already carries the prefix is not prefixed twice."""
    stripped = question.strip()
    if stripped.lower().startswith(QUESTION_PREFIX):
        stripped = stripped[len(QUESTION_PREFIX) :].strip()
    context = (context or "").strip()
    text = f"{QUESTION_PREFIX} {stripped}"
    return f"{text} context: {context}" if context else text


# --- the contract ---------------------------------------------------------------------------


def model_fn(model_dir: str, context: Any = None) -> dict[str, Any]:
    """Load the tokenizer and the seq2seq model from the unpacked model.tar.gz."""
    import torch
    from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

    device = "cuda" if torch.cuda.is_available() else "cpu"
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForSeq2SeqLM.from_pretrained(model_dir)
    model.to(device)
    model.eval()
    # int8 kernels are CPU kernels: on a GPU the model is served as saved.
    fast_path = _fast_path_of(model_dir) if device == "cpu" else "none"
    if fast_path == "int8":
        model, fast_path = _quantize_int8(model)
    return {"model": model, "tokenizer": tokenizer, "device": device, "fast_path": fast_path}


def _fast_path_of(model_dir: str) -> str:
    """The CPU fast path the package chose ("int8" or "none"): manifest.json's "fast_path",
    unless the container's environment names one (QA_CONSOLE_FAST_PATH, set at deploy time)."""
    import os

    chosen = os.environ.get("QA_CONSOLE_FAST_PATH", "").strip().lower()
    if not chosen:
        try:
            with open(os.path.join(model_dir, "manifest.json"), encoding="utf-8") as handle:
                chosen = str(json.load(handle).get("fast_path") or "none")
        except (OSError, ValueError, AttributeError):
            chosen = "none"  # no manifest (a hand-made archive): the model as saved
    if chosen not in ("int8", "none"):
        import sys

        print(f"unknown fast path {chosen!r} (int8 or none); serving the model as saved",
              file=sys.stderr)  # fmt: skip
        return "none"
    return chosen


def _quantize_int8(model: Any) -> tuple[Any, str]:
    """Dynamic int8 quantisation of every Linear layer: weights stored as int8, activations
    quantised per call. Most of a T5's time is in those matmuls, so on CPU this is the fast path
    (docs/benchmarks.md "Fast path"). Done at load time, not at packaging, so the tarball keeps
    plain safetensors weights that every loader and container understands. A torch without
    torch.ao.quantization serves the fp32 model rather than failing to load."""
    import sys
    import warnings

    import torch

    try:
        from torch.ao.quantization import quantize_dynamic
    except ImportError as error:
        print(f"int8 fast path unavailable ({error}); serving fp32", file=sys.stderr)
        return model, "none"
    with warnings.catch_warnings():  # torch 2.10+ flags torch.ao.quantization as deprecated
        warnings.simplefilter("ignore")
        quantized = quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8, inplace=True)
    print("int8 fast path: Linear layers quantised (dynamic int8)", file=sys.stderr)
    return quantized, "int8"


def input_fn(
    body: Any, content_type: str | None, context: Any = None
) -> dict[str, Any] | list[dict[str, Any]]:
    """Decode and validate a request body into {"inputs": ..., "parameters": {...}}, or a JSON
    list body into a list of those (the batch contract)."""
    media_type = (content_type or JSON_TYPE).split(";")[0].strip().lower()
    text = _decode_text(body)
    if media_type == TEXT_TYPE:
        return validate_request({"inputs": text})
    if media_type not in (JSON_TYPE, "application/x-json"):
        raise RequestError(
            f"unsupported content type {content_type!r}: send application/json "
            '({"inputs": "your question"}) or text/plain'
        )
    try:
        request = json.loads(text)
    except json.JSONDecodeError as error:
        raise RequestError(
            f"malformed JSON body: {error.msg} at line {error.lineno} column {error.colno}"
        ) from None
    if isinstance(request, list):
        return validate_batch(request)
    return validate_request(request)


def predict_fn(data: Any, model: dict[str, Any], context: Any = None) -> list[Any]:
    """Generate an answer for every input. `data` is input_fn's result (or a raw request dict);
    a list of requests gets a list of predictions, one per request, in order."""
    if isinstance(data, list):
        return _predict_batch(validate_batch(data), model)
    request = validate_request(data)  # idempotent: input_fn's output is a valid request
    texts = _texts(request["inputs"])
    return _group_entries(_generate(texts, request["parameters"], model), request["parameters"])


def _predict_batch(requests: list[dict[str, Any]], model: dict[str, Any]) -> list[Any]:
    """One generate call per distinct set of parameters; each request gets its own slice back."""
    groups: dict[str, list[int]] = {}
    for index, request in enumerate(requests):
        key = json.dumps(request["parameters"], sort_keys=True)
        groups.setdefault(key, []).append(index)
    predictions: list[Any] = [None] * len(requests)
    for indices in groups.values():
        parameters = requests[indices[0]]["parameters"]
        texts_per_request = [_texts(requests[index]["inputs"]) for index in indices]
        entries = _generate(
            [text for texts in texts_per_request for text in texts], parameters, model
        )
        per_input = parameters.get("num_return_sequences", 1)
        start = 0
        for index, texts in zip(indices, texts_per_request, strict=True):
            end = start + len(texts) * per_input
            predictions[index] = _group_entries(entries[start:end], parameters)
            start = end
    return predictions


def _texts(inputs: str | list[str]) -> list[str]:
    return [format_input(item) for item in ([inputs] if isinstance(inputs, str) else inputs)]


def _generate(
    texts: list[str], parameters: dict[str, Any], model: dict[str, Any]
) -> list[dict[str, str]]:
    """One padded generate call: num_return_sequences entries per text, in order."""
    import torch

    tokenizer, network = model["tokenizer"], model["model"]
    lengths = [len(ids) for ids in tokenizer(texts)["input_ids"]]
    too_long = [i for i, n in enumerate(lengths) if n > MAX_INPUT_TOKENS]
    if too_long:
        raise RequestError(
            f"input {too_long[0]} is {lengths[too_long[0]]} tokens long; "
            f"the limit is {MAX_INPUT_TOKENS}: shorten it"
        )

    generate_parameters = dict(parameters)
    seed = generate_parameters.pop("seed", None)
    if seed is not None:
        torch.manual_seed(seed)
    encoded = tokenizer(texts, return_tensors="pt", padding=True).to(model["device"])
    encoded.pop("token_type_ids", None)  # some fast tokenizers add it; T5 takes none
    with torch.inference_mode():
        output_ids = network.generate(**encoded, **generate_parameters)
    answers = tokenizer.batch_decode(output_ids, skip_special_tokens=True)
    return [{"generated_text": answer.strip()} for answer in answers]


def _group_entries(entries: list[dict[str, str]], parameters: dict[str, Any]) -> list[Any]:
    """The response shape: one entry per input, or one list per input with several sequences."""
    per_input = parameters.get("num_return_sequences", 1)
    if per_input == 1:
        return entries
    return [entries[i : i + per_input] for i in range(0, len(entries), per_input)]


def output_fn(prediction: Any, accept: str | None, context: Any = None) -> str:
    """Serialise the prediction as JSON, the only response type this handler speaks."""
    media_type = (accept or JSON_TYPE).split(";")[0].strip().lower()
    if media_type not in (JSON_TYPE, "*/*", "application/*"):
        raise RequestError(f"unsupported accept type {accept!r}: ask for application/json")
    return json.dumps(prediction, ensure_ascii=False)


# --- validation -------------------------------------------------------------------------------


def validate_batch(requests: list[Any]) -> list[dict[str, Any]]:
    """Check a list of requests (the batch contract); an error names the request at fault."""
    if not requests:
        raise RequestError("the batch is an empty list: give at least one request")
    if len(requests) > MAX_BATCH:
        raise RequestError(f"the batch has {len(requests)} requests; the limit is {MAX_BATCH}")
    validated = []
    for index, request in enumerate(requests):
        try:
            validated.append(validate_request(request))
        except RequestError as error:
            raise RequestError(f"request {index} of the batch: {error}") from None
    return validated


def validate_request(request: Any) -> dict[str, Any]:
    """Check a decoded request; return it with the default parameters filled in.

    The result is itself a valid request, so checking twice (input_fn, then predict_fn, which must
    also accept the container's default input_fn output) gives the same answer.
    """
    if not isinstance(request, dict):
        raise RequestError(
            f"the body must be a JSON object, not {_json_type(request)}: "
            'send {"inputs": "your question"}'
        )
    unknown = sorted(set(request) - {"inputs", "parameters"})
    if unknown:
        raise RequestError(
            f"unknown key {unknown[0]!r}: a request has 'inputs' and optional 'parameters'"
        )
    if "inputs" not in request:
        raise RequestError('missing "inputs": send {"inputs": "your question"}')
    _validate_inputs(request["inputs"])
    parameters = validate_parameters(request.get("parameters"))
    return {"inputs": request["inputs"], "parameters": parameters}


def _validate_inputs(inputs: Any) -> None:
    if isinstance(inputs, str):
        items, batched = [inputs], False
    elif isinstance(inputs, list):
        items, batched = inputs, True
        if not items:
            raise RequestError('"inputs" is an empty list: give at least one question')
        if len(items) > MAX_BATCH:
            raise RequestError(
                f'"inputs" has {len(items)} questions; the limit is {MAX_BATCH} per request'
            )
    else:
        raise RequestError(
            f'"inputs" must be a string or a list of strings, not {_json_type(inputs)}'
        )
    for index, item in enumerate(items):
        where = f'"inputs"[{index}]' if batched else '"inputs"'
        if not isinstance(item, str):
            raise RequestError(f"{where} must be a string, not {_json_type(item)}")
        if not item.strip():
            raise RequestError(f"{where} is empty: ask a question")
        if len(item) > MAX_INPUT_CHARS:
            raise RequestError(
                f"{where} is {len(item)} characters long; the limit is {MAX_INPUT_CHARS}"
            )


def validate_parameters(parameters: Any) -> dict[str, Any]:
    """Check generation parameters against PARAMETER_BOUNDS; return them with defaults added."""
    if parameters is None:
        parameters = {}
    if not isinstance(parameters, dict):
        raise RequestError(f'"parameters" must be a JSON object, not {_json_type(parameters)}')
    result = dict(DEFAULT_PARAMETERS)
    for name, value in parameters.items():
        if name not in PARAMETER_BOUNDS:
            raise RequestError(
                f"unknown parameter {name!r}; supported: {', '.join(sorted(PARAMETER_BOUNDS))}"
            )
        kind, low, high = PARAMETER_BOUNDS[name]
        result[name] = _check_value(name, value, kind, low, high)

    if not result["do_sample"]:
        given = [name for name in SAMPLING_ONLY if name in parameters]
        if given:
            raise RequestError(
                f'{given[0]!r} only applies when sampling: add "do_sample": true or drop it'
            )
        if result.get("num_return_sequences", 1) > result["num_beams"]:
            raise RequestError(
                "num_return_sequences cannot exceed num_beams without sampling: "
                "raise num_beams or set do_sample"
            )
    if result.get("min_new_tokens", 0) > result["max_new_tokens"]:
        raise RequestError("min_new_tokens cannot exceed max_new_tokens")
    return result


def _check_value(name: str, value: Any, kind: type, low: float, high: float) -> Any:
    if kind is bool:
        if not isinstance(value, bool):
            raise RequestError(f"parameter {name!r} must be true or false, not {value!r}")
        return value
    # JSON has no int/float distinction worth trusting, but true/false must not pass as 1/0.
    is_number = isinstance(value, int | float) and not isinstance(value, bool)
    if kind is int and not (is_number and float(value).is_integer()):
        raise RequestError(f"parameter {name!r} must be an integer, not {value!r}")
    if kind is float and not is_number:
        raise RequestError(f"parameter {name!r} must be a number, not {value!r}")
    if not low <= value <= high:
        raise RequestError(f"parameter {name!r} must be between {low:g} and {high:g}, not {value}")
    return int(value) if kind is int else float(value)


def _decode_text(body: Any) -> str:
    if isinstance(body, str):
        return body
    if isinstance(body, bytes | bytearray | memoryview):
        try:
            return bytes(body).decode("utf-8")
        except UnicodeDecodeError:
            raise RequestError("the body is not valid UTF-8 text") from None
    raise RequestError(f"the body must be text or bytes, not {type(body).__name__}")


def _json_type(value: Any) -> str:
    names = {dict: "an object", list: "a list", str: "a string", bool: "a boolean"}
    if value is None:
        return "null"
    for kind, name in names.items():
        if isinstance(value, kind):
            return name
    return "a number" if isinstance(value, int | float) else type(value).__name__
