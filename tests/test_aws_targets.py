"""One process can use the local AWS and then a real AWS profile: the second must not be routed
to the local moto by the endpoint variables the first exported."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from fixtures_localaws import LocalAws
from qa_console.localaws.state import read_state
from qa_console.ops.aws.target import resolve


def test_the_local_target_leaves_the_environment_alone_and_a_profile_goes_to_aws(
    local_aws: LocalAws, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One process can use the local AWS and then a real AWS profile (the TUI switching
    target): the local Target passes its endpoints per client, so nothing it did routes the
    profile's clients to the local moto."""
    for name in [name for name in os.environ if name.startswith("AWS_")]:
        monkeypatch.delenv(name)
    config = tmp_path / "aws-config"
    config.write_text("[profile real]\nregion = eu-west-1\n")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    before = dict(os.environ)

    local = resolve("local", local_aws.region)
    s3 = local.client("s3")
    s3.create_bucket(Bucket="target-local-only")
    assert s3.meta.endpoint_url == local_aws.endpoint_url
    assert local.client("sagemaker-runtime").meta.endpoint_url == local_aws.runtime_url
    assert dict(os.environ) == before

    real = resolve("real", "eu-west-1")
    assert "127.0.0.1" not in real.client("s3").meta.endpoint_url
    assert real.api_url("abc", "prod", "ask").startswith("https://abc.execute-api.eu-west-1.")
    assert local.api_url("abc", "prod", "/ask") == (
        f"{local_aws.gateway_url}/restapis/abc/prod/_user_request_/ask"
    )


def test_naming_the_local_target_starts_nothing_until_a_client_is_made(
    private_local_aws_dir: Path,
) -> None:
    target = resolve("local", "us-east-1")
    assert target.describe() == "local (us-east-1)"
    assert read_state(private_local_aws_dir) is None


def test_an_unknown_profile_is_a_one_line_error_not_a_traceback(tmp_path: Path) -> None:
    import subprocess
    import sys

    archive = tmp_path / "model.tar.gz"
    archive.write_bytes(b"")
    env = {
        **os.environ,
        "AWS_CONFIG_FILE": str(tmp_path / "none"),
        "QA_CONSOLE_EXECUTION_ROLE": "arn:aws:iam::123456789012:role/r",
    }
    out = subprocess.run(
        [sys.executable, "-m", "qa_console", "--target", "no-such-profile", "train", "--on",
         "sagemaker", "--base-model", "tiny", "--output", str(tmp_path / "m")],
        capture_output=True, text=True, env=env, timeout=120,
    )  # fmt: skip
    assert out.returncode == 2, out.stderr
    assert "error: AWS profile 'no-such-profile' does not exist" in out.stderr
    assert "Traceback" not in out.stderr


def test_the_target_flag_reaches_a_sagemaker_backend_that_names_no_target(
    tmp_path: Path,
) -> None:
    """plugins.toml leaves target/region to the settings: `--target` must decide where the
    backend's clients go (here, an unknown profile instead of the default local AWS)."""
    import subprocess
    import sys

    plugins = tmp_path / "plugins.toml"
    plugins.write_text('[backends.sm]\nkind = "sagemaker"\nendpoint = "biography-bot"\n')
    env = {
        **os.environ,
        "QA_CONSOLE_PLUGINS": str(plugins),
        "AWS_CONFIG_FILE": str(tmp_path / "none"),
    }
    out = subprocess.run(
        [sys.executable, "-m", "qa_console", "--target", "no-such-profile", "ask", "--backend",
         "sm", "Who?"],
        capture_output=True, text=True, env=env, timeout=120,
    )  # fmt: skip
    assert out.returncode == 2, out.stderr
    assert "AWS profile 'no-such-profile' does not exist" in out.stderr
    assert "Traceback" not in out.stderr
