"""IAM preflight: how long `check_deployment` takes, batched vs one simulator call per row, and
with the simulator missing (stock moto: the principals' policies fetched and evaluated locally).

    .venv/bin/python benchmarks/iam_check.py [--runs 7]

A private embedded local AWS (temp state dir, watched by this process) and a stock moto server
on loopback; both stopped at the end. Bounded to about a minute on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

CLI = Path(sys.executable).parent / "qa-console"
ACCOUNT = "123456789012"


def median_seconds(runs: int, work: Callable[[], object]) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        work()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def counting(target: Any) -> dict[str, int]:
    """Count the IAM calls a Target's clients make, by operation."""
    counts: dict[str, int] = {}

    def count(model: Any, **_: Any) -> None:
        counts[model.name] = counts.get(model.name, 0) + 1

    target.session().events.register("before-call.iam", count)
    return counts


def deployment() -> Any:
    from qa_console.ops.iam.facts import DeploymentFacts

    return DeploymentFacts(
        account_id=ACCOUNT,
        region="us-east-1",
        bucket="bench-bucket",
        model_key="qa-console/model.tar.gz",
        execution_role_arn=f"arn:aws:iam::{ACCOUNT}:role/bench-exec",
        endpoint_name="bench-bot",
        model_name="bench-bot-model",
        endpoint_config_name="bench-bot-config",
    )


def user_target(url: str, admin: Any, document: dict[str, Any]) -> Any:
    from qa_console.ops.aws.target import Connection, Target

    iam = admin.client("iam")
    iam.create_user(UserName="bench-deployer")
    iam.put_user_policy(
        UserName="bench-deployer", PolicyName="deploy", PolicyDocument=json.dumps(document)
    )
    key = iam.create_access_key(UserName="bench-deployer")["AccessKey"]
    keys = {
        "aws_access_key_id": key["AccessKeyId"],
        "aws_secret_access_key": key["SecretAccessKey"],
    }
    connection = Connection({"*": url}, credentials=keys)
    return Target("bench", "us-east-1", connect=lambda: connection), keys


def setup(url: str) -> tuple[Any, dict[str, str]]:
    """The execution role and a deployer with the full minimal caller policy."""
    from qa_console.ops.aws.target import Connection, Target
    from qa_console.ops.iam.fix import minimal_policies
    from qa_console.ops.iam.role import create_execution_role

    fake = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
    admin = Target("admin", "us-east-1", connect=lambda: Connection({"*": url}, credentials=fake))
    facts = deployment()
    create_execution_role(admin, facts)
    preflight = {"Effect": "Allow", "Action": ["iam:Get*", "iam:List*"], "Resource": "*"}
    _, caller = minimal_policies(facts)["caller"]
    document = {**caller, "Statement": [*caller["Statement"], preflight]}
    return user_target(url, admin, document)


def check(target: Any) -> Any:
    from qa_console.ops.iam.check import check_deployment

    report = check_deployment(target, deployment())
    assert report.ok and not report.unknown, report.to_dict()
    return report


def per_row(target: Any) -> int:
    """The naive preflight: one SimulatePrincipalPolicy call per row (caller and role)."""
    from qa_console.ops.iam.check import PrincipalChecker
    from qa_console.ops.iam.requirements import caller_requirements, execution_role_needs

    facts = deployment()
    checker = PrincipalChecker(target, facts.region)
    iam = target.client("iam")
    principals = [
        (f"arn:aws:iam::{ACCOUNT}:user/bench-deployer", caller_requirements(facts)),
        (facts.execution_role_arn, list(execution_role_needs(facts).requirements)),
    ]
    calls = 0
    for arn, rows in principals:
        for row in rows:
            context = [
                {"ContextKeyName": k, "ContextKeyValues": [v], "ContextKeyType": "string"}
                for k, v in checker.context(row).items()
                if k != "aws:CurrentTime"
            ]
            iam.simulate_principal_policy(
                PolicySourceArn=arn,
                ActionNames=[row.action],
                ResourceArns=[row.resource],
                ContextEntries=context,
            )
            calls += 1
    return calls


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    runs = parser.parse_args().runs

    state = tempfile.mkdtemp(prefix="iam-bench-")
    os.environ["QA_CONSOLE_LOCAL_AWS_DIR"] = state
    os.environ["QA_CONSOLE_LOCAL_WATCH_PID"] = str(os.getpid())
    from qa_console.localaws import launcher

    port = free_port()
    stock = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        local_url = launcher.ensure_running("us-east-1").moto_url
        target, keys = setup(local_url)
        check(target)  # warm: clients, connections, the server's first evaluation
        counts = counting(target)
        check(target)
        counts = dict(counts)
        batched = median_seconds(runs, lambda: check(target))
        rows_calls = per_row(target)
        naive = median_seconds(runs, lambda: per_row(target))

        env = {
            **os.environ,
            "AWS_ACCESS_KEY_ID": keys["aws_access_key_id"],
            "AWS_SECRET_ACCESS_KEY": keys["aws_secret_access_key"],
            "QA_CONSOLE_EXECUTION_ROLE": deployment().execution_role_arn,
            "QA_CONSOLE_BUCKET": "bench-bucket",
            "QA_CONSOLE_ENDPOINT_NAME": "bench-bot",
        }
        command = [str(CLI), "iam", "check", "--json"]

        def cli() -> None:
            subprocess.run(command, env=env, capture_output=True, check=True)

        cli()
        cli_seconds = median_seconds(max(3, runs // 2), cli)

        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                time.sleep(0.1)
        stock_target, _ = setup(f"http://127.0.0.1:{port}")
        stock_counts = counting(stock_target)
        check(stock_target)
        stock_counts = dict(stock_counts)
        stock_seconds = median_seconds(runs, lambda: check(stock_target))
    finally:
        stock.terminate()
        stock.wait(timeout=20)
        launcher.stop()

    print(f"IAM preflight, median of {runs} runs (caller + execution role, all allowed)")
    print("| how | IAM calls | seconds |\n| --- | --- | --- |")
    calls = ", ".join(f"{n} {k}" for k, n in sorted(counts.items()))
    print(f"| batched simulator (local AWS) | {calls} | {batched:.3f} |")
    print(f"| one simulator call per row (local AWS) | {rows_calls} | {naive:.3f} |")
    print(f"| `qa-console iam check --json` (process wall time) | - | {cli_seconds:.3f} |")
    calls = ", ".join(f"{n} {k}" for k, n in sorted(stock_counts.items()))
    how = "no simulator: fetched + evaluated locally (stock moto)"
    print(f"| {how} | {calls} | {stock_seconds:.3f} |")


if __name__ == "__main__":
    main()
