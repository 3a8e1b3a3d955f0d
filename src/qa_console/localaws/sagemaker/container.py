"""What the Hugging Face inference container would make of a model, before any worker loads it.

The container's transformers is the version in its image tag (huggingface-pytorch-inference:
2.6.0-transformers4.51.3-...). A model saved by another major version does not load there
(measured: a tokenizer saved by transformers 5 fails under 4.51.3 with an AttributeError in
_set_model_specific_special_tokens), so the local runtime fails the model load the same way,
with the reason in the endpoint's log, instead of serving what SageMaker would not.
"""

from __future__ import annotations

import json
from pathlib import Path

from qa_console.ops.aws.images import transformers_of_image, version_tuple


class IncompatibleModel(Exception):
    """The container cannot load this model; the message is its log line."""


def check_loadable(model_dir: Path, image: str | None) -> None:
    """Raise IncompatibleModel when the image's transformers major differs from the one the
    model's manifest says saved it. Images that name no transformers version, and models
    without a manifest, are not judged."""
    container = transformers_of_image(image or "")
    if container is None:
        return
    try:
        manifest = json.loads((model_dir / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return
    saved = manifest.get("transformers_version") if isinstance(manifest, dict) else None
    if not saved or version_tuple(str(saved))[:1] == version_tuple(container)[:1]:
        return
    raise IncompatibleModel(
        f"model_fn failed: the container's transformers {container} cannot load a model saved "
        f"with transformers {saved} (major version {version_tuple(str(saved))[0]} vs "
        f"{version_tuple(container)[0]}): AttributeError in "
        "PreTrainedTokenizerBase._set_model_specific_special_tokens while loading the tokenizer"
    )
