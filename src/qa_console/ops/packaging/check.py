"""Validate a model.tar.gz before it goes anywhere: `check_tarball(path) -> CheckReport`.

The commonest reason a SageMaker deployment fails is an archive with the wrong layout or a
handler the container never calls, found out ten minutes later in CloudWatch. This reads the
archive once (it may be gigabytes) and refuses, with what to do about it:

- members that are unsafe to unpack (absolute paths, `..`, links, devices, fifos, duplicates);
- a nested top folder, or a missing config.json, tokenizer or safetensors weights;
- pickle weights (loading them runs code);
- a manifest.json whose sha256 or sizes do not match the files;
- a code/inference.py that does not import, or whose functions do not fit the Hugging Face
  toolkit contract (checked by importing it in a subprocess with a timeout: see
  inference/handler_contract.py).

It warns when the unpacked model does not fit a serverless endpoint (5 GB of disk, at most
6 GB of memory) or the memory size given. `package` and `upload` run it first.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tarfile
import tempfile
import zlib
from dataclasses import asdict, dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO

from qa_console.errors import UsageError
from qa_console.events import ProgressCallback, ProgressEvent, ignore_progress
from qa_console.inference import handler_contract
from qa_console.ops.packaging import layout
from qa_console.ops.packaging.safe_tar import archive_kind, member_problems, normalized_name

SERVERLESS_DISK_BYTES = 5 * 1000**3
SERVERLESS_MAX_MEMORY_MB = 6144
# Memory a worker needs beyond the weights: Python, torch and transformers imported, plus
# activations. Measured ~550 MB RSS for the tiny model on CPU; rounded up.
RUNTIME_OVERHEAD_MB = 700
WEIGHTS_MEMORY_FACTOR = 1.2  # weights in memory plus generate()'s working tensors
HANDLER_TIMEOUT_S = 60.0
MAX_KEPT_BYTES = 5 * 1024 * 1024  # code files and manifest kept in memory for the later checks
READ_CHUNK = 1024 * 1024
REBUILD_HINT = "rebuild the archive with `qa-console package MODEL_DIR`"


@dataclass(frozen=True)
class Finding:
    """One problem. `code` is stable (tests and UIs key on it); message and hint are for people."""

    code: str
    message: str
    hint: str | None = None


@dataclass
class CheckReport:
    archive: Path
    errors: list[Finding] = field(default_factory=list)
    warnings: list[Finding] = field(default_factory=list)
    compressed_bytes: int = 0
    unpacked_bytes: int = 0
    weights_bytes: int = 0
    files: list[str] = field(default_factory=list)
    manifest: dict[str, Any] | None = None
    handler: dict[str, Any] | None = None  # the handler's functions as the container sees them

    @property
    def ok(self) -> bool:
        return not self.errors

    def error(self, code: str, message: str, hint: str | None = None) -> None:
        self.errors.append(Finding(code, message, hint))

    def warn(self, code: str, message: str, hint: str | None = None) -> None:
        self.warnings.append(Finding(code, message, hint))

    def codes(self) -> set[str]:
        return {finding.code for finding in self.errors}

    def summary(self) -> str:
        """One line: verdict, file count, sizes, and how many problems."""
        sizes = (
            f"{len(self.files)} files, {_mb(self.compressed_bytes)} packed, "
            f"{_mb(self.unpacked_bytes)} unpacked"
        )
        counts = f"{len(self.errors)} error(s), {len(self.warnings)} warning(s)"
        verdict = "ok" if self.ok else "refused"
        return f"{verdict}: {self.archive.name}: {sizes}; {counts}"

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["archive"] = str(self.archive)
        data["ok"] = self.ok
        data["summary"] = self.summary()
        return data

    def raise_if_refused(self) -> None:
        """ArchiveRefused (exit 2) naming the first problem and listing all of them, for callers
        that must not go on."""
        if self.ok:
            return
        first = self.errors[0]
        more = f" (and {len(self.errors) - 1} more)" if len(self.errors) > 1 else ""
        listed = tuple(f"refused: [{f.code}] {f.message}" for f in self.errors)
        raise ArchiveRefused(
            f"{self.archive.name} refused: {first.message}{more}",
            hint=first.hint or f"see `qa-console package --check {self.archive}`",
            details=listed if len(listed) > 1 else (),
            report=self,
        )


class ArchiveRefused(UsageError):
    """A model.tar.gz that would not serve; `report` holds every finding."""

    def __init__(
        self, message: str, *, hint: str | None, details: tuple[str, ...], report: CheckReport
    ) -> None:
        super().__init__(message, hint=hint, details=details)
        self.report = report


def check_tarball(
    archive: str | Path,
    *,
    memory_mb: int | None = None,
    check_handler: bool = True,
    handler_timeout_s: float = HANDLER_TIMEOUT_S,
    progress: ProgressCallback = ignore_progress,
) -> CheckReport:
    """Read `archive` once and report everything wrong with it. Raises UsageError only when the
    file does not exist; every problem with its contents is a Finding in the report."""
    path = Path(archive).expanduser()
    if not path.is_file():
        raise UsageError(f"{path}: no such file", hint="give the path of a model.tar.gz")
    report = CheckReport(archive=path, compressed_bytes=path.stat().st_size)
    kind = archive_kind(path)
    if kind == "other":
        report.error("not-tar-gz", "not a gzip-compressed tar archive", REBUILD_HINT)
        return report
    if kind == "tar":
        report.error(
            "not-gzip",
            "the archive is a plain tar; SageMaker expects it gzip-compressed (model.tar.gz)",
            "compress it: gzip model.tar, or " + REBUILD_HINT,
        )

    with tempfile.TemporaryDirectory(prefix="qa-console-check-") as scratch:
        contents = _scan(path, report, progress)
        if report.files or not report.errors:
            _check_layout(report, contents)
            _check_manifest(report, contents)
            if check_handler and layout.HANDLER in contents.kept and not _unsafe(report):
                code_dir = Path(scratch) / "code"
                _write_code(contents.kept, code_dir)
                _check_handler(report, code_dir, handler_timeout_s)
        check_sizes(report, memory_mb)
    return report


@dataclass
class _Contents:
    sizes: dict[str, int] = field(default_factory=dict)
    hashes: dict[str, str] = field(default_factory=dict)
    kept: dict[str, bytes] = field(default_factory=dict)  # code/*, manifest, index: small files


def _scan(path: Path, report: CheckReport, progress: ProgressCallback) -> _Contents:
    contents = _Contents()
    total = report.compressed_bytes
    progress(ProgressEvent(task="check", message=path.name, completed=0, total=total, unit="bytes"))
    try:
        with open(path, "rb") as raw_handle:
            raw = _CountingReader(raw_handle, progress, total, path.name)
            with tarfile.open(fileobj=raw, mode="r|*") as tar:  # type: ignore[call-overload]
                for member in tar:
                    _scan_member(tar, member, report, contents)
    except (tarfile.TarError, EOFError, zlib.error, OSError) as error:
        report.error(
            "corrupt",
            f"the archive is truncated or corrupt ({error})",
            "build it again, or download it again",
        )
    progress(
        ProgressEvent(
            task="check", message=path.name, completed=total, total=total, unit="bytes", done=True
        )
    )
    return contents


def _scan_member(
    tar: tarfile.TarFile,
    member: tarfile.TarInfo,
    report: CheckReport,
    contents: _Contents,
) -> None:
    name = normalized_name(member.name)
    problems = member_problems(member)
    if not problems and not member.isdir() and name in contents.sizes:
        problems.append(f"{member.name}: appears twice; the later copy would overwrite")
    for problem in problems:
        code = "link" if (member.issym() or member.islnk()) else "unsafe-member"
        if member.ischr() or member.isblk() or member.isfifo():
            code = "device"
        report.error(code, problem, REBUILD_HINT)
    if problems or not member.isfile():
        return
    if layout.is_pickle(name):
        report.error(
            "pickle",
            f"{name}: pickle-format file; loading it runs arbitrary code",
            "ship safetensors weights: `qa-console package MODEL_DIR --convert`",
        )
    digest = hashlib.sha256()
    keep = _worth_keeping(name) and member.size <= MAX_KEPT_BYTES
    kept = bytearray()
    handle = tar.extractfile(member)
    if handle is not None:
        while chunk := handle.read(READ_CHUNK):
            digest.update(chunk)
            if keep:
                kept += chunk
    contents.sizes[name] = member.size
    contents.hashes[name] = digest.hexdigest()
    if keep:
        contents.kept[name] = bytes(kept)
    report.files.append(name)
    report.unpacked_bytes += member.size
    if layout.is_weights(name):
        report.weights_bytes += member.size


def _worth_keeping(name: str) -> bool:
    return (
        name.startswith("code/")
        or name in (layout.MANIFEST, layout.SAFETENSORS_INDEX)
        or name.endswith("/" + layout.CONFIG)
    )


def _unsafe(report: CheckReport) -> bool:
    return bool(report.codes() & {"link", "device", "unsafe-member", "corrupt"})


def _check_layout(report: CheckReport, contents: _Contents) -> None:
    names = list(contents.sizes)
    top = layout.nested_top_folder(names)
    if top is not None:
        report.error(
            "nested-folder",
            f"everything is inside a top folder '{top}/'; SageMaker unpacks the archive into "
            "/opt/ml/model and looks for config.json there",
            f"put the files at the root: tar -czf model.tar.gz -C {top} . (or {REBUILD_HINT})",
        )
        return  # the missing-file errors below would only repeat this
    root = [name for name in names if layout.at_root(name)]
    if layout.CONFIG not in root:
        elsewhere = [name for name in names if name.endswith("/" + layout.CONFIG)]
        where = f" (found {elsewhere[0]}: move it to the root)" if elsewhere else ""
        report.error("missing-config", f"no config.json at the archive root{where}", REBUILD_HINT)
    if not layout.has_tokenizer(root):
        report.error(
            "missing-tokenizer",
            "no tokenizer files at the archive root (tokenizer.json, or tokenizer_config.json "
            "with a vocabulary file)",
            "save the tokenizer into the model folder (tokenizer.save_pretrained) and rebuild",
        )
    weights = [name for name in root if layout.is_weights(name)]
    if not weights:
        pickles = [name for name in names if layout.is_pickle(name)]
        note = f"; only pickle weights ({pickles[0]})" if pickles else ""
        report.error(
            "missing-weights",
            f"no safetensors weights at the archive root{note}",
            "save the model with save_pretrained (safetensors), or "
            "`qa-console package MODEL_DIR --convert`",
        )
    if layout.SAFETENSORS_INDEX in contents.kept:
        index = contents.kept[layout.SAFETENSORS_INDEX].decode("utf-8", errors="replace")
        missing = layout.missing_shards(index, root)
        if missing:
            report.error(
                "missing-shard",
                f"model.safetensors.index.json names shards that are not in the archive: "
                f"{', '.join(missing[:3])}",
                REBUILD_HINT,
            )
    if "generation_config.json" not in root:
        report.warn(
            "no-generation-config",
            "no generation_config.json: generate() falls back to library defaults",
        )
    if layout.HANDLER not in names:
        report.warn(
            "no-handler",
            "no code/inference.py: the container's default handler builds a pipeline, and "
            "transformers 5 has no text2text-generation pipeline",
            REBUILD_HINT,
        )


def _check_manifest(report: CheckReport, contents: _Contents) -> None:
    if layout.MANIFEST not in contents.sizes:
        report.warn(
            "no-manifest",
            "no manifest.json: the files cannot be checked against their recorded sha256",
            REBUILD_HINT,
        )
        return
    try:
        manifest = json.loads(contents.kept.get(layout.MANIFEST, b"").decode("utf-8"))
        listed = manifest["files"]
        if not isinstance(listed, dict):
            raise TypeError("'files' is not an object")
    except (ValueError, KeyError, TypeError) as error:
        report.error("manifest-unreadable", f"manifest.json is unreadable ({error})", REBUILD_HINT)
        return
    report.manifest = manifest
    for name, entry in sorted(listed.items()):
        if name not in contents.sizes:
            report.error(
                "manifest-mismatch",
                f"{name} is in manifest.json but not in the archive (removed after packaging?)",
                REBUILD_HINT,
            )
            continue
        entry = entry if isinstance(entry, dict) else {}
        if entry.get("size") != contents.sizes[name]:
            report.error(
                "manifest-mismatch",
                f"{name} is {contents.sizes[name]} bytes; manifest.json says {entry.get('size')}",
                REBUILD_HINT,
            )
        elif entry.get("sha256") != contents.hashes[name]:
            report.error(
                "manifest-mismatch",
                f"{name}: sha256 differs from manifest.json (changed after packaging?)",
                REBUILD_HINT,
            )
    extra = sorted(set(contents.sizes) - set(listed) - {layout.MANIFEST})
    for name in extra:
        report.error(
            "manifest-mismatch",
            f"{name} is in the archive but not in manifest.json (added after packaging?)",
            REBUILD_HINT,
        )


def _write_code(kept: dict[str, bytes], code_dir: Path) -> None:
    """Write the archive's code/ files (names already checked safe) for the import probe."""
    for name, data in kept.items():
        if not name.startswith("code/"):
            continue
        target = code_dir.joinpath(*PurePosixPath(name).parts[1:])
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)


