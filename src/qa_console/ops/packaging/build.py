"""Build a SageMaker model.tar.gz from a model folder: `build(model_dir, output) -> PackageResult`.

Layout (what the Hugging Face container expects after unpacking into /opt/ml/model):

    code/inference.py        the handler (inference/model_handler.py)
    code/requirements.txt    when asked
    config.json, generation_config.json, model.safetensors, tokenizer files, training_record.json
    manifest.json            sha256 and size of every file above, the versions that wrote them,
                             and the CPU fast path the handler applies at load time (fast_path.py)

Reproducible: entries in sorted name order (manifest.json last: it holds the hashes computed while
the files stream past), files 0644 and folders 0755, owner 0/0 with empty names, one fixed mtime,
and a gzip stream with mtime 0 and no file name whose chunking depends only on the input
(gzip_parallel.py). The same folder gives the same bytes, on any machine and thread count.

Compression: model weights (float tensors) shrink only to ~92% with gzip whatever the level, but a
single deflate stream runs ~35 MB/s here, so packaging a 1 GB model would take half a minute of
one core. Weights are therefore coded Huffman-only (same ~92%, ~3x faster per core) on all cores;
JSON and tokenizer files get normal deflate level 6. docs/benchmarks.md "Packaging" has the numbers.

Only safetensors weights are shipped: pickle files (pytorch_model.bin, *.pt, ...) run code when
loaded. A folder with only pickle weights is refused unless `convert=True`, which loads it with
transformers (weights_only) and re-saves the weights as safetensors in a temporary folder.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile
import tempfile
import time
import zlib
from dataclasses import asdict, dataclass, field
from importlib import resources
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, BinaryIO

from qa_console.errors import OperationError, UsageError
from qa_console.events import ProgressCallback, ProgressEvent, ignore_progress
from qa_console.ops.model_files import RECORD_FILE
from qa_console.ops.packaging import layout
from qa_console.ops.packaging.fast_path import choose_fast_path
from qa_console.ops.packaging.gzip_parallel import ParallelGzipWriter

MTIME = 1_704_067_200  # 2024-01-01T00:00:00Z: any fixed value works; 0 upsets some tools
FILE_MODE = 0o644
DIR_MODE = 0o755
TEXT_LEVEL = 6  # JSON/tokenizer files: small, compress well, worth the effort
WEIGHTS_LEVEL = 1  # with Huffman-only coding the level hardly matters; 1 is the cheapest
COPY_BUFFER = 1024 * 1024
PROGRESS_STEP = 8 * 1024 * 1024
MANIFEST_FORMAT = 1


@dataclass(frozen=True)
class PackagedFile:
    name: str  # path inside the archive
    size: int
    sha256: str


@dataclass(frozen=True)
class PackageResult:
    """What `build` wrote."""

    archive: Path
    sha256: str  # of the archive bytes
    archive_bytes: int
    unpacked_bytes: int
    files: list[PackagedFile]
    skipped: list[tuple[str, str]]  # (name in the model folder, why it stays behind)
    manifest: dict[str, Any]
    seconds: float
    converted: bool = False
    compression: str = ""
    fast_path_reason: str = ""  # why manifest["fast_path"] is what it is

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["archive"] = str(self.archive)
        data["skipped"] = [{"name": name, "reason": why} for name, why in self.skipped]
        return data


@dataclass
class Plan:
    """The files a build will ship: archive name -> source path (or bytes), plus what is skipped."""

    sources: dict[str, Path] = field(default_factory=dict)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    pickle_weights: list[str] = field(default_factory=list)


def handler_source() -> bytes:
    """The bytes of inference/model_handler.py, shipped as code/inference.py."""
    return resources.files("qa_console.inference").joinpath("model_handler.py").read_bytes()


def plan(model_dir: str | Path) -> Plan:
    """Decide what to ship from `model_dir` (top-level files only). Raises UsageError when the
    folder cannot make a working archive, saying what is missing."""
    folder = Path(model_dir).expanduser()
    if not folder.is_dir():
        raise UsageError(
            f"{folder}: no such model folder",
            hint="give the folder `qa-console train` wrote (config.json, model.safetensors, ...)",
        )
    result = Plan()
    for entry in sorted(folder.iterdir(), key=lambda path: path.name):
        name = entry.name
        if name.startswith("."):
            result.skipped.append((name, "hidden"))
        elif entry.is_dir():
            result.skipped.append((name + "/", "sub-folder (only top-level files are shipped)"))
        elif not entry.is_file():
            result.skipped.append((name, "not a regular file"))
        elif layout.is_pickle(name):
            result.skipped.append((name, "pickle format (never shipped)"))
            if name.startswith("pytorch_model"):
                result.pickle_weights.append(name)
        elif name == layout.MANIFEST or not name.endswith(layout.SHIPPED_SUFFIXES):
            result.skipped.append((name, "not a model, config or tokenizer file"))
        else:
            result.sources[name] = entry
    _require_model_files(folder, result)
    return result


def _require_model_files(folder: Path, result: Plan) -> None:
    names = set(result.sources)
    if layout.CONFIG not in names:
        raise UsageError(
            f"{folder} is not a model folder: it has no config.json",
            hint="save the model with model.save_pretrained(folder), or pass the folder "
            "`qa-console train` wrote",
        )
    if not layout.has_tokenizer(names):
        raise UsageError(
            f"{folder} has no tokenizer files (tokenizer.json, or tokenizer_config.json with a "
            "vocabulary)",
            hint="save the tokenizer beside the model: tokenizer.save_pretrained(folder)",
        )
    if not any(layout.is_weights(name) for name in names) and not result.pickle_weights:
        raise UsageError(
            f"{folder} has no model weights (model.safetensors)",
            hint="save the model with model.save_pretrained(folder)",
        )
    if layout.SAFETENSORS_INDEX in names:
        index = result.sources[layout.SAFETENSORS_INDEX].read_text(encoding="utf-8")
        missing = layout.missing_shards(index, names)
        if missing:
            raise UsageError(
                f"{folder}: model.safetensors.index.json names missing shards: "
                f"{', '.join(missing[:3])}",
                hint="copy every model-*.safetensors shard into the folder",
            )


def build(
    model_dir: str | Path,
    output: str | Path | None = None,
    *,
    requirements: str | None = None,
    convert: bool = False,
    level: int | None = None,
    threads: int | None = None,
    fast_path: str = "auto",
    progress: ProgressCallback = ignore_progress,
) -> PackageResult:
    """Write model.tar.gz for `model_dir`; returns what was written.

    output:       archive path (default: beside the folder, `<folder>.tar.gz`); written to a
                  temporary name first, so a failed build never leaves a half archive
    requirements: text of code/requirements.txt (the container pip-installs it at start-up)
    convert:      re-save pickle-only weights as safetensors instead of refusing
    level:        one zlib level (0-9) for everything, instead of the default scheme
    threads:      compression threads (default: the CPUs this process may use)
    fast_path:    "int8", "none", or "auto" (by model size); recorded in the manifest, applied by
                  the handler's model_fn
    """
    started = time.perf_counter()
    folder = Path(model_dir).expanduser()
    chosen = plan(folder)
    archive = Path(output).expanduser() if output else folder.with_name(folder.name + ".tar.gz")
    if archive.is_dir():
        raise UsageError(
            f"{archive} is a folder; --output names the archive file",
            hint=f"give a file name, e.g. -o {archive / (folder.name + '.tar.gz')}",
        )
    if level is not None and not 0 <= level <= 9:
        raise UsageError(f"compression level {level} is not between 0 and 9")
    chosen_fast_path = choose_fast_path(fast_path, folder)

    with tempfile.TemporaryDirectory(prefix="qa-console-convert-") as staging:
        converted = False
        if chosen.pickle_weights and not any(layout.is_weights(n) for n in chosen.sources):
            if not convert:
                raise UsageError(
                    f"{folder} has only pickle weights ({', '.join(chosen.pickle_weights)}); "
                    "model archives ship safetensors only, because loading a pickle runs code",
                    hint="pass --convert to re-save them as safetensors, or save the model with "
                    "model.save_pretrained(folder)",
                )
            chosen.sources.update(convert_to_safetensors(folder, Path(staging), progress))
            converted = True

        extra = {layout.HANDLER: handler_source()}
        if requirements is not None:
            extra[layout.REQUIREMENTS] = requirements.encode("utf-8")
        provenance = {**provenance_of(folder), "fast_path": chosen_fast_path.fast_path}
        files, manifest, archive_sha, archive_bytes = _write_archive(
            archive, chosen.sources, extra, provenance, level, threads, progress
        )

    unpacked = sum(item.size for item in files)
    return PackageResult(
        archive=archive,
        sha256=archive_sha,
        archive_bytes=archive_bytes,
        unpacked_bytes=unpacked,
        files=files,
        skipped=chosen.skipped,
        manifest=manifest,
        seconds=time.perf_counter() - started,
        converted=converted,
        compression=_describe_compression(level, threads),
        fast_path_reason=chosen_fast_path.reason,
    )


def _describe_compression(level: int | None, threads: int | None) -> str:
    count = threads or compression_threads()
    if level is None:
        return f"weights huffman-only, other files level {TEXT_LEVEL}, {count} threads"
    return f"level {level}, {count} threads"


def compression_threads() -> int:
    """Threads used by default: the CPUs this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _write_archive(
    archive: Path,
    sources: dict[str, Path],
    extra: dict[str, bytes],
    provenance: dict[str, Any],
    level: int | None,
    threads: int | None,
    progress: ProgressCallback,
) -> tuple[list[PackagedFile], dict[str, Any], str, int]:
    """Stream every file into the archive once: hash, tar and compress as the bytes go by."""
    entries: dict[str, Path | bytes] = {**sources, **extra}
    total = sum(path.stat().st_size for path in sources.values()) + sum(map(len, extra.values()))
    meter = _Meter(progress, total, archive.name)
    partial = archive.with_name(f".{archive.name}.partial-{os.getpid()}")
    files: list[PackagedFile] = []
    try:
        archive.parent.mkdir(parents=True, exist_ok=True)
        raw_file = open(partial, "wb")  # noqa: SIM115 - closed by the `with` below
    except OSError as error:
        raise _unwritable(archive, error) from None
    try:
        with raw_file:
            raw = _HashingSink(raw_file)
            gz = ParallelGzipWriter(
                raw,
                level=TEXT_LEVEL if level is None else level,
                threads=threads or compression_threads(),
            )
            with gz, tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar:  # type: ignore[call-overload]
                tar.copybufsize = COPY_BUFFER
                tar.addfile(_info("code", 0, directory=True))
                for name in sorted(entries):
                    _choose_section(gz, name, level)
                    files.append(_add(tar, name, entries[name], meter))
                gz.section(level=TEXT_LEVEL if level is None else level)
                manifest = {
                    **provenance,
                    "files": {f.name: {"sha256": f.sha256, "size": f.size} for f in files},
                }
                _add(tar, layout.MANIFEST, manifest_bytes(manifest), meter)
        os.chmod(partial, FILE_MODE)
        try:
            os.replace(partial, archive)
        except OSError as error:
            raise _unwritable(archive, error) from None
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    meter.finish()
    return files, manifest, raw.hexdigest(), raw.size


