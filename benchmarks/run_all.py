"""Run every benchmark script in turn with its defaults and print their numbers.

    .venv/bin/python benchmarks/run_all.py [NAME ...]    # e.g. `train runtime`; default: all

Each script is bounded on its own (see its docstring); the whole set takes roughly 10-15 minutes
on 2 cores, most of it packaging a 1 GB weights-like folder. Results are recorded by hand in
docs/benchmarks.md, one section per script.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SCRIPTS = [
    "ask_overhead", "train", "package", "localaws", "runtime", "gateway", "logs", "iam_check",
    "deploy", "fast_path", "tui_keys",
]  # fmt: skip


def main(names: list[str]) -> int:
    unknown = sorted(set(names) - set(SCRIPTS))
    if unknown:
        print(f"unknown benchmark {unknown[0]!r}; choose from {', '.join(SCRIPTS)}")
        return 2
    failed = 0
    for name in names or SCRIPTS:
        print(f"\n=== benchmarks/{name}.py ===", flush=True)
        start = time.perf_counter()
        result = subprocess.run([sys.executable, str(HERE / f"{name}.py")], check=False)
        print(f"=== {name}: exit {result.returncode} in {time.perf_counter() - start:.0f} s ===")
        failed += result.returncode != 0
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
