"""Upload model archives to S3: a verified, resumable multipart upload with SHA-256 checksums.

`upload_file(s3, path, bucket, key) -> UploadResult` drives create_multipart_upload /
upload_part / complete_multipart_upload itself (rather than boto3's transfer manager) to control
what an interruption leaves behind:

- parts of an unfinished multipart upload are invisible: nothing appears under the final key
  until complete_multipart_upload, so a half upload is never mistaken for a model;
- every uploaded part is recorded in the user's state dir (`uploads/<hash of bucket/key>.json`,
  with the file's sha256), so a rerun for the same file and key resumes after the last part S3
  confirms; a rerun with a different file aborts the stale upload and starts clean, and other
  pending uploads to the same key are aborted too (they would only cost storage);
- each part carries its SHA-256 checksum (S3 rejects a part whose bytes do not match), the
  object carries the whole file's sha256 in its metadata, and after completion head_object is
  checked for size, metadata and the composite checksum (sha256 of the part digests). An
  object that fails verification is deleted.

Functions take the Target (ops/aws/target.py) and build their clients from it; nothing here knows
whether it talks to AWS or to the embedded local one. AWS failures become typed errors through
the one translator (ops/aws/errors.py); the permission an S3 denial needs is named from the
operation that was denied.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from qa_console.errors import AuthError, OperationError, UsageError
from qa_console.events import ProgressCallback, ProgressEvent, ignore_progress
from qa_console.ops.aws.errors import aws_errors, error_code, error_status

if TYPE_CHECKING:
    from qa_console.ops.aws.target import Target

MIB = 1024 * 1024
DEFAULT_PART_SIZE = 16 * MIB
MIN_PART_SIZE = 5 * MIB  # S3's floor for every part but the last
MAX_PARTS = 10_000
DEFAULT_CONCURRENCY = 4
SHA_METADATA = "sha256"  # x-amz-meta-sha256: the whole file's hex sha256
HASH_CHUNK = 8 * MIB
NOT_FOUND = ("404", "NoSuchBucket", "NoSuchKey", "NotFound")


@dataclass(frozen=True)
class UploadResult:
    url: str  # s3://bucket/key
    bucket: str
    key: str
    size: int
    sha256: str  # hex, of the whole file
    checksum_sha256: str  # S3's composite checksum (base64 sha256 of the part digests)
    parts: int
    resumed_parts: int  # parts a previous, interrupted run had already uploaded
    seconds: float
    skipped: bool = False  # the same bytes were already at the key

    @property
    def bytes_per_second(self) -> float:
        return self.size / self.seconds if self.seconds > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["bytes_per_second"] = self.bytes_per_second
        return data


@dataclass
class _State:
    """What is recorded between runs about one pending multipart upload."""

    bucket: str
    key: str
    upload_id: str
    sha256: str
    size: int
    part_size: int
    parts: dict[int, dict[str, str]] = field(default_factory=dict)  # number -> ETag, checksum


# --- locations ---------------------------------------------------------------------------------


def parse_s3_url(url: str) -> tuple[str, str]:
    """`s3://bucket/some/prefix/` -> ("bucket", "some/prefix/"). Raises UsageError otherwise."""
    if not url.startswith("s3://") or len(url) <= 5:
        raise UsageError(f"{url!r} is not an s3:// URL", hint="write it as s3://bucket/folder/")
    bucket, _, rest = url[5:].partition("/")
    if not bucket:
        raise UsageError(f"{url!r} names no bucket", hint="write it as s3://bucket/folder/")
    return bucket, rest


def default_bucket_name(account_id: str, region: str) -> str:
    """qa-console-<account>-<region>: unique per account and region, and a valid bucket name."""
    return f"qa-console-{account_id}-{region}".lower()


def default_bucket(target: Target) -> str:
    """The default bucket of the caller's account (sts:GetCallerIdentity needs no permission)."""
    with aws_errors("find your AWS account (sts get-caller-identity)", target=target):
        account = target.client("sts").get_caller_identity()["Account"]
    return default_bucket_name(str(account), target.region)


