"""The Hugging Face inference toolkit's handler contract, checked and exercised outside AWS.

The SageMaker Hugging Face container imports `code/inference.py` and calls, when defined,
`model_fn(model_dir)` once, then per request `input_fn(body, content_type)`,
`predict_fn(data, model)`, `output_fn(prediction, accept)` (or one `transform_fn(model, body,
content_type, accept)` instead of those three). Each may take one trailing `context` argument; the
toolkit decides by counting the function's parameters, and refuses any other count at start-up.

This file is stdlib only and never imports qa_console: it runs as a script in a fresh interpreter
(`python -I handler_contract.py inspect|smoke ...`) so that a user's handler that hangs, crashes
or imports heavy libraries cannot take the caller down, and so it sees the handler the way the
container does (only the code folder on sys.path). The caller reads one JSON result file.
Other parts of qa-console (the local runtime) can reuse `load_handler` and `HandlerHost`.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import json
import os
import sys
import time
import traceback
from pathlib import Path
from types import ModuleType
from typing import Any

# Parameters each function takes without the optional trailing context.
CONTRACT: dict[str, int] = {
    "model_fn": 1,
    "input_fn": 2,
    "predict_fn": 2,
    "output_fn": 2,
    "transform_fn": 4,
}
PER_REQUEST = ("input_fn", "predict_fn", "output_fn")
MODULE_NAME = "inference"  # the container's default SAGEMAKER_PROGRAM is inference.py
UTF8_TYPES = ("application/json", "text/csv", "text/plain")  # bodies the container decodes


class HandlerContractError(Exception):
    """The handler cannot be called the way the container calls it."""


def describe_module(module: ModuleType) -> dict[str, dict[str, Any]]:
    """What the container would see of each contract function: present, callable, arity."""
    described: dict[str, dict[str, Any]] = {}
    for name in CONTRACT:
        value = getattr(module, name, None)
        entry: dict[str, Any] = {"present": value is not None, "callable": callable(value)}
        if callable(value):
            try:
                signature = inspect.signature(value)
                entry["parameters"] = len(signature.parameters)
                entry["signature"] = f"{name}{signature}"
            except (TypeError, ValueError):
                entry["parameters"] = None
                entry["signature"] = name
        described[name] = entry
    return described


def contract_problems(described: dict[str, dict[str, Any]]) -> tuple[list[str], list[str]]:
    """(errors, warnings) for a describe_module() result, in the container's own terms."""
    errors: list[str] = []
    warnings: list[str] = []
    present = [name for name, entry in described.items() if entry.get("present")]
    for name in present:
        entry = described[name]
        base = CONTRACT[name]
        if not entry.get("callable"):
            errors.append(f"{name} is defined but is not a function")
        elif entry.get("parameters") not in (base, base + 1):
            errors.append(
                f"{entry.get('signature', name)} takes {entry.get('parameters')} parameters; "
                f"the container calls it with {base} (or {base + 1} with context)"
            )
    if "transform_fn" in present:
        mixed = [name for name in PER_REQUEST if name in present]
        if mixed:
            errors.append(
                f"transform_fn cannot be combined with {', '.join(mixed)}: "
                "define transform_fn alone or the three separate functions"
            )
    if not present:
        errors.append(
            "defines none of model_fn, input_fn, predict_fn, output_fn, transform_fn: "
            "the container would fall back to a pipeline that transformers 5 no longer has"
        )
    elif "model_fn" not in present:
        warnings.append(
            "no model_fn: the container's default loader builds a transformers pipeline, and "
            "transformers 5 has no text2text-generation pipeline"
        )
    elif "predict_fn" not in present and "transform_fn" not in present:
        warnings.append("no predict_fn: the container will call the model_fn result directly")
    return errors, warnings


def extra_args(name: str, function: Any, context: Any) -> list[Any]:
    """[context] when the function takes the optional trailing context, else []."""
    count = len(inspect.signature(function).parameters)
    if count == CONTRACT[name] + 1:
        return [context]
    if count == CONTRACT[name]:
        return []
    raise HandlerContractError(
        f"{name} takes {count} parameters; expected {CONTRACT[name]} or {CONTRACT[name] + 1}"
    )


