"""The tarball validator refuses every kind of bad archive, saying what to fix, and the shared
safe_extract helper refuses the same members without leaving anything behind."""

from __future__ import annotations

import copy
import gzip
import json
import os
import tarfile
from collections.abc import Callable
from pathlib import Path

import pytest

from fixtures_foundation import run_cli
from fixtures_package import (
    Entry,
    file_entry,
    read_entries,
    replace,
    restamp_manifest,
    with_handler,
    write_archive,
)
from qa_console.errors import UsageError
from qa_console.ops.packaging.check import CheckReport, check_sizes, check_tarball
from qa_console.ops.packaging.safe_tar import UnsafeArchiveError, safe_extract

# --- crafting archives (the shared helpers live in fixtures_package) ----------------------------


def special_entry(name: str, kind: bytes, linkname: str = "") -> Entry:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = linkname
    return info, None


def drop(entries: list[Entry], *names: str) -> list[Entry]:
    return [(info, data) for info, data in entries if info.name not in names]


def flip_a_byte(data: bytes) -> bytes:
    middle = len(data) // 2
    return data[:middle] + bytes([data[middle] ^ 0xFF]) + data[middle + 1 :]


@pytest.fixture(scope="module")
def good_entries(tiny_archive: Path) -> list[Entry]:
    return read_entries(tiny_archive)


def nested(entries: list[Entry]) -> list[Entry]:
    moved = []
    for info, data in entries:
        info = copy.copy(info)
        info.name = "model/" + info.name
        moved.append((info, data))
    return moved


# name -> (make the bad entries from the good ones, expected error code, words the hint has)
Craft = Callable[[list[Entry]], list[Entry]]
BAD_ARCHIVES: dict[str, tuple[Craft, str, str]] = {
    "nested top folder": (nested, "nested-folder", "tar -czf model.tar.gz -C model ."),
    "no config.json": (
        lambda e: restamp_manifest(drop(e, "config.json")),
        "missing-config",
        "qa-console package",
    ),
    "no tokenizer": (
        lambda e: restamp_manifest(drop(e, "tokenizer.json", "tokenizer_config.json")),
        "missing-tokenizer",
        "tokenizer.save_pretrained",
    ),
    "no weights": (
        lambda e: restamp_manifest(drop(e, "model.safetensors")),
        "missing-weights",
        "save_pretrained",
    ),
    "pickle weights": (
        lambda e: restamp_manifest(
            [*drop(e, "model.safetensors"), file_entry("pytorch_model.bin", b"\x80\x04K\x01.")]
        ),
        "pickle",
        "--convert",
    ),
    "absolute path": (
        lambda e: [*e, file_entry("/tmp/qa-console-evil.txt", b"x")],
        "unsafe-member",
        "qa-console package",
    ),
    "dot-dot path": (
        lambda e: [*e, file_entry("code/../../evil.txt", b"x")],
        "unsafe-member",
        "qa-console package",
    ),
    "symlink out of the tree": (
        lambda e: [*e, special_entry("passwd.json", tarfile.SYMTYPE, "/etc/passwd")],
        "link",
        "qa-console package",
    ),
    "symlink inside the tree": (
        lambda e: [*e, special_entry("alias.json", tarfile.SYMTYPE, "config.json")],
        "link",
        "qa-console package",
    ),
    "hard link": (
        lambda e: [*e, special_entry("copy.json", tarfile.LNKTYPE, "config.json")],
        "link",
        "qa-console package",
    ),
    "character device": (
        lambda e: [*e, special_entry("null", tarfile.CHRTYPE)],
        "device",
        "qa-console package",
    ),
    "fifo": (
        lambda e: [*e, special_entry("pipe", tarfile.FIFOTYPE)],
        "device",
        "qa-console package",
    ),
    "duplicate member": (
        lambda e: [*e, file_entry("config.json", b"{}")],
        "unsafe-member",
        "qa-console package",
    ),
    "weights changed after packaging": (
        lambda e: replace(
            e,
            "model.safetensors",
            flip_a_byte(dict((i.name, d) for i, d in e)["model.safetensors"]),
        ),
        "manifest-mismatch",
        "qa-console package",
    ),
    "file size differs from the manifest": (
        lambda e: replace(e, "config.json", b'{"model_type": "t5"}'),
        "manifest-mismatch",
        "qa-console package",
    ),
    "file removed after packaging": (
        lambda e: drop(e, "generation_config.json"),
        "manifest-mismatch",
        "qa-console package",
    ),
    "file added after packaging": (
        lambda e: [*e, file_entry("extra.json", b"{}")],
        "manifest-mismatch",
        "qa-console package",
    ),
    "handler with a wrong signature": (
        lambda e: with_handler(e, "def model_fn(model_dir, context, extra):\n    return None\n"),
        "handler-contract",
        "model_fn(model_dir[, context])",
    ),
    "transform_fn mixed with input_fn": (
        lambda e: with_handler(
            e,
            "def model_fn(d):\n    return d\n"
            "def input_fn(body, content_type):\n    return body\n"
            "def transform_fn(model, body, content_type, accept):\n    return body\n",
        ),
        "handler-contract",
        "handler contract",
    ),
    "handler defining nothing": (
        lambda e: with_handler(e, "VALUE = 1\n"),
        "handler-contract",
        "handler contract",
    ),
    "handler that fails to import": (
        lambda e: with_handler(e, "raise RuntimeError('boom at import time')\n"),
        "handler-import",
        "fix the handler",
    ),
    "handler that kills its process": (
        lambda e: with_handler(e, "import os\nos._exit(3)\n"),
        "handler-import",
        "fix the handler",
    ),
}


