"""CPU fast path benchmark: answers per second, fp32 eager versus dynamic int8, side by side.

    .venv/bin/python benchmarks/fast_path.py [--shapes base,small] [--answers 12]
                                             [--max-new-tokens 16] [--skip-tiny]
                                             [--tiny-model artifacts/model]

Every model is loaded by the shipped handler's model_fn (inference/model_handler.py), once with
QA_CONSOLE_FAST_PATH=none and once with int8 (what a package's manifest "fast_path" or the
container's environment asks for), and answers through predict_fn: the code path a deployed
endpoint runs.

- base: a google/flan-t5-base-shaped T5 (T5Config: d_model 768, d_ff 2048, 12 + 12 layers, 12
  heads, gated-gelu, vocabulary 32128; ~248 M parameters) with random weights, built offline.
  Random weights never emit </s>, so every answer is exactly --max-new-tokens tokens
  (min_new_tokens pins it): both sides do the same work.
- small: flan-t5-small's shape (d_model 512, d_ff 1024, 8 + 8 layers, 6 heads; ~77 M), to see
  where between tiny and base int8 starts to pay (the "auto" threshold).
- tiny: the offline tiny T5 trained with `qa-console train`'s defaults on the shipped biography
  data, then exact match on the 121-question test split for fp32 and int8, and its answers/s.

Answers/s: --answers sequential single-question requests per side, in alternating blocks so both
sides see the same machine load, after a warm-up; one intra-op thread (OMP_NUM_THREADS=1, unless
set), as each of the local runtime's workers runs: on a machine shared with other jobs, two
threads per matmul mostly wait for each other (docs/benchmarks.md, local runtime).
The parameter counts printed for the shaped models include separate encoder and decoder
embedding copies that transformers 5 saves untied (flan-t5 shares them: 248 M for base); lookups
cost nothing, so the compute is flan-t5's. The
"batch of 8" rows send one request of 8 questions (what the runtime's batcher hands predict_fn).
Everything is written to a temp dir and deleted.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

QUESTIONS = [
    "When was Ada Lovelace born?",
    "Where did Alan Turing study?",
    "What did Marie Curie discover?",
    "Who was Grace Hopper?",
    "Where was Nikola Tesla born?",
    "What is Rosalind Franklin known for?",
    "When did Charles Babbage die?",
    "Where did Emmy Noether work?",
]
SHAPES: dict[str, dict[str, Any]] = {
    "base": {"d_model": 768, "d_ff": 2048, "num_layers": 12, "num_heads": 12},
    "small": {"d_model": 512, "d_ff": 1024, "num_layers": 8, "num_heads": 6},
}


def tokenizer_texts() -> list[str]:
    from qa_console.ops.training.data import biography_dataset_path, load_qa_dataset

    dataset = load_qa_dataset(biography_dataset_path())
    return [text for example in dataset.train for text in (example.question, example.answer)]


def save_shaped_model(folder: Path, shape: str, texts: list[str]) -> Path:
    """A T5 of flan-t5's `shape` with random weights, and the tiny model's tokenizer (its ids all
    fall inside the 32128-token vocabulary), saved like a trained model folder."""
    import torch
    from transformers import T5Config, T5ForConditionalGeneration

    from qa_console.ops.training.tiny_model import save_tiny_model

    tokenizer_dir = save_tiny_model(folder / "tokenizer-source", texts)
    dims = SHAPES[shape]
    config = T5Config(
        vocab_size=32128,
        d_model=dims["d_model"],
        d_kv=64,
        d_ff=dims["d_ff"],
        num_layers=dims["num_layers"],
        num_decoder_layers=dims["num_layers"],
        num_heads=dims["num_heads"],
        feed_forward_proj="gated-gelu",
        decoder_start_token_id=0,
        pad_token_id=0,
        eos_token_id=1,
    )
    # flan-t5 has its own lm_head (not the embedding matrix); transformers 5's T5Config ignores
    # tie_word_embeddings=False as a keyword, so it is set afterwards.
    config.tie_word_embeddings = False
    torch.manual_seed(0)
    model_dir = folder / shape
    T5ForConditionalGeneration(config).save_pretrained(model_dir)
    for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        if (tokenizer_dir / name).exists():
            (model_dir / name).write_bytes((tokenizer_dir / name).read_bytes())
    return model_dir


def load(model_dir: Path, fast_path: str) -> dict[str, Any]:
    """The handler's model_fn with the fast path the container environment names."""
    from qa_console.inference import model_handler

    os.environ["QA_CONSOLE_FAST_PATH"] = fast_path
    try:
        loaded = model_handler.model_fn(str(model_dir))
    finally:
        del os.environ["QA_CONSOLE_FAST_PATH"]
    assert loaded["fast_path"] == fast_path, loaded["fast_path"]
    return loaded