def object_key(prefix: str, filename: str) -> str:
    """Where an archive goes: a prefix ending in '/' (or empty) is a folder, else the full key."""
    if not prefix:
        return filename
    if prefix.endswith("/"):
        return prefix + filename
    if prefix.endswith((".tar.gz", ".tgz")):
        return prefix
    return f"{prefix}/{filename}"


def resolve_destination(
    url: str | None,
    filename: str,
    *,
    bucket: str | None,
    folder: str | None,
    target: Target,
) -> tuple[str, str]:
    """(bucket, key) for an archive: from `url` (s3://bucket/folder/ or a full key) when given,
    else the bucket and folder settings; with no bucket anywhere, qa-console-<account>-<region>
    (asking STS for the account only then)."""
    if url:
        bucket, prefix = parse_s3_url(url)
    else:
        prefix = (folder or "").strip("/") + "/"
    if not bucket:
        bucket = default_bucket(target)
    return bucket, object_key(prefix.lstrip("/"), filename)


# --- bucket ------------------------------------------------------------------------------------


def ensure_bucket(target: Target, bucket: str) -> bool:
    """Create `bucket` unless it exists and is ours; returns True when it was created."""
    from botocore.exceptions import ClientError

    s3 = target.client("s3")
    with aws_errors(f"look up bucket {bucket}", target=target, resource=f"bucket {bucket}"):
        try:
            s3.head_bucket(Bucket=bucket)
            return False
        except ClientError as error:
            if error_status(error) == 403:
                raise AuthError(
                    f"bucket {bucket} exists but you may not use it (403)",
                    hint="choose another bucket (--bucket setting or s3://your-bucket/) or ask "
                    "for s3:ListBucket/s3:PutObject on it",
                ) from None
            if error_status(error) != 404 and error_code(error) not in NOT_FOUND:
                raise

    arguments: dict[str, Any] = {"Bucket": bucket}
    if target.region != "us-east-1":  # the one region that refuses a LocationConstraint
        arguments["CreateBucketConfiguration"] = {"LocationConstraint": target.region}
    with aws_errors(f"create bucket {bucket}", target=target, resource=f"bucket {bucket}"):
        try:
            s3.create_bucket(**arguments)
        except ClientError as error:
            code = error_code(error)
            if code == "BucketAlreadyOwnedByYou":
                return False
            if code == "BucketAlreadyExists":
                raise UsageError(
                    f"bucket name {bucket} is taken by another AWS account",
                    hint="choose another bucket: qa-console config set bucket NAME, or s3://NAME/",
                ) from None
            raise
    return True


# --- upload ------------------------------------------------------------------------------------


