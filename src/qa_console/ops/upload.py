"""`qa-console upload` as one operation: check a model.tar.gz, choose where it goes, make sure the
bucket exists, upload it (resumable, verified) and say what happened.

The destination is an s3:// URL when given (a folder ending in '/', or the full key), else the
`bucket` and `folder` settings; with no bucket anywhere, qa-console-<account>-<region>, created
when missing. A refused archive raises before anything is sent.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from qa_console.errors import UsageError
from qa_console.events import ProgressCallback, ignore_progress
from qa_console.ops.aws import s3

if TYPE_CHECKING:
    from qa_console.ops.aws.s3 import UploadResult
    from qa_console.ops.aws.target import Target
    from qa_console.ops.packaging.check import CheckReport


@dataclass(frozen=True)
class UploadOutcome:
    upload: UploadResult
    check: CheckReport
    bucket_created: bool

    def to_dict(self) -> dict[str, Any]:
        return {
            "upload": self.upload.to_dict(),
            "check": self.check.to_dict(),
            "bucket_created": self.bucket_created,
        }


def upload_model(
    target: Target,
    archive: str | Path,
    destination: str | None = None,
    *,
    bucket: str | None = None,
    folder: str | None = None,
    part_size: int | None = None,
    progress: ProgressCallback = ignore_progress,
) -> UploadOutcome:
    """Check `archive`, then upload it to `destination` (or the bucket/folder settings).

    Raises ArchiveRefused (a UsageError carrying the report) when the archive would not serve,
    and UsageError for a folder or a malformed URL, before any AWS call."""
    from qa_console.ops.packaging.check import check_tarball

    path = Path(archive).expanduser()
    if path.is_dir():
        raise UsageError(
            f"{path} is a folder; upload takes a model.tar.gz",
            hint=f"build one first: qa-console package {path}",
        )
    if destination:
        s3.parse_s3_url(destination)  # a mistyped URL fails before a big archive is read
    report = check_tarball(path, progress=progress)
    report.raise_if_refused()
    bucket_name, key = s3.resolve_destination(
        destination, path.name, bucket=bucket, folder=folder, target=target
    )
    created = s3.ensure_bucket(target, bucket_name)
    result = s3.upload_file(target, path, bucket_name, key, part_size=part_size, progress=progress)
    return UploadOutcome(result, report, created)
