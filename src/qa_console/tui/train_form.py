"""The Train screen's form as a TrainConfig: parsing and the defaults it shows.

Blank fields mean "the library's default for this base model" (TrainConfig's None), so the form
never hard-codes a hyper-parameter: the placeholders are read from `resolve_config`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from qa_console.errors import UsageError
from qa_console.ops.training.tiny_model import TINY
from qa_console.ops.training.train import TINY_EPOCHS, TrainConfig, resolve_config
from qa_console.tui.form_number import Number, form_number

DEFAULT_BASE_MODEL = TINY  # the screen's default: trains offline in about a minute
DEFAULT_OUTPUT = "artifacts/model"  # relative to the cwd, where the bio-local backend looks
SHIPPED_DATA = "biography (shipped)"


def placeholders(base_model: str) -> dict[str, str]:
    """What each blank hyper-parameter field will use with this base model."""
    try:
        config = resolve_config(TrainConfig(base_model=base_model or DEFAULT_BASE_MODEL))
    except UsageError:
        config = TrainConfig()
    return {
        "max-steps": "from epochs",
        # tiny: at least TINY_EPOCHS, more on small data (the library decides from the rows)
        "epochs": f"{config.epochs:g}" if config.epochs else f"auto ({TINY_EPOCHS:g}+)",
        "learning-rate": f"{config.learning_rate:g}" if config.learning_rate else "",
        "batch-size": str(config.batch_size or ""),
    }


def _field_number(
    values: Mapping[str, str], key: str, kind: Callable[[str], Number]
) -> Number | None:
    return form_number(values.get(key, ""), key.replace("-", " "), kind)


def config_from_form(values: Mapping[str, str]) -> TrainConfig:
    """The run the form describes. Raises UsageError for a field that is not a number; the
    library validates ranges (it says which flag is wrong in the same words as the CLI)."""
    return TrainConfig(
        base_model=values.get("base-model", "").strip() or DEFAULT_BASE_MODEL,
        data=values.get("data", "").strip() or None,
        output_dir=values.get("output", "").strip() or DEFAULT_OUTPUT,
        max_steps=_field_number(values, "max-steps", int),
        epochs=_field_number(values, "epochs", float),
        learning_rate=_field_number(values, "learning-rate", float),
        batch_size=_field_number(values, "batch-size", int),
    )
