"""Model data for a deployment: download ModelDataUrl from (local) S3, extract it safely.

Each distinct tarball (S3 URL + ETag) is unpacked once under `work_dir/models/<digest>/model`, so
restarting a worker or a second endpoint on the same model reuses it. Extraction goes through
ops/packaging/safe_tar.py (member checks + tarfile's "data" filter): the archive comes from a
bucket, and its code is about to run.
"""

from __future__ import annotations

import hashlib
import shutil
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from qa_console.localaws.sagemaker.control import split_s3_url

COMPLETE_MARKER = ".extracted"
MAX_UNPACKED_BYTES = 30 * 1024**3  # refuses archive bombs; far above any model this runs on CPU

_locks: dict[str, threading.Lock] = {}
_locks_guard = threading.Lock()


def _lock_for(digest: str) -> threading.Lock:
    with _locks_guard:
        return _locks.setdefault(digest, threading.Lock())


def fetch_model(
    s3: Any,
    url: str,
    etag: str | None,
    work_dir: Path,
    log: Callable[[str], None] = lambda line: None,
) -> Path:
    """The extracted model folder for `url` (downloading and unpacking it if needed)."""
    from qa_console.ops.packaging.safe_tar import safe_extract

    digest = hashlib.sha256(f"{url}\n{etag or ''}".encode()).hexdigest()[:20]
    root = work_dir / "models" / digest
    model_dir = root / "model"
    with _lock_for(digest):
        if (root / COMPLETE_MARKER).is_file():
            log(f"using model data already extracted from {url}")
            return model_dir
        shutil.rmtree(root, ignore_errors=True)
        root.mkdir(parents=True)
        bucket, key = split_s3_url(url)
        archive = root / "model.tar.gz"
        started = time.perf_counter()
        s3.download_file(bucket, key, str(archive))
        size = archive.stat().st_size
        log(f"downloaded {url} ({size} bytes) in {(time.perf_counter() - started) * 1000:.0f} ms")
        started = time.perf_counter()
        files = safe_extract(archive, model_dir, max_bytes=MAX_UNPACKED_BYTES)
        log(f"extracted {len(files)} files in {(time.perf_counter() - started) * 1000:.0f} ms")
        archive.unlink()
        (root / COMPLETE_MARKER).write_text(url + "\n", encoding="utf-8")
        return model_dir