@pytest.mark.parametrize("case", list(BAD_ARCHIVES))
def test_every_bad_archive_is_refused_with_what_to_fix(
    case: str, good_entries: list[Entry], tmp_path: Path
) -> None:
    craft, code, hint_words = BAD_ARCHIVES[case]
    archive = write_archive(tmp_path / "model.tar.gz", craft(good_entries))

    report = check_tarball(archive)

    assert not report.ok
    assert code in report.codes(), report.errors
    finding = next(f for f in report.errors if f.code == code)
    assert finding.hint and hint_words in finding.hint, finding
    assert all(f.hint for f in report.errors), report.errors
    assert report.summary().startswith("refused: model.tar.gz")


def test_the_packaged_archive_passes(tiny_archive: Path) -> None:
    report = check_tarball(tiny_archive)
    assert report.ok, report.errors
    assert report.warnings == []
    assert report.handler is not None and report.handler["model_fn"]["parameters"] == 2
    assert report.manifest is not None and report.weights_bytes > 0
    assert report.summary().startswith("ok: ")


def test_a_handler_that_hangs_at_import_is_stopped(
    good_entries: list[Entry], tmp_path: Path
) -> None:
    entries = with_handler(good_entries, "import time\ntime.sleep(120)\n")
    archive = write_archive(tmp_path / "model.tar.gz", entries)
    report = check_tarball(archive, handler_timeout_s=3)
    assert "handler-timeout" in report.codes()


def test_a_handler_in_the_archive_is_never_imported_into_the_checker(
    good_entries: list[Entry], tmp_path: Path
) -> None:
    marker = tmp_path / "imported"
    source = f"open({str(marker)!r}, 'w').write(str(__import__('os').getpid()))\n"
    source += "def model_fn(d):\n    return d\n"
    archive = write_archive(tmp_path / "model.tar.gz", with_handler(good_entries, source))
    report = check_tarball(archive)
    assert report.ok, report.errors
    assert int(marker.read_text()) != os.getpid()  # imported, but in another process


