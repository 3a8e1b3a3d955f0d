"""Unpacking a Lambda zip for the local gateway: what Lambda would run, and nothing unsafe."""

from __future__ import annotations

import io
import stat
import zipfile
from pathlib import Path

import pytest

from qa_console.errors import OperationError
from qa_console.localaws.awslambda.code import code_sha256, extract_zip, fetch_code


def _zip(entries: list[tuple[zipfile.ZipInfo | str, str]]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for info, text in entries:
            archive.writestr(info, text)
    return buffer.getvalue()


def _info(name: str, mode: int) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name)
    info.create_system = 3  # unix, so the mode bits count
    info.external_attr = mode << 16
    return info


def test_a_plain_zip_unpacks_with_packages_and_modes(tmp_path: Path) -> None:
    data = _zip(
        [
            ("app.py", "def handler(e, c):\n    return 1\n"),
            ("pkg/__init__.py", ""),
            (_info("bin/tool", stat.S_IFREG | 0o755), "#!/bin/sh\n"),
        ]
    )
    target = extract_zip(data, tmp_path / "code")
    assert (target / "app.py").read_text().startswith("def handler")
    assert (target / "pkg" / "__init__.py").is_file()
    assert stat.S_IMODE((target / "bin" / "tool").stat().st_mode) == 0o755
    assert stat.S_IMODE((target / "app.py").stat().st_mode) == 0o644
    assert sorted(p.name for p in tmp_path.iterdir()) == ["code"]  # no staging dir left


@pytest.mark.parametrize(
    "entry",
    [
        ("../escape.py", "x"),
        ("/abs.py", "x"),
        ("pkg/../../escape.py", "x"),
        (_info("link.py", stat.S_IFLNK | 0o777), "/etc/passwd"),
        (_info("fifo", stat.S_IFIFO | 0o644), ""),
    ],
)
def test_unsafe_members_are_refused_and_nothing_is_written(
    tmp_path: Path, entry: tuple[zipfile.ZipInfo | str, str]
) -> None:
    data = _zip([("ok.py", "x = 1\n"), entry])
    with pytest.raises(OperationError):
        extract_zip(data, tmp_path / "code")
    assert not (tmp_path / "code").exists()
    assert not (tmp_path / "escape.py").exists()
    assert [p.name for p in tmp_path.iterdir()] == []


def test_not_a_zip_is_refused(tmp_path: Path) -> None:
    with pytest.raises(OperationError, match="not a zip"):
        extract_zip(b"plain text", tmp_path / "code")


def test_code_is_only_accepted_when_its_sha256_matches(gateway_api: object) -> None:
    # gateway_api created gw-ask in the moto server of this process; a wrong hash is refused.
    arn = "arn:aws:lambda:us-east-1:123456789012:function:gw-ask"
    with pytest.raises(OperationError, match="sha256 differs"):
        fetch_code(arn, None, code_sha256(b"something else"), "http://127.0.0.1:1")
