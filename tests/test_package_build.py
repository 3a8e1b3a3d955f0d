"""Building model.tar.gz: exact layout, modes, reproducible bytes, manifest, what is left out."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import shutil
import tarfile
import zlib
from pathlib import Path

import pytest

from fixtures_foundation import run_cli
from fixtures_package import TRAINING_RECORD
from qa_console.errors import UsageError
from qa_console.events import ProgressEvent
from qa_console.inference import model_handler as handler_module
from qa_console.ops.packaging import build as package
from qa_console.ops.packaging.check import check_tarball
from qa_console.ops.packaging.gzip_parallel import ParallelGzipWriter

HANDLER = Path(handler_module.__file__)
MODEL_FILES = [
    "config.json",
    "generation_config.json",
    "model.safetensors",
    "tokenizer.json",
    "tokenizer_config.json",
    "training_record.json",
]


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def copy_model(source: Path, target: Path) -> Path:
    shutil.copytree(source, target)
    return target


def test_archive_has_the_exact_layout_modes_and_fixed_metadata(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    result = package.build(tiny_model_dir, tmp_path / "model.tar.gz")

    with tarfile.open(result.archive, "r:gz") as tar:
        members = tar.getmembers()
        handler = tar.extractfile("code/inference.py").read()  # type: ignore[union-attr]
    names = [member.name for member in members]
    assert names == ["code", "code/inference.py", *MODEL_FILES, "manifest.json"]
    for member in members:
        assert member.isdir() if member.name == "code" else member.isfile()
        assert member.mode == (0o755 if member.isdir() else 0o644), member.name
        assert (member.uid, member.gid, member.uname, member.gname) == (0, 0, "", "")
        assert member.mtime == package.MTIME
    assert handler == HANDLER.read_bytes()

    raw = result.archive.read_bytes()
    assert raw[:4] == b"\x1f\x8b\x08\x00"  # gzip, deflate, no flags: no file name stored
    assert raw[4:8] == b"\x00\x00\x00\x00"  # gzip header mtime 0
    assert result.sha256 == hashlib.sha256(raw).hexdigest()
    assert result.archive_bytes == len(raw)
    assert oct(result.archive.stat().st_mode & 0o777) == "0o644"
    assert not list(tmp_path.glob(".*partial*"))  # no temporary file left behind


def test_same_folder_gives_the_same_bytes_whatever_the_path_times_and_threads(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    first = package.build(tiny_model_dir, tmp_path / "a" / "model.tar.gz", threads=1)
    moved = copy_model(tiny_model_dir, tmp_path / "elsewhere" / "renamed")
    for path in moved.iterdir():  # new times and permissions must not leak into the archive
        os.utime(path, (1_000_000, 1_000_000))
        path.chmod(0o600)
    second = package.build(moved, tmp_path / "b" / "other-name.tar.gz", threads=3)

    assert first.sha256 == second.sha256
    assert sha256(first.archive) == sha256(second.archive)


def test_manifest_records_every_file_and_where_the_model_came_from(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    result = package.build(tiny_model_dir, tmp_path / "model.tar.gz")
    with tarfile.open(result.archive, "r:gz") as tar:
        manifest = json.load(tar.extractfile("manifest.json"))  # type: ignore[arg-type]

    expected = {
        name: {
            "sha256": sha256(tiny_model_dir / name),
            "size": (tiny_model_dir / name).stat().st_size,
        }
        for name in MODEL_FILES
    }
    handler = HANDLER.read_bytes()
    expected["code/inference.py"] = {
        "sha256": hashlib.sha256(handler).hexdigest(),
        "size": len(handler),
    }
    assert manifest["files"] == expected
    assert manifest["transformers_version"] == TRAINING_RECORD["libraries"]["transformers"]
    assert manifest["torch_version"] == TRAINING_RECORD["libraries"]["torch"]
    assert manifest["base_model"] == "tiny"
    assert manifest["dataset_sha256"] == "f" * 64
    assert manifest == result.manifest


def test_without_a_training_record_versions_come_from_config_and_the_installed_torch(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    from importlib.metadata import version

    folder = copy_model(tiny_model_dir, tmp_path / "model")
    (folder / "training_record.json").unlink()
    config = json.loads((folder / "config.json").read_text())

    manifest = package.build(folder, tmp_path / "model.tar.gz").manifest

    assert manifest["transformers_version"] == config["transformers_version"]
    assert manifest["torch_version"] == version("torch")
    assert manifest["base_model"] is None and manifest["dataset_sha256"] is None
    assert "training_record.json" not in manifest["files"]


def test_only_model_files_are_shipped_and_the_rest_is_reported(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    folder = copy_model(tiny_model_dir, tmp_path / "model")
    (folder / "loss_curve.png").write_bytes(b"\x89PNG")
    (folder / "training_args.bin").write_bytes(b"pickle")
    (folder / ".DS_Store").write_bytes(b"x")
    (folder / "predictions").mkdir()
    (folder / "predictions" / "eval.jsonl").write_text("{}")
    (folder / "checkpoints").mkdir()

    result = package.build(folder, tmp_path / "model.tar.gz")

    shipped = {item.name for item in result.files}
    assert shipped == {"code/inference.py", *MODEL_FILES}
    skipped = dict(result.skipped)
    assert set(skipped) == {
        "loss_curve.png",
        "training_args.bin",
        ".DS_Store",
        "predictions/",
        "checkpoints/",
    }
    assert "pickle" in skipped["training_args.bin"]


def test_requirements_pin_the_transformers_that_saved_the_model(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    pins = package.requirements_for(tiny_model_dir)
    result = package.build(tiny_model_dir, tmp_path / "model.tar.gz", requirements=pins)
    with tarfile.open(result.archive, "r:gz") as tar:
        text = tar.extractfile("code/requirements.txt").read().decode()  # type: ignore[union-attr]
    assert "transformers==5.23.0" in text.splitlines()
    assert "code/requirements.txt" in result.manifest["files"]


def test_progress_is_reported_in_bytes_up_to_the_total(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    events: list[ProgressEvent] = []
    package.build(tiny_model_dir, tmp_path / "model.tar.gz", progress=events.append)
    ours = [event for event in events if event.task == "package"]
    assert all(event.unit == "bytes" for event in ours)
    total = sum((tiny_model_dir / name).stat().st_size for name in MODEL_FILES)
    total += HANDLER.stat().st_size
    assert ours[-1].done and ours[-1].completed == ours[-1].total == total


@pytest.mark.parametrize(
    ("remove", "words"),
    [
        ("config.json", "no config.json"),
        ("tokenizer.json", "no tokenizer files"),
        ("model.safetensors", "no model weights"),
    ],
)
def test_a_folder_missing_model_files_is_refused_before_writing(
    tiny_model_dir: Path, tmp_path: Path, remove: str, words: str
) -> None:
    folder = copy_model(tiny_model_dir, tmp_path / "model")
    (folder / remove).unlink()
    with pytest.raises(UsageError) as caught:
        package.build(folder, tmp_path / "model.tar.gz")
    assert words in caught.value.message
    assert caught.value.hint and "save_pretrained" in caught.value.hint
    assert not (tmp_path / "model.tar.gz").exists()


def _pickle_only_folder(tiny_model_dir: Path, target: Path) -> Path:
    import torch
    from safetensors.torch import load_file

    folder = copy_model(tiny_model_dir, target)
    weights = load_file(folder / "model.safetensors")
    torch.save(weights, folder / "pytorch_model.bin")
    (folder / "model.safetensors").unlink()
    return folder


def test_pickle_only_weights_are_refused_with_a_hint_then_converted(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    folder = _pickle_only_folder(tiny_model_dir, tmp_path / "model")

    refused = run_cli("package", str(folder), "-o", str(tmp_path / "refused.tar.gz"))
    assert refused.returncode == 2
    assert "pickle" in refused.stderr and "--convert" in refused.stderr
    assert not (tmp_path / "refused.tar.gz").exists()

    result = package.build(folder, tmp_path / "model.tar.gz", convert=True)
    assert result.converted
    shipped = {item.name for item in result.files}
    assert "model.safetensors" in shipped and "pytorch_model.bin" not in shipped
    assert check_tarball(result.archive).ok


def test_cli_builds_checks_and_reports_json(tiny_model_dir: Path, tmp_path: Path) -> None:
    target = tmp_path / "out" / "model.tar.gz"
    completed = run_cli("package", str(tiny_model_dir), "-o", str(target), "--json")
    assert completed.returncode == 0, completed.stderr
    data = json.loads(completed.stdout)
    assert data["package"]["archive"] == str(target)
    assert data["package"]["sha256"] == sha256(target)
    assert data["check"]["ok"] is True and data["check"]["errors"] == []


def test_default_output_sits_beside_the_model_folder(tiny_model_dir: Path, tmp_path: Path) -> None:
    folder = copy_model(tiny_model_dir, tmp_path / "bio-model")
    completed = run_cli("package", str(folder))
    assert completed.returncode == 0, completed.stderr
    assert (tmp_path / "bio-model.tar.gz").is_file()
    assert str(tmp_path / "bio-model.tar.gz") in completed.stdout


def test_an_unusable_output_path_is_a_one_line_error(tiny_model_dir: Path, tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    for output, words in [
        (tmp_path, "is a folder"),
        (blocker / "model.tar.gz", "cannot write"),
    ]:
        completed = run_cli("package", str(tiny_model_dir), "-o", str(output))
        assert completed.returncode == 2, completed.stderr
        assert words in completed.stderr and "Traceback" not in completed.stderr
    assert sorted(path.name for path in tmp_path.iterdir()) == ["a-file"]  # no partial left


# --- the parallel gzip writer itself ---------------------------------------------------------


def _weights_like(size: int, seed: int = 0) -> bytes:
    import numpy as np

    rng = np.random.default_rng(seed)
    return (rng.standard_normal(size // 4) * 0.02).astype(np.float32).tobytes()


def _compress(parts: list[tuple[bytes, int, int]], threads: int, chunk_size: int) -> bytes:
    sink = io.BytesIO()
    with ParallelGzipWriter(sink, threads=threads, chunk_size=chunk_size) as writer:
        for data, level, strategy in parts:
            writer.section(level=level, strategy=strategy)
            writer.write(data)
    return sink.getvalue()


def test_parallel_gzip_is_valid_gzip_and_independent_of_the_thread_count() -> None:
    text = b'{"vocab": ["hello", "world"], "id": 12345}\n' * 20_000
    parts = [
        (text[:50_000], 6, zlib.Z_DEFAULT_STRATEGY),
        (_weights_like(600_000), 1, zlib.Z_HUFFMAN_ONLY),
        (text, 6, zlib.Z_DEFAULT_STRATEGY),
    ]
    original = b"".join(data for data, _, _ in parts)

    single = _compress(parts, threads=1, chunk_size=64 * 1024)
    several = _compress(parts, threads=3, chunk_size=64 * 1024)

    assert single == several
    assert gzip.decompress(single) == original
    assert zlib.decompress(single, wbits=31) == original  # one single gzip member
    assert len(single) < 0.95 * len(original)  # text shrinks a lot, weights a little


def test_parallel_gzip_keeps_matches_across_chunk_borders() -> None:
    block = os.urandom(20_000)  # incompressible alone, but repeated within deflate's window
    sink = io.BytesIO()
    with ParallelGzipWriter(sink, level=6, threads=2, chunk_size=25_000) as writer:
        writer.write(block * 10)
    assert gzip.decompress(sink.getvalue()) == block * 10
    assert len(sink.getvalue()) < 0.3 * len(block * 10)