@pytest.mark.parametrize(
    ("make", "code"),
    [
        (lambda raw: raw, "not-gzip"),
        (lambda raw: b"definitely not an archive" * 40, "not-tar-gz"),
        (lambda raw: gzip.compress(raw, mtime=0)[: len(raw) // 3], "corrupt"),
    ],
    ids=["plain tar", "not an archive", "truncated"],
)
def test_archives_that_are_not_tar_gz_are_refused(
    make: Callable[[bytes], bytes], code: str, good_entries: list[Entry], tmp_path: Path
) -> None:
    plain = write_archive(tmp_path / "plain.tar", good_entries, compress=False).read_bytes()
    archive = tmp_path / "model.tar.gz"
    archive.write_bytes(make(plain))
    report = check_tarball(archive)
    assert code in report.codes(), report.errors
    assert all(f.hint for f in report.errors)


def test_missing_manifest_and_handler_are_warnings(
    good_entries: list[Entry], tmp_path: Path
) -> None:
    archive = write_archive(
        tmp_path / "model.tar.gz", drop(good_entries, "manifest.json", "code", "code/inference.py")
    )
    report = check_tarball(archive)
    assert report.ok, report.errors
    assert {w.code for w in report.warnings} == {"no-manifest", "no-handler"}


def test_size_warnings_for_serverless_and_the_chosen_memory(tiny_archive: Path) -> None:
    small = check_tarball(tiny_archive, memory_mb=512)
    assert [w.code for w in small.warnings] == ["memory"]
    assert "1024 MB" in (small.warnings[0].hint or "")
    assert check_tarball(tiny_archive, memory_mb=2048).warnings == []

    big = CheckReport(archive=tiny_archive, unpacked_bytes=6 * 10**9, weights_bytes=6 * 10**9)
    check_sizes(big, memory_mb=None)
    codes = {w.code for w in big.warnings}
    assert codes == {"too-big-for-serverless-disk", "too-big-for-serverless-memory"}
    assert big.ok  # warnings, not refusals


def test_console_script_exits_2_and_lists_every_problem(
    good_entries: list[Entry], tmp_path: Path
) -> None:
    entries = [*nested(good_entries), special_entry("model/link", tarfile.SYMTYPE, "/etc/passwd")]
    archive = write_archive(tmp_path / "model.tar.gz", entries)

    completed = run_cli("package", "--check", str(archive))
    assert completed.returncode == 2
    assert "[nested-folder]" in completed.stdout and "[link]" in completed.stdout
    assert "tar -czf model.tar.gz -C model ." in completed.stdout
    assert "refused: model.tar.gz" in completed.stdout
    assert "error:" in completed.stderr

    as_json = run_cli("package", "--check", str(archive), "--json")
    assert as_json.returncode == 2
    data = json.loads(as_json.stdout)
    assert data["check"]["ok"] is False
    assert {e["code"] for e in data["check"]["errors"]} >= {"nested-folder", "link"}


def test_console_script_passes_a_good_archive(tiny_archive: Path) -> None:
    completed = run_cli("package", "--check", str(tiny_archive))
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.strip().splitlines()[-1].startswith("ok: model.tar.gz")


def test_check_of_a_missing_file_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError):
        check_tarball(tmp_path / "nope.tar.gz")


@pytest.mark.parametrize(
    ("arguments", "words"),
    [
        (["--check", "{tmp}/absent.tar.gz"], "no such file"),
        (["--smoke", "{tmp}/absent.tar.gz"], "no such file"),
        (["--check", "{tmp}"], "is a folder"),
        (["--smoke", "{tmp}/random.bin"], "refused"),
        (["{tmp}/absent"], "no such model folder"),
        (["{tmp}/random.bin"], "is a file"),
    ],
)
def test_console_script_bad_paths_are_one_line_errors(
    arguments: list[str], words: str, tmp_path: Path
) -> None:
    (tmp_path / "random.bin").write_bytes(bytes(range(256)) * 4)
    completed = run_cli("package", *[part.format(tmp=tmp_path) for part in arguments])
    assert completed.returncode == 2, completed.stderr
    assert words in completed.stderr and "Traceback" not in completed.stderr


# --- safe_extract --------------------------------------------------------------------------


def test_safe_extract_unpacks_a_good_archive(tiny_archive: Path, tmp_path: Path) -> None:
    names = safe_extract(tiny_archive, tmp_path / "out")
    assert "config.json" in names and "code/inference.py" in names
    assert (tmp_path / "out" / "code" / "inference.py").is_file()
    only_code = safe_extract(
        tiny_archive, tmp_path / "code-only", include=lambda n: n.startswith("code/")
    )
    assert only_code == ["code/inference.py"]


@pytest.mark.parametrize(
    "case",
    [
        "absolute path",
        "dot-dot path",
        "symlink out of the tree",
        "hard link",
        "fifo",
        "duplicate member",
    ],
)
def test_safe_extract_refuses_unsafe_members_and_leaves_nothing(
    case: str, good_entries: list[Entry], tmp_path: Path
) -> None:
    craft, _, _ = BAD_ARCHIVES[case]
    archive = write_archive(tmp_path / "model.tar.gz", craft(good_entries))
    target = tmp_path / "out"
    with pytest.raises(UnsafeArchiveError) as caught:
        safe_extract(archive, target)
    assert caught.value.exit_code == 2 and caught.value.hint
    assert not target.exists()
    assert not Path("/tmp/qa-console-evil.txt").exists()
    assert not (tmp_path / "evil.txt").exists()


def test_safe_extract_guards_the_unpacked_size_and_a_used_folder(
    tiny_archive: Path, tmp_path: Path
) -> None:
    with pytest.raises(UnsafeArchiveError, match="more than 1000 bytes"):
        safe_extract(tiny_archive, tmp_path / "small", max_bytes=1000)
    used = tmp_path / "used"
    used.mkdir()
    (used / "mine.txt").write_text("keep")
    with pytest.raises(UsageError, match="not empty"):
        safe_extract(tiny_archive, used)
    assert (used / "mine.txt").read_text() == "keep"
