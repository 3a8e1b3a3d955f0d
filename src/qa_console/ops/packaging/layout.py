"""What a SageMaker model archive holds, by file name: the one place the packager and the
validator agree on which files are weights, which are tokenizer files and which are pickles.

SageMaker unpacks model.tar.gz into /opt/ml/model and the Hugging Face container loads the model
from that folder with from_pretrained, so config, weights and tokenizer must sit at the root,
and the handler at code/inference.py.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import PurePosixPath

MANIFEST = "manifest.json"
HANDLER = "code/inference.py"
REQUIREMENTS = "code/requirements.txt"
CONFIG = "config.json"
SAFETENSORS_INDEX = "model.safetensors.index.json"

# Tokenizer files: a fast tokenizer.json alone is enough; otherwise tokenizer_config.json plus a
# vocabulary file of one of the common kinds.
TOKENIZER_JSON = "tokenizer.json"
TOKENIZER_CONFIG = "tokenizer_config.json"
VOCAB_FILES = (
    "spiece.model",
    "tokenizer.model",
    "sentencepiece.bpe.model",
    "vocab.json",
    "vocab.txt",
)
# torch.save / pickle formats: loading them runs arbitrary code, so they are never shipped.
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt")
# What the packager ships from a model folder's top level: weights, configs, tokenizer files,
# chat templates. Everything else (plots, predictions/, checkpoints/) stays behind.
SHIPPED_SUFFIXES = (".json", ".safetensors", ".model", ".txt", ".jinja", ".tiktoken")


def is_pickle(name: str) -> bool:
    return name.lower().endswith(PICKLE_SUFFIXES)


def is_weights(name: str) -> bool:
    return name.endswith(".safetensors")


def at_root(name: str) -> bool:
    return "/" not in name


def has_tokenizer(names: Iterable[str]) -> bool:
    present = set(names)
    if TOKENIZER_JSON in present:
        return True
    return TOKENIZER_CONFIG in present and any(vocab in present for vocab in VOCAB_FILES)


def missing_shards(index_text: str, names: Iterable[str]) -> list[str]:
    """Weight shards a model.safetensors.index.json names that are not among `names`."""
    try:
        weight_map = json.loads(index_text).get("weight_map", {})
    except (json.JSONDecodeError, AttributeError):
        return [SAFETENSORS_INDEX + " (unreadable)"]
    present = set(names)
    return sorted({shard for shard in weight_map.values() if shard not in present})


def nested_top_folder(names: Iterable[str]) -> str | None:
    """The single top folder everything sits under (`model/config.json`...), or None."""
    names = list(names)
    tops = {PurePosixPath(name).parts[0] for name in names if name}
    files_at_root = [name for name in names if at_root(name)]
    if len(tops) == 1 and not files_at_root:
        return next(iter(tops))
    return None
