"""Unpacking model archives on this machine: atomically, and once per archive into the user's cache.

`qa-console eval model.tar.gz`, the local backend and `train --on sagemaker` (bringing the job's
model home) all take an archive where a model folder is expected. Extraction applies the same
member checks as `package --check` (safe_tar.py) and never leaves a half-written folder.
"""

from __future__ import annotations

from pathlib import Path

from qa_console.errors import UsageError
from qa_console.ops.model_files import check_model_folder
from qa_console.ops.packaging.safe_tar import safe_extract as extract_checked

ARCHIVE_SUFFIXES = (".tar.gz", ".tgz", ".tar")


def model_cache_dir() -> Path:
    """Where model archives are extracted for local use: the user's cache dir (XDG_CACHE_HOME)."""
    import platformdirs

    return Path(platformdirs.user_cache_dir("qa-console", appauthor=False)) / "models"


def is_model_archive(path: Path) -> bool:
    return path.is_file() and path.name.endswith(ARCHIVE_SUFFIXES)


def extract_model_archive(archive: str | Path, cache_root: str | Path) -> Path:
    """Extract a model.tar.gz once into `cache_root/<sha256 of the archive>` and return the folder
    holding its config.json (the archive root, as SageMaker tarballs have it), checked with
    check_model_folder so a bad archive is reported by its own name."""
    import hashlib

    source = Path(archive).expanduser()
    digest = hashlib.sha256()
    try:
        with source.open("rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
    except OSError as error:
        raise UsageError(f"cannot read {source}: {error}") from None
    target = Path(cache_root).expanduser() / digest.hexdigest()
    if not target.is_dir():
        extract_atomically(source, target)
    inner = [path for path in target.iterdir() if (path / "config.json").is_file()]
    folder = inner[0] if len(inner) == 1 and not (target / "config.json").is_file() else target
    return check_model_folder(folder, label=f"{source} (extracted)").path


def extract_atomically(archive: str | Path, target: str | Path) -> Path:
    """Extract a model archive into `target`, which must not exist yet, safely and atomically.

    The member checks are safe_tar.py's (the same ones `package --check` applies).
    Extraction goes to a temporary sibling folder renamed into place, so a crash never leaves a
    half-written folder. If another process created `target` meanwhile, its copy is kept.
    """
    import shutil
    import tempfile

    destination = Path(target)
    destination.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".extract-", dir=destination.parent))
    try:
        extract_checked(Path(archive).expanduser(), staging)
        try:
            staging.rename(destination)
        except OSError:
            if not destination.is_dir():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return destination
