"""`qa-console train` and `qa-console eval`: fine-tune a model (here or on SageMaker) and score it.

Thin faces over ops.train, ops.sagemaker_training and ops.evaluate: parse flags, draw progress
with Rich on stderr, print the scores as a table (or one JSON object with --json) on stdout.
torch and transformers are imported by the ops functions only when a command runs.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from qa_console.cli.context import state
from qa_console.cli.output import JsonFlag, Output, info, print_rich

if TYPE_CHECKING:
    from qa_console.ops.training.sagemaker import SageMakerTrainingResult
    from qa_console.ops.training.train import TrainConfig, TrainResult

DEFAULT_OUTPUT = Path("artifacts") / "model"


def default_output_dir() -> Path:
    """artifacts/model under the current folder, where the built-in bio-local backend looks."""
    return Path.cwd() / DEFAULT_OUTPUT


def train_command(
    ctx: typer.Context,
    base_model: Annotated[
        str | None,
        typer.Option(
            "--base-model",
            help="'tiny' (offline, built from the data), a Hugging Face id "
            "(default google/flan-t5-base) or a local model folder.",
        ),
    ] = None,
    data: Annotated[
        str | None,
        typer.Option(
            "--data",
            help="A .jsonl/.csv/.parquet file, a folder of them, or a Hugging Face dataset id "
            "(default: the shipped biography dataset).",
        ),
    ] = None,
    question_column: Annotated[
        str | None,
        typer.Option("--question-column", help="Column holding the questions (default question)."),
    ] = None,
    answer_column: Annotated[
        str | None,
        typer.Option("--answer-column", help="Column holding the answers (default answer)."),
    ] = None,
    context_column: Annotated[
        str | None,
        typer.Option(
            "--context-column",
            help="Column holding context passages (default: 'context' if present).",
        ),
    ] = None,
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Model folder to write (default: artifacts/model)."),
    ] = None,
    input_format: Annotated[
        str | None,
        typer.Option(
            "--input-format",
            help="Train on 'both' (each row with and without its context: the default for "
            "pre-trained models), 'context', or 'question' (bare questions, as the deployed bot "
            "is asked: the default for tiny).",
        ),
    ] = None,
    epochs: Annotated[float | None, typer.Option("--epochs", help="Passes over the data.")] = None,
    max_steps: Annotated[
        int | None,
        typer.Option("--max-steps", help="Stop after this many steps (overrides --epochs)."),
    ] = None,
    learning_rate: Annotated[
        float | None, typer.Option("--learning-rate", "--lr", help="Peak learning rate.")
    ] = None,
    batch_size: Annotated[
        int | None, typer.Option("--batch-size", help="Examples per step.")
    ] = None,
    seed: Annotated[int | None, typer.Option("--seed", help="Random seed (default 42).")] = None,
    resume: Annotated[
        bool, typer.Option("--resume", help="Continue the interrupted run in the output folder.")
    ] = False,
    on: Annotated[
        str, typer.Option("--on", help="Where to train: 'local' (this machine) or 'sagemaker'.")
    ] = "local",
    instance_type: Annotated[
        str | None,
        typer.Option("--instance-type", help="SageMaker instance type (default ml.g5.xlarge)."),
    ] = None,
    instance_count: Annotated[
        int, typer.Option("--instance-count", help="SageMaker instance count.")
    ] = 1,
    max_runtime: Annotated[
        int, typer.Option("--max-runtime", help="SageMaker job time limit in seconds.")
    ] = 24 * 3600,
    image_uri: Annotated[
        str | None,
        typer.Option("--image-uri", help="Training image to use instead of the Hugging Face one."),
    ] = None,
    job_name: Annotated[str | None, typer.Option("--job-name", help="SageMaker job name.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Fine-tune a T5 model on question/answer data and score it (exact match, F1)."""
    from qa_console.errors import UsageError
    from qa_console.ops.training.train import TrainConfig

    if on not in ("local", "sagemaker"):
        raise UsageError(f"--on must be 'local' or 'sagemaker', not {on!r}")
    config = TrainConfig(
        base_model=base_model,
        data=data,
        question_column=question_column,
        answer_column=answer_column,
        context_column=context_column,
        output_dir=(output or default_output_dir()).expanduser().resolve(),
        input_format=input_format,
        epochs=epochs,
        max_steps=max_steps,
        learning_rate=learning_rate,
        batch_size=batch_size,
        seed=seed,
        resume=resume,
    )
    if on == "sagemaker":
        _train_on_sagemaker(
            ctx, config, instance_type, instance_count, max_runtime, image_uri, job_name, as_json
        )
        return
    _train_locally(config, as_json)


def _train_locally(config: TrainConfig, as_json: bool) -> None:
    from qa_console.ops.training.train import last_checkpoint, train

    out = Output(as_json)
    try:
        with out.progress() as progress:
            result = train(config, progress=progress)
    except KeyboardInterrupt:
        checkpoint = last_checkpoint(Path(config.output_dir) / "checkpoints")
        if checkpoint is not None:
            out.warn(
                f"training interrupted; the last checkpoint is {checkpoint.name}: "
                "run the same command with --resume to continue from it"
            )
        raise
    out.result(result.to_dict(), lambda: _print_trained(result))


def _print_trained(result: TrainResult) -> None:
    print_rich(metrics_table(result.metrics))
    if result.confusion:
        print_rich(confusion_table(result.confusion))
    info(
        f"model: {result.output_dir}\n"
        f"{result.steps} steps ({result.epochs:g} epochs) of {result.base_model} in "
        f"{result.train_time_s:.1f} s ({result.samples_per_second:.0f} samples/s), "
        f"final loss {result.final_loss}\n"
        f"record: {result.record_path}"
        + (f"\nloss curve: {result.loss_curve_path}" if result.loss_curve_path else "")
    )