def load_handler(code_dir: str | os.PathLike[str], module_name: str = MODULE_NAME) -> ModuleType:
    """Import the handler with only its code folder first on sys.path, as the container does."""
    code_dir = str(code_dir)
    if code_dir not in sys.path:
        sys.path.insert(0, code_dir)
    if module_name in sys.modules:
        del sys.modules[module_name]
    return importlib.import_module(module_name)


class Context:
    """The parts of the model server's context object a handler may read."""

    def __init__(self, model_dir: str) -> None:
        self.system_properties = {
            "model_dir": model_dir,
            "gpu_id": 0,
            "batch_size": 1,
            "server_name": "qa-console",
        }
        self.model_name = "model"
        self.manifest: dict[str, Any] = {"model": {"modelName": "model"}}


class HandlerHost:
    """Calls a handler module the way the Hugging Face container does, defaults included.

    The container's defaults for a missing input_fn/output_fn (JSON decode/encode) and predict_fn
    (call the model object) are reproduced; its default model_fn (a pipeline) is not, because
    that is the thing a T5 model cannot use under transformers 5.
    """

    def __init__(self, module: ModuleType, model_dir: str) -> None:
        errors, _ = contract_problems(describe_module(module))
        if errors:
            raise HandlerContractError("; ".join(errors))
        self.module = module
        self.model_dir = model_dir
        self.context = Context(model_dir)
        self.model: Any = None

    def _function(self, name: str) -> Any:
        return getattr(self.module, name, None)

    def load(self) -> Any:
        model_fn = self._function("model_fn")
        if model_fn is None:
            raise HandlerContractError(
                "no model_fn: the container would build a transformers pipeline, which "
                "cannot be reproduced here and does not exist for T5 in transformers 5"
            )
        self.model = model_fn(self.model_dir, *extra_args("model_fn", model_fn, self.context))
        return self.model

    def invoke(
        self, body: bytes, content_type: str = "application/json", accept: str | None = None
    ) -> tuple[Any, dict[str, float]]:
        """One request through the handler: returns (response, stage timings in ms)."""
        accept = _response_type(accept)
        data = _decoded_body(body, content_type)
        timings: dict[str, float] = {}
        transform_fn = self._function("transform_fn")
        if transform_fn is not None:
            started = time.perf_counter()
            response = transform_fn(
                self.model,
                data,
                content_type,
                accept,
                *extra_args("transform_fn", transform_fn, self.context),
            )
            timings["transform_ms"] = (time.perf_counter() - started) * 1000
            return response, timings

        started = time.perf_counter()
        decoded = self._call("input_fn", _default_input, data, content_type)
        timings["input_ms"] = (time.perf_counter() - started) * 1000
        started = time.perf_counter()
        prediction = self._call("predict_fn", _default_predict, decoded, self.model)
        timings["predict_ms"] = (time.perf_counter() - started) * 1000
        started = time.perf_counter()
        response = self._call("output_fn", _default_output, prediction, accept)
        timings["output_ms"] = (time.perf_counter() - started) * 1000
        return response, timings

    @property
    def accepts_batches(self) -> bool:
        """Whether predict_fn takes a list of decoded requests and returns one prediction per
        request: the handler says so with ACCEPTS_BATCHES = True (transform_fn handlers cannot)."""
        return bool(getattr(self.module, "ACCEPTS_BATCHES", False)) and (
            self._function("transform_fn") is None
        )

    def invoke_batch(self, requests: list[tuple[bytes, str, str | None]]) -> list[Any]:
        """Several (body, content_type, accept) requests with one predict_fn call.

        input_fn and output_fn still run per request, so each response has exactly the bytes the
        request alone would get; a request input_fn refuses gets its exception in its place
        without holding up the others. An exception from predict_fn is raised: the caller
        decides how to answer each request then (say, one call each)."""
        results: list[Any] = [None] * len(requests)
        decoded: dict[int, Any] = {}
        for index, (body, content_type, _) in enumerate(requests):
            try:
                data = _decoded_body(body, content_type)
                decoded[index] = self._call("input_fn", _default_input, data, content_type)
            except Exception as error:  # this request's own failure: its caller's error
                results[index] = error
        if decoded:
            predictions = self._call(
                "predict_fn", _default_predict, list(decoded.values()), self.model
            )
            if not isinstance(predictions, list) or len(predictions) != len(decoded):
                raise HandlerContractError(
                    f"predict_fn answered a batch of {len(decoded)} with "
                    f"{len(predictions) if isinstance(predictions, list) else 'no list'}"
                )
            for index, prediction in zip(decoded, predictions, strict=True):
                accept = requests[index][2]
                try:
                    results[index] = self._call(
                        "output_fn", _default_output, prediction, _response_type(accept)
                    )
                except Exception as error:
                    results[index] = error
        return results

    def _call(self, name: str, default: Any, first: Any, second: Any) -> Any:
        function = self._function(name)
        if function is None:
            return default(first, second)
        return function(first, second, *extra_args(name, function, self.context))


