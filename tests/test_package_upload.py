"""Uploading archives to S3 (a real moto server on loopback): checksummed multipart upload,
verification, nothing visible after an interruption, resume, clean retry, and the CLI."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import pytest

from fixtures_foundation import run_cli
from fixtures_package import MotoS3
from qa_console.errors import UsageError
from qa_console.events import ProgressEvent
from qa_console.ops.aws import s3
from qa_console.ops.aws.target import Target

PART = s3.MIN_PART_SIZE


class Interrupted(Exception):
    """Stands in for Ctrl-C or a dropped connection in the middle of an upload."""


def interrupt_after(parts: int) -> Any:
    seen = {"parts": 0}

    def progress(event: ProgressEvent) -> None:
        if event.task == "upload" and event.message.startswith("part "):
            seen["parts"] += 1
            if seen["parts"] == parts:
                raise Interrupted(f"stopped after part {parts}")

    return progress


def upload_until_interrupted(target: Target, path: Path, bucket: str, key: str, parts: int) -> None:
    """Start an upload of 5 MiB parts, one at a time, and interrupt it after `parts` of them."""
    with pytest.raises(Interrupted):
        s3.upload_file(
            target, path, bucket, key, part_size=PART, concurrency=1,
            progress=interrupt_after(parts),
        )  # fmt: skip


@pytest.fixture
def big_file(tmp_path: Path) -> Path:
    """Two full 5 MiB parts and a short third one."""
    path = tmp_path / "model.tar.gz"
    path.write_bytes(os.urandom(2 * PART + 123_456))
    return path


def object_bytes(client: Any, bucket: str, key: str) -> bytes:
    return client.get_object(Bucket=bucket, Key=key)["Body"].read()


def pending_uploads(client: Any, bucket: str, key: str) -> list[str]:
    uploads = client.list_multipart_uploads(Bucket=bucket, Prefix=key).get("Uploads", [])
    return [upload["UploadId"] for upload in uploads if upload["Key"] == key]


def missing(client: Any, bucket: str, key: str) -> bool:
    from botocore.exceptions import ClientError

    try:
        client.head_object(Bucket=bucket, Key=key)
    except ClientError as error:
        return error.response["Error"]["Code"] in ("404", "NoSuchKey")
    return False


def test_multipart_upload_is_checksummed_and_verified(moto_s3: MotoS3, big_file: Path) -> None:
    client = moto_s3.client()
    assert s3.ensure_bucket(moto_s3.target, "upload-plain") is True
    assert s3.ensure_bucket(moto_s3.target, "upload-plain") is False

    events: list[ProgressEvent] = []
    result = s3.upload_file(
        moto_s3.target,
        big_file,
        "upload-plain",
        "models/model.tar.gz",
        part_size=PART,
        progress=events.append,
    )

    data = big_file.read_bytes()
    assert result.url == "s3://upload-plain/models/model.tar.gz"
    assert (result.size, result.parts, result.resumed_parts) == (len(data), 3, 0)
    assert result.sha256 == hashlib.sha256(data).hexdigest()
    assert object_bytes(client, "upload-plain", "models/model.tar.gz") == data
    head = client.head_object(
        Bucket="upload-plain", Key="models/model.tar.gz", ChecksumMode="ENABLED"
    )
    assert head["Metadata"]["sha256"] == result.sha256
    assert head["ChecksumSHA256"].split("-")[0] == result.checksum_sha256
    uploads = [e for e in events if e.task == "upload"]
    assert all(e.unit == "bytes" for e in uploads)
    assert uploads[-1].done and uploads[-1].completed == len(data)
    assert pending_uploads(client, "upload-plain", "models/model.tar.gz") == []


def test_an_interrupted_upload_leaves_nothing_at_the_key_and_resumes(
    moto_s3: MotoS3, big_file: Path
) -> None:
    client = moto_s3.client()
    s3.ensure_bucket(moto_s3.target, "upload-resume")
    key = "models/model.tar.gz"

    upload_until_interrupted(moto_s3.target, big_file, "upload-resume", key, parts=2)

    assert missing(client, "upload-resume", key)  # parts are invisible until completed
    assert len(pending_uploads(client, "upload-resume", key)) == 1

    events: list[ProgressEvent] = []
    result = s3.upload_file(
        moto_s3.target,
        big_file,
        "upload-resume",
        key,
        part_size=PART,
        concurrency=1,
        progress=events.append,
    )
    assert result.resumed_parts == 2 and result.parts == 3
    assert object_bytes(client, "upload-resume", key) == big_file.read_bytes()
    assert pending_uploads(client, "upload-resume", key) == []
    first = next(e for e in events if e.task == "upload")
    assert first.completed == 2 * PART and "resuming" in first.message


def test_a_changed_file_aborts_the_stale_upload_and_starts_clean(
    moto_s3: MotoS3, big_file: Path
) -> None:
    client = moto_s3.client()
    s3.ensure_bucket(moto_s3.target, "upload-retry")
    key = "model.tar.gz"
    upload_until_interrupted(moto_s3.target, big_file, "upload-retry", key, parts=1)
    stale = pending_uploads(client, "upload-retry", key)

    big_file.write_bytes(os.urandom(PART + 10))  # rebuilt archive, same name
    result = s3.upload_file(moto_s3.target, big_file, "upload-retry", key, part_size=PART)

    assert result.resumed_parts == 0
    assert object_bytes(client, "upload-retry", key) == big_file.read_bytes()
    assert len(stale) == 1 and pending_uploads(client, "upload-retry", key) == []


def test_uploading_the_same_bytes_again_is_a_verified_no_op(
    moto_s3: MotoS3, tmp_path: Path
) -> None:
    client = moto_s3.client()
    s3.ensure_bucket(moto_s3.target, "upload-same")
    archive = tmp_path / "model.tar.gz"
    archive.write_bytes(b"small archive")
    first = s3.upload_file(moto_s3.target, archive, "upload-same", "m/model.tar.gz")
    again = s3.upload_file(moto_s3.target, archive, "upload-same", "m/model.tar.gz")
    assert not first.skipped and again.skipped
    assert again.sha256 == first.sha256

    archive.write_bytes(b"a different archive")
    replaced = s3.upload_file(moto_s3.target, archive, "upload-same", "m/model.tar.gz")
    assert not replaced.skipped
    assert object_bytes(client, "upload-same", "m/model.tar.gz") == b"a different archive"


def test_locations_parse_and_default() -> None:
    assert s3.parse_s3_url("s3://bucket-a/models/") == ("bucket-a", "models/")
    assert s3.object_key("models/", "model.tar.gz") == "models/model.tar.gz"
    assert s3.object_key("models", "model.tar.gz") == "models/model.tar.gz"
    assert s3.object_key("models/v2.tar.gz", "model.tar.gz") == "models/v2.tar.gz"
    assert (
        s3.default_bucket_name("123456789012", "eu-west-1") == "qa-console-123456789012-eu-west-1"
    )
    for bad, words in [
        ("https://bucket/x", "is not an s3:// URL"),
        ("s3://", "is not an s3:// URL"),
        ("s3:///models/", "names no bucket"),
    ]:
        with pytest.raises(UsageError, match=words):
            s3.parse_s3_url(bad)


def test_destination_comes_from_the_url_then_the_settings_then_the_account(
    moto_s3: MotoS3,
) -> None:
    class NoSts(Target):
        def client(self, service: str, **config: Any) -> Any:
            raise AssertionError("STS must not be called when a bucket is known")

    no_sts = NoSts("moto", "us-east-1", profile="moto")
    resolve = s3.resolve_destination
    url = resolve("s3://b-url/x/", "m.tar.gz", bucket="b-set", folder="f", target=no_sts)
    assert url == ("b-url", "x/m.tar.gz")
    settings = resolve(None, "m.tar.gz", bucket="b-set", folder="/f/", target=no_sts)
    assert settings == ("b-set", "f/m.tar.gz")
    account = resolve(
        None, "m.tar.gz", bucket=None, folder="", target=Target.profile("moto", "eu-west-1")
    )
    assert account == ("qa-console-123456789012-eu-west-1", "m.tar.gz")


def test_cli_checks_uploads_and_prints_the_url(moto_s3: MotoS3, tiny_archive: Path) -> None:
    completed = run_cli("--target", "moto", "upload", str(tiny_archive))
    assert completed.returncode == 0, completed.stderr
    url = completed.stdout.strip()
    assert url == "s3://qa-console-123456789012-us-east-1/qa-console/model.tar.gz"
    assert "verified" in completed.stderr

    client = moto_s3.client()
    body = object_bytes(client, "qa-console-123456789012-us-east-1", "qa-console/model.tar.gz")
    assert body == tiny_archive.read_bytes()

    as_json = run_cli(
        "--target", "moto", "upload", str(tiny_archive), "s3://upload-cli/v1/", "--json"
    )
    assert as_json.returncode == 0, as_json.stderr
    data = json.loads(as_json.stdout)
    assert data["upload"]["url"] == "s3://upload-cli/v1/model.tar.gz"
    assert data["check"]["ok"] is True


def test_cli_refuses_a_bad_archive_before_uploading(moto_s3: MotoS3, tmp_path: Path) -> None:
    bad = tmp_path / "model.tar.gz"
    bad.write_bytes(b"not an archive at all" * 10)
    completed = run_cli("--target", "moto", "upload", str(bad), "s3://upload-refused/")
    assert completed.returncode == 2
    assert "refused" in completed.stderr
    client = moto_s3.client()
    buckets = [b["Name"] for b in client.list_buckets().get("Buckets", [])]
    assert "upload-refused" not in buckets


def test_cli_bad_inputs_are_one_line_errors(
    moto_s3: MotoS3, tiny_archive: Path, tmp_path: Path
) -> None:
    not_archive = tmp_path / "model.tar.gz"
    not_archive.write_bytes(b"not an archive at all" * 10)
    for arguments, words in [
        ([str(tmp_path / "absent.tar.gz")], "no such file"),
        ([str(tmp_path)], "is a folder"),
        ([str(tiny_archive), "s3:///models/"], "names no bucket"),
        ([str(tiny_archive), "https://bucket/models/"], "is not an s3:// URL"),
        ([str(not_archive), "s3://"], "is not an s3:// URL"),  # before reading the archive
    ]:
        completed = run_cli("--target", "moto", "upload", *arguments)
        assert completed.returncode == 2, completed.stderr
        assert words in completed.stderr and "Traceback" not in completed.stderr