def _train_on_sagemaker(
    ctx: typer.Context,
    config: TrainConfig,
    instance_type: str | None,
    instance_count: int,
    max_runtime: int,
    image_uri: str | None,
    job_name: str | None,
    as_json: bool,
) -> None:
    from qa_console.ops.training.sagemaker import (
        DEFAULT_INSTANCE_TYPE,
        SageMakerTrainingConfig,
        job_settings,
        launch_training_job,
    )

    out = Output(as_json)
    cli = state(ctx)
    settings = cli.settings()
    target = cli.target()
    role, bucket, prefix = job_settings(
        target, settings.execution_role, settings.bucket, settings.folder
    )
    job = SageMakerTrainingConfig(
        train=config,
        role_arn=role,
        bucket=bucket,
        prefix=prefix,
        instance_type=instance_type or DEFAULT_INSTANCE_TYPE,
        instance_count=instance_count,
        max_runtime_s=max_runtime,
        image_uri=image_uri,
        job_name=job_name,
    )
    with out.progress() as progress:
        result = launch_training_job(job, target, progress=progress)
    out.result(result.to_dict(), lambda: _print_job(result))


def _print_job(result: SageMakerTrainingResult) -> None:
    if result.metrics:
        print_rich(metrics_table(result.metrics))
    info(
        f"training job {result.job_name}: {result.status}\n"
        f"image: {result.image.uri}\nmodel: {result.output_dir} (from {result.model_artifact})"
    )


def metrics_table(metrics: dict[str, dict[str, float]]) -> Any:
    """Split | input | examples | exact match | F1 | abstained, bare questions first."""
    from rich.table import Table

    table = Table(title="scores (percent)")
    table.add_column("split")
    table.add_column("input")
    table.add_column("examples", justify="right")
    table.add_column("exact match", justify="right")
    table.add_column("F1", justify="right")
    table.add_column("abstained", justify="right")
    for key, scores in metrics.items():
        split, _, rest = key.partition("_with_")
        abstained = scores.get("abstained")
        table.add_row(
            split,
            "question + context" if rest else "question only",
            f"{scores.get('count', 0):.0f}",
            f"{scores['exact_match']:.1f}",
            f"{scores['f1']:.1f}",
            "" if abstained is None else f"{abstained:.1f}",
        )
    return table


def confusion_table(confusion: dict[str, dict[str, int]]) -> Any:
    """Split | one column per outcome (ops.confusion): how the answers missed."""
    from rich.table import Table

    from qa_console.ops.training.confusion import OUTCOMES

    table = Table(title="outcomes (examples)")
    table.add_column("split")
    for name in OUTCOMES:
        table.add_column(name.replace("_", " "), justify="right")
    for key, counts in confusion.items():
        table.add_row(key, *(str(counts.get(name, 0)) for name in OUTCOMES))
    return table


ALL_SPLITS = "all"


def eval_command(
    model: Annotated[str, typer.Argument(help="Model folder or model.tar.gz to score.")],
    split: Annotated[
        str,
        typer.Option(
            "--split", help="'validation', 'test', 'train', 'unknown', or 'all' the data has."
        ),
    ] = "validation",
    data: Annotated[
        str | None,
        typer.Option("--data", help="Data to score on (default: what the model was trained on)."),
    ] = None,
    with_context: Annotated[
        bool,
        typer.Option("--with-context", help="Give the model each question's context passage too."),
    ] = False,
    batch_size: Annotated[int, typer.Option("--batch-size", help="Questions per batch.")] = 32,
    as_json: JsonFlag = False,
) -> None:
    """Score a model: exact match, token F1, abstentions and how answers missed, per split;
    predictions and a summary.json saved beside it."""
    from qa_console.ops.packaging.extract import (
        extract_model_archive,
        is_model_archive,
        model_cache_dir,
    )
    from qa_console.ops.training.evaluate import evaluate_splits

    path = Path(model).expanduser()
    predictions_dir = None
    if is_model_archive(path):
        # Scores of an archive go beside it, not into the shared extraction cache.
        stem = path.name.removesuffix(".gz").removesuffix(".tgz").removesuffix(".tar")
        predictions_dir = path.resolve().parent / f"{stem}.predictions"
        path = extract_model_archive(path, model_cache_dir())
    out = Output(as_json)
    with out.progress(transient=True) as progress:
        results = evaluate_splits(
            path,
            None if split == ALL_SPLITS else (split,),
            data=data,
            with_context=with_context,
            batch_size=batch_size,
            predictions_dir=predictions_dir,
            progress=progress,
        )
    suffix = "_with_context" if with_context else ""
    metrics = {name + suffix: result.metrics() for name, result in results.items()}
    confusion = {name + suffix: result.confusion for name, result in results.items()}

    def human() -> None:
        print_rich(metrics_table(metrics))
        print_rich(confusion_table(confusion))
        folder = next(iter(results.values())).predictions_path
        info(f"predictions: {folder.parent if split == ALL_SPLITS and folder else folder}")

    # One split keeps its flat JSON shape; `all` gives one object per split.
    if split == ALL_SPLITS:
        out.result({"splits": {k: r.to_dict() for k, r in results.items()}}, human)
    else:
        out.result(results[split].to_dict(), human)


def register(app: typer.Typer) -> None:
    """Add this module's commands to the root app."""
    app.command("train")(train_command)
    app.command("eval")(eval_command)
