"""Training benchmark: the tiny model on the shipped biography train split, with the defaults.

Prints, as one JSON object and as readable lines:
  - training wall time and samples/s (`qa-console train --base-model tiny` defaults);
  - exact match and F1 on bare questions for train, validation and test (test = paraphrases
    never seen in training), and validation with its context passage;
  - per-answer latency of the local backend (ask and stream, first piece and whole answer),
    median and p90 over the validation questions, model already loaded.

Bounded: one training run (about a minute on 2 cores) and at most --questions answers.

    .venv/bin/python benchmarks/train.py [--runs 1] [--questions 72] [--output DIR]
                                         [--input-format both]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1, help="training runs (each ~1 min)")
    parser.add_argument("--questions", type=int, default=72, help="questions for latency")
    parser.add_argument("--output", type=Path, default=None, help="keep the model here")
    parser.add_argument(
        "--input-format", default=None, help="both|context|question (default: tiny's own)"
    )
    args = parser.parse_args()

    from qa_console.backends.local import LocalBackend
    from qa_console.ops.training.data import biography_dataset_path, load_qa_dataset
    from qa_console.ops.training.train import TrainConfig, train

    load = os.getloadavg()[0]
    runs = []
    workdir = Path(tempfile.mkdtemp(prefix="bench-train-"))
    for number in range(args.runs):
        output = args.output or workdir / f"model-{number}"
        started = time.perf_counter()
        config = TrainConfig(base_model="tiny", output_dir=output, input_format=args.input_format)
        result = train(config)
        runs.append((result, time.perf_counter() - started))
    result = runs[-1][0]

    backend = LocalBackend("bench", model=str(result.output_dir))
    backend.health()  # load once, outside the timings
    questions = load_qa_dataset(biography_dataset_path()).validation[: args.questions]
    ask_ms, first_ms, stream_ms = [], [], []
    for row in questions:
        ask_ms.append(backend.ask(row.question).latency_ms)
        started = time.perf_counter()
        first = None
        for _ in backend.stream(row.question):
            if first is None:
                first = (time.perf_counter() - started) * 1000
        stream_ms.append((time.perf_counter() - started) * 1000)
        first_ms.append(first if first is not None else stream_ms[-1])

    report = {
        "machine": {"cpus": os.cpu_count(), "load_average_1m_at_start": round(load, 2)},
        "training": [
            {
                "wall_time_s": round(wall, 1),
                "train_time_s": run.train_time_s,
                "samples_per_second": run.samples_per_second,
                "steps": run.steps,
                "epochs": run.epochs,
                "train_examples": run.train_examples,
                "parameters": run.parameters,
                "final_loss": run.final_loss,
            }
            for run, wall in runs
        ],
        "hyperparameters": result.hyperparameters,
        "metrics": result.metrics,
        "local_backend_ms": {
            "questions": len(questions),
            "ask_median": round(statistics.median(ask_ms), 1),
            "ask_p90": round(_percentile(ask_ms, 0.9), 1),
            "stream_first_piece_median": round(statistics.median(first_ms), 1),
            "stream_whole_median": round(statistics.median(stream_ms), 1),
        },
    }
    print(json.dumps(report, indent=2))
    for entry in report["training"]:
        print(
            f"train: {entry['wall_time_s']} s wall ({entry['train_time_s']} s in the loop), "
            f"{entry['samples_per_second']} samples/s, {entry['steps']} steps",
            file=sys.stderr,
        )
    for split, scores in result.metrics.items():
        print(
            f"{split}: EM {scores['exact_match']:.1f}%  F1 {scores['f1']:.1f}%  "
            f"({scores['count']:.0f} questions)",
            file=sys.stderr,
        )
    latency = report["local_backend_ms"]
    print(
        f"local backend: ask median {latency['ask_median']} ms, p90 {latency['ask_p90']} ms; "
        f"stream first piece {latency['stream_first_piece_median']} ms",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
