"""`qa-console bench` against real backends over sockets: the parrot endpoint of the local
SageMaker runtime (answers) and an endpoint that does not exist (every request an error)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fixtures_foundation import run_cli, write_plugins
from fixtures_runtime import PROFILE, RuntimeStack
from qa_console.bench import markdown_report, percentile


@pytest.fixture
def plugins(
    runtime_aws: RuntimeStack, parrot: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Path:
    path = write_plugins(
        tmp_path / "plugins.toml",
        {
            "fast": {"kind": "sagemaker", "endpoint": parrot, "target": PROFILE},
            "gone": {"kind": "sagemaker", "endpoint": "no-such-endpoint", "target": PROFILE},
        },
    )
    monkeypatch.setenv("QA_CONSOLE_PLUGINS", str(path))
    return path


def test_two_backends_side_by_side_with_errors_counted_and_the_run_kept(
    plugins: Path, tmp_path: Path
) -> None:
    report = tmp_path / "bench.md"
    run = run_cli(
        "bench", "-b", "fast", "-b", "gone", "-n", "24", "-c", "4", "--report", str(report),
        "--json",
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    data = json.loads(run.stdout)
    fast, gone = data["results"]
    assert (fast["backend"], fast["requests"], fast["concurrency"]) == ("fast", 24, 4)
    assert fast["answered"] == 23 and fast["errors"] == {}  # 1 cold request + 23 under load
    assert fast["cold_start_ms"] > 0
    assert 0 < fast["p50_ms"] <= fast["p95_ms"] <= fast["p99_ms"]
    assert fast["throughput_rps"] > 0
    # ml.m5.large at $0.115/hour spread over the answers it gives an hour at this speed
    assert fast["usd_per_1000_requests"] == pytest.approx(
        0.115 / (fast["throughput_rps"] * 3600) * 1000, rel=0.01
    )
    assert "ml.m5.large" in fast["cost_basis"]
    assert gone["usd_per_1000_requests"] is None
    assert gone["answered"] == 0 and gone["errors"] == {"UsageError": 24}  # the cold one too
    assert gone["cold_start_ms"] is None and "no-such-endpoint" in gone["first_error"]
    kept = json.loads(Path(data["file"]).read_text(encoding="utf-8"))
    assert kept["results"] == data["results"]
    table = report.read_text(encoding="utf-8").splitlines()
    assert table[0].startswith("| backend |") and len(table) == 4
    assert table[2].startswith("| fast | sagemaker | 24 | 4 |")


def test_people_get_a_table_and_bad_flags_change_nothing(plugins: Path) -> None:
    run = run_cli("bench", "-b", "fast", "-n", "5")
    assert run.returncode == 0, run.stderr
    assert "fast" in run.stdout and "p95" in run.stdout and "results kept in" in run.stderr
    unknown = run_cli("bench", "-b", "nope", "-n", "5")
    assert unknown.returncode == 2 and "nope" in unknown.stderr
    too_many = run_cli("bench", "-b", "fast", "-c", "0")
    assert too_many.returncode == 2 and "--concurrency" in too_many.stderr
    nowhere = run_cli("bench", "-b", "fast", "-n", "5", "--report", "/no/such/folder/b.md")
    assert nowhere.returncode == 2 and "does not exist" in nowhere.stderr
    assert "Traceback" not in nowhere.stderr


def test_percentiles_are_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert (percentile(values, 50), percentile(values, 95), percentile(values, 99)) == (
        50.0,
        95.0,
        99.0,
    )
    assert percentile([7.0], 99) == 7.0 and percentile([], 50) is None
    row = markdown_report([{"backend": "b", "errors": {"BackendError": 2}, "p50_ms": 1.5}])
    assert "| b | - | - | - | - | 1.5 | - | - | - | BackendError 2 |" in row