def answers_per_second(
    models: dict[str, dict[str, Any]], parameters: dict[str, Any], answers: int, batch: int
) -> dict[str, float]:
    """Answers/s of each loaded model, requests of `batch` questions, alternating blocks."""
    from qa_console.inference import model_handler

    def request(index: int) -> dict[str, Any]:
        picked = [QUESTIONS[(index + i) % len(QUESTIONS)] for i in range(batch)]
        return {"inputs": picked[0] if batch == 1 else picked, "parameters": parameters}

    for loaded in models.values():  # warm-up: the first generates allocate and pick kernels
        for index in range(3):
            model_handler.predict_fn(request(index), loaded)
    seconds = dict.fromkeys(models, 0.0)
    done = dict.fromkeys(models, 0)
    block = max(1, min(4, answers // (batch * 2) or 1))
    while min(done.values()) < answers:
        for name, loaded in models.items():
            for index in range(block):
                started = time.perf_counter()
                model_handler.predict_fn(request(index), loaded)
                seconds[name] += time.perf_counter() - started
                done[name] += batch
    return {name: done[name] / seconds[name] for name in models}


def shaped_rows(shape: str, folder: Path, texts: list[str], args: argparse.Namespace) -> list[str]:
    print(f"{shape}: building the model ...", file=sys.stderr)
    model_dir = save_shaped_model(folder, shape, texts)
    models = {"fp32": load(model_dir, "none"), "int8": load(model_dir, "int8")}
    parameters = {"max_new_tokens": args.max_new_tokens, "min_new_tokens": args.max_new_tokens}
    count = sum(p.numel() for p in models["fp32"]["model"].parameters())
    rows = []
    for batch in (1, 8):
        print(f"{shape}: answers/s, requests of {batch} ...", file=sys.stderr)
        rates = answers_per_second(models, parameters, args.answers, batch)
        rows.append(
            f"| {shape} ({count / 1e6:.0f} M) | {batch} | {rates['fp32']:.2f} | "
            f"{rates['int8']:.2f} | {rates['int8'] / rates['fp32']:.2f}x |"
        )
    return rows


def tiny_rows(folder: Path, args: argparse.Namespace) -> tuple[list[str], list[str]]:
    """The tiny T5 trained on the biography data (or --tiny-model): EM on the test split and
    answers/s."""
    from qa_console.ops.training.data import biography_dataset_path, load_qa_dataset
    from qa_console.ops.training.evaluate import evaluate_examples
    from qa_console.ops.training.train import TrainConfig, train

    model_dir = args.tiny_model
    if model_dir is None:
        print("tiny: training with the defaults ...", file=sys.stderr)
        model_dir = train(TrainConfig(base_model="tiny", output_dir=folder / "tiny")).output_dir
    test = load_qa_dataset(biography_dataset_path()).test
    models = {"fp32": load(Path(model_dir), "none"), "int8": load(Path(model_dir), "int8")}
    results = {
        name: evaluate_examples(loaded["model"], loaded["tokenizer"], test, split="test")
        for name, loaded in models.items()
    }
    same = sum(
        a["prediction"] == b["prediction"]
        for a, b in zip(results["fp32"].examples, results["int8"].examples, strict=True)
    )
    em = [
        f"| {name} | {result.count} | {result.exact_match:.1f} | {result.f1:.1f} |"
        for name, result in results.items()
    ]
    em.append(f"\nsame answer as fp32: {same} of {len(test)} questions")
    rows = []
    for batch in (1, 8):
        rates = answers_per_second(models, {"max_new_tokens": 16}, args.answers * 4, batch)
        rows.append(
            f"| tiny (1 M, trained) | {batch} | {rates['fp32']:.2f} | {rates['int8']:.2f} | "
            f"{rates['int8'] / rates['fp32']:.2f}x |"
        )
    return rows, em


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shapes", default="base,small", help="comma-separated: base, small")
    parser.add_argument("--answers", type=int, default=12, help="answers per side and row")
    parser.add_argument("--max-new-tokens", type=int, default=16)
    parser.add_argument("--skip-tiny", action="store_true", help="no training, no EM")
    parser.add_argument(
        "--tiny-model", type=Path, default=None, help="a trained tiny model to use (no training)"
    )
    args = parser.parse_args()
    warnings.filterwarnings("ignore")  # transformers' and torch's deprecation chatter
    os.environ.setdefault("OMP_NUM_THREADS", "1")  # before torch is imported; see the docstring
    import torch

    speed: list[str] = []
    em: list[str] = []
    with tempfile.TemporaryDirectory(prefix="bench-fast-path-") as temp:
        folder = Path(temp)
        texts = tokenizer_texts()
        for shape in [s for s in args.shapes.split(",") if s]:
            speed += shaped_rows(shape, folder, texts, args)
        if not args.skip_tiny:
            tiny_speed, em = tiny_rows(folder, args)
            speed += tiny_speed
    print(
        f"\ntorch {torch.__version__}, {torch.get_num_threads()} threads, "
        f"quantized engine {torch.backends.quantized.engine}, "
        f"max_new_tokens={args.max_new_tokens} (tiny: up to 16, greedy)"
    )
    print("\n| model | questions per request | fp32 answers/s | int8 answers/s | int8 / fp32 |")
    print("| --- | --- | --- | --- | --- |")
    print("\n".join(speed))
    if em:
        print("\n| tiny T5, biography test split | questions | exact match | F1 |")
        print("| --- | --- | --- | --- |")
        print("\n".join(em))
    return 0


if __name__ == "__main__":
    sys.exit(main())