def run_contract_probe(
    command: str, target: Path, *, options: list[str] | None = None, timeout_s: float, cwd: Path
) -> dict[str, Any]:
    """Run `handler_contract.py COMMAND TARGET RESULT [OPTIONS]` in a fresh isolated interpreter
    (`python -I`: only the handler's own folder goes on sys.path) and return its JSON result.

    A hang becomes {"ok": False, "stage": "timeout"}; a crash without a result (segfault,
    os._exit) becomes {"ok": False, "stage": "crash"} with the end of its stderr.
    """
    result_file = cwd / f"probe-result-{os.getpid()}.json"
    result_file.unlink(missing_ok=True)
    script = handler_contract.__file__
    argv = [sys.executable, "-I", script, command, str(target), str(result_file), *(options or [])]
    try:
        completed = subprocess.run(
            argv, cwd=cwd, capture_output=True, text=True, timeout=timeout_s, check=False
        )
    except subprocess.TimeoutExpired:
        return {"ok": False, "stage": "timeout", "error": f"no answer within {timeout_s:g} s"}
    try:
        result: dict[str, Any] = json.loads(result_file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        tail = (completed.stderr or "").strip().splitlines()[-3:]
        return {
            "ok": False,
            "stage": "crash",
            "error": f"the handler process exited with code {completed.returncode}"
            + (f": {' '.join(tail)}" if tail else ""),
        }
    result["stderr"] = (completed.stderr or "")[-4000:]
    return result


def _check_handler(report: CheckReport, code_dir: Path, timeout_s: float) -> None:
    result = run_contract_probe("inspect", code_dir, timeout_s=timeout_s, cwd=code_dir.parent)
    if not result.get("ok"):
        stage = result.get("stage")
        if stage == "timeout":
            report.error(
                "handler-timeout",
                f"importing code/inference.py did not finish within {timeout_s:g} s",
                "do slow work (loading the model) in model_fn, not at import time",
            )
        else:
            report.error(
                "handler-import",
                f"code/inference.py fails to import: {result.get('error')}",
                "fix the handler; the container would fail the same way at start-up",
            )
        return
    functions = result.get("functions", {})
    report.handler = functions
    errors, warnings = handler_contract.contract_problems(functions)
    for message in errors:
        report.error(
            "handler-contract",
            f"code/inference.py: {message}",
            "see the handler contract: model_fn(model_dir[, context]), input_fn(body, "
            "content_type[, context]), predict_fn(data, model[, context]), "
            "output_fn(prediction, accept[, context])",
        )
    for message in warnings:
        report.warn("handler-defaults", f"code/inference.py: {message}")


def estimated_memory_mb(weights_bytes: int) -> int:
    """Rough memory a worker needs to serve these weights on CPU."""
    return int(weights_bytes * WEIGHTS_MEMORY_FACTOR / 1024**2 + RUNTIME_OVERHEAD_MB)


def check_sizes(report: CheckReport, memory_mb: int | None) -> None:
    """Add warnings when the model does not fit serverless (disk, memory) or `memory_mb`."""
    if report.unpacked_bytes > SERVERLESS_DISK_BYTES:
        report.warn(
            "too-big-for-serverless-disk",
            f"unpacks to {_mb(report.unpacked_bytes)}; serverless endpoints have 5 GB of disk",
            "deploy it to a real-time endpoint instead",
        )
    needed = estimated_memory_mb(report.weights_bytes)
    if needed > SERVERLESS_MAX_MEMORY_MB:
        report.warn(
            "too-big-for-serverless-memory",
            f"needs about {needed} MB of memory; serverless endpoints have at most "
            f"{SERVERLESS_MAX_MEMORY_MB} MB",
            "deploy it to a real-time endpoint instead",
        )
    if memory_mb is not None and needed > memory_mb:
        report.warn(
            "memory",
            f"needs about {needed} MB of memory; {memory_mb} MB was chosen",
            f"choose at least {(needed + 1023) // 1024 * 1024} MB",
        )


def _mb(count: int) -> str:
    return f"{count / 1e6:.1f} MB"


class _CountingReader:
    """A read-only file wrapper reporting the compressed bytes read as 'check' progress."""

    def __init__(self, handle: BinaryIO, progress: ProgressCallback, total: int, name: str) -> None:
        self._handle = handle
        self._progress = progress
        self._total = total
        self._name = name
        self._done = 0
        self._reported = 0

    def read(self, size: int = -1) -> bytes:
        data = self._handle.read(size)
        self._done += len(data)
        if self._done - self._reported >= 8 * 1024 * 1024:
            self._reported = self._done
            self._progress(
                ProgressEvent(
                    task="check",
                    message=self._name,
                    completed=self._done,
                    total=self._total,
                    unit="bytes",
                )
            )
        return data
