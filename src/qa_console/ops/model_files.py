"""What makes a folder a usable seq2seq model, checked before anything heavy is imported.

Training from a local base model, `qa-console eval` and the local backend all take a folder a
user typed. Letting transformers fail on a wrong folder gives a long traceback about a missing
attribute; checking config.json, the weights and the tokenizer first gives one line saying what
is wrong and what to pass instead.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from qa_console.errors import UsageError

WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json")
PICKLE_WEIGHT_FILES = ("pytorch_model.bin", "pytorch_model.bin.index.json")
TOKENIZER_FILES = ("tokenizer.json", "spiece.model", "tokenizer_config.json")
MODEL_FILES = (
    "config.json",
    "generation_config.json",
    *WEIGHT_FILES,
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "spiece.model",
)
RECORD_FILE = "training_record.json"  # what `qa-console train` writes beside the weights
HINT = "pass a folder written by `qa-console train` (or save_pretrained of a T5/Flan-T5 model)"


@dataclass(frozen=True)
class ModelFolder:
    """A checked model folder: where it is and what its config.json says."""

    path: Path
    model_type: str
    architectures: tuple[str, ...]
    config: dict[str, Any]


def check_model_folder(path: str | Path, label: str | None = None) -> ModelFolder:
    """Raise UsageError unless `path` holds a seq2seq (encoder-decoder) model with weights and a
    tokenizer. Reads only config.json and file names. Messages call the folder `label` (default:
    its path), so an extracted archive is named as the user typed it, not as a cache folder."""
    folder = Path(path).expanduser()
    label = label or str(folder)
    if not folder.exists():
        raise UsageError(f"no such model folder: {folder}", hint=HINT)
    if not folder.is_dir():
        raise UsageError(f"{folder} is not a folder", hint=HINT)
    config_file = folder / "config.json"
    if not config_file.is_file():
        raise UsageError(f"{label} is not a model folder: it has no config.json", hint=HINT)
    try:
        config = json.loads(config_file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise UsageError(f"{label}: config.json is not valid JSON: {error}", hint=HINT) from None
    if not isinstance(config, dict):
        raise UsageError(f"{label}: config.json does not hold a JSON object", hint=HINT)
    architectures = tuple(str(name) for name in config.get("architectures") or ())
    model_type = str(config.get("model_type", ""))
    seq2seq = bool(config.get("is_encoder_decoder")) or any(
        name.endswith("ForConditionalGeneration") for name in architectures
    )
    if not seq2seq:
        what = (
            f"holds a {', '.join(architectures)} model"
            if architectures
            else f"has a config.json (model_type {model_type or 'unset'}) naming no architecture"
        )
        raise UsageError(
            f"{label} {what}, not a sequence-to-sequence (encoder-decoder) one",
            hint="qa-console answers with T5-style models (AutoModelForSeq2SeqLM); " + HINT,
        )
    if not any((folder / name).is_file() for name in WEIGHT_FILES):
        if any((folder / name).is_file() for name in PICKLE_WEIGHT_FILES):
            raise UsageError(
                f"{label} has only pickle weights (pytorch_model.bin); safetensors are needed",
                hint="re-save it with model.save_pretrained(folder) (safetensors is the default)",
            )
        raise UsageError(f"{label} has no model weights (model.safetensors)", hint=HINT)
    if not any((folder / name).is_file() for name in TOKENIZER_FILES):
        raise UsageError(f"{label} has no tokenizer files (tokenizer.json)", hint=HINT)
    return ModelFolder(folder, model_type, architectures, config)


def quiet_transformers() -> None:
    """No tqdm bars or advisory warnings from transformers on our stderr: we report progress."""
    import os

    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    from transformers.utils import logging

    logging.set_verbosity_error()
    logging.disable_progress_bar()


SMALL_MODEL_PARAMETERS = 20_000_000


def threads_for(parameters: int) -> int | None:
    """torch intra-op threads for a model of this size: 1 for small models, else torch's default.

    A 1 M-parameter T5's matrices are too small to split across cores; with two threads on a busy
    2-core machine each step waits on the other thread and runs 10-20x slower (measured).
    """
    return 1 if parameters < SMALL_MODEL_PARAMETERS else None


@contextmanager
def torch_threads(count: int | None) -> Iterator[None]:
    """Run the block with `count` torch intra-op threads (None: leave as is), then restore."""
    import torch

    before = torch.get_num_threads()
    if count:
        torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(before)
