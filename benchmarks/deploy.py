"""Deploy to first answer on the embedded local AWS: the wall time of `qa-console deploy` (upload,
IAM preflight, create_model / create_endpoint_config / create_endpoint, Creating -> InService, the
warm-up question) for the tiny model, per mode, and the phases the deploy reports itself.

    .venv/bin/python benchmarks/deploy.py [--runs 3]

A private local AWS (temp state dir, watched by this process), stopped at the end. The model is a
tiny T5 trained for a few steps here (answers do not matter, loading does). Bounded: each deploy
has a 5-minute timeout; about 2 minutes in all on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CLI = str(Path(sys.executable).parent / "qa-console")
MODES = {
    "serverless": ["--serverless", "--memory", "2048"],
    "real-time": ["--instance-type", "auto", "--budget", "1"],
}


def qa(*args: str, env: dict[str, str], cwd: Path, timeout: float = 300) -> str:
    run = subprocess.run(
        [CLI, *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout
    )
    if run.returncode != 0:
        raise SystemExit(f"qa-console {' '.join(args)} failed:\n{run.stderr}")
    return run.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    runs = parser.parse_args().runs
    with tempfile.TemporaryDirectory(prefix="qa-bench-deploy-") as scratch:
        work = Path(scratch)
        env = {
            **os.environ,
            "QA_CONSOLE_LOCAL_AWS_DIR": str(work / "local-aws"),
            "QA_CONSOLE_LOCAL_WATCH_PID": str(os.getpid()),
            **{
                f"XDG_{name}_HOME": str(work / name.lower()) for name in ("CONFIG", "DATA", "STATE")
            },
        }
        try:
            qa("train", "--base-model", "tiny", "--max-steps", "5", env=env, cwd=work)
            qa("package", "artifacts/model", env=env, cwd=work)
            qa("local", "up", env=env, cwd=work)
            print(
                f"{'mode':<11} {'run':>3} {'deploy wall':>12} {'InService':>10} {'1st answer':>11}"
            )
            walls: dict[str, list[float]] = {mode: [] for mode in MODES}
            for mode, flags in MODES.items():
                for run in range(runs):
                    name = f"bench-{mode}-{run}"
                    # The role create-role makes is scoped to one endpoint's logs, as it should be.
                    role = qa("iam", "create-role", name, "--endpoint", name, env=env, cwd=work)
                    qa("config", "set", "execution_role", role.strip(), env=env, cwd=work)
                    started = time.perf_counter()
                    out = qa(
                        "deploy", "artifacts/model.tar.gz", "--name", name, *flags, "--json",
                        env=env, cwd=work,
                    )  # fmt: skip
                    wall = time.perf_counter() - started
                    walls[mode].append(wall)
                    deployed = json.loads(out)["deploy"]
                    warmup = deployed.get("warmup") or {}
                    in_service = _seconds(deployed.get("seconds"))
                    first = _seconds(warmup.get("seconds"))
                    print(f"{mode:<11} {run:>3} {wall:>11.2f}s {in_service:>10} {first:>11}")
            for mode, values in walls.items():
                print(f"{mode}: median deploy-to-first-answer {statistics.median(values):.2f} s")
        finally:
            subprocess.run(
                [CLI, "local", "down"], env=env, cwd=work, capture_output=True, timeout=60
            )


def _seconds(value: object) -> str:
    return f"{value:.2f}s" if isinstance(value, int | float) else "-"


if __name__ == "__main__":
    main()
