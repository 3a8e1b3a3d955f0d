"""Get a Lambda function's code zip from the local control plane and unpack it safely.

Real Lambda answers get_function with Code.Location, a presigned URL of the zip. moto answers
with a made-up S3 URL that serves nothing, but the supervisor runs moto's server in this very
process, so its Lambda backend holds the zip bytes. We try the URL when it points at the local
AWS, then moto's backend, and accept the bytes only if their sha256 is the CodeSha256 the
control plane reported: whatever the source, we run exactly the code that was uploaded.

Extraction refuses what Lambda's own zip handling would never produce from a sane upload:
absolute paths, `..`, symlinks, special files, and archives that inflate past Lambda's 250 MB.
"""

from __future__ import annotations

import base64
import hashlib
import io
import os
import shutil
import stat
import tempfile
import urllib.parse
import urllib.request
import zipfile
from collections.abc import Callable
from pathlib import Path, PurePosixPath

from qa_console.errors import OperationError

MAX_UNZIPPED_BYTES = 250 * 1024 * 1024  # Lambda's limit for a function's unzipped code
MAX_FILES = 20_000


def code_sha256(data: bytes) -> str:
    """The CodeSha256 form Lambda reports: base64 of the raw sha256 digest."""
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


def fetch_code(
    function_arn: str, location: str | None, expected_sha256: str, aws_endpoint_url: str
) -> bytes:
    """The function's zip bytes, verified against the CodeSha256 the control plane reported."""
    attempts: list[str] = []
    candidates: list[tuple[str, Callable[[], bytes | None]]] = []
    if location and _same_host(location, aws_endpoint_url):
        candidates.append(("Code.Location", lambda: _download(location)))
    candidates.append(("moto's Lambda backend in this process", lambda: _from_moto(function_arn)))
    for source, read in candidates:
        try:
            data = read()
        except Exception as exc:
            attempts.append(f"{source}: {exc}")
            continue
        if data is None:
            attempts.append(f"{source}: no code")
        elif code_sha256(data) != expected_sha256:
            attempts.append(f"{source}: sha256 differs from CodeSha256")
        else:
            return data
    raise OperationError(
        f"cannot read the code of Lambda function {function_arn}: " + "; ".join(attempts),
        hint="the gateway must run in the process of the local AWS (qa-console local up)",
    )


def _same_host(url: str, endpoint: str) -> bool:
    return urllib.parse.urlsplit(url).netloc == urllib.parse.urlsplit(endpoint).netloc


def _download(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=30) as response:
        data: bytes = response.read()
        return data


def _from_moto(function_arn: str) -> bytes | None:
    from moto.awslambda.models import lambda_backends

    parts = function_arn.split(":")  # arn:aws:lambda:REGION:ACCOUNT:function:NAME[:QUALIFIER]
    region, account, name = parts[3], parts[4], parts[6]
    qualifier = parts[7] if len(parts) > 7 else None
    function = lambda_backends[account][region].get_function(name, qualifier)
    code: bytes | None = getattr(function, "code_bytes", None)
    return code


def extract_zip(data: bytes, target: Path) -> Path:
    """Unpack the zip into `target` (created atomically; reused if it is already there)."""
    if target.is_dir():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".unpack-", dir=target.parent))
    try:
        _extract_members(data, staging)
        try:
            staging.rename(target)
        except OSError:
            if not target.is_dir():  # another thread won the race: theirs is as good as ours
                raise
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return target


def _extract_members(data: bytes, root: Path) -> None:
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile as exc:
        raise OperationError(f"the Lambda code is not a zip file: {exc}") from exc
    with archive:
        members = archive.infolist()
        if len(members) > MAX_FILES:
            raise OperationError(f"the Lambda zip has {len(members)} files (max {MAX_FILES})")
        total = 0
        for member in members:
            relative = _safe_name(member)
            mode = member.external_attr >> 16
            kind = stat.S_IFMT(mode)  # 0 when the zip tool recorded no file type
            if kind not in (0, stat.S_IFREG, stat.S_IFDIR):
                raise OperationError(
                    f"the Lambda zip holds a link or special file: {member.filename}"
                )
            destination = root.joinpath(*relative.parts)
            if member.is_dir():
                destination.mkdir(parents=True, exist_ok=True)
                continue
            total += member.file_size
            if total > MAX_UNZIPPED_BYTES:
                raise OperationError("the Lambda zip inflates past Lambda's 250 MB limit")
            destination.parent.mkdir(parents=True, exist_ok=True)
            with archive.open(member) as source, open(destination, "wb") as sink:
                shutil.copyfileobj(source, sink)
            os.chmod(destination, 0o755 if mode & 0o111 else 0o644)


def _safe_name(member: zipfile.ZipInfo) -> PurePosixPath:
    name = member.filename.replace("\\", "/")
    path = PurePosixPath(name)
    if not path.parts or path.is_absolute() or ".." in path.parts or ":" in path.parts[0]:
        raise OperationError(f"the Lambda zip holds an unsafe path: {member.filename!r}")
    return path
