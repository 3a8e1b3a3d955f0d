"""What the IAM, Deploy and Logs screen tests share: an execution role that may do nothing, and
one declared backend, selected at start (QAConsoleApp(backend=DECLARED_BACKEND)), so the header
and so every snapshot do not depend on which backend the shipped plugins.toml declares first."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fixtures_foundation import write_plugins
from fixtures_localaws import LocalAws
from qa_console.ops.iam.fix import trust_policy

DECLARED_BACKEND = "one"
SNAPSHOT_ROLE = "tui-iam-bare"  # one fixed name: the filled snapshot shows its ARN


def bare_role(local_aws: LocalAws, name: str = SNAPSHOT_ROLE) -> str:
    """A role SageMaker may assume that may do nothing: every one of its rows is denied."""
    iam = local_aws.client("iam")
    try:
        made = iam.create_role(
            RoleName=name,
            AssumeRolePolicyDocument=json.dumps(trust_policy("sagemaker.amazonaws.com")),
        )
    except iam.exceptions.EntityAlreadyExistsException:
        made = iam.get_role(RoleName=name)
    return str(made["Role"]["Arn"])


def declare_one_backend(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """QA_CONSOLE_PLUGINS -> a file with one http backend (never asked in these tests)."""
    plugins = tmp_path / "tui-ops-plugins.toml"
    write_plugins(plugins, {DECLARED_BACKEND: {"kind": "http", "url": "http://127.0.0.1:9/ask"}})
    monkeypatch.setenv("QA_CONSOLE_PLUGINS", str(plugins))