def _unwritable(archive: Path, error: OSError) -> UsageError:
    return UsageError(
        f"cannot write {archive}: {error.strerror or error}",
        hint="choose a writable --output path",
    )


def _choose_section(gz: ParallelGzipWriter, name: str, level: int | None) -> None:
    if level is not None:
        return
    if layout.is_weights(name):
        gz.section(level=WEIGHTS_LEVEL, strategy=zlib.Z_HUFFMAN_ONLY)
    else:
        gz.section(level=TEXT_LEVEL)


def _info(name: str, size: int, *, directory: bool = False) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size = 0 if directory else size
    info.type = tarfile.DIRTYPE if directory else tarfile.REGTYPE
    info.mode = DIR_MODE if directory else FILE_MODE
    info.mtime = MTIME
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


def _add(tar: tarfile.TarFile, name: str, source: Path | bytes, meter: _Meter) -> PackagedFile:
    if isinstance(source, bytes):
        reader = _HashingReader(io.BytesIO(source), meter)
        size = len(source)
        tar.addfile(_info(name, size), reader)
    else:
        meter.current = name
        with open(source, "rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            reader = _HashingReader(handle, meter)
            try:
                tar.addfile(_info(name, size), reader)
            except OSError as error:  # tarfile: "unexpected end of data" when a file shrinks
                raise OperationError(
                    f"{source} changed while it was being packaged ({error})",
                    hint="wait for training or copying to finish, then package again",
                ) from None
    return PackagedFile(name=name, size=size, sha256=reader.hexdigest())


def read_training_record(model_dir: Path) -> dict[str, Any]:
    """training_record.json written by `qa-console train`, or {} when absent or unreadable."""
    try:
        data = json.loads((model_dir / RECORD_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def provenance_of(model_dir: Path) -> dict[str, Any]:
    """The manifest's fields besides "files": the versions that wrote the model, and its origin.

    Versions: transformers from the training record, else config.json's transformers_version
    (what deploy matches the container against); torch from the record, else the installed one.
    Base model and dataset sha256 come from training_record.json when there is one.
    """
    record = read_training_record(model_dir)
    libraries = _table(record, "libraries")
    data = _table(record, "data")
    transformers_version = libraries.get("transformers") or _config_transformers_version(model_dir)
    torch_version = libraries.get("torch") or _installed("torch")
    return {
        "format": MANIFEST_FORMAT,
        "created_by": f"qa-console {_installed('qa-console') or 'unknown'}",
        "transformers_version": transformers_version,
        "torch_version": torch_version,
        "base_model": record.get("base_model"),
        "dataset_sha256": data.get("fingerprint"),
    }


def _table(record: dict[str, Any], key: str) -> dict[str, Any]:
    value = record.get(key)
    return value if isinstance(value, dict) else {}


def manifest_bytes(manifest: dict[str, Any]) -> bytes:
    return (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode("utf-8")


def _config_transformers_version(model_dir: Path) -> str | None:
    try:
        config = json.loads((model_dir / layout.CONFIG).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    value = config.get("transformers_version") if isinstance(config, dict) else None
    return str(value) if value else None


def _installed(distribution: str) -> str | None:
    try:
        return version(distribution)
    except PackageNotFoundError:
        return None


def requirements_for(model_dir: str | Path) -> str:
    """code/requirements.txt pinning the transformers that saved the model, for containers whose
    own transformers is older (the container pip-installs this at start-up)."""
    folder = Path(model_dir).expanduser()
    libraries = _table(read_training_record(folder), "libraries")
    pinned = libraries.get("transformers") or _config_transformers_version(folder)
    lines = [f"transformers=={pinned}" if pinned else "transformers", "safetensors"]
    return "\n".join(lines) + "\n"


def convert_to_safetensors(
    model_dir: Path, staging: Path, progress: ProgressCallback = ignore_progress
) -> dict[str, Path]:
    """Load pickle weights with transformers (weights_only) and save them as safetensors in
    `staging`; returns the new weight files by archive name. Needs the `model` extra."""
    progress(ProgressEvent(task="convert", message="re-saving pickle weights as safetensors"))
    try:
        from transformers import AutoModelForSeq2SeqLM
    except ImportError:
        raise UsageError(
            "--convert needs transformers and torch",
            hint="pip install 'qa-console[model]'",
        ) from None
    try:
        model = AutoModelForSeq2SeqLM.from_pretrained(model_dir)
    except Exception as error:  # a broken or foreign checkpoint: say so in one line
        raise OperationError(f"cannot load the pickle weights in {model_dir}: {error}") from None
    model.save_pretrained(staging)
    converted = {
        path.name: path
        for path in sorted(staging.iterdir())
        if layout.is_weights(path.name) or path.name == layout.SAFETENSORS_INDEX
    }
    progress(ProgressEvent(task="convert", message="converted", done=True))
    return converted


class _Meter:
    """Turns bytes read into 'package' progress events, at most one per PROGRESS_STEP."""

    def __init__(self, progress: ProgressCallback, total: int, archive_name: str) -> None:
        self.progress = progress
        self.total = total
        self.done = 0
        self.current = ""
        self._reported = 0
        self._archive_name = archive_name
        progress(
            ProgressEvent(
                task="package", message=archive_name, completed=0, total=total, unit="bytes"
            )
        )

    def add(self, count: int) -> None:
        self.done += count
        if self.done - self._reported >= PROGRESS_STEP:
            self._reported = self.done
            self.progress(
                ProgressEvent(
                    task="package",
                    message=self.current or self._archive_name,
                    completed=min(self.done, self.total),
                    total=self.total,
                    unit="bytes",
                )
            )

    def finish(self) -> None:
        self.progress(
            ProgressEvent(
                task="package",
                message=self._archive_name,
                completed=self.total,
                total=self.total,
                unit="bytes",
                done=True,
            )
        )


class _HashingReader:
    """A read-only file wrapper that hashes and counts what tarfile copies out of it."""

    def __init__(self, handle: BinaryIO, meter: _Meter) -> None:
        self._handle = handle
        self._meter = meter
        self._hash = hashlib.sha256()

    def read(self, size: int = -1) -> bytes:
        data = self._handle.read(size)
        self._hash.update(data)
        self._meter.add(len(data))
        return data

    def hexdigest(self) -> str:
        return self._hash.hexdigest()


class _HashingSink:
    """A write-only wrapper that hashes and counts the archive bytes on their way to disk."""

    def __init__(self, handle: BinaryIO) -> None:
        self._handle = handle
        self._hash = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> int:
        self._hash.update(data)
        self.size += len(data)
        return self._handle.write(data)

    def hexdigest(self) -> str:
        return self._hash.hexdigest()
