"""One process can use the local AWS and then a real AWS profile: the second must not be routed
to the local moto by the endpoint variables the first exported."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from qa_console.localaws import launcher
from qa_console.localaws.state import LocalAwsState
from qa_console.ops.aws import target as aws


def test_real_profile_session_withdraws_local_endpoints(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME", "AWS_ACCESS_KEY_ID"):
        monkeypatch.delenv(name, raising=False)
    config = tmp_path / "aws-config"
    config.write_text("[profile real]\nregion = eu-west-1\n")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    fake_state = LocalAwsState(
        pid=1,
        ports={"moto": 1, "runtime": 2, "gateway": 3},
        started_at=0.0,
        version="test",
        moto_version="test",
        region="us-east-1",
        state_dir=str(tmp_path),
    )
    exported = launcher.export_env(fake_state)
    try:
        assert os.environ["AWS_ENDPOINT_URL"] == "http://127.0.0.1:1"

        session = aws.session("real", "eu-west-1")

        assert "AWS_ENDPOINT_URL" not in os.environ
        assert "AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME" not in os.environ
        endpoint = session.client("s3").meta.endpoint_url
        assert "127.0.0.1" not in endpoint
    finally:
        for name in exported:
            os.environ.pop(name, None)


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