def _response_type(accept: str | None) -> str:
    return "application/json" if not accept or accept == "*/*" else accept


def _decoded_body(body: bytes, content_type: str) -> Any:
    """What the container hands input_fn: text for the types it decodes, else the bytes."""
    if content_type.split(";")[0].strip().lower() in UTF8_TYPES:
        return body.decode("utf-8")
    return body


def _default_input(data: Any, content_type: str) -> Any:
    if content_type.split(";")[0].strip().lower() != "application/json":
        raise HandlerContractError(f"no input_fn and the default cannot decode {content_type}")
    return json.loads(data)


def _default_predict(data: Any, model: Any) -> Any:
    inputs = data.pop("inputs", data) if isinstance(data, dict) else data
    parameters = data.pop("parameters", None) if isinstance(data, dict) else None
    return model(inputs, **parameters) if parameters else model(inputs)


def _default_output(prediction: Any, accept: str) -> str:
    return json.dumps(prediction)


# --- script entry point -------------------------------------------------------------------------


def _failure(stage: str, error: BaseException) -> dict[str, Any]:
    return {
        "ok": False,
        "stage": stage,
        "error": f"{type(error).__name__}: {error}",
        "traceback": "".join(traceback.format_exception(error))[-4000:],
    }


def _inspect(code_dir: str) -> dict[str, Any]:
    started = time.perf_counter()
    try:
        module = load_handler(code_dir)
    except BaseException as error:  # the handler's own import failure is the finding
        return _failure("import", error)
    return {
        "ok": True,
        "import_ms": (time.perf_counter() - started) * 1000,
        "functions": describe_module(module),
    }


def _smoke(model_dir: str, body: bytes, content_type: str, accept: str) -> dict[str, Any]:
    stage = "import"
    try:
        module = load_handler(os.path.join(model_dir, "code"))
        stage = "contract"
        host = HandlerHost(module, model_dir)
        stage = "model_fn"
        started = time.perf_counter()
        host.load()
        load_ms = (time.perf_counter() - started) * 1000
        stage = "request"
        started = time.perf_counter()
        response, timings = host.invoke(body, content_type, accept)
        predict_ms = (time.perf_counter() - started) * 1000
    except BaseException as error:
        return _failure(stage, error)
    if isinstance(response, bytes | bytearray):
        response = bytes(response).decode("utf-8", errors="replace")
    return {
        "ok": True,
        "response": response if isinstance(response, str) else json.dumps(response),
        "load_ms": load_ms,
        "predict_ms": predict_ms,
        "stages": timings,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    inspect_cmd = commands.add_parser("inspect", help="import the handler, describe its functions")
    inspect_cmd.add_argument("code_dir")
    inspect_cmd.add_argument("result")
    smoke_cmd = commands.add_parser("smoke", help="load the model and answer one request")
    smoke_cmd.add_argument("model_dir")
    smoke_cmd.add_argument("result")
    smoke_cmd.add_argument("--body-file", required=True)
    smoke_cmd.add_argument("--content-type", default="application/json")
    smoke_cmd.add_argument("--accept", default="application/json")
    args = parser.parse_args(argv)

    if args.command == "inspect":
        result = _inspect(args.code_dir)
    else:
        body = Path(args.body_file).read_bytes()
        result = _smoke(args.model_dir, body, args.content_type, args.accept)
    Path(args.result).write_text(json.dumps(result), encoding="utf-8")
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
