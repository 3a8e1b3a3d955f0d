"""SageMaker training entry point: run qa-console's own training code inside the training job.

SageMaker's Hugging Face training container downloads sourcedir.tar.gz (this file at its root,
plus a copy of the qa_console.ops modules training needs under qa_console/ops/), then runs
`python train_entry.py --base_model ... --epochs ...` with the job's hyper-parameters (JSON-decoded)
as arguments, the data channels under /opt/ml/input/data/<channel>/ (SM_CHANNEL_<NAME>) and
/opt/ml/model (SM_MODEL_DIR) as the folder whose contents become model.tar.gz. So the job trains
exactly as `qa-console train` does on a laptop, with the same defaults, record and scores.

Run by hand (as the tests do):
    SM_MODEL_DIR=out SM_CHANNEL_TRAIN=data/train ... python train_entry.py --base_model tiny
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

# qa_console.ops.training.train.TRAINING_FIELDS with their types (tests check the two agree).
# SageMaker passes hyper-parameter names as given (base_model); people type --base-model.
OPTIONS: dict[str, type] = {
    "base_model": str,
    "input_format": str,
    "epochs": float,
    "max_steps": int,
    "learning_rate": float,
    "batch_size": int,
    "warmup_ratio": float,
    "max_source_length": int,
    "max_target_length": int,
    "eval_steps": int,
    "logging_steps": int,
    "seed": int,
}
CHANNELS = ("train", "validation", "test")


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for name, kind in OPTIONS.items():
        parser.add_argument(f"--{name}", f"--{name.replace('_', '-')}", dest=name, type=kind)
    parser.add_argument(
        "--model_dir", "--model-dir", default=os.environ.get("SM_MODEL_DIR", "/opt/ml/model")
    )
    # Unknown arguments (SageMaker may add its own) are ignored rather than fatal.
    args, _ = parser.parse_known_args(argv)
    return args


def gather_channels(workdir: Path) -> Path:
    """One folder with train/validation/test.jsonl from the SM_CHANNEL_* folders, for the loader."""
    folder = workdir / "data"
    folder.mkdir(parents=True, exist_ok=True)
    for channel in CHANNELS:
        source = os.environ.get(f"SM_CHANNEL_{channel.upper()}")
        if not source:
            continue
        files = sorted(Path(source).glob("*.jsonl"))
        if files:
            with (folder / f"{channel}.jsonl").open("wb") as out:
                for file in files:
                    with file.open("rb") as part:
                        shutil.copyfileobj(part, out)
    if not (folder / "train.jsonl").is_file():
        raise SystemExit("no training data: the job has no 'train' channel with .jsonl files")
    return folder


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from qa_console.errors import QAConsoleError
    from qa_console.events import ProgressEvent
    from qa_console.ops.training.train import TrainConfig, train

    def log(event: ProgressEvent) -> None:
        # Lines like "loss=0.41" are what the job's MetricDefinitions regexes pick up.
        routine = event.task == "train" and not event.done and bool(event.completed)
        if routine and int(event.completed or 0) % 10 and "validation" not in event.message:
            return
        metrics = " ".join(f"{key}={value:.6g}" for key, value in event.metrics.items())
        amount = (
            f" {event.completed:g}/{event.total:g}"
            if event.completed is not None and event.total
            else ""
        )
        print(f"[{event.task}]{amount} {event.message} {metrics}".rstrip(), flush=True)

    with tempfile.TemporaryDirectory() as workdir:
        data = gather_channels(Path(workdir))
        config = TrainConfig(
            data=str(data),
            output_dir=args.model_dir,
            **{name: getattr(args, name) for name in OPTIONS if getattr(args, name) is not None},
        )
        try:
            result = train(config, progress=log)
        except QAConsoleError as error:
            print(f"error: {error.message}", file=sys.stderr)
            if error.hint:
                print(f"  hint: {error.hint}", file=sys.stderr)
            return 2
    for split, scores in result.metrics.items():
        print(f"{split}_exact_match={scores['exact_match']:.2f} {split}_f1={scores['f1']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
