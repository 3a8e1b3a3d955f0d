"""The one AWS error translator (ops/aws/errors.py), fed by real botocore failures: a moto server
that enforces IAM (INITIAL_NO_AUTH_ACTION_COUNT), a port nobody listens on, a profile that does
not exist, a profile without credentials."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from fixtures_iam import enforcing_moto, free_port
from qa_console.errors import AuthError, BackendError, ConfigError, UsageError
from qa_console.ops.aws.errors import aws_errors
from qa_console.ops.aws.target import Connection, Target, resolve

REGION = "us-east-1"
SETUP_CALLS = 6  # moto answers this many requests before it starts checking credentials


@pytest.fixture(scope="module")
def iam_enforcing_moto() -> Iterator[str]:
    """A moto server in its own process that checks every request against IAM once the first
    SETUP_CALLS requests (which create the restricted user) are spent."""
    with enforcing_moto(SETUP_CALLS) as url:
        yield url


def raw_client(url: str, service: str) -> object:
    import boto3

    return boto3.client(
        service,
        region_name=REGION,
        endpoint_url=url,
        aws_access_key_id="setup",
        aws_secret_access_key="setup",
    )


@pytest.fixture(scope="module")
def uploader_without_put(iam_enforcing_moto: str) -> dict[str, str]:
    """Access keys of a user who may create and list buckets and read its identity, but not
    put objects (six unauthenticated setup calls)."""
    iam = raw_client(iam_enforcing_moto, "iam")
    iam.create_user(UserName="no-put")  # type: ignore[attr-defined]
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": [
                    "s3:CreateBucket",
                    "s3:ListBucket",
                    "s3:HeadBucket",  # moto's name for HeadBucket (AWS checks s3:ListBucket)
                    "s3:ListAllMyBuckets",
                    "sts:GetCallerIdentity",
                ],
                "Resource": "*",
            }
        ],
    }
    arn = iam.create_policy(  # type: ignore[attr-defined]
        PolicyName="no-put", PolicyDocument=json.dumps(policy)
    )["Policy"]["Arn"]
    iam.attach_user_policy(UserName="no-put", PolicyArn=arn)  # type: ignore[attr-defined]
    key = iam.create_access_key(UserName="no-put")["AccessKey"]  # type: ignore[attr-defined]
    raw_client(iam_enforcing_moto, "s3").create_bucket(Bucket="denied-bucket")  # type: ignore[attr-defined]
    return {
        "aws_access_key_id": key["AccessKeyId"],
        "aws_secret_access_key": key["SecretAccessKey"],
    }


def restricted_target(url: str, keys: dict[str, str]) -> Target:
    return Target("restricted", REGION, connect=lambda: Connection({"*": url}, credentials=keys))


def test_an_access_denied_upload_names_the_action_and_the_permission(
    iam_enforcing_moto: str, uploader_without_put: dict[str, str], tmp_path: Path
) -> None:
    from qa_console.ops.aws import s3

    archive = tmp_path / "model.tar.gz"
    archive.write_bytes(b"x" * 1000)
    target = restricted_target(iam_enforcing_moto, uploader_without_put)
    with pytest.raises(AuthError) as caught:
        s3.upload_file(target, archive, "denied-bucket", "m/model.tar.gz")
    message = caught.value.message
    assert message.startswith("cannot upload model.tar.gz to s3://denied-bucket/m/model.tar.gz:")
    assert "access denied (needs s3:PutObject on bucket denied-bucket)" in message
    assert "qa-console iam check" in (caught.value.hint or "")


def test_train_on_sagemaker_with_an_upload_denied_is_a_one_line_error(
    iam_enforcing_moto: str,
    uploader_without_put: dict[str, str],
    tiny_slice: Path,
    tmp_path: Path,
) -> None:
    """Was a traceback: boto3's upload_file raises S3UploadFailedError, not a ClientError."""
    config = tmp_path / "aws-config"
    config.write_text(
        f"[profile restricted]\nregion = {REGION}\nendpoint_url = {iam_enforcing_moto}\n"
    )
    credentials = tmp_path / "aws-credentials"
    credentials.write_text(
        "[restricted]\n"
        f"aws_access_key_id = {uploader_without_put['aws_access_key_id']}\n"
        f"aws_secret_access_key = {uploader_without_put['aws_secret_access_key']}\n"
    )
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("AWS_")},
        "AWS_CONFIG_FILE": str(config),
        "AWS_SHARED_CREDENTIALS_FILE": str(credentials),
        "QA_CONSOLE_EXECUTION_ROLE": "arn:aws:iam::123456789012:role/trainer",
        "QA_CONSOLE_BUCKET": "denied-bucket",
    }
    run = subprocess.run(
        [sys.executable, "-m", "qa_console", "--target", "restricted", "train", "--on",
         "sagemaker", "--base-model", "tiny", "--data", str(tiny_slice), "--output",
         str(tmp_path / "model"), "--job-name", "qa-denied"],
        capture_output=True, text=True, env=env, timeout=180, check=False,
    )  # fmt: skip
    assert run.returncode == 3, run.stderr
    assert "Traceback" not in run.stderr
    error_lines = [line for line in run.stderr.splitlines() if line.startswith("error:")]
    assert len(error_lines) == 1, run.stderr
    assert "access denied (needs s3:PutObject" in error_lines[0]
    assert "s3://denied-bucket/qa-console/training/qa-denied/" in error_lines[0]


def test_an_unreachable_service_says_where_and_what_to_do() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    keys = {"aws_access_key_id": "a", "aws_secret_access_key": "b"}
    target = Target("gone", REGION, connect=lambda: Connection({"*": url}, credentials=keys))
    with pytest.raises(BackendError) as caught, aws_errors("list buckets", target=target):
        target.client("s3", retries={"max_attempts": 1}).list_buckets()
    assert caught.value.message == f"cannot list buckets: cannot reach {url} in gone ({REGION})"
    assert caught.value.hint == "check the network and the region"


def test_profiles_that_do_not_exist_or_lack_credentials(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in [name for name in os.environ if name.startswith("AWS_")]:
        monkeypatch.delenv(name)
    config = tmp_path / "config"
    config.write_text(f"[profile empty]\nregion = {REGION}\n")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")

    with pytest.raises(ConfigError, match="AWS profile 'nope' does not exist"):
        resolve("nope", REGION).client("s3")
    empty = resolve("empty", REGION)
    with pytest.raises(AuthError) as caught, aws_errors("list buckets", target=empty):
        empty.client("s3").list_buckets()
    assert (
        caught.value.message
        == f"cannot list buckets: no AWS credentials for profile empty ({REGION})"
    )
    assert "aws configure --profile empty" in (caught.value.hint or "")


def test_a_missing_resource_is_a_usage_error_naming_it(local_aws: object) -> None:
    target = resolve("local", REGION)
    with (
        pytest.raises(UsageError) as caught,
        aws_errors("read the endpoint", target=target, resource="endpoint no-such-bot"),
    ):
        target.client("sagemaker").describe_endpoint(EndpointName="no-such-bot")
    assert caught.value.message == (
        f"cannot read the endpoint: endpoint no-such-bot does not exist in local ({REGION})"
    )


def test_failures_that_are_not_aws_keep_their_traceback() -> None:
    with pytest.raises(ZeroDivisionError), aws_errors("divide"):
        _ = 1 / 0
