"""Which CPU fast path a package asks its handler for, recorded as manifest.json's "fast_path".

    "int8"  the handler's model_fn quantises every Linear layer to dynamic int8 when it loads the
            model (torch.ao.quantization.quantize_dynamic); the tarball's weights stay fp32
            safetensors, so any loader still reads them
    "none"  the model as saved
    "auto"  (the default of package, deploy and up) int8 for models of INT8_MIN_PARAMETERS
            parameters or more, none below

Why the rule depends on size (docs/benchmarks.md "Fast path" has the numbers): for a
flan-t5-base-shaped model int8 answered 2.6x (one question) to 3.6x (eight) faster than fp32 on
one CPU thread, and 2.1-2.8x for flan-t5-small's shape (77 M); for the offline tiny T5 (1.3 M
parameters, d_model 128) it was no faster one question at a time (0.96x; 0.56x on two threads)
and changed 7 of 121 test answers: its matrices are so small that quantising the activations
on every call costs about what the int8 matmul saves. 50 M lies between the sizes measured.

The parameter count comes from the safetensors headers (shapes only, no weights read, no torch).
"""

from __future__ import annotations

import json
import math
import struct
from dataclasses import dataclass
from pathlib import Path

from qa_console.errors import UsageError
from qa_console.ops.packaging import layout

FAST_PATHS = ("auto", "int8", "none")
INT8_MIN_PARAMETERS = 50_000_000


@dataclass(frozen=True)
class FastPathChoice:
    fast_path: str  # "int8" or "none": what the manifest records
    reason: str  # one line for the user: why this one


def choose_fast_path(requested: str, model_dir: Path) -> FastPathChoice:
    """Resolve `requested` ("auto", "int8" or "none") for the model in `model_dir`."""
    requested = requested.strip().lower()
    if requested not in FAST_PATHS:
        raise UsageError(
            f"unknown fast path {requested!r}",
            hint=f"choose one of {', '.join(FAST_PATHS)}",
        )
    if requested != "auto":
        return FastPathChoice(requested, "asked for")
    parameters = parameter_count(model_dir)
    if parameters is None:
        return FastPathChoice("none", "auto: the weights' size is unknown")
    millions = f"{parameters / 1e6:.1f} M parameters"
    threshold = f"{INT8_MIN_PARAMETERS / 1e6:.0f} M"
    if parameters >= INT8_MIN_PARAMETERS:
        return FastPathChoice("int8", f"auto: {millions} >= {threshold}")
    return FastPathChoice("none", f"auto: {millions} < {threshold}, int8 would not be faster")


def parameter_count(model_dir: Path) -> int | None:
    """Elements in every *.safetensors file at the folder's top level, or None if unreadable."""
    files = sorted(path for path in model_dir.iterdir() if layout.is_weights(path.name))
    if not files:
        return None
    try:
        return sum(_elements_in(path) for path in files)
    except (OSError, ValueError, KeyError, TypeError, struct.error):
        return None


def _elements_in(path: Path) -> int:
    """A safetensors file starts with an 8-byte little-endian header length, then a JSON header
    naming each tensor's shape."""
    with open(path, "rb") as handle:
        (length,) = struct.unpack("<Q", handle.read(8))
        header = json.loads(handle.read(length))
    return sum(
        math.prod(entry["shape"]) for name, entry in header.items() if name != "__metadata__"
    )
