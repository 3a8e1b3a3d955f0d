"""Reading model.tar.gz archives safely: member checks and one extraction helper for everyone.

A model archive comes from a user or from S3 and is unpacked next to code that runs it, so a member
must not be able to write outside the destination (absolute paths, `..`), point outside it (links),
or create devices and fifos. `tarfile`'s "data" filter catches most of this at extraction time;
`member_problems` catches it earlier, with messages that say what is wrong, so the validator and
the extractor refuse the same things for the same reasons.

Reused by the tarball validator (ops/packaging/check.py), `package --smoke`, the local runtime and
the local backend:

    safe_extract(archive, dest, *, include=None, max_bytes=None) -> list[str]
"""

from __future__ import annotations

import shutil
import tarfile
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path, PurePosixPath

from qa_console.errors import UsageError

GZIP_MAGIC = b"\x1f\x8b"


class UnsafeArchiveError(UsageError):
    """The archive holds a member that could escape or abuse the extraction folder."""


def normalized_name(name: str) -> str:
    """A member's name as a path relative to the archive root: `./config.json` -> `config.json`."""
    parts = [part for part in PurePosixPath(name).parts if part not in ("", ".")]
    return "/".join(parts)


def member_problems(member: tarfile.TarInfo) -> list[str]:
    """What is unsafe about one member, as short sentences (empty when it is fine)."""
    name = member.name
    problems: list[str] = []
    if "\x00" in name or "\\" in name:
        problems.append(f"{name!r}: the name contains a NUL or a backslash")
    if name.startswith("/") or (len(name) > 1 and name[1] == ":"):
        problems.append(f"{name}: absolute path")
    if ".." in PurePosixPath(name).parts:
        problems.append(f"{name}: '..' climbs out of the archive")
    if member.issym() or member.islnk():
        kind = "symlink" if member.issym() else "hard link"
        problems.append(f"{name}: {kind} to {member.linkname!r}; links are not allowed")
    elif member.ischr() or member.isblk() or member.isfifo():
        kind = "fifo" if member.isfifo() else "device"
        problems.append(f"{name}: {kind}; only regular files and folders are allowed")
    elif not (member.isfile() or member.isdir()):
        problems.append(f"{name}: unsupported member type {member.type!r}")
    if not normalized_name(name) and not member.isdir():
        problems.append(f"{name!r}: empty name")
    return problems


def archive_kind(path: str | Path) -> str:
    """'gzip', 'tar' (uncompressed) or 'other', from the first bytes."""
    with open(path, "rb") as handle:
        head = handle.read(512)
    if head[:2] == GZIP_MAGIC:
        return "gzip"
    if len(head) >= 262 and head[257:262] == b"ustar":
        return "tar"
    return "other"


@contextmanager
def open_stream(path: str | Path) -> Iterator[tarfile.TarFile]:
    """Open a tar or tar.gz for one sequential pass (no seeking back: big archives read once)."""
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"{path}: no such file", hint="give the path of a model.tar.gz")
    try:
        tar = tarfile.open(path, mode="r|*")  # noqa: SIM115 - closed by the `with` below
    except (tarfile.TarError, OSError, EOFError) as error:
        raise UsageError(
            f"{path}: not a readable tar archive ({error})",
            hint="build it with `qa-console package MODEL_DIR`",
        ) from None
    with tar:
        yield tar


def safe_extract(
    archive: str | Path,
    dest: str | Path,
    *,
    include: Callable[[str], bool] | None = None,
    max_bytes: int | None = None,
) -> list[str]:
    """Extract `archive` into `dest` (created if missing, else it must be empty), checking members.

    include:   extract only members whose normalized name passes, e.g.
               `lambda name: name.startswith("code/")`; the others are still checked.
    max_bytes: refuse archives whose files add up to more than this (a zip-bomb guard).
    Returns the normalized names of the files extracted, in archive order.

    One sequential pass; on the first unsafe member everything extracted so far is removed and
    UnsafeArchiveError (a UsageError, exit 2) is raised. Extraction itself uses tarfile's "data"
    filter as a second line of defence (it also drops setuid bits and ownership).
    """
    dest = Path(dest)
    existed = dest.exists()
    if existed and any(dest.iterdir()):
        raise UsageError(
            f"{dest}: extraction folder is not empty", hint="give a new or empty folder"
        )
    dest.mkdir(parents=True, exist_ok=True)
    extracted: list[str] = []
    try:
        with open_stream(archive) as tar:
            extracted = _extract_checked(tar, dest, include, max_bytes)
    except BaseException:
        _clear(dest, remove_root=not existed)
        raise
    return extracted


def _extract_checked(
    tar: tarfile.TarFile,
    dest: Path,
    include: Callable[[str], bool] | None,
    max_bytes: int | None,
) -> list[str]:
    seen: set[str] = set()
    total = 0
    extracted: list[str] = []
    try:
        for member in tar:
            problems = member_problems(member)
            name = normalized_name(member.name)
            if name in seen and not member.isdir():
                problems.append(f"{member.name}: appears twice; a later copy would overwrite")
            if problems:
                raise UnsafeArchiveError(
                    f"unsafe archive member: {problems[0]}",
                    hint="rebuild the archive with `qa-console package MODEL_DIR`",
                )
            seen.add(name)
            total += member.size if member.isfile() else 0
            if max_bytes is not None and total > max_bytes:
                raise UnsafeArchiveError(
                    f"the archive unpacks to more than {max_bytes} bytes",
                    hint="check that this is the model archive you meant",
                )
            if not name or (include is not None and not include(name)):
                continue
            tar.extract(member, dest, set_attrs=member.isfile(), filter="data")
            if member.isfile():
                extracted.append(name)
    except tarfile.FilterError as error:
        raise UnsafeArchiveError(f"unsafe archive member: {error}") from None
    except (tarfile.TarError, EOFError, zlib.error) as error:
        raise UsageError(
            f"the archive is truncated or corrupt ({error})",
            hint="rebuild it, or download it again",
        ) from None
    return extracted


def _clear(dest: Path, *, remove_root: bool) -> None:
    if remove_root:
        shutil.rmtree(dest, ignore_errors=True)
        return
    for child in dest.iterdir():  # dest was empty before: everything in it is ours
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child, ignore_errors=True)
        else:
            child.unlink(missing_ok=True)
