"""A local contract test of a model.tar.gz: `smoke_test(archive, question) -> SmokeResult`.

It does what the SageMaker Hugging Face container does with the archive, without AWS: unpack it
safely into a temporary folder, import code/inference.py with only that folder on sys.path, call
model_fn(model_dir) once, then input_fn -> predict_fn -> output_fn for one JSON request, in a
separate process (inference/handler_contract.py), so a broken handler fails here in seconds
instead of in CloudWatch after a ten-minute deployment.
"""

from __future__ import annotations

import json
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from qa_console.errors import OperationError, TimeoutError_
from qa_console.events import ProgressCallback, ProgressEvent, ignore_progress
from qa_console.ops.packaging.check import run_contract_probe
from qa_console.ops.packaging.safe_tar import safe_extract

DEFAULT_QUESTION = "Where was Ada Lovelace born?"
SMOKE_TIMEOUT_S = 300.0  # model_fn may import torch and transformers (~6 s) and load a big model


@dataclass(frozen=True)
class SmokeResult:
    answer: str  # the first generated_text
    response: Any  # output_fn's body, decoded from JSON when it is JSON
    request: dict[str, Any]
    extract_ms: float
    load_ms: float  # model_fn
    predict_ms: float  # input_fn + predict_fn + output_fn
    stages: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def smoke_test(
    archive: str | Path,
    *,
    question: str = DEFAULT_QUESTION,
    parameters: dict[str, Any] | None = None,
    timeout_s: float = SMOKE_TIMEOUT_S,
    progress: ProgressCallback = ignore_progress,
) -> SmokeResult:
    """Unpack `archive` and answer `question` through its handler, the way the container would.

    Raises UsageError for an unsafe or unreadable archive, OperationError when the handler fails
    (naming the stage: import, contract, model_fn, request), TimeoutError_ when it hangs.
    """
    request: dict[str, Any] = {"inputs": question}
    if parameters:
        request["parameters"] = parameters
    with tempfile.TemporaryDirectory(prefix="qa-console-smoke-") as scratch:
        work = Path(scratch)
        progress(ProgressEvent(task="smoke", message="unpacking the archive"))
        started = time.perf_counter()
        safe_extract(archive, work / "model")
        extract_ms = (time.perf_counter() - started) * 1000
        body_file = work / "request.json"
        body_file.write_text(json.dumps(request), encoding="utf-8")
        progress(ProgressEvent(task="smoke", message="model_fn, then one request"))
        result = run_contract_probe(
            "smoke",
            work / "model",
            options=["--body-file", str(body_file)],
            timeout_s=timeout_s,
            cwd=work,
        )
    progress(ProgressEvent(task="smoke", message="done", done=True))
    if not result.get("ok"):
        _raise_failure(result, timeout_s)
    response = _decode(result.get("response"))
    return SmokeResult(
        answer=_first_answer(response),
        response=response,
        request=request,
        extract_ms=extract_ms,
        load_ms=float(result["load_ms"]),
        predict_ms=float(result["predict_ms"]),
        stages={key: float(value) for key, value in result.get("stages", {}).items()},
    )


def _raise_failure(result: dict[str, Any], timeout_s: float) -> None:
    stage = result.get("stage")
    if stage == "timeout":
        raise TimeoutError_(
            f"the handler did not answer within {timeout_s:g} s",
            hint="check model_fn and predict_fn for work that never ends",
        )
    hints = {
        "import": "code/inference.py fails to import; the container would fail the same way",
        "contract": "make the handler's functions fit the contract (`qa-console package --check`)",
        "model_fn": "model_fn could not load the model from the unpacked archive",
        "request": "the handler refused or failed on a plain JSON request",
        "crash": "the handler process died; run the handler by hand to see why",
    }
    raise OperationError(
        f"smoke test failed in {stage}: {result.get('error')}",
        hint=hints.get(str(stage)),
    )


def _decode(response: Any) -> Any:
    if isinstance(response, str):
        try:
            return json.loads(response)
        except ValueError:
            return response
    return response


def _first_answer(response: Any) -> str:
    """generated_text of the first entry of [{"generated_text": ...}] (or [[...]])."""
    item = response
    while isinstance(item, list) and item:
        item = item[0]
    if isinstance(item, dict) and "generated_text" in item:
        return str(item["generated_text"])
    return response if isinstance(response, str) else json.dumps(response)