def upload_file(
    target: Target,
    path: str | Path,
    bucket: str,
    key: str,
    *,
    part_size: int | None = None,
    concurrency: int = DEFAULT_CONCURRENCY,
    state_dir: str | Path | None = None,
    progress: ProgressCallback = ignore_progress,
) -> UploadResult:
    """Upload `path` to s3://bucket/key as a checksummed multipart upload, resuming an
    interrupted one for the same file, and verify the object. See the module docstring."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise UsageError(f"{path}: no such file", hint="give the path of a model.tar.gz")
    url = f"s3://{bucket}/{key}"
    with aws_errors(f"upload {path.name} to {url}", target=target, resource=f"bucket {bucket}"):
        return _upload_file(
            target.client("s3"), path, bucket, key, part_size, concurrency, state_dir, progress
        )


def _upload_file(
    s3: Any,
    path: Path,
    bucket: str,
    key: str,
    part_size: int | None,
    concurrency: int,
    state_dir: str | Path | None,
    progress: ProgressCallback,
) -> UploadResult:
    started = time.perf_counter()
    size = path.stat().st_size
    url = f"s3://{bucket}/{key}"
    file_sha = _sha256_file(path, size, progress)

    existing = _head(s3, bucket, key)
    if existing and _same_object(existing, size, file_sha):
        progress(
            ProgressEvent(
                task="upload",
                message="already uploaded",
                completed=size,
                total=size,
                unit="bytes",
                done=True,
            )
        )
        return UploadResult(
            url=url,
            bucket=bucket,
            key=key,
            size=size,
            sha256=file_sha,
            checksum_sha256=_checksum_of(existing),
            parts=0,
            resumed_parts=0,
            seconds=time.perf_counter() - started,
            skipped=True,
        )

    state_file = _state_file(state_dir, bucket, key)
    state = _resume_or_reset(s3, state_file, bucket, key, size, file_sha)
    if state is None:
        state = _start(s3, bucket, key, size, file_sha, _part_size(size, part_size), state_file)
    _abort_others(s3, bucket, key, keep=state.upload_id)
    resumed = len(state.parts)

    _upload_parts(s3, path, state, state_file, concurrency, progress)
    checksum = _complete(s3, state, state_file)
    _verify(s3, bucket, key, size, file_sha, checksum)
    progress(_bytes_event("upload", f"verified {url}", size, size, done=True))
    return UploadResult(
        url=url,
        bucket=bucket,
        key=key,
        size=size,
        sha256=file_sha,
        checksum_sha256=checksum,
        parts=_part_count(size, state.part_size),
        resumed_parts=resumed,
        seconds=time.perf_counter() - started,
    )


def _part_size(size: int, requested: int | None) -> int:
    chosen = requested or DEFAULT_PART_SIZE
    if chosen < MIN_PART_SIZE:
        raise UsageError(f"part size {chosen} is below S3's minimum of 5 MiB")
    return max(chosen, -(-size // MAX_PARTS))


def _part_count(size: int, part_size: int) -> int:
    return max(1, -(-size // part_size))


def _sha256_file(path: Path, size: int, progress: ProgressCallback) -> str:
    digest = hashlib.sha256()
    done = 0
    progress(_bytes_event("hash", path.name, 0, size))
    with open(path, "rb") as handle:
        while chunk := handle.read(HASH_CHUNK):
            digest.update(chunk)
            done += len(chunk)
            progress(_bytes_event("hash", path.name, done, size))
    progress(_bytes_event("hash", path.name, size, size, done=True))
    return digest.hexdigest()


def _start(
    s3: Any, bucket: str, key: str, size: int, file_sha: str, part_size: int, state_file: Path
) -> _State:
    created = s3.create_multipart_upload(
        Bucket=bucket,
        Key=key,
        ChecksumAlgorithm="SHA256",
        Metadata={SHA_METADATA: file_sha},
        ContentType="application/gzip",
    )
    state = _State(bucket, key, created["UploadId"], file_sha, size, part_size)
    _save(state_file, state)
    return state


def _resume_or_reset(
    s3: Any, state_file: Path, bucket: str, key: str, size: int, file_sha: str
) -> _State | None:
    """The recorded upload when it is for these bytes and S3 still has it, with only the parts S3
    confirms; otherwise abort whatever was recorded and return None."""
    state = _load(state_file)
    if state is None:
        return None
    if (state.bucket, state.key, state.sha256, state.size) != (bucket, key, file_sha, size):
        _abort(s3, state.bucket, state.key, state.upload_id)
        state_file.unlink(missing_ok=True)
        return None
    listed = _list_parts(s3, state)
    if listed is None:  # completed or aborted meanwhile
        state_file.unlink(missing_ok=True)
        return None
    state.parts = {
        number: part for number, part in state.parts.items() if listed.get(number) == part["ETag"]
    }
    return state


def _list_parts(s3: Any, state: _State) -> dict[int, str] | None:
    """PartNumber -> ETag of the parts S3 holds for the upload, or None if the upload is gone."""
    from botocore.exceptions import ClientError

    parts: dict[int, str] = {}
    marker = 0
    try:
        while True:
            page = s3.list_parts(
                Bucket=state.bucket,
                Key=state.key,
                UploadId=state.upload_id,
                PartNumberMarker=marker,
            )
            for part in page.get("Parts", []):
                parts[int(part["PartNumber"])] = part["ETag"]
            if not page.get("IsTruncated"):
                return parts
            marker = int(page["NextPartNumberMarker"])
    except ClientError as error:
        if error_code(error) in ("NoSuchUpload", "404"):
            return None
        raise


def _abort_others(s3: Any, bucket: str, key: str, *, keep: str) -> None:
    """Abort other pending multipart uploads to this exact key (best effort: stale parts only
    cost storage, so a missing ListMultipartUploads permission is not fatal)."""
    try:
        page = s3.list_multipart_uploads(Bucket=bucket, Prefix=key)
    except Exception:
        return
    for upload in page.get("Uploads", []):
        if upload.get("Key") == key and upload.get("UploadId") != keep:
            _abort(s3, bucket, key, upload["UploadId"])


def _abort(s3: Any, bucket: str, key: str, upload_id: str) -> None:
    try:
        s3.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id)
    except Exception:  # already gone, or not ours to abort: nothing more to clean
        return


def _upload_parts(
    s3: Any,
    path: Path,
    state: _State,
    state_file: Path,
    concurrency: int,
    progress: ProgressCallback,
) -> None:
    total_parts = _part_count(state.size, state.part_size)
    todo = [n for n in range(1, total_parts + 1) if n not in state.parts]
    done_bytes = sum(_part_length(state, n) for n in state.parts)
    resumed = f" (resuming: {len(state.parts)}/{total_parts} parts already there)"
    message = f"s3://{state.bucket}/{state.key}" + (resumed if state.parts else "")
    progress(_bytes_event("upload", message, done_bytes, state.size))

    def send(number: int) -> tuple[int, dict[str, str]]:
        return number, _send_part(s3, path, state, number)

    pool = ThreadPoolExecutor(max(1, concurrency))
    pending: set[Future[tuple[int, dict[str, str]]]] = set()
    queue = list(reversed(todo))
    try:
        while queue or pending:
            while queue and len(pending) < max(1, concurrency):
                pending.add(pool.submit(send, queue.pop()))
            finished, pending = wait(pending, return_when=FIRST_COMPLETED)
            for future in finished:
                number, part = future.result()
                state.parts[number] = part
                _save(state_file, state)
                done_bytes += _part_length(state, number)
                message = f"part {len(state.parts)}/{total_parts}"
                progress(_bytes_event("upload", message, done_bytes, state.size))
    finally:
        # On an error or an interruption, wait for parts already on the wire, start no more.
        pool.shutdown(wait=True, cancel_futures=True)


def _bytes_event(
    task: str, message: str, completed: int, total: int, *, done: bool = False
) -> ProgressEvent:
    return ProgressEvent(
        task=task, message=message, completed=completed, total=total, unit="bytes", done=done
    )


def _part_length(state: _State, number: int) -> int:
    start = (number - 1) * state.part_size
    return max(0, min(state.part_size, state.size - start))


def _send_part(s3: Any, path: Path, state: _State, number: int) -> dict[str, str]:
    with open(path, "rb") as handle:
        handle.seek((number - 1) * state.part_size)
        body = handle.read(state.part_size)
    checksum = base64.b64encode(hashlib.sha256(body).digest()).decode("ascii")
    reply = s3.upload_part(
        Bucket=state.bucket,
        Key=state.key,
        UploadId=state.upload_id,
        PartNumber=number,
        Body=body,
        ChecksumAlgorithm="SHA256",
        ChecksumSHA256=checksum,
    )
    return {"ETag": reply["ETag"], "ChecksumSHA256": checksum}


def _complete(s3: Any, state: _State, state_file: Path) -> str:
    from botocore.exceptions import ClientError

    parts = [
        {"PartNumber": number, "ETag": part["ETag"], "ChecksumSHA256": part["ChecksumSHA256"]}
        for number, part in sorted(state.parts.items())
    ]
    try:
        s3.complete_multipart_upload(
            Bucket=state.bucket,
            Key=state.key,
            UploadId=state.upload_id,
            MultipartUpload={"Parts": parts},
        )
    except ClientError as error:
        code = error_code(error)
        if code in ("InvalidPart", "InvalidPartOrder", "NoSuchUpload", "EntityTooSmall"):
            _abort(s3, state.bucket, state.key, state.upload_id)
            state_file.unlink(missing_ok=True)
            raise OperationError(
                f"S3 refused to assemble the upload ({code})",
                hint="run the upload again: it starts clean",
            ) from None
        raise
    state_file.unlink(missing_ok=True)
    ordered = [part["ChecksumSHA256"] for _, part in sorted(state.parts.items())]
    digests = b"".join(base64.b64decode(checksum) for checksum in ordered)
    return base64.b64encode(hashlib.sha256(digests).digest()).decode("ascii")


def _verify(s3: Any, bucket: str, key: str, size: int, file_sha: str, checksum: str) -> None:
    """Check the finished object against the file; delete it when it does not match."""
    head = _head(s3, bucket, key)
    problem = None
    if head is None:
        problem = "the object is missing after the upload completed"
    elif head.get("ContentLength") != size:
        problem = f"the object is {head.get('ContentLength')} bytes, the file {size}"
    elif head.get("Metadata", {}).get(SHA_METADATA) != file_sha:
        problem = "the object's sha256 metadata does not match the file"
    elif _checksum_of(head) and _checksum_of(head) != checksum:
        problem = "S3's SHA-256 checksum of the parts does not match the file"
    if problem is None:
        return
    if head is not None:
        with contextlib.suppress(Exception):  # the error below matters more than this cleanup
            s3.delete_object(Bucket=bucket, Key=key)
    raise OperationError(f"upload verification failed: {problem}", hint="run the upload again")


def _head(s3: Any, bucket: str, key: str) -> dict[str, Any] | None:
    from botocore.exceptions import ClientError

    try:
        head: dict[str, Any] = s3.head_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED")
        return head
    except ClientError as error:
        if error_code(error) in NOT_FOUND:
            return None
        raise


def _same_object(head: dict[str, Any], size: int, file_sha: str) -> bool:
    return (
        head.get("ContentLength") == size and head.get("Metadata", {}).get(SHA_METADATA) == file_sha
    )


def _checksum_of(head: dict[str, Any]) -> str:
    """The composite checksum without S3's `-<parts>` suffix (AWS adds it, moto does not)."""
    value = str(head.get("ChecksumSHA256") or "")
    return value.split("-")[0] if value else ""


# --- state -------------------------------------------------------------------------------------


def _state_file(state_dir: str | Path | None, bucket: str, key: str) -> Path:
    if state_dir is None:
        from qa_console.paths import state_dir as user_state_dir

        state_dir = user_state_dir()
    name = hashlib.sha256(f"{bucket}/{key}".encode()).hexdigest()[:24]
    return Path(state_dir) / "uploads" / f"{name}.json"


def _load(state_file: Path) -> _State | None:
    try:
        data = json.loads(state_file.read_text(encoding="utf-8"))
        data["parts"] = {int(number): part for number, part in data.get("parts", {}).items()}
        return _State(**data)
    except (OSError, ValueError, TypeError, KeyError):
        return None


def _save(state_file: Path, state: _State) -> None:
    state_file.parent.mkdir(parents=True, exist_ok=True)
    temporary = state_file.with_suffix(".tmp")
    temporary.write_text(json.dumps(asdict(state)), encoding="utf-8")
    os.replace(temporary, state_file)
